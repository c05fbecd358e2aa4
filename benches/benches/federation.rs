//! What Mesh adds to a call of an external MCP server's tool: the same rmcp client
//! calls the same upstream tool (`echo`, served by rmcp over Streamable HTTP on
//! loopback) directly, and through Mesh's `/mcp` — which authenticates the caller,
//! checks its permission on the tool, charges its rate-limit buckets (set high enough
//! never to refuse), audits the call, and relays it over its own pooled upstream
//! session. The difference of the two medians is Mesh's added latency.
//!
//! `cargo bench -p mesh-benches --bench federation`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_core::app::{AppConfig, router};
use mesh_core::services::Services;
use mesh_core::tools::{
    Rate, ToolAction, ToolAdapter, ToolError, ToolLimits, ToolRegistry, Tools, ToolsConfig,
};
use mesh_core::{Engine, Scope, TenantId};
use mesh_embed::BoxFuture;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleClient, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::json;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Text {
    text: String,
}

#[derive(Clone)]
struct Echo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    #[tool(description = "Says the text back")]
    async fn echo(&self, Parameters(Text { text }): Parameters<Text>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A tool that does nothing: Mesh's own cost per MCP tool call, without an upstream.
struct Noop;

impl ToolAdapter for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn description(&self) -> &str {
        "does nothing"
    }
    fn capabilities(&self) -> Vec<String> {
        Vec::new()
    }
    fn actions(&self) -> Vec<ToolAction> {
        vec![ToolAction::new("run", "nothing", json!({"type": "object"}))]
    }
    fn execute<'a>(
        &'a self,
        _: &'a str,
        _: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, ToolError>> {
        Box::pin(async { Ok(json!({})) })
    }
}

async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn client(url: String, key: Option<String>) -> RunningService<RoleClient, ClientConfig> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(key) = key {
        config = config.auth_header(key);
    }
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("bench", "0"),
    )
    .serve(StreamableHttpClientTransport::from_config(config))
    .await
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (direct, via_mesh) = runtime.block_on(async {
        let upstream = StreamableHttpService::new(
            || {
                Ok(Echo {
                    tool_router: Echo::tool_router(),
                })
            },
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let upstream = serve(axum::Router::new().nest_service("/mcp", upstream)).await;
        let engine = Engine::in_memory().await;
        let high = Some(Rate::new(1e9, 1_000_000_000));
        let limits = ToolLimits::default().rates(high, high, high);
        let mut registry = ToolRegistry::new();
        registry.register(Noop);
        let tools = Tools::start(&engine, registry, ToolsConfig::default().limits(limits));
        let services = Services::in_memory(engine.clone())
            .with_tool_service(tools, mesh_core::workflow::WorkflowConfig::default());
        let tenant = TenantId::new();
        let (key, _) = engine
            .create_api_key(tenant, "bench", vec![Scope::Admin], None)
            .await
            .unwrap();
        let mesh = serve(router(services, AppConfig::default().rate_limit(1e9, 1e9))).await;
        let register = reqwest::Client::new()
            .put(format!("http://{mesh}/api/v1/tool-sources/up"))
            .bearer_auth(&key)
            .json(&json!({"kind": "mcp", "url": format!("http://{upstream}/mcp")}))
            .send()
            .await
            .unwrap();
        assert_eq!(register.status(), 201, "{}", register.text().await.unwrap());
        let direct = client(format!("http://{upstream}/mcp"), None).await;
        let via_mesh = client(format!("http://{mesh}/mcp"), Some(key)).await;
        (direct, via_mesh)
    });
    let arguments = json!({"text": "hello"}).as_object().unwrap().clone();
    let own = json!({"tool": "noop", "action": "run"})
        .as_object()
        .unwrap()
        .clone();
    let mut group = c.benchmark_group("federation");
    for (name, client, tool, arguments) in [
        ("direct_to_upstream", &direct, "echo", &arguments),
        ("through_mesh", &via_mesh, "echo", &arguments),
        ("mesh_own_tool", &via_mesh, "execute_tool", &own),
    ] {
        let params = CallToolRequestParams::new(tool).with_arguments(arguments.clone());
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let result = client.call_tool(params.clone()).await.unwrap();
                    assert_ne!(result.is_error, Some(true), "{result:?}");
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
