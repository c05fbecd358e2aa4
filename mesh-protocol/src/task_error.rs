//! [`TaskError`]: how an agent's handler says a task failed, whatever runs it (the
//! WebSocket agent runtime, or an in-process agent of mesh-core).

/// Why a task failed, as the handler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    /// What went wrong.
    pub message: String,
    /// Whether another attempt (perhaps on another agent) may succeed.
    pub retryable: bool,
}

impl TaskError {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that will not go away.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}
