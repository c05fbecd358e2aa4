//! The workflow interpreter, as pure data and logic: a run's [`Position`] is a tree of
//! frames (one per graph being walked: the top level, each parallel branch, each map
//! element), and two moves change it — [`Position::advance`] starts what is ready, and
//! [`Position::complete`] takes a step's result. The runtime performs the activations
//! `advance` hands out and checkpoints the position after every step; a position read
//! back from a checkpoint hands out the same activations again, so a step in flight at a
//! crash resumes under the same activation number (and so the same task id).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::{Action, END, Graph, Next, Step, WorkflowDefinition};
use super::state::{apply, render};

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Position {
    /// The top-level graph's frame; its state is the run's state.
    pub root: Frame,
    /// The number the next activation gets.
    pub next_activation: u64,
    /// Steps finished so far.
    pub steps_done: u64,
    /// Messages (signals, resumes) this position has taken in whose deletion is not
    /// yet known to be done: a restart deletes them instead of taking them twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumed: Vec<uuid::Uuid>,
}

/// One graph being walked, with its state (a branch's own copy, for nested graphs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Frame {
    /// The state as this graph sees it.
    pub state: Map<String, Value>,
    /// The writes this (nested) graph made, joined into its parent's state in order
    /// when the parallel or map step ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<(String, Value)>,
    /// Where the walk is.
    pub at: At,
}

/// Where a frame's walk is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
#[non_exhaustive]
pub enum At {
    /// This step starts next.
    Ready {
        /// The step.
        step: String,
    },
    /// This step runs as `activation` (a task, tool call, sub-workflow or wait).
    Running {
        /// The step.
        step: String,
        /// Its activation number, unique in the run.
        activation: u64,
        /// When it started (ms since the Unix epoch): timers end `ms` after it.
        since_ms: i64,
    },
    /// A parallel or map step runs these frames.
    Fanned {
        /// The step.
        step: String,
        /// One per branch or element.
        frames: Vec<Frame>,
    },
    /// The graph has ended.
    Done,
}

/// A step the runtime is to perform.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Activation {
    /// Its number, unique in the run; the same after a restart from a checkpoint.
    pub id: u64,
    /// The step's name.
    pub step: String,
    /// The step's input, rendered from its frame's state.
    pub input: Value,
    /// When it started (ms since the Unix epoch).
    pub since_ms: i64,
}

/// A step running now, without its input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Running {
    /// Its activation number.
    pub id: u64,
    /// The step's name.
    pub step: String,
    /// When it started (ms since the Unix epoch).
    pub since_ms: i64,
}

/// Why the interpreter cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    /// A map step's `over` key does not hold a list.
    #[error("step {step:?} maps over {key:?}, which does not hold a list")]
    NotAList {
        /// The step.
        step: String,
        /// The key.
        key: String,
    },
    /// The run took more steps than its definition allows.
    #[error("the run took more than {max} steps")]
    TooManySteps {
        /// The limit.
        max: u64,
    },
    /// The position names a step its definition does not have (it belongs to another
    /// definition).
    #[error("the position names step {0:?}, which the definition does not have")]
    UnknownStep(String),
    /// No running step has this activation number.
    #[error("no running step has activation {0}")]
    UnknownActivation(u64),
}

type Result<T> = std::result::Result<T, MachineError>;

impl Position {
    /// A run of `definition` from `input` (the state's initial keys), before its first
    /// step.
    pub fn start(definition: &WorkflowDefinition, input: Map<String, Value>) -> Self {
        Self {
            root: Frame {
                state: input,
                writes: Vec::new(),
                at: ready_or_done(definition.graph.start_name()),
            },
            next_activation: 0,
            steps_done: 0,
            consumed: Vec::new(),
        }
    }

    /// Starts whatever is ready — follows parallel and map steps into their graphs and
    /// joins those that ended — and returns the activations that began.
    pub fn advance(
        &mut self,
        definition: &WorkflowDefinition,
        now_ms: i64,
    ) -> Result<Vec<Activation>> {
        let mut walk = Walk {
            definition,
            next_activation: self.next_activation,
            steps_done: &mut self.steps_done,
            max_steps: definition
                .max_steps
                .unwrap_or(WorkflowDefinition::DEFAULT_MAX_STEPS),
            now_ms,
            started: Vec::new(),
        };
        walk.frame(&mut self.root, &definition.graph, false)?;
        self.next_activation = walk.next_activation;
        Ok(walk.started)
    }

