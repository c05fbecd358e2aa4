//! [`EngineError`]: why an engine call failed, one variant per cause, each with a
//! stable [`code`](EngineError::code) that every surface (REST, MCP, the agent hub)
//! sends as is.

use mesh_store::StoreError;

use crate::domain::{AgentId, TaskId, TaskSpec};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
    /// No such task for this tenant.
    #[error("task {0} not found")]
    TaskNotFound(TaskId),
    /// A sub-task names a parent the tenant does not have.
    #[error("parent task {0} not found")]
    ParentNotFound(TaskId),
    /// The task kind is empty or too long.
    #[error("kind must be 1 to {max} characters", max = TaskSpec::MAX_KIND_LEN)]
    InvalidKind,
    /// The task needs too many capabilities.
    #[error("at most {max} required capabilities, not {count}", max = TaskSpec::MAX_REQUIRED_CAPABILITIES)]
    TooManyRequirements {
        /// How many it asked for.
        count: usize,
    },
    /// `max_attempts` is out of range.
    #[error("max_attempts must be 1 to {max}, not {0}", max = TaskSpec::MAX_ATTEMPTS)]
    InvalidMaxAttempts(u32),
    /// `timeout_ms` is out of range.
    #[error("timeout_ms must be 1 to {max}, not {0}", max = TaskSpec::MAX_TIMEOUT_MS)]
    InvalidTimeout(u64),
    /// No router is registered under this name.
    #[error("no router named {0:?} is registered")]
    UnknownRouter(String),
    /// A page cursor that no listing produced.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// An agent's name is empty or too long.
    #[error("an agent name has 1 to 256 characters")]
    InvalidAgentName,
    /// An agent advertises too many capabilities, or an empty or overlong one.
    #[error("an agent has at most 256 capabilities of 1 to 128 characters")]
    InvalidCapabilities,
    /// An agent sends too many labels, or an empty or overlong key or value.
    #[error("an agent has at most 32 labels, keys of 1 to 64 and values of at most 256 characters")]
    InvalidLabels,
    /// An agent asked for an id another tenant's agent has.
    #[error("agent id {0} belongs to another tenant")]
    AgentIdTaken(AgentId),
    /// The agent's connection would not take the welcome.
    #[error("the agent's connection is gone")]
    AgentUnreachable,
    /// A chosen API key is too short to be safe.
    #[error("an API key has at least {min} characters")]
    KeyTooShort {
        /// The shortest allowed.
        min: usize,
    },
    /// No such API key for this tenant.
    #[error("API key {0} not found")]
    KeyNotFound(uuid::Uuid),
    /// A key or tenant name that is empty or too long.
    #[error("a name has 1 to {max} characters", max = crate::domain::MAX_NAME_LEN)]
    InvalidName,
    /// Other engines kept changing the task; the same call may succeed now.
    #[error("task {0} keeps changing; try again")]
    Contended(TaskId),
    /// A lifecycle rule was broken (a bug in the engine if it ever surfaces).
    #[error(transparent)]
    Transition(#[from] crate::domain::Error),
    /// The stores failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl EngineError {
    /// A stable, machine-readable code: `unavailable`, `not_found`, `invalid_request`,
    /// `conflict` or `internal` — what REST sends in its error body and MCP in a tool
    /// error's structured content.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Stopped | Self::AgentUnreachable => "unavailable",
            Self::TaskNotFound(_) | Self::KeyNotFound(_) => "not_found",
            Self::ParentNotFound(_)
            | Self::InvalidKind
            | Self::TooManyRequirements { .. }
            | Self::InvalidMaxAttempts(_)
            | Self::InvalidTimeout(_)
            | Self::UnknownRouter(_)
            | Self::InvalidCursor(_)
            | Self::InvalidAgentName
            | Self::InvalidCapabilities
            | Self::InvalidLabels
            | Self::AgentIdTaken(_)
            | Self::KeyTooShort { .. }
            | Self::InvalidName => "invalid_request",
            Self::Contended(_) | Self::Transition(_) => "conflict",
            Self::Store(e) if e.is_retryable() => "unavailable",
            Self::Store(StoreError::Conflict { .. }) => "conflict",
            Self::Store(_) => "internal",
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Contended(_) => true,
            Self::Store(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// Whether another engine wrote the record first.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_validation_error_is_an_invalid_request_and_not_retryable() {
        for e in [
            EngineError::InvalidKind,
            EngineError::TooManyRequirements { count: 65 },
            EngineError::InvalidMaxAttempts(0),
            EngineError::InvalidTimeout(0),
            EngineError::UnknownRouter("eu".into()),
            EngineError::ParentNotFound(TaskId::new()),
        ] {
            assert_eq!(e.code(), "invalid_request", "{e}");
            assert!(!e.is_retryable());
        }
        assert_eq!(EngineError::TaskNotFound(TaskId::new()).code(), "not_found");
        assert!(EngineError::Contended(TaskId::new()).is_retryable());
        assert_eq!(EngineError::Stopped.code(), "unavailable");
    }
}
