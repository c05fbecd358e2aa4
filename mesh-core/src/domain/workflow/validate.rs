//! Checking a definition at registration, so a run never finds a broken graph: every
//! error names the step and the problem.

use std::collections::{BTreeSet, HashSet};

use super::condition::Condition;
use super::definition::{Action, END, Graph, Next, Step, Wait, WorkflowDefinition};
use super::schema::Schema;
use super::state::{template_refs, top_key};
use crate::domain::TaskSpec;

/// The most steps one definition has, nested graphs included.
pub const MAX_STEPS_PER_DEFINITION: usize = 1_000;
/// The deepest nesting of parallel and map graphs.
pub const MAX_NESTING: usize = 16;
/// The longest timer, in milliseconds (30 days).
pub const MAX_TIMER_MS: u64 = 30 * 86_400_000;

/// Why a definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The workflow's name breaks the naming rule.
    #[error("workflow name {0:?} is invalid: 1 to 64 characters of [A-Za-z0-9_.-]")]
    InvalidName(String),
    /// A state key's name is empty or too long.
    #[error("state key {0:?} is invalid: 1 to 64 characters")]
    InvalidKey(String),
    /// A step's name breaks the naming rule.
    #[error("step name {0:?} is invalid: 1 to 64 characters of [A-Za-z0-9_.-], not \"end\"")]
    InvalidStepName(String),
    /// Two steps share a name.
    #[error("step {0:?} is defined twice")]
    DuplicateStep(String),
    /// A graph has no steps.
    #[error("{0} has no steps")]
    EmptyGraph(String),
    /// A graph's `start` is not one of its steps.
    #[error("{graph} starts at {start:?}, which is not one of its steps")]
    UnknownStart {
        /// Which graph.
        graph: String,
        /// The missing step.
        start: String,
    },
    /// An edge leads to a step that is not in the same graph.
    #[error("step {step:?} goes to {to:?}, which is not a step of its graph")]
    UnknownTarget {
        /// The step.
        step: String,
        /// Where it goes.
        to: String,
    },
    /// No edge leads to a step.
    #[error("step {0:?} can never run: nothing leads to it")]
    Unreachable(String),
    /// A step writes or reads a key the state does not declare.
    #[error("step {step:?} uses state key {key:?}, which the definition does not declare")]
    UndeclaredKey {
        /// The step.
        step: String,
        /// The key.
        key: String,
    },
    /// A step's own settings are wrong.
    #[error("step {step:?}: {problem}")]
    InvalidStep {
        /// The step.
        step: String,
        /// What is wrong.
        problem: String,
    },
    /// The definition is too big.
    #[error("the definition has {count} steps; at most {max}")]
    TooManySteps {
        /// Its steps.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The definition's `input_schema` is not a JSON Schema.
    #[error("the workflow's input_schema is {0}")]
    InvalidInputSchema(String),
    /// Graphs are nested too deep.
    #[error("step {0:?} nests graphs deeper than {MAX_NESTING} levels")]
    TooDeep(String),
}

/// Whether `name` is a valid workflow or step name.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl WorkflowDefinition {
    /// Checks the definition: names, edges, reachability, declared keys, limits.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        if !valid_name(&self.name) {
            return Err(DefinitionError::InvalidName(self.name.clone()));
        }
        if let Some(key) = self.state.keys().find(|k| !(1..=64).contains(&k.len())) {
            return Err(DefinitionError::InvalidKey(key.clone()));
        }
        if let Some(schema) = &self.input_schema {
            Schema::compile(schema).map_err(DefinitionError::InvalidInputSchema)?;
        }
        let mut check = Check {
            definition: self,
            names: HashSet::new(),
            count: 0,
        };
        check.graph(&self.graph, "the workflow", 0)
    }
}

struct Check<'a> {
    definition: &'a WorkflowDefinition,
    names: HashSet<&'a str>,
    count: usize,
}

impl<'a> Check<'a> {
    fn graph(
        &mut self,
        graph: &'a Graph,
        label: &str,
        depth: usize,
    ) -> Result<(), DefinitionError> {
        let Some(start) = graph.start_name() else {
            return Err(DefinitionError::EmptyGraph(label.to_owned()));
        };
        let local: BTreeSet<&str> = graph.steps.iter().map(|s| s.name.as_str()).collect();
        if !local.contains(start) {
            return Err(DefinitionError::UnknownStart {
                graph: label.to_owned(),
                start: start.to_owned(),
            });
        }
        for step in &graph.steps {
            self.count += 1;
            if self.count > MAX_STEPS_PER_DEFINITION {
                return Err(DefinitionError::TooManySteps {
                    count: self.count,
                    max: MAX_STEPS_PER_DEFINITION,
                });
            }
            if !valid_name(&step.name) || step.name == END {
                return Err(DefinitionError::InvalidStepName(step.name.clone()));
            }
            if !self.names.insert(&step.name) {
                return Err(DefinitionError::DuplicateStep(step.name.clone()));
            }
            for to in targets(&step.next) {
                if !local.contains(to) {
                    return Err(DefinitionError::UnknownTarget {
                        step: step.name.clone(),
                        to: to.to_owned(),
                    });
                }
            }
            self.step(step, depth)?;
        }
        reachable(graph, start)
    }

