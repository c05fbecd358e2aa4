//! Writes grouped into one round trip: a routing pass's assignments, and the
//! acceptances of one batch of commands (announced at once, written together, or not
//! at all when the task's next write comes first: a crash in between leaves
//! `assigned`, which recovery treats as `accepted`).

use mesh_store::{Repository, StoreError};

use super::{Result, State};
use crate::domain::{Task, TaskId, TaskStatus, TenantId};
use crate::engine::{Change, Event, Stores};

impl<S: Stores> State<S> {
    /// Writes the tasks' records as they are in memory, together: one `update_many`
    /// per tenant (one round trip on PostgreSQL, one transaction on SQLite). A record
    /// written takes its new version, and other engines hear of it; one another engine
    /// changed first is refreshed from the stores. For each id, whether it was written.
    pub(super) async fn write_tasks(&mut self, ids: &[TaskId]) -> Vec<bool> {
        let mut written = vec![false; ids.len()];
        let mut tenants: Vec<TenantId> = Vec::new();
        for id in ids {
            if let Some(entry) = self.tasks.get(id)
                && !tenants.contains(&entry.task.tenant_id)
            {
                tenants.push(entry.task.tenant_id);
            }
        }
        for tenant in tenants {
            let (at, updates): (Vec<usize>, Vec<(Task, u64)>) = ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| {
                    let entry = self.tasks.get(id)?;
                    (entry.task.tenant_id == tenant)
                        .then(|| (i, (entry.task.clone(), entry.version)))
                })
                .unzip();
            let results = match self
                .stores
                .tasks()
                .update_many(&tenant.to_string(), &updates)
                .await
            {
                Ok(results) => results,
                Err(e) => {
                    tracing::error!(error = %e, tasks = updates.len(), "writing tasks failed");
                    continue;
                }
            };
            for (i, result) in at.into_iter().zip(results) {
                let id = ids[i];
                match result {
                    Ok(saved) => {
                        if let Some(entry) = self.tasks.get_mut(&id) {
                            entry.version = saved.version;
                        }
                        let _ = self.changes.send(Change::Task { tenant, id });
                        written[i] = true;
                    }
                    Err(StoreError::Conflict { .. }) => {
                        // Another engine changed it first: take its version.
                        if let Err(e) = self.refresh_task(tenant, id).await {
                            tracing::warn!(error = %e, task = %id, "refreshing a task failed");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, task = %id, "writing a task failed"),
                }
            }
        }
        written
    }

    /// Takes an agent's acceptance: `accepted` at once in memory and in events, written
    /// with the other acceptances of this batch of commands ([`Self::write_accepted`]),
    /// or with the task's next write if that comes first.
    pub(super) fn accept(&mut self, id: TaskId) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        entry.task.transition(TaskStatus::Accepted)?;
        let tenant = entry.task.tenant_id;
        self.accepted.push(id);
        let _ = self.events.send(Event::TaskStatus {
            tenant,
            task: id,
            status: TaskStatus::Accepted,
        });
        Ok(())
    }

    /// Writes the acceptances taken since the last call, together — those of tasks
    /// still `accepted` in memory: a task that moved on was written since, and its
    /// record says more than `accepted` would.
    pub(super) async fn write_accepted(&mut self) {
        let mut ids = std::mem::take(&mut self.accepted);
        ids.retain(|id| {
            self.tasks
                .get(id)
                .is_some_and(|e| e.task.status() == TaskStatus::Accepted)
        });
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            self.write_tasks(&ids).await;
        }
    }
}
