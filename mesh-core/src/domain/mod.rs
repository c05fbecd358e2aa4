//! Layer 1, the domain: typed ids, agents, tasks and their lifecycles, what a client
//! asks for ([`TaskSpec`]), who is asking ([`Principal`], [`ApiKey`], [`Scope`]), and
//! how these records are stored. No I/O: everything above builds on it.

mod access;
mod agent;
mod audit;
mod error;
mod ids;
mod keys;
mod lifecycle;
mod principal;
mod records;
mod shared_doc;
mod spec;
mod task;
mod tools;
pub mod workflow;

pub use access::{Action, BuiltinRole, Grants, Permission, Resource, Role, RoleError, glob};
pub use agent::Agent;
pub use audit::{
    AuditEntry, AuditHead, AuditRecord, Break, BrokenLink, Chain, Decision, GENESIS, verify,
};
pub use error::Error;
pub use ids::{AgentId, ParseIdError, SessionId, SharedDocId, TaskId, TenantId, WorkflowId};
pub use keys::{ApiKey, MAX_NAME_LEN, Scope, UnknownScope, generate_key, hash_key, valid_name};
pub use lifecycle::{AgentStatus, TaskStatus};
pub use principal::Principal;
pub(crate) use records::SYSTEM_TENANT;
pub use records::{IndexedDocument, Tenant};
pub use shared_doc::{DocEdit, DocKind, SharedDoc};
pub use spec::TaskSpec;
pub use task::{Priority, RoutingPreference, Task};
pub use tools::{Prefix, SourceKind, ToolSource};
