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

/// A task repository that panics when asked to store a task of kind `boom`: a stand-in
/// for any bug that kills the engine task.
#[derive(Default)]
struct Booby(mesh_store::MemoryRepository<mesh_core::Task>);

impl mesh_store::Repository<mesh_core::Task> for Booby {
    async fn create(
        &self,
        tenant: &str,
        record: &mesh_core::Task,
    ) -> mesh_store::Result<mesh_store::Versioned<mesh_core::Task>> {
        assert!(record.kind != "boom", "a bug in the engine task");
        self.0.create(tenant, record).await
    }
    async fn get(
        &self,
        tenant: &str,
        id: uuid::Uuid,
    ) -> mesh_store::Result<Option<mesh_store::Versioned<mesh_core::Task>>> {
        self.0.get(tenant, id).await
    }
    async fn list(
        &self,
        tenant: &str,
        query: &mesh_store::Query,
    ) -> mesh_store::Result<mesh_store::Page<mesh_core::Task>> {
        self.0.list(tenant, query).await
    }
    async fn update(
        &self,
        tenant: &str,
        record: &mesh_core::Task,
        expected_version: u64,
    ) -> mesh_store::Result<mesh_store::Versioned<mesh_core::Task>> {
        self.0.update(tenant, record, expected_version).await
    }
    async fn delete(&self, tenant: &str, id: uuid::Uuid) -> mesh_store::Result<bool> {
        self.0.delete(tenant, id).await
    }
}

#[derive(Default)]
struct BoobyStores {
    tasks: Booby,
    memory: mesh_core::MemoryStores,
}

impl mesh_core::Stores for BoobyStores {
    type Tasks = Booby;
    type Agents = <mesh_core::MemoryStores as mesh_core::Stores>::Agents;
    type Keys = <mesh_core::MemoryStores as mesh_core::Stores>::Keys;
    type Tenants = <mesh_core::MemoryStores as mesh_core::Stores>::Tenants;
    fn tasks(&self) -> &Self::Tasks {
        &self.tasks
    }
    fn agents(&self) -> &Self::Agents {
        self.memory.agents()
    }
    fn keys(&self) -> &Self::Keys {
        self.memory.keys()
    }
    fn tenants(&self) -> &Self::Tenants {
        self.memory.tenants()
    }
}

/// Hardening issue, item 5: a panic in the engine task left the process looking healthy
/// while nothing worked. Now the engine reports it stopped, readiness fails, and the
/// binaries (which select on `Engine::stopped`) exit non-zero.
#[tokio::test]
async fn hardening_5_a_dead_engine_fails_readiness() {
    let engine = mesh_core::Engine::start(common::fast_config(), BoobyStores::default())
        .await
        .unwrap();
    let services = mesh_core::services::Services::in_memory(engine.clone());
    let tenant = mesh_core::TenantId::new();
    engine
        .submit(tenant, TaskSpec::new("fine", json!({})))
        .await
        .unwrap();
    assert!(engine.is_running());
    assert_eq!(services.ready().await, Ok(()));
    let died = engine
        .submit(tenant, TaskSpec::new("boom", json!({})))
        .await;
    assert!(
        matches!(died, Err(mesh_core::EngineError::Stopped)),
        "{died:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), engine.stopped())
        .await
        .expect("stopped resolves");
    assert!(!engine.is_running());
    assert_eq!(services.ready().await, Err("engine: stopped".to_owned()));
}

/// Hardening issue, item 5: durations a peer supplies are bounded before any time
/// arithmetic — an enormous timeout, through a collaboration job too, is refused, and a
/// deadline at the calendar's end does not overflow.
#[tokio::test]
async fn hardening_5_enormous_durations_are_refused_not_a_panic() {
    let m = common::mesh().await;
    let huge = TaskSpec::new("x", json!({})).timeout(Duration::MAX);
    let refused = m.engine.submit(m.tenant, huge.clone()).await.unwrap_err();
    assert!(
        matches!(refused, mesh_core::EngineError::InvalidTimeout(_)),
        "{refused}"
    );
    let job = mesh_core::collab::CollabJob::Parallel {
        tasks: vec![huge],
        completion: Completion::All,
    };
    let refused = job.run(&m.engine, m.tenant).await.unwrap_err();
    assert_eq!(refused.code(), "invalid_request", "{refused}");
    let far = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("x", json!({})).deadline(far))
        .await
        .unwrap();
    m.engine.cancel(m.tenant, task.id).await.unwrap();
    assert!(m.engine.is_running());
}
