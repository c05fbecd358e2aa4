//! # mesh-core
//!
//! The engine of [Mesh](https://github.com/mesh-agents/mesh), an SDK for orchestrating
//! AI agents. This crate joins the leaf crates (protocol, router, store, embed, crdt) and
//! is what a Rust service embeds.
//!
//! Today it holds the domain model every other part speaks:
//!
//! - typed ids ([`AgentId`], [`TaskId`], [`WorkflowId`], [`TenantId`], [`SessionId`]) —
//!   UUID newtypes that cannot be mixed up;
//! - [`Agent`] and [`Task`], each with a status whose lifecycle is a validated state
//!   machine: an invalid transition is a typed [`Error`], never a panic.
//!
//! ## Quick start
//!
//! ```
//! use mesh_core::{Task, TaskStatus, TenantId};
//!
//! let mut task = Task::new(TenantId::new(), "summarize", serde_json::json!({"url": "…"}));
//! task.transition(TaskStatus::Assigned)?;
//! task.transition(TaskStatus::Accepted)?;
//! // A finished task cannot be re-opened:
//! task.transition(TaskStatus::Completed)?;
//! assert!(task.transition(TaskStatus::Pending).is_err());
//! # Ok::<(), mesh_core::Error>(())
//! ```

mod agent;
#[cfg(feature = "rest")]
pub mod api;
mod auth;
#[cfg(feature = "postgres")]
pub mod cluster;
pub mod collab;
mod engine;
mod error;
#[cfg(feature = "hub")]
pub mod hub;
mod ids;
#[cfg(feature = "mcp")]
pub mod mcp;
mod records;
pub mod services;
mod stores;
mod task;
pub mod tools;
pub mod worker;

pub use agent::{Agent, AgentStatus};
pub use auth::{ApiKey, Scope, generate_key, hash_key};
pub use engine::{
    AgentFilter, AgentLink, Change, Engine, EngineConfig, EngineError, Event, Page, TaskFilter,
    TaskSpec,
};
pub use error::Error;
pub use ids::{AgentId, ParseIdError, SessionId, TaskId, TenantId, WorkflowId};
#[doc(hidden)]
pub use records::TenantEntry;
#[cfg(feature = "postgres")]
pub use stores::PgStores;
pub use stores::{MemoryStores, Stores};
pub use task::{Priority, RoutingPreference, Task, TaskStatus};
