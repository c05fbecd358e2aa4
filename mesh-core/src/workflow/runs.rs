//! Operations on runs: start (idempotent by id), get, list, cancel, signal, resume an
//! interrupt, retry, history, fork, prune.

use chrono::Utc;
use mesh_store::Query;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::shared::{Inner, Poke};
use super::{
    Checkpoint, ForkPoint, MessageKind, RunFilter, RunMessage, RunStatus, StartRequest,
    WorkflowError, WorkflowRun, Workflows, driver,
};
use crate::domain::{TenantId, WorkflowId};
use crate::engine::Page;

impl Workflows {
    /// Starts a run; when `request.id` names an existing run, returns it instead.
    ///
    /// Started in a sampled trace, the run gets an `invoke_workflow` span (the start
    /// only: a run may wait for days) whose context its steps' spans continue.
    pub async fn start_run(
        &self,
        tenant: TenantId,
        request: StartRequest,
    ) -> Result<WorkflowRun, WorkflowError> {
        let span = if crate::trace::current().is_some_and(|t| crate::trace::is_sampled(&t)) {
            tracing::info_span!(
                "invoke_workflow",
                otel.name = format!("invoke_workflow {}", request.workflow),
                otel.kind = "internal",
                gen_ai.operation.name = "invoke_workflow",
                mesh.workflow.name = %request.workflow,
            )
        } else {
            tracing::Span::none()
        };
        let (run, launch) = self
            .inner
            .create_run(tenant, request, None)
            .instrument(span)
            .await?;
        if let Some(launch) = launch {
            driver::launch(self.inner.clone(), launch);
        }
        Ok(run)
    }

    /// The run, if the tenant has it.
    pub async fn run(
        &self,
        tenant: TenantId,
        id: WorkflowId,
    ) -> Result<WorkflowRun, WorkflowError> {
        Ok(self.inner.read_run(tenant, id).await?.record)
    }

