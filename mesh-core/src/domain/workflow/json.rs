//! The JSON form of definitions: a step names its action by the field present
//! (`task`, `tool`, `collab`, `workflow`, `doc`, `wait`, `parallel`, `map`), and a graph's
//! `start` and `steps` sit beside the fields of what holds it. These documents convert
//! to and from the typed values of `definition.rs`, refusing what does not fit.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::definition::{
    Action, DocStep, END, Edge, Graph, MapStep, Next, StateKey, Step, TaskStep, Wait,
    WorkflowDefinition,
};

/// A step as JSON: its action is the one of `task`, `tool`, `collab`, `workflow`,
/// `doc`, `wait`, `parallel` or `map` that is present.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDoc {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task: Option<TaskStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool: Option<ToolDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    collab: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workflow: Option<WorkflowDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doc: Option<DocStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wait: Option<Wait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parallel: Option<ParallelDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    map: Option<MapStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(default, skip_serializing_if = "NextDoc::is_end")]
    next: NextDoc,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_schema: Option<Value>,
}

/// A definition as JSON: the top-level graph's fields beside the rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionDoc {
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default)]
    state: BTreeMap<String, StateKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_steps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retention_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_schema: Option<Value>,
}

impl From<DefinitionDoc> for WorkflowDefinition {
    fn from(doc: DefinitionDoc) -> Self {
        Self {
            name: doc.name,
            description: doc.description,
            state: doc.state,
            graph: Graph {
                start: doc.start,
                steps: doc.steps,
            },
            max_steps: doc.max_steps,
            retention_secs: doc.retention_secs,
            input_schema: doc.input_schema,
        }
    }
}

impl From<WorkflowDefinition> for DefinitionDoc {
    fn from(def: WorkflowDefinition) -> Self {
        Self {
            name: def.name,
            description: def.description,
            state: def.state,
            start: def.graph.start,
            steps: def.graph.steps,
            max_steps: def.max_steps,
            retention_secs: def.retention_secs,
            input_schema: def.input_schema,
        }
    }
}

/// A map step as JSON: its graph's fields beside `over` and `item`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapDoc {
    over: String,
    item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    steps: Vec<Step>,
}

impl From<MapDoc> for MapStep {
    fn from(doc: MapDoc) -> Self {
        Self {
            over: doc.over,
            item: doc.item,
            graph: Graph {
                start: doc.start,
                steps: doc.steps,
            },
        }
    }
}

impl From<MapStep> for MapDoc {
    fn from(map: MapStep) -> Self {
        Self {
            over: map.over,
            item: map.item,
            start: map.graph.start,
            steps: map.graph.steps,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolDoc {
    name: String,
    action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowDoc {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParallelDoc {
    branches: Vec<Graph>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(untagged)]
enum NextDoc {
    #[default]
    End,
    To(String),
    Branch(Vec<Edge>),
}

impl NextDoc {
    fn is_end(&self) -> bool {
        matches!(self, Self::End)
    }
}

impl TryFrom<StepDoc> for Step {
    type Error = String;

    fn try_from(doc: StepDoc) -> Result<Self, String> {
        let mut actions = Vec::new();
        if let Some(task) = doc.task {
            actions.push(Action::Task(task));
        }
        if let Some(tool) = doc.tool {
            actions.push(Action::Tool {
                name: tool.name,
                action: tool.action,
            });
        }
        if let Some(job) = doc.collab {
            actions.push(Action::Collab(job));
        }
        if let Some(w) = doc.workflow {
            actions.push(Action::Workflow {
                name: w.name,
                version: w.version,
            });
        }
        if let Some(step) = doc.doc {
            actions.push(Action::Doc(step));
        }
        if let Some(wait) = doc.wait {
            actions.push(Action::Wait(wait));
        }
        if let Some(p) = doc.parallel {
            actions.push(Action::Parallel {
                branches: p.branches,
            });
        }
        if let Some(map) = doc.map {
            actions.push(Action::Map(map));
        }
        let [action] = <[Action; 1]>::try_from(actions).map_err(|found| {
            format!(
                "step {:?} must have exactly one of task, tool, collab, workflow, doc, wait, parallel, map (it has {})",
                doc.name,
                found.len()
            )
        })?;
        let next = match doc.next {
            NextDoc::End => Next::End,
            NextDoc::To(to) if to == END => Next::End,
            NextDoc::To(to) => Next::To(to),
            NextDoc::Branch(edges) => Next::Branch(edges),
        };
        Ok(Self {
            name: doc.name,
            action,
            input: doc.input,
            output: doc.output,
            next,
            input_schema: doc.input_schema,
            output_schema: doc.output_schema,
        })
    }
}

impl From<Step> for StepDoc {
    fn from(step: Step) -> Self {
        let mut doc = Self {
            name: step.name,
            input: step.input,
            output: step.output,
            input_schema: step.input_schema,
            output_schema: step.output_schema,
            next: match step.next {
                Next::End => NextDoc::End,
                Next::To(to) => NextDoc::To(to),
                Next::Branch(edges) => NextDoc::Branch(edges),
            },
            ..Self::default()
        };
        match step.action {
            Action::Task(task) => doc.task = Some(task),
            Action::Tool { name, action } => doc.tool = Some(ToolDoc { name, action }),
            Action::Collab(job) => doc.collab = Some(job),
            Action::Workflow { name, version } => {
                doc.workflow = Some(WorkflowDoc { name, version })
            }
            Action::Doc(step) => doc.doc = Some(step),
            Action::Wait(wait) => doc.wait = Some(wait),
            Action::Parallel { branches } => doc.parallel = Some(ParallelDoc { branches }),
            Action::Map(map) => doc.map = Some(map),
        }
        doc
    }
}

/// Serde for a typed value through its JSON document.
macro_rules! through_doc {
    ($ty:ty, $doc:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$doc>::from(self.clone()).serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$ty>::try_from(<$doc>::deserialize(deserializer)?)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

through_doc!(WorkflowDefinition, DefinitionDoc);
through_doc!(MapStep, MapDoc);
through_doc!(Step, StepDoc);
