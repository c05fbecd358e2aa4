//! `--instances N` (with `--store postgres`): N clustered engines on one fresh
//! database, each serving its own hub; the agents spread over them (agent i on
//! instance i mod N) and one submitter per instance, each keeping its share of the
//! window in flight. Reports the total rate, the latency over all submitters, the share
//! of tasks run by an agent on another instance than the one they were submitted to,
//! and how many tasks ran more than once (counted by the agents).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use mesh_core::{Engine, EngineConfig, Scope, TenantId};
use mesh_protocol::Hello;
use mesh_protocol::ws::{AgentContext, ClientConfig, TaskFuture, run_agent};
use serde_json::json;

use crate::{Load, Submitted, print_rate, submit_load};

pub(crate) async fn throughput(instances: usize, agents: usize, tasks: usize, window: usize) {
    let url = mesh_core::testing::fresh_database()
        .await
        .expect("--instances needs --store postgres and MESH_TEST_DATABASE_URL");
    let mut engines = Vec::with_capacity(instances);
    for _ in 0..instances {
        let stores = mesh_core::testing::pg_stores(&url).await;
        let config = EngineConfig::default().clustered(true);
        engines.push(Engine::start(config, stores).await.unwrap());
    }
    let tenant = TenantId::new();
    let (key, _) = engines[0]
        .create_api_key(tenant, "load", Scope::ALL.to_vec(), None)
        .await
        .unwrap();
    let mut hubs = Vec::with_capacity(instances);
    for engine in &engines {
        hubs.push(mesh_core::testing::serve_hub(engine).await.0);
    }

    let per = tasks / instances;
    let warmup = (per / 10).max(1);
    // Runs per task, by its input `n` (each submitter numbers from its own offset).
    let runs: Arc<Vec<AtomicU32>> = Arc::new(
        (0..instances * (per + warmup))
            .map(|_| AtomicU32::new(0))
            .collect(),
    );
    let cross = Arc::new(AtomicUsize::new(0));
    for i in 0..agents {
        let at = i % instances;
        let mut hello = Hello::new(format!("worker-{i}"), ["work"]);
        hello.max_concurrency = Some(64);
        let config = ClientConfig::new(hubs[at].clone()).api_key(key.clone());
        let (runs, cross) = (runs.clone(), cross.clone());
        let handler = move |task: mesh_protocol::TaskAssign, _: AgentContext| -> TaskFuture {
            let n = task.input["n"].as_u64().unwrap() as usize;
            runs[n].fetch_add(1, Ordering::Relaxed);
            if task.input["from"].as_u64() != Some(at as u64) {
                cross.fetch_add(1, Ordering::Relaxed);
            }
            Box::pin(async move { Ok(json!({"n": n})) })
        };
        tokio::spawn(run_agent(config, hello, handler, std::future::pending()));
    }
    while engines[0].agents(tenant).await.unwrap().len() < agents {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(instances + 1));
    let submitters: Vec<_> = (0..instances)
        .map(|from| {
            let load = Load {
                warmup,
                tasks: per,
                window: (window / instances).max(1),
                first: from * (per + warmup),
                from,
            };
            tokio::spawn(submit_load(
                hubs[from].clone(),
                key.clone(),
                load,
                barrier.clone(),
            ))
        })
        .collect();
    barrier.wait().await;
    let cross_before = cross.load(Ordering::Relaxed);
    let (mut latencies, mut failed, mut elapsed) = (Vec::new(), 0, Duration::ZERO);
    for submitter in submitters {
        let Submitted {
            latencies: l,
            failed: f,
            elapsed: e,
        } = submitter.await.unwrap();
        latencies.extend(l);
        failed += f;
        elapsed = elapsed.max(e);
    }
    let measured = latencies.len();
    let cross = cross.load(Ordering::Relaxed) - cross_before;
    let twice = runs
        .iter()
        .filter(|r| r.load(Ordering::Relaxed) > 1)
        .count();
    println!(
        "hub load, {instances} clustered instances: {agents} agents, {measured} tasks (after {} warm-up), window {window}, {failed} not completed",
        warmup * instances
    );
    print_rate(&mut latencies, elapsed);
    println!(
        "  {:.0} % run by an agent on another instance; {twice} tasks ran more than once",
        cross as f64 / measured as f64 * 100.0
    );
    for engine in &engines {
        engine.shutdown().await;
    }
}
