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
include!("lifecycle/patterns.rs");
include!("lifecycle/hardening.rs");
include!("lifecycle/engine_tasks.rs");

/// A task repository with traps: it panics when asked to store a task of kind `boom`
/// (a stand-in for any bug that kills the engine task), and when armed, the next write
/// of a finished task fails once as a transient error and once as a version conflict
/// (another instance added a sub-task to it just before).
#[derive(Default, Clone)]
struct Booby(Arc<Traps>);

#[derive(Default)]
struct Traps {
    inner: mesh_store::MemoryRepository<mesh_core::Task>,
    transient: std::sync::atomic::AtomicBool,
    conflict: std::sync::atomic::AtomicBool,
}

/// The sub-task "another instance" adds when the conflict trap springs.
const SUB_TASK: uuid::Uuid = uuid::Uuid::from_u128(0x0190a6f0_0000_7000_8000_000000000001);

impl mesh_store::Repository<mesh_core::Task> for Booby {
    async fn create(
        &self,
        tenant: &str,
        record: &mesh_core::Task,
    ) -> mesh_store::Result<mesh_store::Versioned<mesh_core::Task>> {
        assert!(record.kind != "boom", "a bug in the engine task");
        self.0.inner.create(tenant, record).await
    }
    async fn get(
        &self,
        tenant: &str,
        id: uuid::Uuid,
    ) -> mesh_store::Result<Option<mesh_store::Versioned<mesh_core::Task>>> {
        self.0.inner.get(tenant, id).await
    }
    async fn list(
        &self,
        tenant: &str,
        query: &mesh_store::Query,
    ) -> mesh_store::Result<mesh_store::Page<mesh_core::Task>> {
        self.0.inner.list(tenant, query).await
    }
    async fn update(
        &self,
        tenant: &str,
        record: &mesh_core::Task,
        expected_version: u64,
    ) -> mesh_store::Result<mesh_store::Versioned<mesh_core::Task>> {
        use std::sync::atomic::Ordering::SeqCst;
        if record.status().is_terminal() && self.0.transient.swap(false, SeqCst) {
            return Err(mesh_store::StoreError::Backend {
                backend: "test",
                retryable: true,
                source: "the connection dropped".into(),
            });
        }
        if record.status().is_terminal() && self.0.conflict.swap(false, SeqCst) {
            let stored = self
                .0
                .inner
                .get(tenant, *record.id.as_uuid())
                .await?
                .unwrap();
            let mut elsewhere = stored.record;
            elsewhere
                .children
                .push(mesh_core::TaskId::from_uuid(SUB_TASK));
            let bumped = self
                .0
                .inner
                .update(tenant, &elsewhere, stored.version)
                .await?;
            return Err(mesh_store::StoreError::Conflict {
                expected: expected_version,
                actual: bumped.version,
            });
        }
        self.0.inner.update(tenant, record, expected_version).await
    }
    async fn delete(&self, tenant: &str, id: uuid::Uuid) -> mesh_store::Result<bool> {
        self.0.inner.delete(tenant, id).await
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
    type Definitions = <mesh_core::MemoryStores as mesh_core::Stores>::Definitions;
    type Runs = <mesh_core::MemoryStores as mesh_core::Stores>::Runs;
    type Checkpoints = <mesh_core::MemoryStores as mesh_core::Stores>::Checkpoints;
    type Messages = <mesh_core::MemoryStores as mesh_core::Stores>::Messages;
    fn definitions(&self) -> &Self::Definitions {
        self.memory.definitions()
    }
    fn runs(&self) -> &Self::Runs {
        self.memory.runs()
    }
    fn checkpoints(&self) -> &Self::Checkpoints {
        self.memory.checkpoints()
    }
    fn messages(&self) -> &Self::Messages {
        self.memory.messages()
    }
    type Documents = <mesh_core::MemoryStores as mesh_core::Stores>::Documents;
    fn documents(&self) -> &Self::Documents {
        self.memory.documents()
    }
    type Roles = <mesh_core::MemoryStores as mesh_core::Stores>::Roles;
    type Audit = <mesh_core::MemoryStores as mesh_core::Stores>::Audit;
    type AuditHeads = <mesh_core::MemoryStores as mesh_core::Stores>::AuditHeads;
    type ToolSources = <mesh_core::MemoryStores as mesh_core::Stores>::ToolSources;
    fn roles(&self) -> &Self::Roles {
        self.memory.roles()
    }
    fn audit(&self) -> &Self::Audit {
        self.memory.audit()
    }
    fn audit_heads(&self) -> &Self::AuditHeads {
        self.memory.audit_heads()
    }
    fn tool_sources(&self) -> &Self::ToolSources {
        self.memory.tool_sources()
    }
    type SharedDocs = <mesh_core::MemoryStores as mesh_core::Stores>::SharedDocs;
    type DocEdits = <mesh_core::MemoryStores as mesh_core::Stores>::DocEdits;
    fn shared_docs(&self) -> &Self::SharedDocs {
        self.memory.shared_docs()
    }
    fn doc_edits(&self) -> &Self::DocEdits {
        self.memory.doc_edits()
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

/// Hardening issue, item 6: a task's end was applied in memory before it was saved, so
/// a transient database error or a version conflict (a sub-task added from another
/// instance) dropped the result, left waiters hanging, and the task ran again.
#[tokio::test]
async fn hardening_6_a_result_survives_a_conflict_and_a_transient_error() {
    use std::sync::atomic::Ordering::SeqCst;
    let stores = BoobyStores::default();
    let traps = stores.tasks.0.clone();
    let engine = mesh_core::Engine::start(common::fast_config(), stores)
        .await
        .unwrap();
    let tenant = mesh_core::TenantId::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let _agent = engine
        .connect_local(tenant, Hello::new("local", ["work"]), move |task| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok(json!({"done": task.input})) }
        })
        .await
        .unwrap();
    traps.transient.store(true, SeqCst);
    traps.conflict.store(true, SeqCst);
    let task = engine
        .submit(tenant, TaskSpec::new("work", json!(7)))
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), engine.wait(tenant, task.id))
        .await
        .expect("the waiter is answered")
        .unwrap();
    assert_eq!(done.status(), TaskStatus::Completed);
    assert_eq!(done.output, Some(json!({"done": 7})));
    assert!(
        !traps.transient.load(SeqCst) && !traps.conflict.load(SeqCst),
        "both traps sprang"
    );
    let stored = engine.task(tenant, task.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), TaskStatus::Completed);
    assert_eq!(stored.output, Some(json!({"done": 7})));
    assert_eq!(
        stored.children,
        vec![mesh_core::TaskId::from_uuid(SUB_TASK)],
        "the other instance's change is kept"
    );
    assert_eq!(
        (stored.attempts, runs.load(Ordering::SeqCst)),
        (1, 1),
        "ran once"
    );
}

#[tokio::test]
async fn limits_set_out_of_range_on_the_fields_are_clamped_at_start() {
    let mut config = common::fast_config();
    config.shards = 0;
    config.writes_in_flight = 0;
    let m = mesh_with(config).await.unwrap();
    assert_eq!(m.engine.config().shards, 1);
    assert_eq!(m.engine.config().writes_in_flight, 1);
    let _agent = m.echo_agent("echo", &["echo"]);
    m.wait_for_agents(1).await;
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("echo", json!("hi")))
        .await
        .unwrap();
    assert_eq!(m.finished(task.id).await.status(), TaskStatus::Completed);
}