    /// Takes the result of `activation`: writes it to the step's output key and moves
    /// its frame on. Returns the step's name. Call [`advance`](Self::advance) next.
    pub fn complete(
        &mut self,
        definition: &WorkflowDefinition,
        activation: u64,
        result: Value,
    ) -> Result<String> {
        let (frame, graph, nested) = find(&mut self.root, &definition.graph, activation, false)?
            .ok_or(MachineError::UnknownActivation(activation))?;
        let At::Running { step, .. } = &frame.at else {
            return Err(MachineError::UnknownActivation(activation));
        };
        let step = step_of(graph, step)?;
        if let Some(key) = &step.output {
            write(definition, frame, nested, key, result);
        }
        frame.at = follow(&step.next, &frame.state);
        self.steps_done += 1;
        Ok(step.name.clone())
    }

    /// Gives the running step `activation` a new activation number (to try it again
    /// as new work, after it failed); returns the new number.
    pub fn renumber(&mut self, definition: &WorkflowDefinition, activation: u64) -> Result<u64> {
        let fresh = self.next_activation;
        let (frame, _, _) = find(&mut self.root, &definition.graph, activation, false)?
            .ok_or(MachineError::UnknownActivation(activation))?;
        if let At::Running { activation, .. } = &mut frame.at {
            *activation = fresh;
        }
        self.next_activation += 1;
        Ok(fresh)
    }

    /// The steps running now, in the tree's order, with their inputs (what a restarted
    /// runtime resumes).
    pub fn running(&self, definition: &WorkflowDefinition) -> Result<Vec<Activation>> {
        let mut out = Vec::new();
        collect(
            &self.root,
            &definition.graph,
            &mut |frame, step, id, since_ms| {
                out.push(Activation {
                    id,
                    step: step.name.clone(),
                    input: render(step.input.as_ref(), &Value::Object(frame.state.clone())),
                    since_ms,
                });
            },
        )?;
        Ok(out)
    }

    /// The steps running now, in the tree's order, without rendering their inputs (what
    /// bookkeeping needs: which step, which activation, since when).
    pub fn running_steps(&self, definition: &WorkflowDefinition) -> Result<Vec<Running>> {
        let mut out = Vec::new();
        collect(
            &self.root,
            &definition.graph,
            &mut |_, step, id, since_ms| {
                out.push(Running {
                    id,
                    step: step.name.clone(),
                    since_ms,
                });
            },
        )?;
        Ok(out)
    }

    /// Whether the run's graph has ended.
    pub fn is_done(&self) -> bool {
        self.root.at == At::Done
    }

    /// The run's state.
    pub fn state(&self) -> &Map<String, Value> {
        &self.root.state
    }

    /// The run's state, to change (a fork's patch).
    pub fn state_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.root.state
    }
}

struct Walk<'d, 'p> {
    definition: &'d WorkflowDefinition,
    next_activation: u64,
    steps_done: &'p mut u64,
    max_steps: u64,
    now_ms: i64,
    started: Vec<Activation>,
}

impl Walk<'_, '_> {
    fn frame(&mut self, frame: &mut Frame, graph: &Graph, nested: bool) -> Result<()> {
        loop {
            match &mut frame.at {
                At::Running { .. } | At::Done => return Ok(()),
                At::Ready { step } => {
                    let step = step_of(graph, step)?;
                    frame.at = match &step.action {
                        Action::Parallel { branches } => At::Fanned {
                            step: step.name.clone(),
                            frames: branches
                                .iter()
                                .map(|b| child(frame.state.clone(), b))
                                .collect(),
                        },
                        Action::Map(map) => {
                            let Some(Value::Array(items)) = frame.state.get(&map.over) else {
                                return Err(MachineError::NotAList {
                                    step: step.name.clone(),
                                    key: map.over.clone(),
                                });
                            };
                            let frames = items
                                .iter()
                                .map(|item| {
                                    let mut state = frame.state.clone();
                                    state.insert(map.item.clone(), item.clone());
                                    child(state, &map.graph)
                                })
                                .collect();
                            At::Fanned {
                                step: step.name.clone(),
                                frames,
                            }
                        }
                        _ => {
                            if self.next_activation >= self.max_steps {
                                return Err(MachineError::TooManySteps {
                                    max: self.max_steps,
                                });
                            }
                            let id = self.next_activation;
                            self.next_activation += 1;
                            self.started.push(Activation {
                                id,
                                step: step.name.clone(),
                                input: render(
                                    step.input.as_ref(),
                                    &Value::Object(frame.state.clone()),
                                ),
                                since_ms: self.now_ms,
                            });
                            At::Running {
                                step: step.name.clone(),
                                activation: id,
                                since_ms: self.now_ms,
                            }
                        }
                    };
                }
                At::Fanned { step, frames } => {
                    let step = step_of(graph, step)?;
                    for (i, child) in frames.iter_mut().enumerate() {
                        self.frame(child, nested_graph(step, i)?, true)?;
                    }
                    if frames.iter().any(|f| f.at != At::Done) {
                        return Ok(());
                    }
                    // Every frame ended: their writes join, in order, and the walk
                    // goes on after the step.
                    let writes: Vec<(String, Value)> = frames
                        .iter_mut()
                        .flat_map(|f| std::mem::take(&mut f.writes))
                        .collect();
                    for (key, value) in writes {
                        write(self.definition, frame, nested, &key, value);
                    }
                    frame.at = follow(&step.next, &frame.state);
                    *self.steps_done += 1;
                }
            }
        }
    }
}

