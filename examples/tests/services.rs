//! The three services as separate processes on loopback, sharing only the test
//! command's PostgreSQL and SQS: two `mcp-server`s, one `rest-api`, one `worker`.
//! An agent on MCP instance 2 receives a task submitted over REST (and one submitted by
//! an MCP client on instance 1); a document indexed
//! over REST is searchable once the worker has run; killing the worker mid-job loses
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesh_core::testing;
use serde_json::{Value, json};

const KEY: &str = "e2e-bootstrap-key-0123456789";

/// A service process, killed when dropped.
struct Service {
    child: Child,
    addr: Option<String>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Env {
    database: String,
    sqs: String,
    queue: String,
}

impl Env {
    /// Starts `binary` with `args`; waits for its first line (`listening on ADDR` or
    /// `worker running`).
    fn start(&self, binary: &str, args: &[&str]) -> Service {
        let mut child = Command::new(binary)
            .args(args)
            .env("DATABASE_URL", &self.database)
            .env("MESH_SQS_QUEUE", &self.queue)
            .env("MESH_SQS_ENDPOINT", &self.sqs)
            .env("MESH_API_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{binary} exited before it started");
        // Keep reading, so the process never writes to a closed pipe.
        std::thread::spawn(move || out.lines().map_while(Result::ok).for_each(drop));
        let addr = line.trim().strip_prefix("listening on ").map(str::to_owned);
        Service { child, addr }
    }

    fn http(&self, binary: &str) -> Service {
        self.start(binary, &["--listen", "127.0.0.1:0"])
    }

