//! Durable workflows over the engine: multi-step runs across agents, tools and other
//! workflows, checkpointed after every step through the engine's stores, resumed after
//! a crash from their last checkpoint — here or, leased, on another instance.
//!
//! | file | concern |
//! |---|---|
//! | `definitions.rs` | registering versions of definitions, reading them |
//! | `runs.rs` | start, get, list, cancel, signal, resume, retry, history, fork, prune |
//! | `driver.rs` | the task that drives one run: performs steps, checkpoints, waits |
//! | `steps.rs` | performing one step: an engine task, a tool call, a sub-workflow |
//! | `adopt.rs` | starting the runtime; taking up runs whose lease ran out |
//! | `cancel.rs` | cancelling a run and its work in flight |
//! | `commit.rs` | group commit of journal entries |
//! | `shared.rs` | the handle, and the reads and writes every part shares |
//!
//! The definitions and the interpreter are plain data in [`crate::domain::workflow`],
//! re-exported here. `docs/workflows.md` describes the JSON form and the guarantees.
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_core::protocol::Hello;
//! use mesh_core::workflow::{
//!     Action, Reducer, RunStatus, StartRequest, StateKey, Step, TaskStep, WorkflowDefinition,
//!     Workflows,
//! };
//! use mesh_core::{Engine, TenantId};
//! use serde_json::json;
//!
//! let engine = Engine::in_memory().await;
//! let tenant = TenantId::new();
//! let _agent = engine
//!     .connect_local(tenant, Hello::new("upper", ["upper"]), |task| async move {
//!         Ok(json!(task.input.as_str().unwrap_or_default().to_uppercase()))
//!     })
//!     .await?;
//! let workflows = Workflows::in_memory(engine.clone());
//! let word = ("word".to_owned(), StateKey::new(Reducer::Overwrite));
//! let shout = Step::new("shout", Action::Task(TaskStep::new("upper")))
//!     .input(json!({"$state": "/word"}))
//!     .output("word");
//! workflows
//!     .register(tenant, WorkflowDefinition::new("shout", [word], [shout]))
//!     .await?;
//! let mut events = engine.subscribe();
//! let run = workflows
//!     .start_run(tenant, StartRequest::new("shout", json!({"word": "mesh"})))
//!     .await?;
//! while workflows.run(tenant, run.id).await?.status != RunStatus::Succeeded {
//!     let _ = events.recv().await;
//! }
//! let done = workflows.run(tenant, run.id).await?;
//! assert_eq!(done.output, Some(json!({"word": "MESH"})));
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

mod adopt;
mod cancel;
mod commit;
mod config;
mod definitions;
mod driver;
mod error;
mod requests;
mod runs;
mod shared;
mod steps;

pub use crate::domain::workflow::*;
pub use config::WorkflowConfig;
pub use error::WorkflowError;
pub use requests::{RunFilter, StartRequest};
pub use shared::Workflows;
