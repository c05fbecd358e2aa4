//! The `--demo` fleet: a few agents with different capabilities, costs and speeds, a
//! stream of tasks, and a line printed for every routing decision and result.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesh_core::{Engine, Event, TaskSpec, TaskStatus, TenantId};
use mesh_protocol::Hello;
use mesh_protocol::ws::{AgentContext, ClientConfig, TaskError, TaskFuture, run_agent};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::watch;

struct DemoAgent {
    name: &'static str,
    capabilities: &'static [&'static str],
    cost_per_hour: f64,
    concurrency: u32,
    /// Milliseconds a task takes, at least and at most.
    work_ms: (u64, u64),
}

const FLEET: &[DemoAgent] = &[
    DemoAgent {
        name: "summarizer",
        capabilities: &["summarize", "english"],
        cost_per_hour: 0.5,
        concurrency: 4,
        work_ms: (80, 200),
    },
    DemoAgent {
        name: "translator",
        capabilities: &["translate", "english", "french"],
        cost_per_hour: 1.0,
        concurrency: 2,
        work_ms: (150, 400),
    },
    DemoAgent {
        name: "researcher",
        capabilities: &["research", "summarize"],
        cost_per_hour: 2.0,
        concurrency: 2,
        work_ms: (200, 500),
    },
    DemoAgent {
        name: "coder",
        capabilities: &["code", "review"],
        cost_per_hour: 3.0,
        concurrency: 1,
        work_ms: (300, 700),
    },
];

fn handler(
    agent: &'static DemoAgent,
) -> impl Fn(mesh_protocol::TaskAssign, AgentContext) -> TaskFuture + Send + Sync + 'static {
    move |task, ctx| {
        Box::pin(async move {
            let ms = rand::rng().random_range(agent.work_ms.0..=agent.work_ms.1);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if task.kind == "research" {
                // Research delegates a summary of what it found.
                let summary = ctx
                    .delegate(
                        "summarize",
                        json!({"text": format!("findings on {}", task.input["topic"])}),
                        vec![],
                    )
                    .await
                    .map_err(|e| TaskError::retryable(e.to_string()))?;
                return Ok(json!({"by": agent.name, "summary": summary.output}));
            }
            if rand::rng().random_bool(0.05) {
                return Err(TaskError::retryable("demo hiccup"));
            }
            Ok(json!({"by": agent.name, "kind": task.kind, "took_ms": ms}))
        })
    }
}

/// Starts the demo agents against `url` with `key`; they stop when `stop` turns true.
pub fn start_agents(
    url: &str,
    key: &str,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    FLEET
        .iter()
        .map(|agent| {
            let mut hello = Hello::new(agent.name, agent.capabilities.iter().copied());
            hello.max_concurrency = Some(agent.concurrency);
            hello.cost_per_hour = Some(agent.cost_per_hour);
            let config = ClientConfig::new(url).api_key(key);
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = run_agent(config, hello, handler(agent), stopped).await {
                    tracing::error!(agent = agent.name, error = %e, "demo agent stopped");
                }
            })
        })
        .collect()
}

fn random_task() -> TaskSpec {
    let mut rng = rand::rng();
    match rng.random_range(0..5) {
        0 => TaskSpec::new("summarize", json!({"text": "a long report"})).require(["english"]),
        1 => TaskSpec::new("translate", json!({"text": "bonjour", "to": "english"}))
            .require(["french"]),
        2 => TaskSpec::new("research", json!({"topic": "bees"})),
        3 => TaskSpec::new("code", json!({"issue": 42})),
        _ => TaskSpec::new("review", json!({"pr": 7})).priority(mesh_core::Priority::High),
    }
}

/// Submits a demo task every `every` until `stop`, and prints what is routed where.
pub async fn run_tasks(
    engine: Engine,
    tenant: TenantId,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut events = engine.subscribe();
    let mut submitted_at: HashMap<mesh_core::TaskId, (Instant, String)> = HashMap::new();
    let mut ticker = tokio::time::interval(every);
    loop {
        let stopped = async {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::select! {
            () = stopped => return,
            _ = ticker.tick() => {
                match engine.submit(tenant, random_task()).await {
                    Ok(task) => { submitted_at.insert(task.id, (Instant::now(), task.kind.clone())); }
                    Err(e) => tracing::warn!(error = %e, "demo submit failed"),
                }
            }
            event = events.recv() => match event {
                Ok(Event::TaskAssigned { task, agent_name, attempt, .. }) => {
                    let kind = submitted_at.get(&task).map_or("sub-task", |(_, k)| k.as_str());
                    let retry = if attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
                    println!("  routed    {} {:<10} → {agent_name}{retry}", short(task), kind);
                }
                Ok(Event::TaskStatus { task, status, .. }) if status.is_terminal() => {
                    let Some((started, kind)) = submitted_at.remove(&task) else { continue };
                    let result = match engine.task(tenant, task).await {
                        Ok(Some(t)) if status == TaskStatus::Completed => t.output.map_or(Value::Null, |o| o["by"].clone()).to_string(),
                        Ok(Some(t)) => t.error.unwrap_or_default(),
                        _ => String::new(),
                    };
                    println!("  {:<9} {} {:<10} in {:>4} ms  {result}", status.as_str(), short(task), kind, started.elapsed().as_millis());
                }
                _ => {}
            },
        }
    }
}

/// The random tail of a UUIDv7 (its head is a timestamp, the same for a burst).
fn short(id: mesh_core::TaskId) -> String {
    let s = id.to_string();
    s[s.len() - 8..].to_owned()
}
