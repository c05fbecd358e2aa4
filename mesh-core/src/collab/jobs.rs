//! Collaboration jobs that outlive the request that started them: each runs on its own
//! task, counted against its tenant's quota, with a status to read and a cancel that
//! stops the job and cancels the tasks it submitted. Finished jobs are kept a while
//! for their outcome, then forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use super::tracking;
use super::{CollabError, CollabJob};
use crate::domain::{TaskId, TenantId};
use crate::engine::Engine;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Limits of the job registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobsConfig {
    /// Jobs one tenant may run at once. Default 8.
    pub per_tenant: usize,
    /// How long a finished job's outcome stays readable. Default 10 minutes.
    pub keep_finished: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            per_tenant: 8,
            keep_finished: Duration::from_secs(600),
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum JobState {
    /// Still running.
    Running,
    /// Done; the pattern's outcome.
    Completed {
        /// The outcome.
        outcome: Value,
    },
    /// It failed.
    Failed {
        /// A stable code ([`CollabError::code`]).
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// It was cancelled, and the tasks it had submitted with it.
    Cancelled,
}

/// A job as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct JobView {
    /// The job's id.
    pub id: Uuid,
    /// Its state (flattened: `status`, and `outcome` or `code` and `message`).
    #[serde(flatten)]
    pub state: JobState,
    /// The tasks it submitted so far.
    pub tasks: Vec<TaskId>,
}

struct Entry {
    tenant: TenantId,
    /// The engine the job runs on (its tasks are cancelled through it).
    engine: Engine,
    state: watch::Sender<JobState>,
    tasks: Arc<Mutex<Vec<TaskId>>>,
    abort: tokio::task::AbortHandle,
    finished: Option<Instant>,
}

impl Entry {
    fn view(&self, id: Uuid) -> JobView {
        JobView {
            id,
            state: self.state.borrow().clone(),
            tasks: lock(&self.tasks).clone(),
        }
    }
}

/// The registry of running and recently finished collaboration jobs.
#[derive(Clone, Default)]
pub struct CollabJobs {
    config: JobsConfig,
    entries: Arc<Mutex<HashMap<Uuid, Entry>>>,
}

impl std::fmt::Debug for CollabJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollabJobs")
            .field("config", &self.config)
            .field("jobs", &lock(&self.entries).len())
            .finish()
    }
}

impl CollabJobs {
    /// A registry with these limits.
    pub fn new(config: JobsConfig) -> Self {
        Self {
            config,
            entries: Arc::default(),
        }
    }

    /// Starts `job` for `tenant`; [`CollabError::QuotaExceeded`] when the tenant runs
    /// as many as it may, [`CollabError::TooManyTasks`] or [`CollabError::Empty`] for a
    /// job that could never run.
    pub fn start(
        &self,
        engine: &Engine,
        tenant: TenantId,
        job: CollabJob,
    ) -> Result<Uuid, CollabError> {
        job.check()?;
        let mut entries = lock(&self.entries);
        let keep = self.config.keep_finished;
        entries.retain(|_, e| e.finished.is_none_or(|at| at.elapsed() < keep));
        let running = entries
            .values()
            .filter(|e| e.tenant == tenant && e.finished.is_none())
            .count();
        if running >= self.config.per_tenant {
            return Err(CollabError::QuotaExceeded { running });
        }
        let id = Uuid::now_v7();
        let tasks: Arc<Mutex<Vec<TaskId>>> = Arc::default();
        let (state, _) = watch::channel(JobState::Running);
        let engine_for_cancel = engine.clone();
        let (engine, registry, submitted) = (engine.clone(), self.clone(), tasks.clone());
        let handle = tokio::spawn(tracking::scope(submitted, async move {
            let outcome = job.run(&engine, tenant).await;
            registry.finish(
                id,
                match outcome {
                    Ok(outcome) => JobState::Completed { outcome },
                    Err(e) => JobState::Failed {
                        code: e.code(),
                        message: e.to_string(),
                    },
                },
            );
        }));
        entries.insert(
            id,
            Entry {
                tenant,
                engine: engine_for_cancel,
                state,
                tasks,
                abort: handle.abort_handle(),
                finished: None,
            },
        );
        Ok(id)
    }

    fn finish(&self, id: Uuid, state: JobState) {
        if let Some(entry) = lock(&self.entries).get_mut(&id)
            && entry.finished.is_none()
        {
            entry.finished = Some(Instant::now());
            entry.state.send_replace(state);
        }
    }

    /// The tenant's job, if it has one with this id.
    pub fn get(&self, tenant: TenantId, id: Uuid) -> Option<JobView> {
        lock(&self.entries)
            .get(&id)
            .filter(|e| e.tenant == tenant)
            .map(|e| e.view(id))
    }

    /// Waits up to `wait` for the job to finish; the job as it is then.
    pub async fn wait(&self, tenant: TenantId, id: Uuid, wait: Duration) -> Option<JobView> {
        let mut state = lock(&self.entries)
            .get(&id)
            .filter(|e| e.tenant == tenant)?
            .state
            .subscribe();
        let _ = tokio::time::timeout(wait, state.wait_for(|s| *s != JobState::Running)).await;
        self.get(tenant, id)
    }

    /// Stops the job and cancels the tasks it submitted that are still running; the
    /// job as it ends. A job already finished is left as it was.
    pub async fn cancel(&self, tenant: TenantId, id: Uuid) -> Option<JobView> {
        let (engine, tasks) = {
            let entries = lock(&self.entries);
            let entry = entries.get(&id).filter(|e| e.tenant == tenant)?;
            if entry.finished.is_some() {
                return Some(entry.view(id));
            }
            entry.abort.abort();
            (entry.engine.clone(), lock(&entry.tasks).clone())
        };
        for task in tasks {
            // A task that already ended cannot be cancelled: nothing to do for it.
            let _ = engine.cancel(tenant, task).await;
        }
        self.finish(id, JobState::Cancelled);
        self.get(tenant, id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::domain::{TaskSpec, TenantId};
    use crate::engine::Engine;

    /// Hardening issue, item 13: a waiter that stopped waiting (a request that timed
    /// out, a cancelled job) stayed with its task until the task ended — for ever, for
    /// a task nobody runs.
    #[tokio::test]
    async fn hardening_13_waiters_that_gave_up_are_pruned() {
        let engine = Engine::in_memory().await;
        let tenant = TenantId::new();
        let task = engine
            .submit(tenant, TaskSpec::new("nobody", serde_json::json!({})))
            .await
            .unwrap();
        for _ in 0..200 {
            let gave_up =
                tokio::time::timeout(Duration::from_millis(1), engine.wait(tenant, task.id));
            assert!(gave_up.await.is_err(), "nobody runs it");
        }
        assert!(engine.waiters(task.id).await <= 1);
    }
}
