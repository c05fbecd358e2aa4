//! The engine and hub with real WebSocket agents on loopback: registration, routing,
//! failures, retries, delegation, cancellation, and the collaboration patterns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::testing as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Mesh, completed_by};
use mesh_core::collab::{self, Completion, ConsensusOutcome};
use mesh_core::{AgentStatus, Event, TaskSpec, TaskStatus};
use mesh_protocol::ws::{TaskError, connect};
use mesh_protocol::{Hello, Message, TaskReject};
use serde_json::json;

async fn mesh_with(config: mesh_core::EngineConfig) -> Option<Mesh> {
    Some(common::mesh_on(config, mesh_core::MemoryStores::new()).await)
}

include!("lifecycle/cases.rs");
