//! The same lifecycle cases as `lifecycle.rs`, on PostgreSQL (a fresh database per
//! test), plus an engine restart in the middle of a task. Needs
//! `MESH_TEST_DATABASE_URL` (scripts/test.sh sets it).

#![cfg(feature = "postgres")]
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
    let url = common::fresh_database().await?;
    Some(common::mesh_on(config, common::pg_stores(&url).await).await)
}

include!("lifecycle/cases.rs");
include!("lifecycle/patterns.rs");
include!("lifecycle/hardening.rs");
include!("lifecycle/engine_tasks.rs");

include!("lifecycle/restart.rs");

#[tokio::test]
async fn an_engine_restarted_mid_task_resumes_it_from_the_database() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    restarted_mid_task(|| common::pg_stores(&url)).await;
}

#[tokio::test]
async fn hardening_12_an_agent_id_is_never_claimed_across_tenants() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    an_agent_id_is_never_claimed_across_tenants(|| common::pg_stores(&url)).await;
}

#[tokio::test]
async fn pending_tasks_are_resumed_over_several_engine_tasks() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    pending_tasks_are_resumed_by_the_engine_task_of_their_tenant(|| common::pg_stores(&url)).await;
}
