//! One trace across five processes. A client sends a REST request with a W3C
//! `traceparent`; `rest-api` submits the task; an `mcp-server` instance on the same
//! PostgreSQL assigns it to an agent — a separate process that traces — which indexes a
//! document through the REST API; the `worker` indexes it from SQS. Every process
//! exports over OTLP/HTTP to a receiver in this test, and the spans form one chain:
//!
//! ```text
//! client → POST /api/v1/tasks → submit_task → invoke_agent (mcp-server)
//!        → invoke_agent (agent) → POST /api/v1/documents → index_document → embeddings
//! ```
//!
//! The JSON log of `rest-api` carries the trace id on the traced requests' lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "traces-test-admin-key-0123456789";
const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const CLIENT_SPAN: &str = "eee19b7ec3c1b174";

/// The services' environment: one database, one queue, one collector.
struct Env {
    database: String,
    sqs: String,
    queue: String,
    collector: String,
}

impl Env {
    /// `binary` with `args`, exporting its spans; waits for its first line (`listening
    /// on ADDR` or `worker running`) and returns the address, if any. Its standard
    /// error goes to `log` when given.
    fn start(
        &self,
        binary: &str,
        args: &[&str],
        log: Option<&std::path::Path>,
    ) -> (common::Killed, Option<String>) {
        let stderr = log.map_or_else(Stdio::inherit, |path| {
            Stdio::from(std::fs::File::create(path).unwrap())
        });
        let mut child = common::Killed(
            self.command(binary)
                .args(args)
                .env("DATABASE_URL", &self.database)
                .env("MESH_SQS_QUEUE", &self.queue)
                .env("MESH_SQS_ENDPOINT", &self.sqs)
                .env("MESH_LOG_FORMAT", "json")
                .env("RUST_LOG", if log.is_some() { "info" } else { "warn" })
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        );
        let mut out = BufReader::new(child.0.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{binary} exited before it started");
        std::thread::spawn(move || out.lines().map_while(Result::ok).for_each(drop));
        let addr = line.trim().strip_prefix("listening on ").map(str::to_owned);
        (child, addr)
    }

    /// A command exporting its spans to the test's collector, promptly.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", self.collector),
            )
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env("MESH_API_KEY", KEY)
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_SDK_DISABLED");
        command
    }
}

/// Run as a separate process by the test below (the test binary started again with
/// this test's name): an agent that traces its work and indexes a document through the
/// REST API inside its span. As a plain test it does nothing.
#[test]
fn traced_agent_process() {
    let (Ok(hub), Ok(rest)) = (
        std::env::var("TRACED_AGENT_HUB"),
        std::env::var("TRACED_AGENT_REST"),
    ) else {
        return;
    };
    use mesh_core::protocol::ws::{AgentContext, ClientConfig, TaskFuture, run_agent};
    use mesh_core::protocol::{Hello, TaskAssign};
    use tracing::Instrument;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let _telemetry = mesh_examples::setup::init_tracing("traced-agent");
        let http = reqwest::Client::new();
        let handler = move |task: TaskAssign, _ctx: AgentContext| -> TaskFuture {
            let (http, rest) = (http.clone(), rest.clone());
            Box::pin(async move {
                let span = tracing::info_span!(
                    "invoke_agent",
                    otel.name = "invoke_agent researcher",
                    otel.kind = "server",
                    gen_ai.operation.name = "invoke_agent",
                    gen_ai.agent.name = "researcher",
                );
                if let Some(parent) = &task.traceparent {
                    mesh_core::trace::set_parent(&span, parent);
                }
                async {
                    let traceparent = mesh_core::trace::current().unwrap_or_default();
                    let response = http
                        .post(format!("{rest}/api/v1/documents"))
                        .bearer_auth(KEY)
                        .header("traceparent", traceparent)
                        .json(&json!({
                            "collection": "traced",
                            "document_id": task.task_id.to_string(),
                            "text": task.input["text"],
                        }))
                        .send()
                        .await
                        .map_err(|e| mesh_core::protocol::TaskError::retryable(e.to_string()))?;
                    Ok(json!({"indexing": response.status().as_u16()}))
                }
                .instrument(span)
                .await
            })
        };
        let config = ClientConfig::new(hub).api_key(KEY);
        let _ = run_agent(
            config,
            Hello::new("researcher", ["research"]),
            handler,
            std::future::pending(),
        )
        .await;
    });
}

