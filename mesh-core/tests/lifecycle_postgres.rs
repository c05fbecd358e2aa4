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

#[tokio::test]
async fn an_engine_restarted_mid_task_resumes_it_from_the_database() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    let mut first = common::mesh_on(common::fast_config(), common::pg_stores(&url).await).await;
    let (tenant, key) = (first.tenant, first.key.clone());
    let _slow = first.agent("slow", &["work"], 1, |_, _| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(json!({"by": "slow"}))
    });
    first.wait_for_agents(1).await;
    let task = first
        .engine
        .submit(tenant, TaskSpec::new("work", json!({"n": 1})))
        .await
        .unwrap();
    first
        .next_event(|e| matches!(e, Event::TaskAssigned { .. }))
        .await;
    first.engine.shutdown().await;
    drop(first);

    // A new engine on the same database takes the task back.
    let second = common::mesh_with_key(
        common::fast_config(),
        common::pg_stores(&url).await,
        tenant,
        key,
    )
    .await;
    let resumed = second.engine.task(tenant, task.id).await.unwrap().unwrap();
    assert_eq!(
        resumed.status(),
        TaskStatus::Pending,
        "back to pending: its agent belonged to the old engine"
    );
    let _fast = second.echo_agent("fast", &["work"]);
    let done = second.finished(task.id).await;
    assert_eq!(completed_by(&done), "fast");
    assert_eq!(done.attempts, 2);
}