    /// A page of the tenant's runs, oldest first.
    pub async fn runs(
        &self,
        tenant: TenantId,
        filter: RunFilter,
    ) -> Result<Page<WorkflowRun>, WorkflowError> {
        let mut query = Query::new().limit(filter.limit.unwrap_or(100).clamp(1, 1000));
        if let Some(status) = filter.status {
            query = query.filter("status", status.as_str());
        }
        if let Some(workflow) = filter.workflow {
            query = query.filter("workflow", workflow);
        }
        if let Some(cursor) = filter.cursor {
            query = query.after(cursor);
        }
        let page = self
            .inner
            .journal
            .runs
            .list(&tenant.to_string(), &query)
            .await?;
        let since = filter.since;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .filter(|v| since.is_none_or(|t| v.created_at >= t))
                .map(|v| v.record)
                .collect(),
            next: page.next,
        })
    }

    /// Cancels the run and the work it has in flight (tasks, sub-workflows).
    pub async fn cancel(
        &self,
        tenant: TenantId,
        id: WorkflowId,
    ) -> Result<WorkflowRun, WorkflowError> {
        self.inner.cancel_run(tenant, id).await
    }

    /// Sends signal `name` with `value`; a run not waiting for it yet keeps it until a
    /// step does.
    pub async fn signal(
        &self,
        tenant: TenantId,
        id: WorkflowId,
        name: &str,
        value: Value,
    ) -> Result<(), WorkflowError> {
        let run = self.inner.read_run(tenant, id).await?.record;
        if run.status.is_finished() {
            return Err(wrong_status(&run, "signal", "running or waiting"));
        }
        let kind = MessageKind::Signal {
            name: name.to_owned(),
        };
        self.inner.send(tenant, id, kind, value).await
    }

    /// Resumes the pending interrupt `interrupt` with `value` (the waiting step's
    /// result).
    pub async fn resume(
        &self,
        tenant: TenantId,
        id: WorkflowId,
        interrupt: uuid::Uuid,
        value: Value,
    ) -> Result<(), WorkflowError> {
        let run = self.inner.read_run(tenant, id).await?.record;
        let Some(pending) = run.interrupts.iter().find(|i| i.id == interrupt) else {
            return Err(WorkflowError::NoSuchInterrupt { run: id, interrupt });
        };
        // A value the step's output_schema refuses is refused here, to the person.
        let definition = self
            .inner
            .definition(tenant, &run.workflow, Some(run.version))
            .await?;
        let steps = definition.definition.steps_by_name();
        let schema = steps
            .get(pending.step.as_str())
            .and_then(|s| s.output_schema.as_ref());
        if let Some(misfit) = super::steps::misfit("output", schema, &value) {
            return Err(WorkflowError::InvalidInput(misfit));
        }
        self.inner
            .send(tenant, id, MessageKind::Resume { interrupt }, value)
            .await
    }

    /// Takes a failed run up again from its last checkpoint: the failed steps run
    /// anew (as new tasks), completed ones are not repeated.
    pub async fn retry(
        &self,
        tenant: TenantId,
        id: WorkflowId,
    ) -> Result<WorkflowRun, WorkflowError> {
        let current = self.inner.read_run(tenant, id).await?;
        if current.record.status != RunStatus::Failed {
            return Err(wrong_status(&current.record, "retry", "failed"));
        }
        let mut run = current.record.clone();
        run.status = RunStatus::Running;
        run.error = None;
        run.finished_at = None;
        run.owner = Some(self.inner.config.instance.clone());
        run.lease_until = Some(Utc::now() + self.inner.lease());
        let written = self
            .inner
            .journal
            .runs
            .update(&tenant.to_string(), &run, current.version)
            .await?;
        let definition = self
            .inner
            .definition(tenant, &run.workflow, Some(run.version))
            .await?;
        let last = self.inner.last_checkpoint(tenant, id).await?;
        driver::spawn(
            self.inner.clone(),
            tenant,
            written.clone(),
            definition,
            last,
            true,
        );
        Ok(written.record)
    }

    /// A page of the run's journal from entry `after + 1` (from the start when
    /// `None`): every checkpoint with its state.
    pub async fn history(
        &self,
        tenant: TenantId,
        id: WorkflowId,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<Checkpoint>, WorkflowError> {
        self.inner.read_run(tenant, id).await?;
        self.inner
            .history(tenant, id, after, limit.unwrap_or(100))
            .await
    }

    /// Starts a new run from checkpoint `seq` of run `id`, its state changed by
    /// `patch` (a JSON merge patch); the new run records `forked_from`, and the original
    /// run and its history stay as they are.
    pub async fn fork(
        &self,
        tenant: TenantId,
        id: WorkflowId,
        seq: u64,
        patch: Value,
    ) -> Result<WorkflowRun, WorkflowError> {
        let source = self.inner.read_run(tenant, id).await?.record;
        let checkpoint = self
            .inner
            .journal
            .checkpoints
            .get(&tenant.to_string(), super::checkpoint_id(id, seq))
            .await?
            .ok_or(WorkflowError::NoSuchCheckpoint { run: id, seq })?
            .record;
        let mut position = checkpoint.position;
        let mut state = Value::Object(std::mem::take(position.state_mut()));
        merge_patch(&mut state, patch);
        let Value::Object(state) = state else {
            return Err(WorkflowError::InvalidInput(
                "a fork's patch must keep the state an object".into(),
            ));
        };
        *position.state_mut() = state;
        position.consumed.clear();
        let definition = self
            .inner
            .definition(tenant, &source.workflow, Some(source.version))
            .await?;
        let mut run = self
            .inner
            .new_run(WorkflowId::new(), &definition, source.input.clone());
        run.forked_from = Some(ForkPoint { run: id, seq });
        let (run, launch) = self
            .inner
            .write_new(tenant, run, definition, position)
            .await?;
        if let Some(launch) = launch {
            driver::launch(self.inner.clone(), launch);
        }
        Ok(run)
    }

    /// Deletes the finished runs whose retention ran out (the definition's
    /// `retention_secs`), or every run finished before `before`, with their journals and
    /// messages; returns how many runs went.
    pub async fn prune(
        &self,
        tenant: TenantId,
        before: Option<chrono::DateTime<Utc>>,
    ) -> Result<usize, WorkflowError> {
        let key = tenant.to_string();
        let now = Utc::now();
        let mut pruned = 0;
        for status in [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ] {
            let mut cursor = None;
            loop {
                let filter = RunFilter {
                    status: Some(status),
                    cursor: cursor.clone(),
                    limit: Some(500),
                    ..RunFilter::default()
                };
                let page = self.runs(tenant, filter).await?;
                for run in page.items {
                    let Some(finished) = run.finished_at else {
                        continue;
                    };
                    let expired = match before {
                        Some(before) => finished < before,
                        None => {
                            let definition = self
                                .inner
                                .definition(tenant, &run.workflow, Some(run.version))
                                .await?;
                            definition.definition.retention_secs.is_some_and(|secs| {
                                finished
                                    + chrono::Duration::seconds(
                                        i64::try_from(secs).unwrap_or(i64::MAX / 1000),
                                    )
                                    < now
                            })
                        }
                    };
                    if expired {
                        self.inner.delete_run(&key, run.id).await?;
                        pruned += 1;
                    }
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(pruned)
    }
}

fn wrong_status(run: &WorkflowRun, operation: &'static str, needs: &'static str) -> WorkflowError {
    WorkflowError::WrongStatus {
        run: run.id,
        status: run.status,
        operation,
        needs,
    }
}

/// RFC 7396: objects merge key by key, `null` deletes, anything else replaces.
fn merge_patch(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(map) = target {
                for (key, value) in patch {
                    if value.is_null() {
                        map.remove(&key);
                    } else {
                        merge_patch(map.entry(key).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other,
    }
}

impl Inner {
    async fn history(
        &self,
        tenant: TenantId,
        id: WorkflowId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Checkpoint>, WorkflowError> {
        let key = tenant.to_string();
        // Entries are read by their derived ids: no scan of the journal.
        let from = after.map_or(0, |a| a + 1);
        let mut out = Vec::new();
        for seq in from..from.saturating_add(limit.clamp(1, 1000) as u64) {
            match self
                .journal
                .checkpoints
                .get(&key, super::checkpoint_id(id, seq))
                .await?
            {
                Some(entry) => out.push(entry.record),
                None => break,
            }
        }
        Ok(out)
    }

    async fn send(
        &self,
        tenant: TenantId,
        run: WorkflowId,
        kind: MessageKind,
        value: Value,
    ) -> Result<(), WorkflowError> {
        let message = RunMessage {
            id: uuid::Uuid::now_v7(),
            run,
            kind,
            value,
        };
        self.journal
            .messages
            .create(&tenant.to_string(), &message)
            .await?;
        self.poke(run, Poke::Message);
        Ok(())
    }

    /// Deletes a run with its journal and messages.
    async fn delete_run(&self, key: &str, id: WorkflowId) -> Result<(), WorkflowError> {
        let mut seq = 0;
        while self
            .journal
            .checkpoints
            .delete(key, super::checkpoint_id(id, seq))
            .await?
        {
            seq += 1;
        }
        let query = Query::new().filter("run", id.to_string()).limit(1000);
        for message in self.journal.messages.list(key, &query).await?.items {
            self.journal.messages.delete(key, message.record.id).await?;
        }
        self.journal.runs.delete(key, *id.as_uuid()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_patch;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut v = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut v, json!({"a": "z", "c": {"f": null}}));
        assert_eq!(v, json!({"a": "z", "c": {"d": "e"}}));
        merge_patch(&mut v, json!({"a": [1]}));
        assert_eq!(v["a"], json!([1]));
    }
}
