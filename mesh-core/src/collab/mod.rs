//! Collaboration patterns built on delegation: parallel fan-out with a completion
//! mode, MapReduce, pipelines and consensus. Each submits ordinary tasks through the
//! [`Engine`](crate::Engine) and combines their results; sub-tasks carry `parent` when one is given.
//! [`CollabJobs`] runs them as jobs that outlive a request: per tenant, with a quota,
//! a status and a cancel.

mod jobs;
mod patterns;
mod tracking;

pub use jobs::{CollabJobs, JobState, JobView, JobsConfig};
pub use patterns::{
    CollabError, CollabJob, Completion, ConsensusOutcome, MAX_COLLAB_TASKS, ParallelOutcome,
    consensus, map_reduce, parallel, pipeline,
};
pub(crate) use tracking::{task_id, with_stable_ids};
