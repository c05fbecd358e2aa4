//! A workflow definition: a named graph of steps over a JSON state, as a JSON document
//! (what REST, MCP and the CLI register) and as Rust values with a builder.
//!
//! ```json
//! {"name": "review", "state": {"files": {}, "findings": {"reducer": "append"}},
//!  "steps": [
//!    {"name": "analyze", "map": {"over": "files", "item": "file", "steps": [
//!        {"name": "lint", "task": {"kind": "lint"}, "input": {"$state": "/file"},
//!         "output": "findings"}]}, "next": "approve"},
//!    {"name": "approve", "wait": {"interrupt": {"prompt": "ship it?"}}, "output": "approved",
//!     "next": [{"when": {"path": "/approved", "eq": true}, "to": "report"}]},
//!    {"name": "report", "tool": {"name": "files", "action": "write"},
//!     "input": {"$state": "/findings"}}]}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::condition::Condition;
use crate::domain::Priority;

/// A workflow: a named graph of steps over a JSON state of declared keys.
/// (Serde: the JSON form of `json.rs`.)
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkflowDefinition {
    /// The workflow's name (1 to 64 characters of `[A-Za-z0-9_.-]`); registering it
    /// again makes a new version.
    pub name: String,
    /// What it does, for people.
    pub description: String,
    /// The state's keys, each with the reducer its writes go through. A run's input is
    /// an object of some of these keys.
    pub state: BTreeMap<String, StateKey>,
    /// The top-level graph (in JSON, its `start` and `steps` sit beside `name`).
    pub graph: Graph,
    /// Steps a run may execute before it fails (a guard against a loop that never
    /// ends). Default 10,000.
    pub max_steps: Option<u64>,
    /// How long a finished run and its history are kept, in seconds (default: kept
    /// until pruned by hand).
    pub retention_secs: Option<u64>,
    /// A JSON Schema a run's input must fit.
    pub input_schema: Option<Value>,
}

/// A declared key of the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StateKey {
    /// How a step's output combines with the key's value.
    #[serde(default)]
    pub reducer: Reducer,
}

impl StateKey {
    /// A key whose writes go through `reducer`.
    pub fn new(reducer: Reducer) -> Self {
        Self { reducer }
    }
}

/// How a write combines with a key's current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reducer {
    /// The write replaces the value.
    #[default]
    Overwrite,
    /// The value is a list: an array written is concatenated, anything else pushed.
    Append,
    /// The value is an object: a written object's keys replace the value's.
    Merge,
}

/// Steps and where a graph starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Graph {
    /// The first step (default: the first listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The steps; names are unique across the whole definition.
    pub steps: Vec<Step>,
}

impl Graph {
    /// A graph of these steps, starting at the first.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            start: None,
            steps: steps.into_iter().collect(),
        }
    }

    /// The name of the step the graph starts at.
    pub fn start_name(&self) -> Option<&str> {
        self.start
            .as_deref()
            .or_else(|| self.steps.first().map(|s| s.name.as_str()))
    }
}

/// One step: what it does, what it reads, where its result goes, what comes next.
/// (Serde: the JSON form of `json.rs`.)
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Step {
    /// Its name, unique in the definition (1 to 64 characters of `[A-Za-z0-9_.-]`).
    pub name: String,
    /// What it does.
    pub action: Action,
    /// Its input: a JSON template in which `{"$state": "/json/pointer"}` stands for that
    /// part of the state; the whole state when absent.
    pub input: Option<Value>,
    /// The state key its result is written to (through the key's reducer); dropped when
    /// absent.
    pub output: Option<String>,
    /// Where the graph goes after it.
    pub next: Next,
    /// A JSON Schema its rendered input must fit (the step fails if not).
    pub input_schema: Option<Value>,
    /// A JSON Schema its result must fit (the step fails if not).
    pub output_schema: Option<Value>,
}

impl Step {
    /// A step named `name` doing `action`, with the whole state as input, its result
    /// dropped, and the graph ending after it.
    pub fn new(name: impl Into<String>, action: Action) -> Self {
        Self {
            name: name.into(),
            action,
            input: None,
            output: None,
            next: Next::End,
            input_schema: None,
            output_schema: None,
        }
    }

    /// Checks its input against `schema`.
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = Some(schema);
        self
    }

    /// Checks its result against `schema`.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// Sets its input template.
    pub fn input(mut self, template: Value) -> Self {
        self.input = Some(template);
        self
    }

    /// Writes its result to state key `key`.
    pub fn output(mut self, key: impl Into<String>) -> Self {
        self.output = Some(key.into());
        self
    }

    /// Goes to step `name` after it.
    pub fn then(mut self, name: impl Into<String>) -> Self {
        self.next = Next::To(name.into());
        self
    }

    /// Goes to the first edge whose condition holds (the graph ends if none does).
    pub fn branch(mut self, edges: impl IntoIterator<Item = Edge>) -> Self {
        self.next = Next::Branch(edges.into_iter().collect());
        self
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// An agent task, routed by the engine.
    Task(TaskStep),
    /// A call of a registered tool's action.
    Tool {
        /// The tool's name.
        name: String,
        /// The action.
        action: String,
    },
    /// A collaboration pattern, as `POST /api/v1/collab` takes it (`{"pattern":
    /// "parallel" | "map_reduce" | "pipeline" | "consensus", …}`); its outcome is the
    /// step's result. A step `input` replaces the pattern's own input (the pipeline's
    /// `input`, the map-reduce `inputs`, the consensus task's `input`).
    Collab(Value),
    /// A run of another workflow; its output is the step's result.
    Workflow {
        /// The workflow's name.
        name: String,
        /// Its version (default: the newest when the step starts).
        version: Option<u32>,
    },
    /// A read or an edit of one of the tenant's shared documents
    /// (`crate::shared_docs`): the step's input names the document.
    Doc(DocStep),
    /// Waiting for something from outside.
    Wait(Wait),
    /// Graphs run side by side on copies of the state; their writes join in branch
    /// order.
    Parallel {
        /// The branches.
        branches: Vec<Graph>,
    },
    /// A graph run for every element of a list in the state; the writes join in the
    /// list's order.
    Map(MapStep),
}

