//! Durable workflow throughput: a three-step workflow whose steps do trivial work (an
//! in-process agent echoes its input), started N times by C concurrent starters, on
//! each store — memory, SQLite (a file, every commit flushed) and PostgreSQL (when
//! `MESH_TEST_DATABASE_URL` is set, as under `scripts/test.sh`). Prints workflows/s,
//! checkpointed steps/s and start-to-finish latency (p50, p99).
//!
//! `cargo bench -p mesh-benches --bench workflow` (`-- --runs N --starters C` to change
//! the load; `--only memory|sqlite|postgres`; `--steps tool` for steps that call an
//! in-process tool instead of routing a task to an agent, as a peer's step functions do)

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesh_core::protocol::Hello;
use mesh_core::tools::ToolRegistry;
use mesh_core::workflow::{StartRequest, WorkflowConfig, WorkflowDefinition, Workflows};
use mesh_core::{Engine, EngineConfig, Event, MemoryStores, Stores, TenantId, WorkflowId};
use serde_json::json;
use tokio::sync::oneshot;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(name: &str, default: usize) -> usize {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

const STEPS: usize = 3;

/// Which kind the three steps are: engine tasks routed to an agent, or calls of an
/// in-process tool (what a peer's step function is).
#[derive(Clone, Copy)]
enum Kind {
    Task,
    Tool,
}

fn definition(kind: Kind) -> WorkflowDefinition {
    let step = |name: &str, next: Option<&str>| {
        let action = match kind {
            Kind::Task => json!({"task": {"kind": "noop"}}),
            Kind::Tool => json!({"tool": {"name": "noop", "action": "echo"}}),
        };
        let mut step = json!({"name": name, "input": {"step": name}, "output": "last"});
        for (k, v) in action.as_object().unwrap() {
            step[k] = v.clone();
        }
        if let Some(next) = next {
            step["next"] = json!(next);
        }
        step
    };
    serde_json::from_value(json!({
        "name": "three", "state": {"last": {}},
        "steps": [step("one", Some("two")), step("two", Some("three")), step("three", None)]
    }))
    .unwrap()
}

struct Figures {
    store: &'static str,
    runs: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn print(&mut self) {
        self.latencies.sort_unstable();
        let at = |q: f64| self.latencies[((self.latencies.len() as f64 - 1.0) * q) as usize];
        let per_second = self.runs as f64 / self.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} ms | {:.2} ms |",
            self.store,
            self.runs,
            per_second,
            per_second * STEPS as f64,
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// A tool whose one action returns its input.
struct Noop;

impl mesh_core::tools::ToolAdapter for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn description(&self) -> &str {
        "returns its input"
    }
    fn capabilities(&self) -> Vec<String> {
        Vec::new()
    }
    fn actions(&self) -> Vec<mesh_core::tools::ToolAction> {
        vec![mesh_core::tools::ToolAction::new(
            "echo",
            "its input",
            json!({}),
        )]
    }
    fn execute<'a>(
        &'a self,
        _: &'a str,
        input: serde_json::Value,
    ) -> mesh_embed::BoxFuture<'a, Result<serde_json::Value, mesh_core::tools::ToolError>> {
        Box::pin(async move { Ok(input) })
    }
}

async fn measure<S: Stores>(
    store: &'static str,
    stores: S,
    kind: Kind,
    runs: usize,
    starters: usize,
) -> Figures {
    let config = EngineConfig::default();
    let engine = Engine::start(config, stores).await.unwrap();
    let tenant = TenantId::new();
    let mut hello = Hello::new("noop", ["noop"]);
    hello.max_concurrency = Some(4096);
    let _agent = engine
        .connect_local(tenant, hello, |task| async move { Ok(task.input) })
        .await
        .unwrap();
    let mut tools = ToolRegistry::new();
    tools.register(Noop);
    let workflows = Workflows::start(engine.clone(), Arc::new(tools), WorkflowConfig::default())
        .await
        .unwrap();
    workflows.register(tenant, definition(kind)).await.unwrap();

    // One listener hands each run's `finished` to whoever waits for it.
    let waiting: Arc<Mutex<HashMap<WorkflowId, oneshot::Sender<()>>>> = Arc::default();
    let mut events = engine.subscribe();
    let listener = {
        let waiting = waiting.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let Event::WorkflowUpdate { run, status, .. } = event
                    && status.is_finished()
                    && let Some(tx) = waiting.lock().unwrap().remove(&run)
                {
                    let _ = tx.send(());
                }
            }
        })
    };
    let started = Instant::now();
    let per_starter = runs / starters;
    let tasks: Vec<_> = (0..starters)
        .map(|_| {
            let workflows = workflows.clone();
            let waiting = waiting.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_starter);
                for _ in 0..per_starter {
                    let id = WorkflowId::new();
                    let (tx, rx) = oneshot::channel();
                    waiting.lock().unwrap().insert(id, tx);
                    let t0 = Instant::now();
                    workflows
                        .start_run(tenant, StartRequest::new("three", json!({})).id(id))
                        .await
                        .unwrap();
                    tokio::time::timeout(Duration::from_secs(60), rx)
                        .await
                        .expect("a run did not finish in a minute")
                        .unwrap();
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(runs);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    listener.abort();
    engine.shutdown().await;
    Figures {
        store,
        runs: per_starter * starters,
        elapsed,
        latencies,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let starters = number("--starters", 32);
    let only = arg("--only");
    let wanted = |store: &str| only.as_deref().is_none_or(|o| o == store);
    let kind = match arg("--steps").as_deref() {
        Some("tool") => Kind::Tool,
        _ => Kind::Task,
    };
    runtime.block_on(async {
        println!("| store | runs | workflows/s | steps/s | p50 | p99 |");
        println!("|---|---|---|---|---|---|");
        if wanted("memory") {
            measure(
                "memory",
                MemoryStores::new(),
                kind,
                number("--runs", 20_000),
                starters,
            )
            .await
            .print();
        }
        if wanted("sqlite") {
            let path = std::env::temp_dir().join(format!(
                "mesh-wf-bench-{}.db",
                uuid::Uuid::now_v7().simple()
            ));
            let store = mesh_store::SqliteStore::open(&path).await.unwrap();
            let stores = mesh_core::SqliteStores::new(store).await.unwrap();
            measure(
                "SQLite (fsync per commit)",
                stores,
                kind,
                number("--runs", 2_000),
                starters,
            )
            .await
            .print();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        if wanted("postgres")
            && let Some(url) = mesh_core::testing::fresh_database().await
        {
            let stores = mesh_core::testing::pg_stores(&url).await;
            measure(
                "PostgreSQL",
                stores,
                kind,
                number("--runs", 2_000),
                starters,
            )
            .await
            .print();
        }
    });
}
