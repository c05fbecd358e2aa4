//! The same lifecycle cases as `lifecycle.rs`, on SQLite (a fresh database file per
//! test), plus an engine restarted in the middle of a task on the same file.

#![cfg(feature = "sqlite")]
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

/// A database file no other test uses, under cargo's scratch directory for tests.
fn fresh_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lifecycle-{}.db", uuid::Uuid::now_v7().simple()))
}

async fn stores_at(path: &std::path::Path) -> mesh_core::SqliteStores {
    let store = mesh_store::SqliteStore::open(path).await.unwrap();
    mesh_core::SqliteStores::new(store).await.unwrap()
}

async fn mesh_with(config: mesh_core::EngineConfig) -> Option<Mesh> {
    Some(common::mesh_on(config, stores_at(&fresh_file()).await).await)
}

include!("lifecycle/cases.rs");
include!("lifecycle/patterns.rs");
include!("lifecycle/hardening.rs");
include!("lifecycle/engine_tasks.rs");
include!("lifecycle/restart.rs");

#[tokio::test]
async fn an_engine_restarted_mid_task_resumes_it_from_the_file() {
    let path = fresh_file();
    restarted_mid_task(|| stores_at(&path)).await;
}

#[tokio::test]
async fn hardening_12_an_agent_id_is_never_claimed_across_tenants() {
    let path = fresh_file();
    an_agent_id_is_never_claimed_across_tenants(|| stores_at(&path)).await;
}

#[tokio::test]
async fn pending_tasks_are_resumed_over_several_engine_tasks() {
    let path = fresh_file();
    pending_tasks_are_resumed_by_the_engine_task_of_their_tenant(|| stores_at(&path)).await;
}