/// What a `doc` step does with the shared document its input names
/// (`{"id": "<document id>"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DocStep {
    /// Its result is the document's content (a text's string, a state's object).
    Read,
    /// Applies the input's `edits` (as `POST /api/v1/shared-docs/{id}/edits` takes
    /// them, all or none); its result is the content after them.
    Edit,
}

/// An agent task step: the task options that exist for `Engine::submit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TaskStep {
    /// The task kind.
    pub kind: String,
    /// Capabilities the agent needs besides `kind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_capabilities: Vec<String>,
    /// Urgency.
    #[serde(default)]
    pub priority: Priority,
    /// Attempts before the task fails for good (1 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Milliseconds one attempt may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl TaskStep {
    /// A task of `kind` with the engine's defaults.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            ..Self::default()
        }
    }
}

/// What a wait step waits for; the value it is resumed with is its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Wait {
    /// A signal of this name sent to the run (one sent before the run waits is kept).
    Signal {
        /// The signal's name.
        name: String,
    },
    /// A person: the run shows a pending interrupt with an id, resumed with a value.
    Interrupt {
        /// What to ask them.
        #[serde(default)]
        prompt: Value,
    },
    /// Time: the step ends this many milliseconds after it starts (result `null`).
    Timer {
        /// How long.
        ms: u64,
    },
}

/// A map step: a graph run per element of a list.
/// (Serde: the JSON form of `json.rs`.)
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MapStep {
    /// The state key holding the list.
    pub over: String,
    /// The state key each run of the graph sees its element under.
    pub item: String,
    /// The graph run per element (in JSON, its `start` and `steps` sit beside `over`).
    pub graph: Graph,
}

impl MapStep {
    /// Runs `graph` for every element of `over`, each seen as `item`.
    pub fn new(over: impl Into<String>, item: impl Into<String>, graph: Graph) -> Self {
        Self {
            over: over.into(),
            item: item.into(),
            graph,
        }
    }
}

/// Where a graph goes after a step.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub enum Next {
    /// The graph ends.
    #[default]
    End,
    /// To this step.
    To(String),
    /// To the first edge whose condition holds; the graph ends if none does.
    Branch(Vec<Edge>),
}

/// A conditional edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Edge {
    /// When it is taken (always, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// The step it goes to (`"end"` ends the graph).
    pub to: String,
}

impl Edge {
    /// An edge to `to` taken when `when` holds.
    pub fn when(when: Condition, to: impl Into<String>) -> Self {
        Self {
            when: Some(when),
            to: to.into(),
        }
    }

    /// An edge to `to` that is always taken.
    pub fn otherwise(to: impl Into<String>) -> Self {
        Self {
            when: None,
            to: to.into(),
        }
    }
}

/// The name an edge uses to end the graph.
pub const END: &str = "end";

impl WorkflowDefinition {
    /// A workflow named `name` over `state`, running `steps` from the first.
    pub fn new(
        name: impl Into<String>,
        state: impl IntoIterator<Item = (String, StateKey)>,
        steps: impl IntoIterator<Item = Step>,
    ) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            state: state.into_iter().collect(),
            graph: Graph::new(steps),
            max_steps: None,
            retention_secs: None,
            input_schema: None,
        }
    }

    /// The default [`max_steps`](Self::max_steps).
    pub const DEFAULT_MAX_STEPS: u64 = 10_000;

    /// Sets [`retention_secs`](Self::retention_secs).
    pub fn retention_secs(mut self, secs: u64) -> Self {
        self.retention_secs = Some(secs);
        self
    }

    /// Every step of the definition, nested graphs included, by name.
    pub fn steps_by_name(&self) -> std::collections::HashMap<&str, &Step> {
        fn walk<'a>(graph: &'a Graph, out: &mut std::collections::HashMap<&'a str, &'a Step>) {
            for step in &graph.steps {
                out.insert(step.name.as_str(), step);
                match &step.action {
                    Action::Parallel { branches } => branches.iter().for_each(|b| walk(b, out)),
                    Action::Map(map) => walk(&map.graph, out),
                    _ => {}
                }
            }
        }
        let mut out = std::collections::HashMap::new();
        walk(&self.graph, &mut out);
        out
    }

    /// Sets [`max_steps`](Self::max_steps).
    pub fn max_steps(mut self, steps: u64) -> Self {
        self.max_steps = Some(steps);
        self
    }
}
