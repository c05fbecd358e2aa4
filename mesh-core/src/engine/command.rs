//! The mutations the engine task serves, one [`Command`] each; reads go to the stores
//! directly (`reads`).

use std::sync::Arc;
use std::time::Duration;

use mesh_protocol::{Hello, Message, Welcome};
use tokio::sync::oneshot;

use super::EngineError;
use super::event::Change;
use super::link::AgentLink;
use crate::domain::{AgentId, ApiKey, Scope, SessionId, Task, TaskId, TaskSpec, Tenant, TenantId};

/// Where the engine task sends a command's answer.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

pub(crate) enum Command {
    Connect {
        tenant: TenantId,
        hello: Hello,
        link: Arc<dyn AgentLink>,
        reply: Reply<(Welcome, SessionId)>,
    },
    FromAgent {
        agent: AgentId,
        session: SessionId,
        message: Message,
    },
    Disconnect {
        agent: AgentId,
        session: SessionId,
    },
    Submit {
        tenant: TenantId,
        spec: TaskSpec,
        /// The id to give it; a task of the tenant's with this id is returned as is.
        id: Option<TaskId>,
        reply: Reply<Task>,
    },
    Wait {
        tenant: TenantId,
        id: TaskId,
        reply: Reply<Task>,
    },
    /// How many wait for the task (tests only).
    #[cfg(test)]
    Waiters {
        id: TaskId,
        reply: Reply<usize>,
    },
    Cancel {
        tenant: TenantId,
        id: TaskId,
        reply: Reply<Task>,
    },
    Deregister {
        tenant: TenantId,
        id: AgentId,
        reply: Reply<bool>,
    },
    Refresh {
        change: Change,
    },
    /// Re-read everything tracked (after missed change notifications).
    Resync,
    Sweep {
        grace: Duration,
        reply: Reply<usize>,
    },
    CreateKey {
        tenant: TenantId,
        name: String,
        scopes: Vec<Scope>,
        roles: Vec<String>,
        key: Option<String>,
        reply: Reply<(String, ApiKey)>,
    },
    RevokeKey {
        tenant: TenantId,
        id: uuid::Uuid,
        reply: Reply<ApiKey>,
    },
    CreateTenant {
        name: String,
        reply: Reply<Tenant>,
    },
    /// Answered once every command sent before it has been served.
    Settle {
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}
