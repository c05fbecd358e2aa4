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
//! | `shared.rs` | the handle, and the reads and writes every part shares |
//!
//! The definitions and the interpreter are plain data in [`crate::domain::workflow`],
//! re-exported here.

mod adopt;
mod cancel;
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
