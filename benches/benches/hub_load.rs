//! Load on the agent hub: 100 agents on loopback with tasks submitted through the hub
//! (`task_submit`) as fast as they complete — tasks per second, submit-to-complete
//! latency and the engine task's busy time per task — and 10,000 idle agent
//! connections with the memory each costs the server.
//!
//! `cargo bench -p mesh-benches --bench hub_load`
//! (`-- --tasks N --window W --agents A --idle C` to change the load; `--metrics` records
//! Prometheus metrics as the services do, to measure what that costs; `--store sqlite`
//! or `--store postgres` runs the engine on those stores instead of memory — PostgreSQL
//! needs `MESH_TEST_DATABASE_URL`, each run gets a fresh database; `--instances N` with
//! `--store postgres` runs N clustered engines on one database (`cluster.rs`, with the
//! share of cross-instance routing and tasks run twice); `--traces R` has the
//! submitter send a `traceparent` with every task, sampled with probability R, and
//! the process export its spans over OTLP/HTTP to a receiver in it, as a traced
//! service does); `--tenants T` spreads the agents and the load over T tenants (one
//! submitter each) and `--shards S` splits the engine's tenants over S engine tasks
//! (`EngineConfig::shards`), to measure how one instance scales with cores; `--writes
//! W` sets the batches of task writes in flight, `EngineConfig::writes_in_flight`)

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "hub_load/cluster.rs"]
mod cluster;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesh_core::{Engine, Scope, TenantId};
use mesh_protocol::ws::{
    AgentContext, ClientConfig, ConnectionConfig, Incoming, TaskFuture, connect, run_agent,
};
use mesh_protocol::{Hello, Message, TaskAssign, TaskStatus, TaskSubmit};
use serde_json::json;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The allocator the service binaries use (`examples/src/alloc.rs`), with transparent
/// huge pages off as they turn them off: the harness measures the engine as they run it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn main() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--hold-clients") {
        // Child mode: open idle agent connections and keep them.
        let (n, url, key) = (
            args[i + 1].parse().unwrap(),
            args[i + 2].clone(),
            args[i + 3].clone(),
        );
        return tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(hold_idle(n, url, key));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Idle connections first, in a fresh process, so freed memory from the load
        // run cannot hide what the connections cost.
        idle_connections(arg("--idle", 10_000)).await;
        for window in [arg("--window", 64), 512] {
            let (agents, tasks) = (arg("--agents", 100), arg("--tasks", 50_000));
            match arg("--instances", 1) {
                1 => throughput(agents, tasks, window).await,
                n => cluster::throughput(n, agents, tasks, window).await,
            }
        }
    });
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&sqlite_prefix())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// This process's SQLite files in the temp directory (removed when it ends).
fn sqlite_prefix() -> String {
    format!("mesh-hub-bench-{}-", std::process::id())
}

/// The engine on the stores `--store` names (memory by default).
async fn engine() -> Engine {
    let args: Vec<String> = std::env::args().collect();
    let store = args
        .iter()
        .position(|a| a == "--store")
        .and_then(|i| args.get(i + 1))
        .map_or("memory", String::as_str);
    let config = mesh_core::EngineConfig::default()
        .shards(arg("--shards", 1))
        .writes_in_flight(arg("--writes", 1));
    match store {
        "memory" => Engine::start(config, mesh_core::MemoryStores::new())
            .await
            .unwrap(),
        "sqlite" => {
            let path = std::env::temp_dir().join(format!(
                "{}{}.db",
                sqlite_prefix(),
                uuid::Uuid::now_v7().simple()
            ));
            let store = mesh_store::SqliteStore::open(&path).await.unwrap();
            let stores = mesh_core::SqliteStores::new(store).await.unwrap();
            Engine::start(config, stores).await.unwrap()
        }
        "postgres" => {
            let url = mesh_core::testing::fresh_database()
                .await
                .expect("--store postgres needs MESH_TEST_DATABASE_URL");
            let stores = mesh_core::testing::pg_stores(&url).await;
            Engine::start(config, stores).await.unwrap()
        }
        other => panic!("--store {other}: memory, sqlite or postgres"),
    }
}

/// Bytes of spans the OTLP receiver got (with `--traces`).
static EXPORTED: tokio::sync::OnceCell<std::sync::Arc<std::sync::atomic::AtomicU64>> =
    tokio::sync::OnceCell::const_new();

/// `--traces R`: the sampling probability of the submitter's traces.
fn traces_ratio() -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--traces")?;
    Some(
        args.get(i + 1)?
            .parse()
            .expect("--traces takes a probability"),
    )
}

/// Spans exported over OTLP/HTTP, as the service binaries do, to a receiver in this
/// process that reads each request and drops it; how many bytes it received.
async fn export_traces() -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = received.clone();
    let sink = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            counter.fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, sink).into_future());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    // As the binaries install it: spans at info and above (`MESH_TRACE_FILTER`).
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("hub_load"))
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry().with(layer).init();
    std::mem::forget(provider); // exports for the rest of the process
    received
}

