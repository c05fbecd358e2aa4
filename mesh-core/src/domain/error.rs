//! The crate's error type.

use super::{AgentStatus, TaskStatus};

/// What can go wrong in mesh-core.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An agent was asked to move between two statuses the lifecycle does not connect.
    #[error("agent cannot go from {from} to {to}")]
    InvalidAgentTransition {
        /// The status the agent is in.
        from: AgentStatus,
        /// The status that was asked for.
        to: AgentStatus,
    },
    /// A task was asked to move between two statuses the lifecycle does not connect.
    #[error("task cannot go from {from} to {to}")]
    InvalidTaskTransition {
        /// The status the task is in.
        from: TaskStatus,
        /// The status that was asked for.
        to: TaskStatus,
    },
}