fn child(state: Map<String, Value>, graph: &Graph) -> Frame {
    Frame {
        state,
        writes: Vec::new(),
        at: ready_or_done(graph.start_name()),
    }
}

fn ready_or_done(step: Option<&str>) -> At {
    match step {
        Some(step) => At::Ready {
            step: step.to_owned(),
        },
        None => At::Done,
    }
}

fn write(
    definition: &WorkflowDefinition,
    frame: &mut Frame,
    nested: bool,
    key: &str,
    value: Value,
) {
    let reducer = definition
        .state
        .get(key)
        .map(|k| k.reducer)
        .unwrap_or_default();
    if nested {
        frame.writes.push((key.to_owned(), value.clone()));
    }
    apply(&mut frame.state, key, reducer, value);
}

/// Where `next` leads on `state`.
fn follow(next: &Next, state: &Map<String, Value>) -> At {
    let to = match next {
        Next::End => None,
        Next::To(to) => Some(to.as_str()),
        Next::Branch(edges) => {
            let state = Value::Object(state.clone());
            edges
                .iter()
                .find(|e| e.when.as_ref().is_none_or(|c| c.holds(&state)))
                .map(|e| e.to.as_str())
        }
    };
    ready_or_done(to.filter(|to| *to != END))
}

fn step_of<'g>(graph: &'g Graph, name: &str) -> Result<&'g Step> {
    graph
        .steps
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| MachineError::UnknownStep(name.to_owned()))
}

/// The graph of frame `i` of a parallel or map step.
fn nested_graph(step: &Step, i: usize) -> Result<&Graph> {
    match &step.action {
        Action::Parallel { branches } => branches.get(i),
        Action::Map(map) => Some(&map.graph),
        _ => None,
    }
    .ok_or_else(|| MachineError::UnknownStep(step.name.clone()))
}

type Found<'f, 'g> = Option<(&'f mut Frame, &'g Graph, bool)>;

/// The frame running `activation`, its graph, and whether it is nested.
fn find<'f, 'g>(
    frame: &'f mut Frame,
    graph: &'g Graph,
    activation: u64,
    nested: bool,
) -> Result<Found<'f, 'g>> {
    match &frame.at {
        At::Running { activation: a, .. } if *a == activation => Ok(Some((frame, graph, nested))),
        At::Fanned { step, .. } => {
            let step = step_of(graph, step)?;
            let At::Fanned { frames, .. } = &mut frame.at else {
                return Ok(None);
            };
            for (i, child) in frames.iter_mut().enumerate() {
                if let Some(found) = find(child, nested_graph(step, i)?, activation, true)? {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Calls `visit` for every running step, in the tree's order, with its frame.
fn collect(
    frame: &Frame,
    graph: &Graph,
    visit: &mut impl FnMut(&Frame, &Step, u64, i64),
) -> Result<()> {
    match &frame.at {
        At::Running {
            step,
            activation,
            since_ms,
        } => visit(frame, step_of(graph, step)?, *activation, *since_ms),
        At::Fanned { step, frames } => {
            let step = step_of(graph, step)?;
            for (i, child) in frames.iter().enumerate() {
                collect(child, nested_graph(step, i)?, visit)?;
            }
        }
        At::Ready { .. } | At::Done => {}
    }
    Ok(())
}
