//! Which tasks a running collaboration job has submitted: a task-local list the
//! patterns add to, so cancelling the job can cancel them.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::TaskId;

tokio::task_local! {
    static SUBMITTED: Arc<Mutex<Vec<TaskId>>>;
}

/// Runs `job` with `submitted` collecting the tasks it submits.
pub(super) fn scope<F: Future>(
    submitted: Arc<Mutex<Vec<TaskId>>>,
    job: F,
) -> impl Future<Output = F::Output> {
    SUBMITTED.scope(submitted, job)
}

/// Records a task the current job submitted (nothing outside a job).
pub(super) fn record(id: TaskId) {
    let _ = SUBMITTED.try_with(|tasks| {
        tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id)
    });
}
