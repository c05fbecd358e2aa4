//! External MCP servers as tool sources, for real: one on the official Python SDK
//! (FastMCP) that Mesh starts over stdio, one on rmcp over Streamable HTTP behind a
//! bearer token, with colliding tool names. An MCP client connected to Mesh lists and
//! calls both; the Python server is SIGKILLed and started again; `list_changed` is
//! honoured; each upstream's `tools/list` is counted upstream; a call past its timeout
//! is cancelled upstream. Then rate limits (429 with `Retry-After`, a JSON-RPC error
//! with `retry_after_ms`) and limits shared by two instances through Redis.
//!
//! Long on purpose: one upstream of each kind and one Mesh serve every federation
//! case, which run in order against them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mesh_core::app::AppConfig;
use mesh_core::services::Services;
use mesh_core::testing as common;
use mesh_core::tools::{
    Caller, OperatorSource, Rate, SecretKey, ToolAction, ToolAdapter, ToolError, ToolLimits,
    ToolRegistry, Tools, ToolsConfig,
};
use mesh_core::{Engine, MemoryStores, Scope, TenantId};
use mesh_embed::BoxFuture;
use reqwest::{Method, StatusCode};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig as McpClientConfig,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt, tool, tool_router};
use serde_json::{Value, json};

/// The token the Rust upstream wants; Mesh holds it sealed.
const UPSTREAM_TOKEN: &str = "Bearer up-secret-7f3a";

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Text {
    /// What to say.
    text: String,
}

/// The rmcp upstream: `echo` (collides with Python's) and `slow`; counts its
/// `tools/list` calls and the calls cancelled under it.
#[derive(Clone)]
struct RustUpstream {
    lists: Arc<AtomicU64>,
    echoes: Arc<AtomicU64>,
    cancelled: Arc<AtomicU64>,
    router: ToolRouter<Self>,
}

#[tool_router]
impl RustUpstream {
    #[tool(
        description = "Says the text back, from Rust",
        annotations(idempotent_hint = true)
    )]
    async fn echo(&self, Parameters(Text { text }): Parameters<Text>) -> String {
        self.echoes.fetch_add(1, Ordering::SeqCst);
        format!("rs:{text}")
    }

    #[tool(description = "Takes ten seconds unless cancelled")]
    async fn slow(&self, context: RequestContext<RoleServer>) -> String {
        tokio::select! {
            _ = context.ct.cancelled() => {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                "cancelled".into()
            }
            _ = tokio::time::sleep(Duration::from_secs(10)) => "done".into(),
        }
    }
}

impl ServerHandler for RustUpstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        Ok(ListToolsResult::with_all_items(self.router.list_all()))
    }
}

/// Serves the rmcp upstream at `/mcp`, refusing requests without the token.
async fn rust_upstream() -> (String, RustUpstream) {
    let upstream = RustUpstream {
        lists: Arc::default(),
        echoes: Arc::default(),
        cancelled: Arc::default(),
        router: RustUpstream::tool_router(),
    };
    let handler = upstream.clone();
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| async move {
                let auth = request.headers().get("authorization");
                if auth.and_then(|v| v.to_str().ok()) != Some(UPSTREAM_TOKEN) {
                    return axum::http::StatusCode::UNAUTHORIZED.into_response();
                }
                next.run(request).await
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/mcp"), upstream)
}

use axum::response::IntoResponse as _;

struct Mesh {
    addr: std::net::SocketAddr,
    key: String,
    http: reqwest::Client,
}

impl Mesh {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.addr))
            .header("x-api-key", &self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn mcp(&self) -> RunningService<RoleClient, McpClientConfig> {
        let config =
            StreamableHttpClientTransportConfig::with_uri(format!("http://{}/mcp", self.addr))
                .auth_header(self.key.clone());
        McpClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("federation-tests", "0.1.0"),
        )
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
    }
}

/// A Mesh whose operator configured the Python server over stdio for every tenant.
async fn mesh_with_python(python: std::path::PathBuf, limits: ToolLimits) -> Mesh {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/upstream_stdio.py"
    );
    let python: OperatorSource = serde_json::from_value(json!({
        "name": "py",
        "command": [python, script],
    }))
    .unwrap();
    let config = ToolsConfig::default()
        .limits(limits)
        .secret_key(SecretKey::from_base64(&SecretKey::generate()).unwrap())
        .source(python);
    serve_mesh(ToolRegistry::new(), config).await
}