    fn worker(&self) -> Service {
        self.start(
            env!("CARGO_BIN_EXE_worker"),
            &[
                "--visibility-secs",
                "2",
                "--concurrency",
                "2",
                "--health-listen",
                "127.0.0.1:0",
            ],
        )
    }
}

struct Rest {
    http: reqwest::Client,
    base: String,
}

impl Rest {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn until<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl AsyncFnMut(&Self) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(found) = check(self).await {
                return found;
            }
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn searchable(&self, document: &str) -> bool {
        let query = json!({"collection": "e2e", "query": "mesh agents", "k": 1, "filter": {"document_id": document}});
        let (status, found) = self
            .call(reqwest::Method::POST, "/api/v1/search", Some(query))
            .await;
        status == 200 && found["hits"].as_array().is_some_and(|h| !h.is_empty())
    }
}

fn echo_agent(url: String) -> tokio::task::JoinHandle<()> {
    testing::echo_agent_at(&url, KEY, "agent-on-mcp-2", &["echo"])
}

type McpClient = rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>;

async fn mcp_client(addr: &str) -> McpClient {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
        .auth_header(KEY);
    let mut info = rmcp::model::ClientConfig::new(
        rmcp::model::ClientCapabilities::default(),
        rmcp::model::Implementation::new("e2e", "0.1.0"),
    );
    info.protocol_version = rmcp::model::ProtocolVersion::V_2025_11_25;
    info.serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

async fn mcp_call(client: &McpClient, tool: &str, arguments: Value) -> (bool, Value) {
    let params = rmcp::model::CallToolRequestParams::new(tool.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone());
    let result = client.call_tool(params).await.unwrap();
    let text = &result.content[0].as_text().unwrap().text;
    (
        result.is_error.unwrap_or(false),
        serde_json::from_str(text).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_services_as_processes_share_postgres_and_sqs() {
    let Some((base, sqs)) = common::test_services() else {
        return;
    };
    let env = Env {
        database: testing::fresh_database_on(&base).await,
        sqs,
        queue: format!("mesh-e2e-{}", uuid::Uuid::now_v7().simple()),
    };
    let rest_api = env.http(env!("CARGO_BIN_EXE_rest-api"));
    let mcp_1 = env.http(env!("CARGO_BIN_EXE_mcp-server"));
    let mcp_2 = env.http(env!("CARGO_BIN_EXE_mcp-server"));
    let rest = Rest {
        http: reqwest::Client::new(),
        base: format!("http://{}", rest_api.addr.as_ref().unwrap()),
    };
    let (status, ready) = rest.call(reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(status, 200, "{ready}");

    // An agent on MCP instance 2 receives a task submitted through the REST API.
    let _agent = echo_agent(format!("ws://{}/ws", mcp_2.addr.as_ref().unwrap()));
    rest.until(
        "the agent to register",
        Duration::from_secs(20),
        async |rest| {
            let (_, agents) = rest
                .call(reqwest::Method::GET, "/api/v1/agents?status=active", None)
                .await;
            agents["items"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
                .then_some(())
        },
    )
    .await;
    let (status, task) = rest
        .call(
            reqwest::Method::POST,
            "/api/v1/tasks",
            Some(json!({"kind": "echo", "input": {"via": "rest"}})),
        )
        .await;
    assert_eq!(status, 201, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let done = rest
        .until(
            "the task to complete",
            Duration::from_secs(20),
            async |rest| {
                let (_, task) = rest
                    .call(reqwest::Method::GET, &format!("/api/v1/tasks/{id}"), None)
                    .await;
                (task["status"] == "completed").then_some(task)
            },
        )
        .await;
    assert_eq!(
        done["output"],
        json!({"by": "agent-on-mcp-2", "input": {"via": "rest"}})
    );

    // An MCP client on instance 1 sees that task, and its own task runs on instance 2.
    let mcp = mcp_client(mcp_1.addr.as_ref().unwrap()).await;
    let (_, seen) = mcp_call(&mcp, "get_task", json!({"id": id})).await;
    assert_eq!(seen["status"], "completed");
    let (error, submitted) = mcp_call(
        &mcp,
        "submit_task",
        json!({"kind": "echo", "input": {"via": "mcp"}}),
    )
    .await;
    assert!(!error, "{submitted}");
    let mcp_task = submitted["id"].as_str().unwrap().to_owned();
    let done = rest
        .until(
            "the MCP task to complete",
            Duration::from_secs(20),
            async |rest| {
                let (_, task) = rest
                    .call(
                        reqwest::Method::GET,
                        &format!("/api/v1/tasks/{mcp_task}"),
                        None,
                    )
                    .await;
                (task["status"] == "completed").then_some(task)
            },
        )
        .await;
    assert_eq!(done["output"]["by"], "agent-on-mcp-2");
    mcp.cancel().await.unwrap();

    // Documents indexed over REST: a worker is killed mid-way, another finishes.
    let documents: Vec<String> = (0..24).map(|i| format!("doc-{i}")).collect();
    for doc in &documents {
        let text = format!("{doc}: mesh agents share tasks. ").repeat(400);
        let body = json!({"collection": "e2e", "document_id": doc, "text": text});
        let (status, _) = rest
            .call(reqwest::Method::POST, "/api/v1/documents", Some(body))
            .await;
        assert_eq!(status, 202);
    }
    assert!(
        !rest.searchable("doc-0").await,
        "nothing is indexed before a worker runs"
    );
    let first_worker = env.worker();
    rest.until(
        "the first worker to index something",
        Duration::from_secs(30),
        async |rest| {
            for doc in &documents {
                if rest.searchable(doc).await {
                    return Some(());
                }
            }
            None
        },
    )
    .await;
    // The worker's own probes: ready, having heard from the queue; its jobs counted.
    let probes = format!("http://{}", first_worker.addr.as_ref().unwrap());
    let ready: Value = reqwest::get(format!("{probes}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    let worker = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "worker");
    assert!(
        worker.unwrap()["detail"]
            .as_str()
            .unwrap()
            .starts_with("polled"),
        "{ready}"
    );
    let metrics = reqwest::Client::new()
        .get(format!("{probes}/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mesh_jobs_total{outcome=\"done\"}"),
        "{metrics}"
    );
    drop(first_worker); // SIGKILL, mid-queue
    let mut indexed_before_the_kill = 0;
    for doc in &documents {
        indexed_before_the_kill += usize::from(rest.searchable(doc).await);
    }
    eprintln!(
        "{indexed_before_the_kill} of {} documents were indexed when the worker was killed",
        documents.len()
    );
    let _second_worker = env.worker();
    for doc in &documents {
        rest.until(doc, Duration::from_secs(60), async |rest| {
            rest.searchable(doc).await.then_some(())
        })
        .await;
    }
}
