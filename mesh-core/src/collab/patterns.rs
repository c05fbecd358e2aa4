//! The patterns: each submits ordinary tasks through the [`Engine`] and combines their
//! results.

use std::collections::HashMap;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{Task, TaskId, TaskSpec, TaskStatus, TenantId};
use crate::engine::{Engine, EngineError};

/// When a parallel fan-out is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "n")]
#[non_exhaustive]
pub enum Completion {
    /// Every task must complete.
    All,
    /// One completed task is enough; the rest are cancelled.
    Any,
    /// More than half must complete; the rest are cancelled once that is reached.
    Majority,
    /// The first `n` completed tasks; the rest are cancelled.
    FirstN(usize),
}

impl Completion {
    fn needed(self, total: usize) -> usize {
        match self {
            Self::All => total,
            Self::Any => 1.min(total),
            Self::Majority => total / 2 + 1,
            Self::FirstN(n) => n.min(total),
        }
    }
}

/// What a fan-out came to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ParallelOutcome {
    /// Whether the completion mode was satisfied.
    pub satisfied: bool,
    /// Completed tasks, in the order they finished.
    pub completed: Vec<Task>,
    /// Tasks that ended otherwise (failed, timed out, cancelled by the fan-out).
    pub others: Vec<Task>,
}

/// Why a pattern could not produce its result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollabError {
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A stage or a mapper did not complete.
    #[error("task {task} ended {status}: {error}")]
    TaskDidNotComplete {
        /// The task.
        task: TaskId,
        /// How it ended.
        status: TaskStatus,
        /// Its error, if any.
        error: String,
    },
    /// Nothing to do.
    #[error("no tasks given")]
    Empty,
    /// The job would start more tasks than one job may.
    #[error("a collaboration job starts at most {max} tasks, not {count}", max = MAX_COLLAB_TASKS)]
    TooManyTasks {
        /// How many it would start.
        count: usize,
    },
    /// The outcome could not be written as JSON (a bug if it ever surfaces).
    #[error("encoding the outcome: {0}")]
    Encode(#[source] serde_json::Error),
    /// The tenant already runs as many jobs as [`JobsConfig::per_tenant`](super::JobsConfig::per_tenant) allows.
    #[error("{running} collaboration jobs are running, the most a tenant may run at once")]
    QuotaExceeded {
        /// How many run.
        running: usize,
    },
}

impl CollabError {
    /// A stable, machine-readable code: the engine's for its errors, else
    /// `invalid_request` (nothing to do, too many tasks), `rate_limited` (the tenant's
    /// job quota is used up), `collab_failed` (a task did
    /// not complete) or `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Engine(e) => e.code(),
            Self::Empty | Self::TooManyTasks { .. } => "invalid_request",
            Self::QuotaExceeded { .. } => "rate_limited",
            Self::TaskDidNotComplete { .. } => "collab_failed",
            Self::Encode(_) => "internal",
        }
    }
}

/// Submits one of a pattern's tasks; inside a [`CollabJobs`] job the job records it,
/// so cancelling the job cancels it.
async fn submit(engine: &Engine, tenant: TenantId, spec: TaskSpec) -> Result<Task, EngineError> {
    let task = match super::tracking::next_stable_id() {
        Some(id) => engine.submit_once(tenant, id, spec).await?,
        None => engine.submit(tenant, spec).await?,
    };
    super::tracking::record(task.id);
    Ok(task)
}

fn did_not_complete(task: &Task) -> CollabError {
    CollabError::TaskDidNotComplete {
        task: task.id,
        status: task.status(),
        error: task.error.clone().unwrap_or_default(),
    }
}