    fn step(&mut self, step: &'a Step, depth: usize) -> Result<(), DefinitionError> {
        let invalid = |problem: String| DefinitionError::InvalidStep {
            step: step.name.clone(),
            problem,
        };
        if let Some(key) = &step.output {
            self.declared(step, key)?;
        }
        for (which, schema) in [
            ("input_schema", &step.input_schema),
            ("output_schema", &step.output_schema),
        ] {
            if let Some(schema) = schema {
                Schema::compile(schema).map_err(|e| invalid(format!("its {which} is {e}")))?;
            }
        }
        let mut pointers: Vec<&str> = step.input.as_ref().map(template_refs).unwrap_or_default();
        if let Next::Branch(edges) = &step.next {
            pointers.extend(
                edges
                    .iter()
                    .filter_map(|e| e.when.as_ref())
                    .flat_map(Condition::paths),
            );
        }
        for pointer in pointers {
            match top_key(pointer) {
                Some(key) => self.declared(step, &key)?,
                None if pointer.is_empty() => {}
                None => return Err(invalid(format!("{pointer:?} is not a JSON Pointer"))),
            }
        }
        match &step.action {
            Action::Task(task) => {
                if task.kind.trim().is_empty() || task.kind.len() > TaskSpec::MAX_KIND_LEN {
                    return Err(invalid("a task's kind is 1 to 128 characters".into()));
                }
                if task
                    .max_attempts
                    .is_some_and(|n| !(1..=TaskSpec::MAX_ATTEMPTS).contains(&n))
                {
                    return Err(invalid("max_attempts is 1 to 100".into()));
                }
                if task
                    .timeout_ms
                    .is_some_and(|ms| !(1..=TaskSpec::MAX_TIMEOUT_MS).contains(&ms))
                {
                    return Err(invalid("timeout_ms is 1 to 86,400,000".into()));
                }
            }
            Action::Tool { name, action } if name.is_empty() || action.is_empty() => {
                return Err(invalid("a tool step names a tool and an action".into()));
            }
            Action::Workflow { name, .. } if !valid_name(name) => {
                return Err(invalid(format!("{name:?} is not a workflow name")));
            }
            Action::Tool { .. } | Action::Workflow { .. } | Action::Doc(_) => {}
            // Parsed and checked by the runtime, which knows the patterns.
            Action::Collab(job) if !job.is_object() => {
                return Err(invalid(
                    "a collab step's job is an object with a `pattern`".into(),
                ));
            }
            Action::Collab(_) => {}
            Action::Wait(Wait::Timer { ms }) if *ms > MAX_TIMER_MS => {
                return Err(invalid(format!("a timer is at most {MAX_TIMER_MS} ms")));
            }
            Action::Wait(Wait::Signal { name }) if name.is_empty() || name.len() > 128 => {
                return Err(invalid("a signal's name is 1 to 128 characters".into()));
            }
            Action::Wait(_) => {}
            Action::Parallel { .. } | Action::Map(_) if step.output.is_some() => {
                return Err(invalid(
                    "a parallel or map step has no output of its own: its graphs write to the state"
                        .into(),
                ));
            }
            Action::Parallel { branches } => {
                if branches.is_empty() {
                    return Err(invalid("a parallel step needs at least one branch".into()));
                }
                for (i, branch) in branches.iter().enumerate() {
                    self.nested(
                        step,
                        branch,
                        &format!("branch {i} of step {:?}", step.name),
                        depth,
                    )?;
                }
            }
            Action::Map(map) => {
                self.declared(step, &map.over)?;
                self.declared(step, &map.item)?;
                if map.over == map.item {
                    return Err(invalid("`over` and `item` must be different keys".into()));
                }
                self.nested(
                    step,
                    &map.graph,
                    &format!("the graph of step {:?}", step.name),
                    depth,
                )?;
            }
        }
        Ok(())
    }

    fn nested(
        &mut self,
        step: &Step,
        graph: &'a Graph,
        label: &str,
        depth: usize,
    ) -> Result<(), DefinitionError> {
        if depth + 1 > MAX_NESTING {
            return Err(DefinitionError::TooDeep(step.name.clone()));
        }
        self.graph(graph, label, depth + 1)
    }

    fn declared(&self, step: &Step, key: &str) -> Result<(), DefinitionError> {
        if self.definition.state.contains_key(key) {
            Ok(())
        } else {
            Err(DefinitionError::UndeclaredKey {
                step: step.name.clone(),
                key: key.to_owned(),
            })
        }
    }
}

/// The steps `next` can go to (not counting the end).
pub(crate) fn targets(next: &Next) -> Vec<&str> {
    match next {
        Next::End => Vec::new(),
        Next::To(to) => vec![to.as_str()],
        Next::Branch(edges) => edges
            .iter()
            .map(|e| e.to.as_str())
            .filter(|to| *to != END)
            .collect(),
    }
}

fn reachable(graph: &Graph, start: &str) -> Result<(), DefinitionError> {
    let mut seen = HashSet::from([start]);
    let mut todo = vec![start];
    while let Some(name) = todo.pop() {
        if let Some(step) = graph.steps.iter().find(|s| s.name == name) {
            for to in targets(&step.next) {
                if seen.insert(to) {
                    todo.push(to);
                }
            }
        }
    }
    match graph.steps.iter().find(|s| !seen.contains(s.name.as_str())) {
        Some(step) => Err(DefinitionError::Unreachable(step.name.clone())),
        None => Ok(()),
    }
}
