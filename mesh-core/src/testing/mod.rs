//! Helpers for tests, benches and examples (feature `testing`): an engine and hub on
//! loopback, real WebSocket agents (echo, stoppable, any handler), fresh PostgreSQL
//! databases on the test server, the whole app served on loopback, and a local model
//! endpoint speaking Bedrock's and OpenAI's chat APIs ([`FakeModel`]). One copy for
//! every test suite of the workspace. Helpers panic on failure: they are for tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesh_protocol::ws::{
    AgentContext, Backoff, ClientConfig, ConnectionConfig, TaskError, TaskFuture, run_agent,
};
use mesh_protocol::{Hello, TaskAssign};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

mod docs_fuzz;
mod models;

pub use docs_fuzz::check_doc_updates;
pub use models::{FakeModel, Seen, Turn};

use crate::domain::{Scope, Task, TaskId, TaskStatus, TenantId};
use crate::engine::{Engine, EngineConfig, Event, MemoryStores, Stores};
use crate::hub::{Hub, HubConfig};
use crate::shared_docs::{DocLimits, SharedDocs};

/// An engine served by a hub on loopback, with a tenant and a key that may do
/// everything. The hub stops when it is dropped.
#[derive(Debug)]
pub struct Mesh {
    /// The engine.
    pub engine: Engine,
    /// The tenant of `key`.
    pub tenant: TenantId,
    /// An API key with the agent, write and read scopes.
    pub key: String,
    /// The hub's URL (`ws://…/ws`).
    pub url: String,
    /// The engine's events since the mesh started.
    pub events: broadcast::Receiver<Event>,
    /// The shared documents its hub serves.
    pub docs: SharedDocs,
    server: JoinHandle<()>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An engine configuration with short heartbeats, ticks and backoffs, so tests that
/// wait for them are quick.
pub fn fast_config() -> EngineConfig {
    EngineConfig::default()
        .heartbeat(Duration::from_millis(200), 3)
        .tick(Duration::from_millis(10))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// A mesh on `stores` with a new tenant and key.
pub async fn mesh_on<S: Stores>(config: EngineConfig, stores: S) -> Mesh {
    let engine = Engine::start(config, stores).await.unwrap();
    let tenant = TenantId::new();
    let scopes = vec![Scope::Agent, Scope::Write, Scope::Read];
    let (key, _) = engine
        .create_api_key(tenant, "test", scopes, None)
        .await
        .unwrap();
    serve(engine, tenant, key).await
}

/// A mesh on `stores` that already hold `key` for `tenant` (an engine restarted).
pub async fn mesh_with_key<S: Stores>(
    config: EngineConfig,
    stores: S,
    tenant: TenantId,
    key: String,
) -> Mesh {
    serve(Engine::start(config, stores).await.unwrap(), tenant, key).await
}

/// A mesh on memory stores with [`fast_config`].
pub async fn mesh() -> Mesh {
    mesh_on(fast_config(), MemoryStores::new()).await
}

async fn serve(engine: Engine, tenant: TenantId, key: String) -> Mesh {
    let docs = SharedDocs::new(&engine, DocLimits::default());
    let (url, server) = serve_hub_with(&engine, docs.clone()).await;
    Mesh {
        docs,
        events: engine.subscribe(),
        engine,
        tenant,
        key,
        url,
        server,
    }
}

/// Serves `engine`'s hub on loopback; returns its URL and the server task.
pub async fn serve_hub(engine: &Engine) -> (String, JoinHandle<()>) {
    serve_hub_with(engine, SharedDocs::new(engine, DocLimits::default())).await
}

/// Serves `engine`'s hub, with `docs`, on loopback; returns its URL and the server task.
pub async fn serve_hub_with(engine: &Engine, docs: SharedDocs) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let hub = Hub::new(engine.clone(), HubConfig::default()).with_docs(docs);
    (
        url,
        tokio::spawn(hub.serve(listener, std::future::pending())),
    )
}

impl Mesh {
    /// A client configuration for this mesh's hub and key, with quick retries.
    pub fn client(&self) -> ClientConfig {
        client_config(&self.url, &self.key)
            .connection(ConnectionConfig::default().ping_interval(Some(Duration::from_millis(100))))
    }

    /// Starts an agent whose handler is `f`; abort the handle to kill it.
    pub fn agent<F, Fut>(&self, name: &str, caps: &[&str], concurrency: u32, f: F) -> JoinHandle<()>
    where
        F: Fn(TaskAssign, AgentContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        agent_at(self.client(), name, caps, concurrency, f)
    }

