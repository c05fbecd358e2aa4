//! [`WorkflowError`]: why a workflow operation was refused, with a stable code.

use mesh_store::StoreError;

use crate::domain::WorkflowId;
use crate::domain::workflow::{DefinitionError, MachineError, RunStatus};
use crate::engine::EngineError;

/// Why a workflow operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The definition was refused.
    #[error("invalid workflow definition: {0}")]
    Definition(#[from] DefinitionError),
    /// No workflow (or no such version of it) is registered under this name.
    #[error("no workflow {name:?}{}", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    UnknownWorkflow {
        /// The name.
        name: String,
        /// The version asked for.
        version: Option<u32>,
    },
    /// No such run.
    #[error("no workflow run {0}")]
    RunNotFound(WorkflowId),
    /// A run's input is not an object of declared state keys.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The operation does not apply to a run in this status.
    #[error("run {run} is {status:?}; {operation} needs it {needs}")]
    WrongStatus {
        /// The run.
        run: WorkflowId,
        /// Its status.
        status: RunStatus,
        /// What was asked.
        operation: &'static str,
        /// What it needs.
        needs: &'static str,
    },
    /// No pending interrupt has this id.
    #[error("run {run} has no pending interrupt {interrupt}")]
    NoSuchInterrupt {
        /// The run.
        run: WorkflowId,
        /// The interrupt.
        interrupt: uuid::Uuid,
    },
    /// The run has no journal entry with this sequence number.
    #[error("run {run} has no checkpoint {seq}")]
    NoSuchCheckpoint {
        /// The run.
        run: WorkflowId,
        /// The entry asked for.
        seq: u64,
    },
    /// The interpreter could not go on (a map over something not a list, too many
    /// steps).
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// The engine refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The stores failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WorkflowError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Definition(_) | Self::InvalidInput(_) | Self::Machine(_) => "invalid_request",
            Self::UnknownWorkflow { .. }
            | Self::RunNotFound(_)
            | Self::NoSuchInterrupt { .. }
            | Self::NoSuchCheckpoint { .. } => "not_found",
            Self::WrongStatus { .. } => "conflict",
            Self::Engine(e) => e.code(),
            Self::Store(e) if e.is_retryable() => "unavailable",
            Self::Store(StoreError::Conflict { .. }) => "conflict",
            Self::Store(StoreError::Invalid(_)) => "invalid_request",
            Self::Store(_) => "internal",
        }
    }
}