async fn start() -> (Engine, TenantId, String, String) {
    if traces_ratio().is_some() {
        EXPORTED.get_or_init(export_traces).await;
    }
    let engine = engine().await;
    if std::env::args().any(|a| a == "--metrics") {
        // What the service binaries do: the Prometheus recorder, and the engine's events
        // recorded as metrics (the transport's counters then record too).
        mesh_core::http::metrics::prometheus().expect("the recorder installs");
        mesh_core::observe::record(&engine);
    }
    let tenant = TenantId::new();
    let (key, _) = engine
        .create_api_key(tenant, "load", Scope::ALL.to_vec(), None)
        .await
        .unwrap();
    let (url, _server) = mesh_core::testing::serve_hub(&engine).await;
    (engine, tenant, key, url)
}

async fn throughput(agents: usize, tasks: usize, window: usize) {
    let (engine, tenant, key, url) = start().await;
    // `--tenants T`: the first tenant and T - 1 more, agents and load spread evenly,
    // and the tenants over the engine tasks (as many random tenants spread).
    let shards = engine.busy_times().len();
    let first_shard = engine.shard_of(tenant);
    let mut tenants = vec![(tenant, key)];
    for n in 1..arg("--tenants", 1).max(1) {
        let tenant = std::iter::repeat_with(TenantId::new)
            .find(|t| engine.shard_of(*t) == (first_shard + n) % shards)
            .unwrap();
        let (key, _) = engine
            .create_api_key(tenant, "load", Scope::ALL.to_vec(), None)
            .await
            .unwrap();
        tenants.push((tenant, key));
    }
    for i in 0..agents {
        let mut hello = Hello::new(format!("worker-{i}"), ["work"]);
        hello.max_concurrency = Some(64);
        let key = &tenants[i % tenants.len()].1;
        let config = ClientConfig::new(url.clone()).api_key(key.clone());
        let handler = |task: TaskAssign, _: AgentContext| -> TaskFuture {
            Box::pin(async move { Ok(json!({"n": task.input["n"]})) })
        };
        tokio::spawn(run_agent(config, hello, handler, std::future::pending()));
    }
    for (n, (tenant, _)) in tenants.iter().enumerate() {
        let expected = agents / tenants.len() + usize::from(n < agents % tenants.len());
        while engine.agents(*tenant).await.unwrap().len() < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tenants.len() + 1));
    let share = tasks / tenants.len();
    let submitters: Vec<_> = tenants
        .iter()
        .enumerate()
        .map(|(n, (_, key))| {
            let load = Load {
                warmup: (share / 10).max(1),
                tasks: share,
                window: (window / tenants.len()).max(1),
                first: n * share,
                from: 0,
            };
            tokio::spawn(submit_load(url.clone(), key.clone(), load, barrier.clone()))
        })
        .collect();
    barrier.wait().await;
    let busy_before = engine.busy_time();
    let cpu_before = engine.cpu_times();
    let (mut latencies, mut failed, mut elapsed) = (Vec::new(), 0, Duration::ZERO);
    for submitter in submitters {
        let done = submitter.await.unwrap();
        latencies.extend(done.latencies);
        failed += done.failed;
        elapsed = elapsed.max(done.elapsed);
    }
    let busy = engine.busy_time() - busy_before;
    let cpu: Option<Vec<Duration>> = engine
        .cpu_times()
        .zip(cpu_before)
        .map(|(after, before)| after.iter().zip(before).map(|(a, b)| *a - b).collect());
    let measured = share * tenants.len();
    println!(
        "hub load: {agents} agents, {measured} tasks (after {} warm-up), window {window}, {} tenants on {} engine tasks, {failed} not completed",
        (share / 10).max(1) * tenants.len(),
        tenants.len(),
        engine.busy_times().len()
    );
    print_rate(&mut latencies, elapsed);
    println!(
        "  engine tasks busy {:.1} µs per task in all ({:.0} % of the time)",
        busy.as_secs_f64() * 1e6 / measured as f64,
        busy.as_secs_f64() / elapsed.as_secs_f64() * 100.0
    );
    if let Some(cpu) = cpu {
        let per_task = |d: &Duration| d.as_secs_f64() * 1e6 / measured as f64;
        let busiest = cpu.iter().map(per_task).fold(0.0, f64::max);
        let each: Vec<String> = cpu.iter().map(|d| format!("{:.1}", per_task(d))).collect();
        // The busiest engine task bounds the instance: one core each, at most
        // 1 s / its CPU per task.
        println!(
            "  engine task CPU per task: busiest {busiest:.1} µs (each: {} µs; ceiling {:.0}k tasks/s)",
            each.join(", "),
            1e3 / busiest
        );
    }
    if let Some(bytes) = EXPORTED.get() {
        let bytes = bytes.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "  traces: {:.0} KiB of spans exported over OTLP so far",
            bytes as f64 / 1024.0
        );
    }
    engine.shutdown().await;
}

