//! The `dbos` crate running the workflow benchmark's shape: a three-step workflow whose
//! steps do trivial work, started N times by C concurrent starters, on the PostgreSQL
//! in `DATABASE_URL`. Prints the same table row as Mesh's `workflow` bench.
//!
//! `DATABASE_URL=postgres://… cargo run --release -- --runs 2000 --starters 32`

use std::time::{Duration, Instant};

use dbos::{Config, DBOS, step};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn three(n: u64) -> dbos::Result<u64> {
    let a = step("one", || async move { Ok::<u64, dbos::Error>(n + 1) }).await?;
    let b = step("two", || async move { Ok::<u64, dbos::Error>(a + 1) }).await?;
    step("three", || async move { Ok::<u64, dbos::Error>(b + 1) }).await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = arg("--runs", 2000);
    let starters = arg("--starters", 32);
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let config = Config {
        app_version: Some("bench".into()),
        max_connections: 40,
        ..Config::new("mesh_peer_bench", url)
    };
    let dbos = DBOS::new(config);
    let workflow = dbos.register_workflow("three", three).unwrap();
    dbos.launch().await.expect("launch");
    let per = runs / starters;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..starters {
        let workflow = workflow.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per);
            for i in 0..per {
                let t0 = Instant::now();
                let out = workflow.run((s * per + i) as u64).await.expect("a run");
                assert_eq!(out, (s * per + i) as u64 + 3);
                latencies.push(t0.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "| dbos 0.5 (PostgreSQL) | {} | {:.0} | {:.0} | {:.2} ms | {:.2} ms |",
        latencies.len(),
        per_second,
        per_second * 3.0,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
    dbos.shutdown().await;
}