    /// An agent that works on each task for a minute; the counter says how many of
    /// its tasks were stopped (their work dropped) before that.
    pub fn stoppable_agent(&self, name: &str, caps: &[&str]) -> (JoinHandle<()>, Arc<AtomicUsize>) {
        let stopped = Arc::new(AtomicUsize::new(0));
        let counter = stopped.clone();
        let agent = self.agent(name, caps, 1, move |_, _| {
            let counter = counter.clone();
            async move {
                struct Stopped(Arc<AtomicUsize>);
                impl Drop for Stopped {
                    fn drop(&mut self) {
                        self.0.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let _stopped = Stopped(counter);
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(serde_json::json!({}))
            }
        });
        (agent, stopped)
    }

    /// An agent that answers `{"by": name, "input": …}` at once.
    pub fn echo_agent(&self, name: &'static str, caps: &[&str]) -> JoinHandle<()> {
        echo_agent_with(self.client(), name, caps)
    }

    /// Waits until `n` agents are connected.
    pub async fn wait_for_agents(&self, n: usize) {
        wait_for_agents(&self.engine, self.tenant, n).await;
    }

    /// Waits for the next event matching `pred`.
    pub async fn next_event(&mut self, pred: impl Fn(&Event) -> bool) -> Event {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.events.recv().await {
                    Ok(e) if pred(&e) => return e,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
        .expect("event in time")
    }

    /// Waits (up to 15 s) until the task is finished.
    pub async fn finished(&self, id: TaskId) -> Task {
        tokio::time::timeout(Duration::from_secs(15), self.engine.wait(self.tenant, id))
            .await
            .expect("task finished in time")
            .unwrap()
    }
}

/// Waits (up to 5 s) until `tenant` has `n` active agents on `engine`.
pub async fn wait_for_agents(engine: &Engine, tenant: TenantId, n: usize) {
    for _ in 0..500 {
        if engine.agents(tenant).await.unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} agents did not connect");
}

/// The name an echo agent wrote into a completed task's output.
pub fn completed_by(task: &Task) -> &str {
    assert_eq!(task.status(), TaskStatus::Completed, "{task:?}");
    task.output
        .as_ref()
        .and_then(|o| o["by"].as_str())
        .unwrap_or("")
}

/// A client of the hub at `url` with `key`, retrying quickly.
pub fn client_config(url: &str, key: &str) -> ClientConfig {
    ClientConfig::new(url).api_key(key).retry(
        Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        50,
    )
}

/// Starts an agent through `config` whose handler is `f`.
pub fn agent_at<F, Fut>(
    config: ClientConfig,
    name: &str,
    caps: &[&str],
    concurrency: u32,
    f: F,
) -> JoinHandle<()>
where
    F: Fn(TaskAssign, AgentContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    let mut hello = Hello::new(name, caps.iter().copied());
    hello.max_concurrency = Some(concurrency);
    agent_with_hello(config, hello, f)
}

/// Starts an agent through `config` that says `hello` and whose handler is `f`.
pub fn agent_with_hello<F, Fut>(config: ClientConfig, hello: Hello, f: F) -> JoinHandle<()>
where
    F: Fn(TaskAssign, AgentContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    let f = Arc::new(f);
    tokio::spawn(async move {
        let handler =
            move |task: TaskAssign, ctx: AgentContext| -> TaskFuture { Box::pin(f(task, ctx)) };
        let _ = run_agent(config, hello, handler, std::future::pending()).await;
    })
}

/// An agent through `config` that answers `{"by": name, "input": …}` at once.
pub fn echo_agent_with(config: ClientConfig, name: &'static str, caps: &[&str]) -> JoinHandle<()> {
    agent_at(config, name, caps, 4, move |task, _| async move {
        Ok(serde_json::json!({"by": name, "input": task.input}))
    })
}

/// An echo agent (see [`echo_agent_with`]) against the hub at `url`.
pub fn echo_agent_at(url: &str, key: &str, name: &'static str, caps: &[&str]) -> JoinHandle<()> {
    echo_agent_with(client_config(url, key), name, caps)
}

/// The whole app (every surface the features allow) for `services` on loopback;
/// returns its address and the server task.
#[cfg(feature = "http")]
pub async fn serve_app(
    services: crate::services::Services,
    config: crate::app::AppConfig,
) -> (std::net::SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = crate::app::router(services, config)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, server)
}

/// The Python of the test virtualenv (`$MESH_TEST_DIR/venv`, made by
/// `scripts/test.sh` with the MCP SDK and `websockets` in it); `None` outside the test
/// command, and a panic inside it (`MESH_TEST_SERVICES`) when missing.
pub fn test_python() -> Option<std::path::PathBuf> {
    match std::env::var_os("MESH_TEST_DIR") {
        Some(dir) => Some(std::path::Path::new(&dir).join("venv/bin/python")),
        None if std::env::var_os("MESH_TEST_SERVICES").is_some() => {
            panic!("MESH_TEST_DIR is missing")
        }
        None => {
            eprintln!("skipped: the test virtualenv is not set up (scripts/test.sh does it)");
            None
        }
    }
}

/// The test Redis (`MESH_TEST_REDIS_URL`, started by `scripts/test.sh`); `None`
/// outside the test command, and a panic inside it (`MESH_TEST_SERVICES`) when missing.
pub fn test_redis_url() -> Option<String> {
    test_service("MESH_TEST_REDIS_URL")
}

/// The test server's URL (`MESH_TEST_DATABASE_URL`, set by `scripts/test.sh`); `None`
/// outside the test command, and a panic inside it (`MESH_TEST_SERVICES`) when missing.
pub fn test_database_url() -> Option<String> {
    test_service("MESH_TEST_DATABASE_URL")
}

/// A test service's address from `var`: required inside the test command.
fn test_service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("MESH_TEST_SERVICES").is_some() => panic!("{var} is missing"),
        _ => {
            eprintln!("skipped: {var} is not set (scripts/test.sh provisions it)");
            None
        }
    }
}

/// A new, empty database on the test server, so tests never share engine state;
/// `None` outside the test command.
#[cfg(feature = "postgres")]
pub async fn fresh_database() -> Option<String> {
    let base = test_database_url()?;
    Some(fresh_database_on(&base).await)
}

/// A new, empty database on the server of `base`; returns its URL.
#[cfg(feature = "postgres")]
pub async fn fresh_database_on(base: &str) -> String {
    let name = format!("mesh_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(base)
        .await
        .expect("connect to the test server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("a database URL");
    format!("{prefix}/{name}")
}

/// The engine's stores on the database at `url`.
#[cfg(feature = "postgres")]
pub async fn pg_stores(url: &str) -> crate::engine::PgStores {
    let store = mesh_store::PgStore::connect(url, 8)
        .await
        .expect("connect to the fresh database");
    crate::engine::PgStores::new(store)
        .await
        .expect("engine repositories")
}
