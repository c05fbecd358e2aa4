//! Mesh's spans in one process, collected by OpenTelemetry's in-memory exporter: a
//! workflow run started in a trace gives `invoke_workflow` → `workflow_step` →
//! `submit_task` → `invoke_agent`, and the agent is handed that context; an MCP tool
//! call carrying `_meta.traceparent` gives `execute_tool` spans in the caller's trace;
//! untraced work opens no span of Mesh's own. (Across processes, over OTLP: the
//! examples' `traces.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_core::app::AppConfig;
use mesh_core::protocol::Hello;
use mesh_core::services::Services;
use mesh_core::tools::{ToolAction, ToolAdapter, ToolError, ToolRegistry};
use mesh_core::workflow::{RunStatus, StartRequest, WorkflowConfig, WorkflowDefinition, Workflows};
use mesh_core::{Engine, MemoryStores, Scope, TenantId};
use mesh_embed::BoxFuture;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER: &str = "b7ad6b7169203331";

/// Spans ended in this thread's subscriber, kept in memory.
struct Collector {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Collector {
    fn install() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        Self {
            exporter,
            _guard: tracing::subscriber::set_default(subscriber),
            _provider: provider,
        }
    }

    fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap()
    }

    /// The one span named `name` in the test's trace.
    fn span(&self, name: &str) -> SpanData {
        let spans: Vec<_> = self
            .spans()
            .into_iter()
            .filter(|s| s.name == name && s.span_context.trace_id().to_string() == TRACE)
            .collect();
        assert_eq!(spans.len(), 1, "{name}: {spans:#?}");
        spans.into_iter().next().unwrap()
    }

    /// Waits (up to 10 s) until a span named `name` ended.
    async fn ended(&self, name: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.spans().iter().any(|s| s.name == name) {
            assert!(tokio::time::Instant::now() < deadline, "no {name} span");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn attribute(span: &SpanData, key: &str) -> String {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
        .unwrap_or_default()
}

/// A span standing for the caller in another process.
fn caller_span() -> tracing::Span {
    let span = tracing::info_span!("caller");
    mesh_core::trace::set_parent(&span, &format!("00-{TRACE}-{CALLER}-01"));
    span
}

#[tokio::test]
async fn a_workflow_started_in_a_trace_runs_its_steps_and_agents_in_it() {
    let collector = Collector::install();
    let engine = Engine::start(mesh_core::testing::fast_config(), MemoryStores::new())
        .await
        .unwrap();
    let tenant = TenantId::new();
    let handed: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = handed.clone();
    let _agent = engine
        .connect_local(tenant, Hello::new("scribe", ["upper"]), move |task| {
            seen.lock().unwrap().push(task.traceparent.clone());
            async move { Ok(json!(task.input.as_str().unwrap_or("").to_uppercase())) }
        })
        .await
        .unwrap();
    let workflows = Workflows::start(
        engine.clone(),
        Arc::new(ToolRegistry::new()),
        WorkflowConfig::default().poll_every(Duration::from_millis(50)),
    )
    .await
    .unwrap();
    let definition: WorkflowDefinition = serde_json::from_value(json!({
        "name": "shout",
        "state": {"text": {}},
        "steps": [{"name": "up", "task": {"kind": "upper"}, "input": {"$state": "/text"}, "output": "text"}]
    }))
    .unwrap();
    workflows.register(tenant, definition).await.unwrap();

    let run = workflows
        .start_run(tenant, StartRequest::new("shout", json!({"text": "hi"})))
        .instrument(caller_span())
        .await
        .unwrap();
    assert!(
        run.traceparent.as_deref().unwrap().contains(TRACE),
        "{run:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while workflows.run(tenant, run.id).await.unwrap().status != RunStatus::Succeeded {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    collector.ended("invoke_agent scribe").await;
    collector.ended("workflow_step up").await;

    let workflow = collector.span("invoke_workflow shout");
    let step = collector.span("workflow_step up");
    let submit = collector.span("submit_task");
    let attempt = collector.span("invoke_agent scribe");
    let caller = collector.span("caller");
    assert_eq!(caller.parent_span_id.to_string(), CALLER);
    assert_eq!(workflow.parent_span_id, caller.span_context.span_id());
    assert_eq!(step.parent_span_id, workflow.span_context.span_id());
    assert_eq!(submit.parent_span_id, step.span_context.span_id());
    assert_eq!(attempt.parent_span_id, submit.span_context.span_id());
    assert_eq!(
        attribute(&workflow, "gen_ai.operation.name"),
        "invoke_workflow"
    );
    assert_eq!(attribute(&step, "mesh.workflow.step"), "up");
    assert_eq!(attribute(&attempt, "gen_ai.agent.name"), "scribe");
    assert_eq!(attribute(&attempt, "mesh.task.outcome"), "completed");
    // The agent was handed the attempt's own context.
    let expected = format!("00-{TRACE}-{}-01", attempt.span_context.span_id());
    assert_eq!(handed.lock().unwrap().as_slice(), &[Some(expected)]);

    // Outside any trace: nothing of Mesh's own, and the agent gets no context.
    let before = collector.spans().len();
    let untraced = workflows
        .start_run(tenant, StartRequest::new("shout", json!({"text": "quiet"})))
        .await
        .unwrap();
    assert_eq!(untraced.traceparent, None);
    while workflows.run(tenant, untraced.id).await.unwrap().status != RunStatus::Succeeded {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(collector.spans().len(), before);
    assert_eq!(handed.lock().unwrap().last(), Some(&None));
}

/// A tool that says what it was given.
struct Echo;

impl ToolAdapter for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn description(&self) -> &str {
        "Returns its input"
    }
    fn capabilities(&self) -> Vec<String> {
        Vec::new()
    }
    fn actions(&self) -> Vec<ToolAction> {
        vec![ToolAction::new("say", "echo", json!({"type": "object"}))]
    }
    fn execute<'a>(&'a self, _: &'a str, input: Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move { Ok(input) })
    }
}

#[tokio::test]
async fn an_mcp_tool_call_joins_the_trace_in_its_meta() {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, Implementation};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let collector = Collector::install();
    let engine = Engine::start(mesh_core::testing::fast_config(), MemoryStores::new())
        .await
        .unwrap();
    let key = engine
        .create_api_key(TenantId::new(), "mcp", vec![Scope::Admin], None)
        .await
        .unwrap()
        .0;
    let mut services = Services::in_memory(engine);
    let mut tools = ToolRegistry::new();
    tools.register(Echo);
    services.tools = tools.into();
    let (addr, _server) = mesh_core::testing::serve_app(services, AppConfig::default()).await;
    let config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
        .auth_header(key);
    let client = rmcp::model::ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("traces", "0.1.0"),
    )
    .serve(StreamableHttpClientTransport::from_config(config))
    .await
    .unwrap();
    let call = |traceparent: &str| {
        let mut params = CallToolRequestParams::new("execute_tool").with_arguments(
            json!({"tool": "echo", "action": "say", "input": {"n": 1}})
                .as_object()
                .unwrap()
                .clone(),
        );
        let mut meta = rmcp::model::RequestMetaObject::new();
        meta.0.insert("traceparent".into(), json!(traceparent));
        params.meta = Some(meta);
        client.call_tool(params)
    };
    let result = call(&format!("00-{TRACE}-{CALLER}-01")).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    collector.ended("execute_tool echo").await;
    let server = collector.span("execute_tool execute_tool");
    let tool = collector.span("execute_tool echo");
    assert_eq!(server.parent_span_id.to_string(), CALLER);
    assert_eq!(tool.parent_span_id, server.span_context.span_id());
    assert_eq!(attribute(&tool, "gen_ai.tool.name"), "echo");
    assert_eq!(attribute(&tool, "mesh.tool.action"), "say");

    // A malformed traceparent is ignored: the call works, in a trace of its own.
    let result = call("00-not-a-trace-01").await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    client.cancel().await.unwrap();
}
