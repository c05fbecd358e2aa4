//! Cancelling a run and the work it has in flight: its engine tasks (by the ids their
//! activations derive) and its sub-workflows, recursively.

use std::sync::Arc;

use mesh_store::StoreError;

use super::shared::{Inner, Poke};
use super::{
    Action, DefinitionRecord, Position, RunStatus, WorkflowError, WorkflowRun, child_run_id,
    task_key,
};
use crate::domain::{TaskId, TenantId, WorkflowId};

impl Inner {
    /// Marks the run cancelled (it must not have finished), stops its driver here (one
    /// elsewhere notices at its next lease renewal) and cancels its work.
    pub(super) async fn cancel_run(
        self: &Arc<Self>,
        tenant: TenantId,
        id: WorkflowId,
    ) -> Result<WorkflowRun, WorkflowError> {
        let key = tenant.to_string();
        let run = loop {
            let current = self.read_run(tenant, id).await?;
            if current.record.status.is_finished() {
                return Err(WorkflowError::WrongStatus {
                    run: id,
                    status: current.record.status,
                    operation: "cancel",
                    needs: "running or waiting",
                });
            }
            let mut run = current.record.clone();
            run.end(RunStatus::Cancelled);
            match self.journal.runs.update(&key, &run, current.version).await {
                Ok(written) => break written.record,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.poke(id, Poke::Cancel);
        let last = self.last_checkpoint(tenant, id).await?;
        let definition = self
            .definition(tenant, &run.workflow, Some(run.version))
            .await?;
        self.cancel_work(tenant, id, &definition, &last.position)
            .await;
        Ok(run)
    }

    /// Cancels the engine tasks and sub-workflows `position` has in flight.
    pub(super) async fn cancel_work(
        self: &Arc<Self>,
        tenant: TenantId,
        run: WorkflowId,
        definition: &DefinitionRecord,
        position: &Position,
    ) {
        let Ok(running) = position.running_steps(&definition.definition) else {
            return;
        };
        let steps = definition.definition.steps_by_name();
        for activation in running {
            match steps.get(activation.step.as_str()).map(|s| &s.action) {
                Some(Action::Task(_)) => {
                    let id = TaskId::from_uuid(task_key(tenant, run, activation.id));
                    let _ = self.engine.cancel(tenant, id).await;
                }
                Some(Action::Collab(job)) => {
                    let base = task_key(tenant, run, activation.id);
                    let size = super::steps::collab_job(job, None).map_or(0, |j| j.size());
                    // Its tasks, and a map-reduce's reduce task after them.
                    for n in 0..=size {
                        let _ = self
                            .engine
                            .cancel(tenant, crate::collab::task_id(base, n))
                            .await;
                    }
                }
                Some(Action::Workflow { .. }) => {
                    let child = child_run_id(run, activation.id);
                    let _ = Box::pin(self.cancel_run(tenant, child)).await;
                }
                _ => {}
            }
        }
    }
}