/// Prints the rate and the submit-to-complete latency of the tasks measured in
/// `elapsed`.
fn print_rate(latencies: &mut [Duration], elapsed: Duration) {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "  {:.0} tasks/s; submit-to-complete p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies.last().unwrap()
    );
}

/// One submitter's share of the load: `tasks` measured after `warmup`, `window` in
/// flight, inputs numbered from `first`, marked as sent through instance `from`.
struct Load {
    warmup: usize,
    tasks: usize,
    window: usize,
    first: usize,
    from: usize,
}

/// What one submitter measured.
struct Submitted {
    latencies: Vec<Duration>,
    failed: usize,
    elapsed: Duration,
}

/// Submits `load` over the hub at `url` as one client keeping `window` tasks in flight;
/// latency is from sending `task_submit` to receiving the final `task_update`. The
/// clock starts when every party of `barrier` has finished its warm-up.
async fn submit_load(
    url: String,
    key: String,
    load: Load,
    barrier: std::sync::Arc<tokio::sync::Barrier>,
) -> Submitted {
    let Load {
        warmup,
        tasks,
        window,
        first,
        from,
    } = load;
    let config = ClientConfig::new(url.clone())
        .api_key(key.clone())
        .connection(ConnectionConfig::default().send_queue(window * 4));
    let mut client = connect(&config).await.unwrap();
    client
        .send(Hello::new("submitter", Vec::<String>::new()))
        .await
        .unwrap();
    let Some(Ok(Incoming::Message(Message::Welcome(_)))) = client.recv().await else {
        panic!("no welcome")
    };
    let sender = client.sender();
    // Made before the clock starts: the callers' tracing is not the hub's cost.
    let traceparents: Vec<String> = traces_ratio()
        .map(|ratio| (0..1024).map(|_| traceparent(ratio)).collect())
        .unwrap_or_default();
    let total = tasks + warmup;
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(window * 2);
    let mut request_of: HashMap<uuid::Uuid, String> = HashMap::with_capacity(window * 2);
    let mut latencies: Vec<Duration> = Vec::with_capacity(tasks);
    let (mut sent, mut done, mut failed) = (0usize, 0usize, 0usize);
    let mut started = Instant::now();
    while done < total {
        while sent < total && sent - done < window {
            let id = sent.to_string();
            sent_at.insert(id.clone(), Instant::now());
            let input = json!({"n": first + sent, "from": from});
            let mut submit = TaskSubmit::new(id, "work", input);
            submit.traceparent = traceparents.get(sent % 1024).cloned();
            sender.send(submit).await.unwrap();
            sent += 1;
        }
        match client.recv().await {
            Some(Ok(Incoming::Message(Message::TaskSubmitted(s)))) => {
                request_of.insert(s.task_id, s.request_id);
            }
            Some(Ok(Incoming::Message(Message::TaskUpdate(u)))) => {
                let request = request_of
                    .remove(&u.task_id)
                    .expect("submitted before it finished");
                let t0 = sent_at.remove(&request).unwrap();
                if u.status != TaskStatus::Completed {
                    failed += 1;
                }
                done += 1;
                if done == warmup {
                    barrier.wait().await;
                    started = Instant::now();
                } else if done > warmup {
                    latencies.push(t0.elapsed());
                }
            }
            Some(Ok(_)) => {}
            other => panic!("submitter connection ended: {other:?}"),
        }
    }
    Submitted {
        latencies,
        failed,
        elapsed: started.elapsed(),
    }
}

/// A new trace's `traceparent`, sampled with probability `ratio` (as a caller that
/// samples its traces sends it: unsampled traces are propagated too).
fn traceparent(ratio: f64) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let sampled = if rng.random_bool(ratio.clamp(0.0, 1.0)) {
        "01"
    } else {
        "00"
    };
    format!(
        "00-{:032x}-{:016x}-{sampled}",
        rng.random::<u128>() | 1,
        rng.random::<u64>() | 1
    )
}

async fn idle_connections(n: usize) {
    let (engine, tenant, key, url) = start().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = resident_bytes();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--hold-clients", &n.to_string(), &url, &key])
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let connected = engine.agents(tenant).await.unwrap().len();
        if connected >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {connected} of {n} connected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident_bytes();
    println!(
        "idle agents: {n} connected in {:.1?}; server resident memory +{:.1} MiB = {:.1} KiB per connection",
        started.elapsed(),
        (after - before) as f64 / 1048576.0,
        (after - before) as f64 / n as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}

async fn hold_idle(n: usize, url: String, key: String) {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let config = ClientConfig::new(url.clone())
            .api_key(key.clone())
            .connection(ConnectionConfig::default().ping_interval(None));
        let connection = connect(&config).await.unwrap();
        connection
            .send(Hello::new(format!("idle-{i}"), ["idle"]))
            .await
            .unwrap();
        held.push(connection);
    }
    std::future::pending::<()>().await;
}