/// A Mesh on memory stores with the operator's `registry` and tools `config`, and an
/// admin key of a new tenant.
async fn serve_mesh(registry: ToolRegistry, config: ToolsConfig) -> Mesh {
    let engine = Engine::start(common::fast_config(), MemoryStores::new())
        .await
        .unwrap();
    let tools = Tools::start(&engine, registry, config);
    let services = Services::in_memory(engine.clone())
        .with_tool_service(tools, mesh_core::workflow::WorkflowConfig::default());
    let (addr, _server) = common::serve_app(services, AppConfig::default()).await;
    let (key, _) = engine
        .create_api_key(TenantId::new(), "t", Scope::ALL.to_vec(), None)
        .await
        .unwrap();
    Mesh {
        addr,
        key,
        http: reqwest::Client::new(),
    }
}

async fn names(client: &RunningService<RoleClient, McpClientConfig>) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

/// A call's first text block (or its structured content, as text).
async fn call(
    client: &RunningService<RoleClient, McpClientConfig>,
    tool: &str,
    arguments: Value,
) -> (bool, String) {
    let result = client
        .call_tool(
            CallToolRequestParams::new(tool.to_owned())
                .with_arguments(arguments.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let text = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_else(|| {
            result
                .structured_content
                .clone()
                .unwrap_or_default()
                .to_string()
        });
    (result.is_error == Some(true), text)
}

/// Waits (polling) until `check` holds, at most `within`.
async fn until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_stdio_and_rmcp_over_http_federated_through_mesh() {
    let Some(python) = common::test_python() else {
        return;
    };
    let (upstream_url, rust) = rust_upstream().await;
    let mesh = mesh_with_python(python, ToolLimits::unlimited()).await;
    until(
        Duration::from_secs(30),
        "the Python server to start",
        || async {
            let (_, py) = mesh
                .call(Method::GET, "/api/v1/tool-sources/py", None)
                .await;
            py["status"]["state"] == "up"
        },
    )
    .await;

    // The HTTP server, registered over REST with its token; the token never shows.
    let registration =
        json!({"kind": "mcp", "url": upstream_url, "headers": {"authorization": UPSTREAM_TOKEN}});
    let (status, source) = mesh
        .call(
            Method::PUT,
            "/api/v1/tool-sources/rs",
            Some(registration.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    assert_eq!(source["secret_names"], json!(["authorization"]));
    let (_, listed) = mesh.call(Method::GET, "/api/v1/tool-sources", None).await;
    assert!(!listed.to_string().contains("up-secret"), "{listed}");
    assert_eq!(listed["items"][0]["name"], "py", "{listed}");
    assert_eq!(listed["items"][0]["operator"], true);
    let (_, audit) = mesh.call(Method::GET, "/api/v1/audit", None).await;
    assert!(!audit.to_string().contains("up-secret"));

    // Without the token, the server refuses Mesh: registration says so.
    let (status, refused) = mesh
        .call(
            Method::PUT,
            "/api/v1/tool-sources/tokenless",
            Some(json!({"kind": "mcp", "url": upstream_url})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{refused}");
    // Never prefixed, its names taken: refused clearly, naming them.
    let mut never = registration.clone();
    never["prefix"] = json!("never");
    let (status, clash) = mesh
        .call(Method::PUT, "/api/v1/tool-sources/clash", Some(never))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{clash}");
    assert!(
        clash["message"].as_str().unwrap().contains("echo"),
        "{clash}"
    );

    // Both servers' tools beside Mesh's own; `echo` collides, so both are prefixed.
    let client = mesh.mcp().await;
    let mut expected_federated = vec!["grow", "pid", "py__echo", "rs__echo", "slow", "stats"];
    let listed = names(&client).await;
    for name in &expected_federated {
        assert!(listed.contains(&name.to_string()), "{name} in {listed:?}");
    }
    assert!(listed.contains(&"submit_task".to_owned()) && !listed.contains(&"echo".to_owned()));
    assert_eq!(
        call(&client, "py__echo", json!({"text": "hi"})).await,
        (false, "py:hi".into())
    );
    assert_eq!(
        call(&client, "rs__echo", json!({"text": "hi"})).await,
        (false, "rs:hi".into())
    );

    // `echo` is declared idempotent: the same input is answered from the cache (over
    // MCP and REST alike), another input reaches the server.
    let echoes = rust.echoes.load(Ordering::SeqCst);
    for _ in 0..3 {
        let said = call(&client, "rs__echo", json!({"text": "cached"})).await;
        assert_eq!(said, (false, "rs:cached".into()));
    }
    assert_eq!(
        rust.echoes.load(Ordering::SeqCst),
        echoes + 1,
        "two answered from the cache"
    );
    call(&client, "rs__echo", json!({"text": "fresh"})).await;
    assert_eq!(rust.echoes.load(Ordering::SeqCst), echoes + 2);

    // The same tools over REST (source named) and as a workflow's tool step.
    let (_, tools) = mesh.call(Method::GET, "/api/v1/tools", None).await;
    let rs_echo = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "rs__echo")
        .unwrap();
    assert_eq!(rs_echo["source"], "rs");
    assert_eq!(rs_echo["actions"][0]["name"], "call");
    assert_eq!(rs_echo["actions"][0]["idempotent"], true);
    let (status, out) = mesh
        .call(
            Method::POST,
            "/api/v1/tools/py__echo/execute",
            Some(json!({"action": "call", "input": {"text": "rest"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert!(out["output"].to_string().contains("py:rest"), "{out}");
    let definition = json!({"name": "fed", "state": {"said": {}},
        "steps": [{"name": "say", "tool": {"name": "rs__echo", "action": "call"},
                   "input": {"text": "flow"}, "output": "said"}]});
    let (status, _) = mesh
        .call(
            Method::POST,
            "/api/v1/workflow-definitions",
            Some(definition),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, run) = mesh
        .call(
            Method::POST,
            "/api/v1/workflows",
            Some(json!({"workflow": "fed"})),
        )
        .await;
    let path = format!("/api/v1/workflows/{}", run["id"].as_str().unwrap());
    until(
        Duration::from_secs(20),
        "the workflow to finish",
        || async {
            let (_, run) = mesh.call(Method::GET, &path, None).await;
            run["status"] != "running" && run["status"] != "pending"
        },
    )
    .await;
    let (_, run) = mesh.call(Method::GET, &path, None).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        run["output"]["said"].to_string().contains("rs:flow"),
        "{run}"
    );

    // Each upstream was asked for its list once, however often Mesh's clients listed.
    let lists_before = rust.lists.load(Ordering::SeqCst);
    let (_, stats) = call(&client, "stats", json!({})).await;
    for _ in 0..20 {
        names(&client).await;
        mesh.call(Method::GET, "/api/v1/tools", None).await;
    }
    assert_eq!(
        rust.lists.load(Ordering::SeqCst),
        lists_before,
        "cached for the TTL"
    );
    // One for `rs` (at registration, then cached) and one for the refused `clash`.
    assert_eq!(
        lists_before, 2,
        "one tools/list per registration and none since"
    );
    assert_eq!(
        call(&client, "stats", json!({})).await.1,
        stats,
        "Python's count unchanged"
    );

    // list_changed: a tool added upstream appears (and its list is asked for again).
    assert_eq!(
        call(&client, "grow", json!({})).await,
        (false, "grown".into())
    );
    until(Duration::from_secs(10), "`late` to be listed", || async {
        names(&client).await.contains(&"late".to_owned())
    })
    .await;
    expected_federated.push("late");
    assert_eq!(
        call(&client, "late", json!({})).await,
        (false, "late and here".into())
    );

    // SIGKILL the Python server: the HTTP one serves on; Mesh starts Python again.
    let (_, pid) = call(&client, "pid", json!({})).await;
    let status = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    // Named as before whether or not Python is back yet: a down server's names still
    // count as taken.
    assert_eq!(
        call(&client, "rs__echo", json!({"text": "still"})).await,
        (false, "rs:still".into())
    );
    until(
        Duration::from_secs(30),
        "the Python server to be started again",
        || async {
            match client.call_tool(CallToolRequestParams::new("pid")).await {
                Ok(result) if result.is_error != Some(true) => {
                    let text = result
                        .content
                        .first()
                        .and_then(|c| c.as_text())
                        .map(|t| t.text.clone());
                    text.is_some_and(|t| t != pid)
                }
                _ => false,
            }
        },
    )
    .await;
    let (_, sources) = mesh
        .call(Method::GET, "/api/v1/tool-sources/py", None)
        .await;
    assert!(
        sources["status"]["restarts"].as_u64().unwrap() >= 1,
        "{sources}"
    );
    assert_eq!(sources["status"]["state"], "up");
    assert_eq!(
        call(&client, "py__echo", json!({"text": "back"})).await,
        (false, "py:back".into())
    );

    // A call past its timeout fails clearly and is cancelled upstream.
    let mut quick = registration.clone();
    quick["call_timeout_ms"] = json!(300);
    let (status, _) = mesh
        .call(Method::PUT, "/api/v1/tool-sources/rs", Some(quick))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (failed, message) = call(&client, "slow", json!({})).await;
    assert!(failed && message.contains("did not answer"), "{message}");
    until(
        Duration::from_secs(10),
        "the upstream to hear the cancellation",
        || async { rust.cancelled.load(Ordering::SeqCst) == 1 },
    )
    .await;

    // Removed: its tools are gone, the other server's stay.
    let (status, _) = mesh
        .call(Method::DELETE, "/api/v1/tool-sources/rs", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let listed = names(&client).await;
    assert!(
        !listed.iter().any(|n| n == "slow" || n.starts_with("rs__")),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"echo".to_owned()),
        "Python's echo no longer collides: {listed:?}"
    );
}

/// A tool that counts its runs.
struct Counted(Arc<AtomicU64>);

impl ToolAdapter for Counted {
    fn name(&self) -> &str {
        "counted"
    }
    fn description(&self) -> &str {
        "counts its runs"
    }
    fn capabilities(&self) -> Vec<String> {
        Vec::new()
    }
    fn actions(&self) -> Vec<ToolAction> {
        vec![ToolAction::new("run", "counts", json!({"type": "object"}))]
    }
    fn execute<'a>(
        &'a self,
        _action: &'a str,
        _input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move { Ok(json!(self.0.fetch_add(1, Ordering::SeqCst) + 1)) })
    }
}

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after_and_a_json_rpc_error() {
    let mut registry = ToolRegistry::new();
    registry.register(Counted(Arc::default()));
    let limits = ToolLimits::default().rates(None, Some(Rate::new(0.5, 1)), None);
    let mesh = serve_mesh(registry, ToolsConfig::default().limits(limits)).await;
    let run = || {
        let url = format!("http://{}/api/v1/tools/counted/execute", mesh.addr);
        mesh.http
            .post(url)
            .header("x-api-key", &mesh.key)
            .json(&json!({"action": "run"}))
            .send()
    };
    assert_eq!(run().await.unwrap().status(), StatusCode::OK);
    let limited = run().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");

    let client = mesh.mcp().await;
    let arguments = json!({"tool": "counted", "action": "run"});
    let refused = client
        .call_tool(
            CallToolRequestParams::new("execute_tool")
                .with_arguments(arguments.as_object().unwrap().clone()),
        )
        .await
        .unwrap_err();
    let rmcp::ServiceError::McpError(error) = refused else {
        panic!("a JSON-RPC error, not {refused:?}");
    };
    let data = error.data.unwrap();
    assert_eq!(data["code"], "rate_limited");
    assert!(data["retry_after_ms"].as_u64().unwrap() > 0, "{data}");
}

/// Calls `counted` as fast as it can for `window` on each of `tools`, concurrently;
/// how many calls ran.
async fn hammer(tools: &[Tools], tenant: TenantId, window: Duration) -> u64 {
    let deadline = Instant::now() + window;
    let mut runs = Vec::new();
    for tools in tools {
        for _ in 0..4 {
            let tools = tools.clone();
            runs.push(tokio::spawn(async move {
                let mut ran = 0u64;
                while Instant::now() < deadline {
                    let caller = Caller {
                        tenant,
                        key: Some("k"),
                    };
                    match tools.execute(caller, "counted", "run", json!({})).await {
                        Ok(_) => ran += 1,
                        Err(ToolError::RateLimited { .. }) => tokio::task::yield_now().await,
                        Err(e) => panic!("{e}"),
                    }
                }
                ran
            }));
        }
    }
    let mut total = 0;
    for run in runs {
        total += run.await.unwrap();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_two_instances_sharing_redis_and_per_instance_without() {
    let Some(redis) = common::test_redis_url() else {
        return;
    };
    let (rate, burst) = (50.0, 10);
    let limits = ToolLimits::default().rates(None, None, Some(Rate::new(rate, burst)));
    let counted = Arc::new(AtomicU64::new(0));
    let instance = |shared: bool| {
        let (redis, counted) = (redis.clone(), counted.clone());
        async move {
            let engine = Engine::start(common::fast_config(), MemoryStores::new())
                .await
                .unwrap();
            let mut registry = ToolRegistry::new();
            registry.register(Counted(counted));
            let config = ToolsConfig::default().limits(limits);
            if shared {
                Tools::start_shared(&engine, registry, config, &redis)
                    .await
                    .unwrap()
            } else {
                Tools::start(&engine, registry, config)
            }
        }
    };
    let window = Duration::from_millis(1_000);
    // Two instances, one Redis: together they stay within one limit.
    let pair = [instance(true).await, instance(true).await];
    assert!(pair.iter().all(Tools::shared));
    let tenant = TenantId::new();
    let started = Instant::now();
    let ran = hammer(&pair, tenant, window).await;
    let bound = burst as f64 + rate * started.elapsed().as_secs_f64();
    assert_eq!(counted.load(Ordering::SeqCst), ran, "counted where it ran");
    assert!(
        ran as f64 <= bound + 1.0,
        "{ran} calls ran, the limit allows {bound:.0}"
    );
    assert!(
        ran as f64 >= rate * 0.5,
        "{ran} calls ran: the limit let too few through"
    );

    // Without Redis each instance holds the limit alone (so two let through twice).
    let alone = instance(false).await;
    assert!(!alone.shared());
    let started = Instant::now();
    let ran = hammer(std::slice::from_ref(&alone), TenantId::new(), window).await;
    let bound = burst as f64 + rate * started.elapsed().as_secs_f64();
    assert!(
        ran as f64 <= bound + 1.0,
        "{ran} calls ran, the limit allows {bound:.0}"
    );
}
