//! Which tasks a running collaboration job has submitted: a task-local list the
//! patterns add to, so cancelling the job can cancel them; and, for a job run as a
//! workflow step, the ids its tasks take — the same ones when the step runs again
//! after a crash, so no task is dispatched twice.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::TaskId;

tokio::task_local! {
    static SUBMITTED: Arc<Mutex<Vec<TaskId>>>;
    static STABLE: Stable;
}

/// Task ids derived from a base: the n-th task a job submits gets the n-th id.
struct Stable {
    base: uuid::Uuid,
    next: std::sync::atomic::AtomicUsize,
}

/// Runs `job` with its tasks' ids derived from `base` (see [`task_id`]).
pub(crate) fn with_stable_ids<F: Future>(
    base: uuid::Uuid,
    job: F,
) -> impl Future<Output = F::Output> {
    let stable = Stable {
        base,
        next: std::sync::atomic::AtomicUsize::new(0),
    };
    STABLE.scope(stable, job)
}

/// The id of the `n`-th task a job with ids derived from `base` submits.
pub(crate) fn task_id(base: uuid::Uuid, n: usize) -> TaskId {
    TaskId::from_uuid(crate::domain::workflow::derived_id(&format!("{base}#{n}")))
}

/// The id the current job's next task takes, if its ids are derived.
pub(super) fn next_stable_id() -> Option<TaskId> {
    STABLE
        .try_with(|s| {
            let n = s.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            task_id(s.base, n)
        })
        .ok()
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