/// Runs `specs` at once and waits according to `mode`; tasks still running once the
/// outcome is decided (reached, or out of reach) are cancelled.
pub async fn parallel(
    engine: &Engine,
    tenant: TenantId,
    specs: Vec<TaskSpec>,
    mode: Completion,
) -> Result<ParallelOutcome, CollabError> {
    if specs.is_empty() {
        return Err(CollabError::Empty);
    }
    let total = specs.len();
    let needed = mode.needed(total);
    let mut ids = Vec::with_capacity(total);
    for spec in specs {
        ids.push(submit(engine, tenant, spec).await?.id);
    }
    let mut waiting: FuturesUnordered<_> = ids.iter().map(|&id| engine.wait(tenant, id)).collect();
    let (mut completed, mut others) = (Vec::new(), Vec::new());
    while let Some(result) = waiting.next().await {
        let task = result?;
        if task.status() == TaskStatus::Completed {
            completed.push(task);
        } else {
            others.push(task);
        }
        let reached = completed.len() >= needed;
        let out_of_reach = total - others.len() < needed;
        if reached || out_of_reach {
            break;
        }
    }
    drop(waiting);
    let finished: Vec<TaskId> = completed.iter().chain(&others).map(|t| t.id).collect();
    for id in ids.into_iter().filter(|id| !finished.contains(id)) {
        others.push(engine.cancel(tenant, id).await?);
    }
    Ok(ParallelOutcome {
        satisfied: completed.len() >= needed,
        completed,
        others,
    })
}

/// Maps every input with a task of `map_kind` (all must complete), then reduces their
/// outputs — in input order, as `{"results": [...]}` — with one task of `reduce_kind`.
pub async fn map_reduce(
    engine: &Engine,
    tenant: TenantId,
    map_kind: &str,
    inputs: Vec<Value>,
    reduce_kind: &str,
    parent: Option<TaskId>,
) -> Result<Task, CollabError> {
    if inputs.is_empty() {
        return Err(CollabError::Empty);
    }
    let specs: Vec<TaskSpec> = inputs
        .into_iter()
        .map(|input| {
            let mut spec = TaskSpec::new(map_kind, input);
            spec.parent = parent;
            spec
        })
        .collect();
    let mut order = HashMap::new();
    let mut ids = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let id = submit(engine, tenant, spec).await?.id;
        order.insert(id, i);
        ids.push(id);
    }
    let mut results = vec![Value::Null; ids.len()];
    let mut waiting: FuturesUnordered<_> = ids.iter().map(|&id| engine.wait(tenant, id)).collect();
    while let Some(task) = waiting.next().await {
        let task = task?;
        if task.status() != TaskStatus::Completed {
            drop(waiting);
            for id in &ids {
                engine.cancel(tenant, *id).await?;
            }
            return Err(did_not_complete(&task));
        }
        results[order[&task.id]] = task.output.clone().unwrap_or(Value::Null);
    }
    let mut reduce = TaskSpec::new(reduce_kind, serde_json::json!({ "results": results }));
    reduce.parent = parent;
    let reduced = submit(engine, tenant, reduce).await?;
    let reduced = engine.wait(tenant, reduced.id).await?;
    if reduced.status() == TaskStatus::Completed {
        Ok(reduced)
    } else {
        Err(did_not_complete(&reduced))
    }
}

/// Runs one task per stage in order; each stage's input is the previous one's output.
pub async fn pipeline(
    engine: &Engine,
    tenant: TenantId,
    stages: &[&str],
    input: Value,
) -> Result<Vec<Task>, CollabError> {
    if stages.is_empty() {
        return Err(CollabError::Empty);
    }
    let mut done = Vec::with_capacity(stages.len());
    let mut next = input;
    for kind in stages {
        let task = submit(engine, tenant, TaskSpec::new(*kind, next)).await?;
        let task = engine.wait(tenant, task.id).await?;
        if task.status() != TaskStatus::Completed {
            return Err(did_not_complete(&task));
        }
        next = task.output.clone().unwrap_or(Value::Null);
        done.push(task);
    }
    Ok(done)
}

/// The result of a vote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsensusOutcome {
    /// More than half of the voters returned this output.
    Agreed {
        /// The output they agreed on.
        value: Value,
        /// How many returned it.
        votes: usize,
        /// How many voters there were.
        voters: usize,
    },
    /// No output reached a majority of the voters.
    NoConsensus {
        /// Each distinct output with its number of votes, most first.
        tallies: Vec<(Value, usize)>,
        /// How many voters there were.
        voters: usize,
    },
}

