//! Performing one step that runs outside the driver: an agent task through the engine
//! (under the task id its activation derives, so a step resumed after a crash finds
//! its task instead of dispatching another), a tool call, a sub-workflow (started
//! under an id its activation derives, so it too starts once), or a shared document's
//! read or edit.

use std::sync::Arc;
use std::time::Duration;

use mesh_store::BoxFuture;
use serde_json::Value;

use super::shared::Inner;
use super::{
    Action, Activation, DocStep, RunStatus, Schema, StartRequest, Step, TaskStep, child_run_id,
    task_key,
};
use crate::collab::{CollabJob, with_stable_ids};
use crate::domain::{TaskId, TaskSpec, TaskStatus, TenantId, WorkflowId};
use crate::engine::{EngineError, Event};

/// How a step ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// With this result.
    Done(Value),
    /// The work failed (the task failed, the tool refused): the run fails.
    Failed(String),
    /// The machinery failed (the engine stopped, the stores are unreachable): the
    /// driver stops and the run is taken up again later, losing nothing.
    Broken(String),
}

/// Performs `step` as `activation` of `run`.
pub(super) fn perform(
    inner: Arc<Inner>,
    tenant: TenantId,
    run: WorkflowId,
    step: Step,
    activation: Activation,
) -> BoxFuture<'static, (u64, Outcome)> {
    Box::pin(async move {
        let id = activation.id;
        if let Some(misfit) = misfit("input", step.input_schema.as_ref(), &activation.input) {
            return (id, Outcome::Failed(misfit));
        }
        let output_schema = step.output_schema.clone();
        let outcome = match step.action {
            Action::Task(task) => agent_task(&inner, tenant, run, id, task, activation.input).await,
            Action::Tool { name, action } => {
                let caller = crate::tools::Caller { tenant, key: None };
                let called = inner
                    .tools
                    .execute(caller, &name, &action, activation.input);
                match called.await {
                    Ok(value) => Outcome::Done(value),
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            Action::Collab(job) => {
                let input = step.input.is_some().then_some(activation.input);
                collab(&inner, tenant, run, id, &job, input).await
            }
            Action::Workflow { name, version } => {
                sub_workflow(&inner, tenant, run, id, name, version, activation.input).await
            }
            Action::Doc(what) => shared_doc(&inner, tenant, what, activation.input).await,
            Action::Wait(_) | Action::Parallel { .. } | Action::Map(_) => {
                Outcome::Broken(format!("step {:?} is not performed as work", step.name))
            }
        };
        let outcome = match outcome {
            Outcome::Done(value) => match misfit("output", output_schema.as_ref(), &value) {
                Some(misfit) => Outcome::Failed(misfit),
                None => Outcome::Done(value),
            },
            other => other,
        };
        (id, outcome)
    })
}

/// Why `value` does not fit `schema` (the step's `which` schema), if it does not.
pub(super) fn misfit(which: &str, schema: Option<&Value>, value: &Value) -> Option<String> {
    let schema = schema?;
    let checked = Schema::compile(schema).and_then(|s| s.check(value));
    checked
        .err()
        .map(|e| format!("its {which} does not fit its {which}_schema: {e}"))
}

fn broken(error: &EngineError) -> Outcome {
    Outcome::Broken(error.to_string())
}

async fn agent_task(
    inner: &Inner,
    tenant: TenantId,
    run: WorkflowId,
    activation: u64,
    task: TaskStep,
    input: Value,
) -> Outcome {
    let id = TaskId::from_uuid(task_key(tenant, run, activation));
    let mut spec = TaskSpec::new(task.kind, input)
        .require(task.required_capabilities)
        .priority(task.priority);
    if let Some(n) = task.max_attempts {
        spec = spec.max_attempts(n);
    }
    if let Some(ms) = task.timeout_ms {
        spec = spec.timeout(Duration::from_millis(ms));
    }
    if let Err(e) = inner.engine.submit_once(tenant, id, spec).await {
        return if e.is_retryable() || matches!(e, EngineError::Stopped | EngineError::Store(_)) {
            broken(&e)
        } else {
            Outcome::Failed(e.to_string())
        };
    }
    let task = match inner.engine.wait(tenant, id).await {
        Ok(task) => task,
        Err(e) => return broken(&e),
    };
    match task.status() {
        TaskStatus::Completed => Outcome::Done(task.output.unwrap_or(Value::Null)),
        status => Outcome::Failed(format!(
            "task {id} ended {}: {}",
            status.as_str(),
            task.error.unwrap_or_default()
        )),
    }
}

/// What a `doc` step's input holds: the document, and for an edit, the edits.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DocInput {
    id: crate::domain::SharedDocId,
    #[serde(default)]
    edits: Vec<crate::shared_docs::Edit>,
}

/// How long a `doc` step waits out a document's rate limit before it fails.
const DOC_RATE_PATIENCE: Duration = Duration::from_secs(10);

