//! A hub on loopback with real WebSocket agents, for the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesh_core::hub::{Hub, HubConfig};
use mesh_core::{Engine, EngineConfig, Event, Scope, Stores, Task, TaskId, TaskStatus, TenantId};
use mesh_protocol::ws::{
    AgentContext, Backoff, ClientConfig, ConnectionConfig, TaskError, TaskFuture, run_agent,
};
use mesh_protocol::{Hello, TaskAssign};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub struct Mesh {
    pub engine: Engine,
    pub tenant: TenantId,
    pub key: String,
    pub url: String,
    pub events: broadcast::Receiver<Event>,
    server: JoinHandle<()>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn fast_config() -> EngineConfig {
    EngineConfig::default()
        .heartbeat(Duration::from_millis(200), 3)
        .tick(Duration::from_millis(10))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

pub async fn mesh_on<S: Stores>(config: EngineConfig, stores: S) -> Mesh {
    let engine = Engine::start(config, stores).await.unwrap();
    let tenant = TenantId::new();
    let (key, _) = engine
        .create_api_key(
            tenant,
            "test",
            vec![Scope::Agent, Scope::Write, Scope::Read],
            None,
        )
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

async fn serve(engine: Engine, tenant: TenantId, key: String) -> Mesh {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let events = engine.subscribe();
    let hub = Hub::new(engine.clone(), HubConfig::default());
    let server = tokio::spawn(hub.serve(listener, std::future::pending()));
    Mesh {
        engine,
        tenant,
        key,
        url,
        events,
        server,
    }
}

pub async fn mesh() -> Mesh {
    mesh_on(fast_config(), mesh_core::MemoryStores::new()).await
}

impl Mesh {
    pub fn client(&self) -> ClientConfig {
        ClientConfig::new(self.url.clone())
            .api_key(self.key.clone())
            .retry(
                Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
                50,
            )
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
        self.agent(name, caps, 4, move |task, _| async move {
            Ok(serde_json::json!({"by": name, "input": task.input}))
        })
    }

    /// Waits until `n` agents are connected.
    pub async fn wait_for_agents(&self, n: usize) {
        for _ in 0..500 {
            if self.engine.agents(self.tenant).await.unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} agents did not connect");
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

    pub async fn finished(&self, id: TaskId) -> Task {
        tokio::time::timeout(Duration::from_secs(15), self.engine.wait(self.tenant, id))
            .await
            .expect("task finished in time")
            .unwrap()
    }
}

pub fn completed_by(task: &Task) -> &str {
    assert_eq!(task.status(), TaskStatus::Completed, "{task:?}");
    task.output
        .as_ref()
        .and_then(|o| o["by"].as_str())
        .unwrap_or("")
}

/// A new, empty database on the test server (so tests never share engine state);
/// `None` outside the test command.
#[cfg(feature = "postgres")]
pub async fn fresh_database() -> Option<String> {
    let base = match std::env::var("MESH_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("MESH_TEST_SERVICES").is_some() => {
            panic!("MESH_TEST_DATABASE_URL is missing")
        }
        _ => {
            eprintln!("skipped: MESH_TEST_DATABASE_URL is not set (scripts/test.sh provisions it)");
            return None;
        }
    };
    let name = format!("mesh_core_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to the test server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("a database URL");
    Some(format!("{prefix}/{name}"))
}

#[cfg(feature = "postgres")]
pub async fn pg_stores(url: &str) -> mesh_core::PgStores {
    let store = mesh_store::PgStore::connect(url, 8)
        .await
        .expect("connect to the fresh database");
    mesh_core::PgStores::new(store)
        .await
        .expect("engine repositories")
}

/// The full router (REST, MCP, hub) for `services` on loopback; returns its address.
#[cfg(feature = "rest")]
pub async fn serve_api(
    services: mesh_core::services::Services,
    config: mesh_core::api::ApiConfig,
) -> (std::net::SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = mesh_core::api::router(services, config);
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, server)
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
    let f = Arc::new(f);
    tokio::spawn(async move {
        let handler =
            move |task: TaskAssign, ctx: AgentContext| -> TaskFuture { Box::pin(f(task, ctx)) };
        let _ = run_agent(config, hello, handler, std::future::pending()).await;
    })
}

/// Starts an agent named `name` with `caps` against the hub at `url` that answers
/// `{"by": name, "input": …}`.
pub fn echo_agent_at(url: &str, key: &str, name: &'static str, caps: &[&str]) -> JoinHandle<()> {
    let config = ClientConfig::new(url).api_key(key).retry(
        Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        50,
    );
    agent_at(config, name, caps, 4, move |task, _| async move {
        Ok(serde_json::json!({"by": name, "input": task.input}))
    })
}