/// Runs `spec` `voters` times and takes a majority vote over the outputs (compared as
/// JSON). A voter that fails counts as a vote for nothing.
pub async fn consensus(
    engine: &Engine,
    tenant: TenantId,
    spec: TaskSpec,
    voters: usize,
) -> Result<ConsensusOutcome, CollabError> {
    if voters == 0 {
        return Err(CollabError::Empty);
    }
    let outcome = parallel(engine, tenant, vec![spec; voters], Completion::All).await?;
    let mut tallies: Vec<(Value, usize)> = Vec::new();
    for task in &outcome.completed {
        let value = task.output.clone().unwrap_or(Value::Null);
        match tallies.iter_mut().find(|(v, _)| *v == value) {
            Some((_, n)) => *n += 1,
            None => tallies.push((value, 1)),
        }
    }
    tallies.sort_by_key(|t| std::cmp::Reverse(t.1));
    Ok(match tallies.first() {
        Some((value, votes)) if *votes * 2 > voters => ConsensusOutcome::Agreed {
            value: value.clone(),
            votes: *votes,
            voters,
        },
        _ => ConsensusOutcome::NoConsensus { tallies, voters },
    })
}

/// The most tasks (inputs, stages, voters) one [`CollabJob`] may start.
pub const MAX_COLLAB_TASKS: usize = 100;

/// A collaboration job as clients send it (REST and MCP), tagged by `pattern`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "pattern", rename_all = "snake_case")]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum CollabJob {
    /// Runs tasks side by side until the completion mode is met.
    Parallel {
        /// The tasks.
        tasks: Vec<TaskSpec>,
        /// `all` (default), `any`, `majority`, or `first_n` with `n`.
        #[serde(default = "all")]
        #[cfg_attr(feature = "rest", schema(value_type = Object))]
        completion: Completion,
    },
    /// Maps each input with `map_kind`, then reduces `{"results": [...]}` with `reduce_kind`.
    MapReduce {
        /// Kind of the map tasks.
        map_kind: String,
        /// One map task per input.
        inputs: Vec<Value>,
        /// Kind of the reduce task.
        reduce_kind: String,
    },
    /// Runs the stages in order, each on the previous output.
    Pipeline {
        /// Task kinds, in order.
        stages: Vec<String>,
        /// Input of the first stage.
        #[serde(default)]
        input: Value,
    },
    /// Runs one task `voters` times and takes a majority vote over the outputs.
    Consensus {
        /// The task.
        task: TaskSpec,
        /// How many times.
        voters: usize,
    },
}

fn all() -> Completion {
    Completion::All
}

impl CollabJob {
    /// How many tasks the job starts first (what [`MAX_COLLAB_TASKS`] bounds).
    pub(crate) fn size(&self) -> usize {
        match self {
            Self::Parallel { tasks, .. } => tasks.len(),
            Self::MapReduce { inputs, .. } => inputs.len(),
            Self::Pipeline { stages, .. } => stages.len(),
            Self::Consensus { voters, .. } => *voters,
        }
    }

    /// Whether the job could run at all: [`CollabError::TooManyTasks`] if it would
    /// start more than [`MAX_COLLAB_TASKS`].
    pub fn check(&self) -> Result<(), CollabError> {
        let count = self.size();
        if count > MAX_COLLAB_TASKS {
            return Err(CollabError::TooManyTasks { count });
        }
        Ok(())
    }

    /// Runs the job to its end and returns its outcome as JSON.
    pub async fn run(self, engine: &Engine, tenant: TenantId) -> Result<Value, CollabError> {
        self.check()?;
        let json = |v: Result<Value, serde_json::Error>| v.map_err(CollabError::Encode);
        match self {
            Self::Parallel { tasks, completion } => json(serde_json::to_value(
                parallel(engine, tenant, tasks, completion).await?,
            )),
            Self::MapReduce {
                map_kind,
                inputs,
                reduce_kind,
            } => json(serde_json::to_value(
                map_reduce(engine, tenant, &map_kind, inputs, &reduce_kind, None).await?,
            )),
            Self::Pipeline { stages, input } => {
                let stages: Vec<&str> = stages.iter().map(String::as_str).collect();
                json(serde_json::to_value(
                    pipeline(engine, tenant, &stages, input).await?,
                ))
            }
            Self::Consensus { task, voters } => json(serde_json::to_value(
                consensus(engine, tenant, task, voters).await?,
            )),
        }
    }
}