/// Reads or edits the shared document the input names. A document busy past its rate
/// limit is tried again for a while; the stores failing breaks the step (the run is
/// taken up again); anything else — no such document, a bad edit — fails it.
async fn shared_doc(inner: &Inner, tenant: TenantId, what: DocStep, input: Value) -> Outcome {
    let input: DocInput = match serde_json::from_value(input) {
        Ok(input) => input,
        Err(e) => {
            return Outcome::Failed(format!(
                "a doc step's input is {{\"id\": <document id>, \"edits\": [...]}}: {e}"
            ));
        }
    };
    let mut pause = Duration::from_millis(10);
    let started = tokio::time::Instant::now();
    loop {
        let done = match what {
            DocStep::Read => inner.docs.read(tenant, input.id).await,
            DocStep::Edit => inner.docs.edit(tenant, input.id, input.edits.clone()).await,
        };
        match done {
            Ok(view) => return Outcome::Done(view.content),
            Err(e) if e.code() == "rate_limited" && started.elapsed() < DOC_RATE_PATIENCE => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) if matches!(e.code(), "unavailable" | "internal") => {
                return Outcome::Broken(e.to_string());
            }
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
}

/// The collaboration job of a `collab` step, with the step's `input` (when it has one)
/// in place of the pattern's own.
pub(super) fn collab_job(job: &Value, input: Option<Value>) -> Result<CollabJob, String> {
    let mut job: CollabJob = serde_json::from_value(job.clone())
        .map_err(|e| format!("invalid collaboration job: {e}"))?;
    if let Some(input) = input {
        match &mut job {
            CollabJob::Pipeline { input: first, .. } => *first = input,
            CollabJob::MapReduce { inputs, .. } => match input {
                Value::Array(items) => *inputs = items,
                _ => return Err("a map-reduce step's input must be a list".into()),
            },
            CollabJob::Consensus { task, .. } => task.input = input,
            CollabJob::Parallel { tasks, .. } => {
                tasks.iter_mut().for_each(|t| t.input = input.clone())
            }
        }
    }
    job.check().map_err(|e| e.to_string())?;
    Ok(job)
}

/// Runs a collaboration pattern whose tasks take ids derived from the activation, so a
/// step resumed after a crash follows the tasks it had submitted.
async fn collab(
    inner: &Inner,
    tenant: TenantId,
    run: WorkflowId,
    activation: u64,
    job: &Value,
    input: Option<Value>,
) -> Outcome {
    let job = match collab_job(job, input) {
        Ok(job) => job,
        Err(e) => return Outcome::Failed(e),
    };
    let base = task_key(tenant, run, activation);
    match with_stable_ids(base, job.run(&inner.engine, tenant)).await {
        Ok(outcome) => Outcome::Done(outcome),
        Err(e) if matches!(e.code(), "unavailable" | "internal") => Outcome::Broken(e.to_string()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

async fn sub_workflow(
    inner: &Arc<Inner>,
    tenant: TenantId,
    run: WorkflowId,
    activation: u64,
    name: String,
    version: Option<u32>,
    input: Value,
) -> Outcome {
    let child = child_run_id(run, activation);
    let mut events = inner.engine.subscribe();
    let request = StartRequest {
        workflow: name,
        version,
        input,
        id: Some(child),
    };
    match inner
        .create_run(tenant, request, Some((run, activation)))
        .await
    {
        // Its driver starts beside this one's, from the runtime's own task.
        Ok((_, Some(launch))) => {
            let _ = inner.launches.send(launch);
        }
        Ok((_, None)) => {}
        Err(e) if matches!(e.code(), "unavailable" | "internal") => {
            return Outcome::Broken(e.to_string());
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    }
    loop {
        let record = match inner
            .journal
            .runs
            .get(&tenant.to_string(), *child.as_uuid())
            .await
        {
            Ok(Some(record)) => record.record,
            Ok(None) => return Outcome::Failed(format!("sub-workflow run {child} is gone")),
            Err(e) => return Outcome::Broken(e.to_string()),
        };
        match record.status {
            RunStatus::Succeeded => return Outcome::Done(record.output.unwrap_or(Value::Null)),
            RunStatus::Failed => {
                return Outcome::Failed(
                    record.error.unwrap_or_else(|| "sub-workflow failed".into()),
                );
            }
            RunStatus::Cancelled => {
                return Outcome::Failed(format!("sub-workflow run {child} was cancelled"));
            }
            RunStatus::Running | RunStatus::Waiting => {}
        }
        // Until it says it finished here, or a while passed (it may run elsewhere).
        let heard = async {
            loop {
                match events.recv().await {
                    Ok(Event::WorkflowUpdate { run, status, .. })
                        if run == child && status.is_finished() => {}
                    Ok(Event::WorkflowUpdate { run, .. }) if run == child => continue,
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
                break;
            }
        };
        let _ = tokio::time::timeout(inner.config.poll_every * 5, heard).await;
    }
}
