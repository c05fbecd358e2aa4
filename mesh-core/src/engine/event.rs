//! What the engine tells the world: [`Event`]s for front-ends to follow, and
//! [`Change`]s for other engines sharing the stores.

use serde::{Deserialize, Serialize};

use crate::domain::workflow::RunStatus;
use crate::domain::{AgentId, TaskId, TaskStatus, TenantId, WorkflowId};

/// A record this engine wrote, so that other engines on the same stores can pick the
/// change up ([`Engine::changes`](crate::Engine::changes), [`Engine::refresh`](crate::Engine::refresh)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// A task was created or changed.
    Task {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        id: TaskId,
    },
    /// An agent was registered, changed or deregistered.
    Agent {
        /// Its tenant.
        tenant: TenantId,
        /// The agent.
        id: AgentId,
    },
    /// An API key was revoked: refuse it now, and end the sessions opened with it.
    KeyRevoked {
        /// The key.
        id: uuid::Uuid,
    },
}

/// Something that happened, for front-ends to follow ([`Engine::subscribe`](crate::Engine::subscribe)).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// An agent registered or resumed.
    AgentConnected {
        /// Its tenant.
        tenant: TenantId,
        /// The agent.
        agent: AgentId,
        /// Its name.
        name: String,
    },
    /// An agent's connection ended.
    AgentDisconnected {
        /// Its tenant.
        tenant: TenantId,
        /// The agent.
        agent: AgentId,
    },
    /// A task was submitted.
    TaskSubmitted {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        task: TaskId,
        /// Its kind.
        kind: String,
    },
    /// A task was given to an agent.
    TaskAssigned {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
        /// The agent's name.
        agent_name: String,
        /// Which attempt.
        attempt: u32,
    },
    /// A task's status changed.
    TaskStatus {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        task: TaskId,
        /// The new status.
        status: TaskStatus,
    },
    /// A workflow run moved: a step started, ended or waits, or the run finished.
    WorkflowUpdate {
        /// Its tenant.
        tenant: TenantId,
        /// The run.
        run: WorkflowId,
        /// The journal entry it follows from (resume a stream after it).
        seq: u64,
        /// What happened.
        update: WorkflowUpdate,
        /// The run's status now.
        status: RunStatus,
        /// Steps finished so far.
        steps_done: u64,
        /// Steps running or waiting now.
        steps_running: u64,
    },
}

impl Event {
    /// The tenant it happened in.
    pub fn tenant(&self) -> TenantId {
        match self {
            Self::AgentConnected { tenant, .. }
            | Self::AgentDisconnected { tenant, .. }
            | Self::TaskSubmitted { tenant, .. }
            | Self::TaskAssigned { tenant, .. }
            | Self::TaskStatus { tenant, .. }
            | Self::WorkflowUpdate { tenant, .. } => *tenant,
        }
    }
}

/// What happened to a workflow run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowUpdate {
    /// The run started (or was forked, retried or adopted by this instance).
    Started,
    /// A step began.
    StepStarted {
        /// The step.
        step: String,
        /// Its activation.
        activation: u64,
    },
    /// A step finished.
    StepCompleted {
        /// The step.
        step: String,
        /// Its activation.
        activation: u64,
    },
    /// A step failed, and the run with it.
    StepFailed {
        /// The step.
        step: String,
        /// Its activation.
        activation: u64,
        /// Why.
        error: String,
    },
    /// A step waits for a person: resume interrupt `id`.
    InterruptPending {
        /// The step.
        step: String,
        /// The interrupt.
        id: uuid::Uuid,
    },
    /// The run finished.
    Finished,
}