/// Waits (up to 30 s) for `check` to find something.
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_task_from_rest_through_an_agent_process_to_the_worker() {
    let Some((base, sqs)) = common::test_services() else {
        return;
    };
    let (collector, spans) = common::otlp::receiver().await;
    let env = Env {
        database: mesh_core::testing::fresh_database_on(&base).await,
        sqs,
        queue: format!("mesh-traces-{}", uuid::Uuid::now_v7().simple()),
        collector,
    };
    let log = common::fresh_data_dir().with_extension("log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let (_rest_api, rest_addr) = env.start(
        env!("CARGO_BIN_EXE_rest-api"),
        &["--listen", "127.0.0.1:0"],
        Some(&log),
    );
    let rest = format!("http://{}", rest_addr.unwrap());
    let (_mcp_server, hub_addr) = env.start(
        env!("CARGO_BIN_EXE_mcp-server"),
        &["--listen", "127.0.0.1:0"],
        None,
    );
    let (_worker, _) = env.start(env!("CARGO_BIN_EXE_worker"), &[], None);
    let _agent = common::Killed(
        env.command(std::env::current_exe().unwrap())
            .args(["traced_agent_process", "--exact", "--nocapture"])
            .env("TRACED_AGENT_HUB", format!("ws://{}/ws", hub_addr.unwrap()))
            .env("TRACED_AGENT_REST", &rest)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let get = async |path: &str| -> Value {
        let response = http.get(format!("{rest}{path}")).bearer_auth(KEY).send();
        response.await.unwrap().json().await.unwrap()
    };
    until("the agent to register", async || {
        let agents = get("/api/v1/agents?status=active").await;
        agents["items"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(())
    })
    .await;

    let response = http
        .post(format!("{rest}/api/v1/tasks"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({"kind": "research", "input": {"text": "Mesh routes tasks to agents."}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let task: Value = response.json().await.unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    let done = until("the task to complete", async || {
        let task = get(&format!("/api/v1/tasks/{id}")).await;
        (task["status"] == "completed").then_some(task)
    })
    .await;
    assert_eq!(done["output"], json!({"indexing": 202}), "{done}");
    assert!(
        done["traceparent"].as_str().unwrap().contains(TRACE),
        "{done}"
    );

    // The chain, each span the child of the one before, across four services.
    let chain: [(&str, &str); 7] = [
        ("rest-api", "POST /api/v1/tasks"),
        ("rest-api", "submit_task"),
        ("mcp-server", "invoke_agent researcher"),
        ("traced-agent", "invoke_agent researcher"),
        ("rest-api", "POST /api/v1/documents"),
        ("worker", "index_document"),
        ("worker", "embeddings"),
    ];
    let started = Instant::now();
    let found = loop {
        let spans = spans.lock().unwrap().clone();
        let mut parent = CLIENT_SPAN.to_owned();
        let mut found = Vec::new();
        for (service, name) in chain {
            let Some(span) = spans.iter().find(|s| {
                s.trace == TRACE
                    && s.service == service
                    && s.name.starts_with(name)
                    && s.parent == parent
            }) else {
                break;
            };
            parent = span.id.clone();
            found.push(span.clone());
        }
        if found.len() == chain.len() {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the trace stops after {:?}; received:\n{spans:#?}",
            found
                .iter()
                .map(|s| (&s.service, &s.name))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let attribute = |i: usize, key: &str| found[i].attributes.get(key).cloned().unwrap_or_default();
    assert_eq!(attribute(0, "http.route"), "/api/v1/tasks");
    assert_eq!(attribute(0, "http.response.status_code"), "201");
    assert_eq!(attribute(2, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(attribute(2, "gen_ai.agent.name"), "researcher");
    assert_eq!(attribute(2, "mesh.task.id"), id);
    assert_eq!(attribute(2, "mesh.task.outcome"), "completed");
    assert_eq!(attribute(6, "gen_ai.operation.name"), "embeddings");

    // The log: the traced request's lines carry the trace id; no credential anywhere.
    let text = std::fs::read_to_string(&log).unwrap();
    let access = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["target"] == "mesh::access" && l["fields"]["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no access line for {request_id} in\n{text}"));
    assert_eq!(access["openTelemetry"]["traceId"], TRACE, "{access}");
    assert_eq!(
        access["openTelemetry"]["spanId"],
        found[0].id.as_str(),
        "{access}"
    );
    assert!(!text.contains(KEY), "the API key in the log");
    let _ = std::fs::remove_file(&log);
}
