//! The MCP server with the official Rust SDK's client (rmcp) over both transports —
//! Streamable HTTP at /mcp and WebSocket text frames at /ws — plus raw JSON-RPC for
//! what a well-behaved client never sends.
//!
//! Long on purpose: one binary for the MCP surface, its two transports, the auth
//! matrix shared with the hub and REST, and the Python SDK interop — the MCP clients
//! (rmcp over both transports) and the fixtures are shared by every case here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::testing as common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream;
use mesh_core::app::AppConfig;
use mesh_core::services::Services;
use mesh_core::tools::{ToolAction, ToolAdapter, ToolError, ToolRegistry};
use mesh_core::worker::{WorkerConfig, run_worker};
use mesh_core::{Engine, Scope, TenantId};
use mesh_embed::BoxFuture;
use mesh_protocol::ws::{ClientConfig, Connection, Incoming, Subprotocol, connect};
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig as McpClientConfig, Implementation,
    ProtocolVersion, ReadResourceRequestParams, ServerJsonRpcMessage,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

/// A real tool for `execute_tool`: adds two numbers.
struct Adder;

impl ToolAdapter for Adder {
    fn name(&self) -> &str {
        "calc"
    }
    fn description(&self) -> &str {
        "Arithmetic"
    }
    fn capabilities(&self) -> Vec<String> {
        vec!["math".into()]
    }
    fn actions(&self) -> Vec<ToolAction> {
        vec![ToolAction::new("add", "a + b", json!({"type": "object"}))]
    }
    fn execute<'a>(
        &'a self,
        _action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            match (input["a"].as_f64(), input["b"].as_f64()) {
                (Some(a), Some(b)) => Ok(json!(a + b)),
                _ => Err(ToolError::InvalidInput("a and b must be numbers".into())),
            }
        })
    }
}

struct Server {
    addr: SocketAddr,
    services: Services,
    key: String,
    reader: String,
}

async fn server() -> Server {
    server_with(AppConfig::default()).await
}

async fn server_with(config: AppConfig) -> Server {
    let engine = Engine::start(common::fast_config(), mesh_core::MemoryStores::new())
        .await
        .unwrap();
    let tenant = TenantId::new();
    let key = engine
        .create_api_key(tenant, "mcp", vec![Scope::Admin], None)
        .await
        .unwrap()
        .0;
    let reader = engine
        .create_api_key(tenant, "ro", vec![Scope::Read], None)
        .await
        .unwrap()
        .0;
    let mut services = Services::in_memory(engine);
    let mut tools = ToolRegistry::new();
    tools.register(Adder);
    services.tools = tools.into();
    let (addr, _server) = common::serve_app(services.clone(), config).await;
    Server {
        addr,
        services,
        key,
        reader,
    }
}

fn client_info(version: ProtocolVersion) -> McpClientConfig {
    let mut info = McpClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("mesh-tests", "0.1.0"),
    );
    info.protocol_version = version;
    info
}

type Client = RunningService<RoleClient, McpClientConfig>;

async fn over_http(server: &Server, key: &str, version: ProtocolVersion) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("http://{}/mcp", server.addr))
            .auth_header(key.to_owned());
    client_info(version)
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

async fn ws_connection(server: &Server, key: &str) -> Connection {
    let config = ClientConfig::new(format!("ws://{}/ws", server.addr))
        .api_key(key)
        .subprotocols([Subprotocol::Mcp]);
    let connection = connect(&config).await.unwrap();
    assert_eq!(
        connection.subprotocol(),
        Some(Subprotocol::Mcp),
        "the server echoes mcp"
    );
    connection
}

async fn over_ws(server: &Server, key: &str, version: ProtocolVersion) -> Client {
    rmcp_over(ws_connection(server, key).await, version).await
}

/// An rmcp client on an MCP WebSocket connection.
async fn rmcp_over(connection: Connection, version: ProtocolVersion) -> Client {
    let sender = connection.sender();
    let sink = Box::pin(futures_util::sink::unfold(
        sender,
        |sender, message: rmcp::model::ClientJsonRpcMessage| async move {
            sender
                .try_send_text(serde_json::to_string(&message).unwrap())
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(sender)
        },
    ));
    let incoming = Box::pin(stream::unfold(connection, |mut connection| async move {
        loop {
            if let Ok(Incoming::Text(text)) = connection.recv().await? {
                let message: ServerJsonRpcMessage = serde_json::from_str(&text).unwrap();
                return Some((message, connection));
            }
        }
    }));
    client_info(version).serve((sink, incoming)).await.unwrap()
}

fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

async fn call(client: &Client, tool: &str, arguments: Value) -> (bool, Value) {
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap();
    let text = result.content[0].as_text().unwrap().text.clone();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (result.is_error.unwrap_or(false), value)
}

/// The shared-document tools: create, edit, read, list, refusals, delete.
async fn shared_docs(client: &Client) {
    let (error, doc) = call(
        client,
        "create_shared_doc",
        json!({"name": "plan", "kind": "text"}),
    )
    .await;
    assert!(!error, "{doc}");
    let id = doc["id"].as_str().unwrap().to_owned();
    let splice = json!({"op": "splice", "pos": 0, "insert": "step one"});
    let (error, edited) = call(
        client,
        "edit_shared_doc",
        json!({"id": id, "edits": [splice]}),
    )
    .await;
    assert!(!error, "{edited}");
    assert_eq!(edited["content"], "step one");
    let (_, read) = call(client, "read_shared_doc", json!({"id": id})).await;
    assert_eq!(
        (&read["name"], &read["content"]),
        (&json!("plan"), &json!("step one"))
    );
    let (_, listed) = call(client, "list_shared_docs", json!({})).await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str())
    );
    let past = json!({"op": "splice", "pos": 99, "insert": "x"});
    let (error, refused) = call(
        client,
        "edit_shared_doc",
        json!({"id": id, "edits": [past]}),
    )
    .await;
    assert!(error);
    assert_eq!(refused["code"], "invalid_request");
    let (error, _) = call(client, "delete_shared_doc", json!({"id": id})).await;
    assert!(!error);
    let (error, gone) = call(client, "read_shared_doc", json!({"id": id})).await;
    assert!(error);
    assert_eq!(gone["code"], "not_found");
}

/// Every tool, its errors, and the resources, through one client.
async fn exercise(server: &Server, client: &Client) {
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "cancel_collab_job",
            "cancel_task",
            "cancel_workflow",
            "create_shared_doc",
            "delete_shared_doc",
            "edit_shared_doc",
            "execute_tool",
            "fork_workflow",
            "get_collab_job",
            "get_task",
            "get_workflow",
            "index_document",
            "list_agents",
            "list_shared_docs",
            "list_workflows",
            "read_shared_doc",
            "register_mcp_server",
            "register_workflow",
            "resume_workflow",
            "retry_workflow",
            "run_collab",
            "search",
            "signal_workflow",
            "start_workflow",
            "submit_task",
            "workflow_history"
        ]
    );
    assert!(
        tools
            .iter()
            .all(|t| t.input_schema.get("type") == Some(&json!("object")))
    );
    shared_docs(client).await;

    let _agent = common::echo_agent_at(
        &format!("ws://{}/ws", server.addr),
        &server.key,
        "mcp-echo",
        &["echo"],
    );
    let started = std::time::Instant::now();
    let (error, agents) = loop {
        let listed = call(client, "list_agents", json!({"status": "active"})).await;
        if listed.1["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break listed;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", listed.1);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(!error);
    assert_eq!(agents["items"][0]["name"], "mcp-echo");

    let (error, task) = call(
        client,
        "submit_task",
        json!({"kind": "echo", "input": {"q": 42}}),
    )
    .await;
    assert!(!error, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let done = loop {
        let (_, task) = call(client, "get_task", json!({"id": id})).await;
        if task["status"] == "completed" {
            break task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(done["output"]["input"], json!({"q": 42}));

    let (_, stuck) = call(client, "submit_task", json!({"kind": "nobody"})).await;
    let (error, cancelled) = call(client, "cancel_task", json!({"id": stuck["id"]})).await;
    assert!(!error);
    assert_eq!(cancelled["status"], "cancelled");

    let (error, collab) = call(
        client,
        "run_collab",
        json!({"pattern": "pipeline", "stages": ["echo", "echo"], "input": "x"}),
    )
    .await;
    assert!(!error, "{collab}");
    assert_eq!(collab["status"], "completed");
    // A job nobody can finish: followed, then cancelled with its tasks.
    let (_, running) = call(
        client,
        "run_collab",
        json!({"pattern": "consensus", "task": {"kind": "nobody"}, "voters": 2, "wait_ms": 0}),
    )
    .await;
    assert_eq!(running["status"], "running", "{running}");
    let (error, seen) = call(client, "get_collab_job", json!({"id": running["id"]})).await;
    assert!(!error, "{seen}");
    let (error, cancelled) = call(client, "cancel_collab_job", json!({"id": running["id"]})).await;
    assert!(!error, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["tasks"].as_array().unwrap().len(),
        2,
        "{cancelled}"
    );

    let (error, job) = call(client, "index_document", json!({"collection": "notes", "document_id": "n1", "text": "Agents talk over WebSockets with binary frames."})).await;
    assert!(!error, "{job}");
    assert!(job["job_id"].is_string());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(
        server.services.clone(),
        WorkerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    loop {
        let (error, found) = call(
            client,
            "search",
            json!({"collection": "notes", "query": "binary frames over WebSockets"}),
        )
        .await;
        assert!(!error);
        if found["hits"].as_array().is_some_and(|h| !h.is_empty()) {
            assert_eq!(found["hits"][0]["document_id"], "n1");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    worker.await.unwrap();

    exercise_workflows(client).await;

    let (error, sum) = call(
        client,
        "execute_tool",
        json!({"tool": "calc", "action": "add", "input": {"a": 2, "b": 3}}),
    )
    .await;
    assert!(!error);
    assert_eq!(sum["output"], 5.0);

    // Bad arguments: a tool result with isError, not a protocol error.
    for (tool, arguments) in [
        ("get_task", json!({"id": "not-a-uuid"})),
        ("get_task", json!({})),
        ("submit_task", json!({"kind": 5})),
        ("submit_task", json!({"kind": ""})),
        ("search", json!({"collection": "bad name!", "query": "x"})),
        (
            "execute_tool",
            json!({"tool": "calc", "action": "add", "input": {"a": "two"}}),
        ),
        ("execute_tool", json!({"tool": "nope", "action": "x"})),
        ("run_collab", json!({"pattern": "telepathy"})),
        (
            "register_workflow",
            json!({"definition": {"name": "x", "steps": []}}),
        ),
        ("start_workflow", json!({"workflow": "never-registered"})),
        ("get_workflow", json!({"id": "not-a-uuid"})),
        (
            "cancel_task",
            json!({"id": "0190a6f0-0000-7000-8000-000000000000"}),
        ),
    ] {
        let (error, message) = call(client, tool, arguments.clone()).await;
        assert!(error, "{tool} {arguments} should fail: {message}");
    }
    // An unknown tool: a JSON-RPC error.
    let unknown = client
        .call_tool(CallToolRequestParams::new("launch_rockets"))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");

    let resources = client.list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 2);
    let read = client
        .read_resource(ReadResourceRequestParams::new(format!("mesh://tasks/{id}")))
        .await
        .unwrap();
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("text contents");
    };
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["id"],
        id.as_str()
    );
    let missing = client
        .read_resource(ReadResourceRequestParams::new(
            "mesh://tasks/0190a6f0-0000-7000-8000-000000000000",
        ))
        .await;
    assert!(missing.is_err());
}

#[tokio::test]
async fn an_rmcp_client_uses_every_tool_over_streamable_http() {
    let server = server().await;
    let client = over_http(&server, &server.key, ProtocolVersion::V_2025_11_25).await;
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    exercise(&server, &client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_mcp_websocket_session_ends_when_its_key_is_revoked() {
    let server = server().await;
    let engine = &server.services.engine;
    let tenant = engine
        .authenticate(&server.key)
        .await
        .unwrap()
        .unwrap()
        .tenant_id;
    let (key, record) = engine
        .create_api_key(tenant, "doomed", vec![Scope::Write], None)
        .await
        .unwrap();
    let client = over_ws(&server, &key, ProtocolVersion::LATEST).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    let other = ws_connection(&server, &server.key).await;
    engine.revoke_api_key(tenant, record.id).await.unwrap();
    // The session closes; a new one is refused; the other key's session stays.
    tokio::time::timeout(Duration::from_secs(10), client.waiting())
        .await
        .expect("the session closed")
        .unwrap();
    let config = ClientConfig::new(format!("ws://{}/ws", server.addr))
        .api_key(&key)
        .subprotocols([Subprotocol::Mcp]);
    assert!(connect(&config).await.is_err());
    let ping = r#"{"jsonrpc": "2.0", "id": 7, "method": "ping"}"#;
    other.sender().try_send_text(ping).unwrap();
    let mut other = other;
    let answer = tokio::time::timeout(Duration::from_secs(10), other.recv())
        .await
        .unwrap();
    assert!(matches!(answer, Some(Ok(Incoming::Text(_)))), "{answer:?}");
}

#[tokio::test]
async fn an_rmcp_client_uses_every_tool_over_websocket() {
    let server = server().await;
    let client = over_ws(&server, &server.key, ProtocolVersion::V_2025_06_18).await;
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_06_18
    );
    exercise(&server, &client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn both_protocol_versions_work_on_both_transports_and_scopes_hold() {
    let server = server().await;
    for version in [ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_11_25] {
        let http = over_http(&server, &server.reader, version.clone()).await;
        let ws = over_ws(&server, &server.reader, version.clone()).await;
        for client in [&http, &ws] {
            assert_eq!(client.peer_info().unwrap().protocol_version, version);
            // A read-only key reads, and is refused writes as a tool error.
            assert!(!call(client, "list_agents", json!({})).await.0);
            let (error, message) = call(client, "submit_task", json!({"kind": "x"})).await;
            assert!(error);
            assert_eq!(message["code"], "forbidden", "{message}");
            assert!(
                message["message"]
                    .as_str()
                    .unwrap()
                    .contains("create on tasks")
            );
        }
        http.cancel().await.unwrap();
        ws.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn unknown_methods_get_method_not_found_even_before_initialize() {
    let server = server().await;
    let http = reqwest::Client::new();
    let post = |body: Value, key: Option<&str>| {
        let mut request = http
            .post(format!("http://{}/mcp", server.addr))
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let response = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/teleport"}),
        Some(&server.key),
    )
    .await
    .unwrap();
    let reply: Value = response.json().await.unwrap();
    assert_eq!(
        reply,
        json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "method not found: tools/teleport"}})
    );
    // Credentials first.
    let response = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);

    // The same over WebSocket, before and after garbage.
    let mut connection = ws_connection(&server, &server.key).await;
    let sender = connection.sender();
    let mut replies = Vec::new();
    for text in [
        r#"{"jsonrpc":"2.0","id":"a","method":"prompts/list"}"#,
        "{not json",
        r#"{"jsonrpc":"2.0","id":2,"method":"nope"}"#,
    ] {
        sender.try_send_text(text).unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), connection.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Incoming::Text(reply) = reply else {
            panic!("a text reply")
        };
        replies.push(serde_json::from_str::<Value>(&reply).unwrap());
    }
    assert_eq!(replies[0]["id"], "a");
    assert_eq!(replies[0]["error"]["code"], -32601);
    assert_eq!(replies[1]["error"]["code"], -32700);
    assert_eq!(replies[2]["error"]["code"], -32601);
    // The connection still serves MCP afterwards.
    sender
        .try_send_text(json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}).to_string())
        .unwrap();
    let Incoming::Text(pong) = connection.recv().await.unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(serde_json::from_str::<Value>(&pong).unwrap()["id"], 3);
    sender.close(1000, "done");
}

/// What a surface did with a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Let in, and the operation on the tenant's record worked.
    Allowed,
    /// 401 (or the MCP equivalent): who is this?
    Unauthorized,
    /// 403, or a tool error with code `forbidden`: not allowed to.
    Forbidden,
    /// Let in, but the other tenant's record does not exist for it.
    Hidden,
}

/// How a credential is presented.
#[derive(Debug, Clone)]
enum Credential {
    None,
    Header(String),
    Query(String),
}

const JWT_SECRET: &str = "a-jwt-secret-of-at-least-32-bytes!";

struct Matrix {
    addr: SocketAddr,
    /// A pending task of the tenant, for REST and MCP to cancel.
    task: String,
    /// An agent of the tenant (registered, now offline), for the hub to resume.
    agent: uuid::Uuid,
}

fn status_seen(status: u16) -> Seen {
    match status {
        401 => Seen::Unauthorized,
        403 => Seen::Forbidden,
        404 => Seen::Hidden,
        200..=299 => Seen::Allowed,
        other => panic!("unexpected status {other}"),
    }
}

fn tool_seen(is_error: bool, body: &Value) -> Seen {
    match (is_error, body["code"].as_str()) {
        (false, _) => Seen::Allowed,
        (true, Some("forbidden")) => Seen::Forbidden,
        (true, Some("not_found")) => Seen::Hidden,
        (true, code) => panic!("unexpected tool error {code:?}: {body}"),
    }
}

/// The agent hub: connect and resume the tenant's agent.
async fn hub_probe(m: &Matrix, credential: &Credential) -> Seen {
    let base = format!("ws://{}/ws", m.addr);
    let config = match credential {
        Credential::None => ClientConfig::new(base),
        Credential::Header(key) => ClientConfig::new(base).api_key(key.clone()),
        Credential::Query(key) => ClientConfig::new(format!("{base}?api_key={key}")),
    };
    let mut connection = match connect(&config).await {
        Ok(c) => c,
        Err(mesh_protocol::Error::HandshakeRefused { status }) => return status_seen(status),
        Err(e) => panic!("{e}"),
    };
    let mut hello = mesh_protocol::Hello::new("matrix", ["x"]);
    hello.agent_id = Some(m.agent);
    connection.send(hello).await.unwrap();
    match connection.recv().await {
        Some(Ok(Incoming::Message(mesh_protocol::Message::Welcome(_)))) => Seen::Allowed,
        Some(Ok(Incoming::Message(mesh_protocol::Message::Error(e)))) => {
            assert_eq!(e.code, "registration_refused", "{e:?}");
            Seen::Hidden
        }
        other => panic!("{other:?}"),
    }
}

/// REST: cancel the tenant's task.
async fn rest_probe(m: &Matrix, credential: &Credential) -> Seen {
    let url = format!("http://{}/api/v1/tasks/{}/cancel", m.addr, m.task);
    let request = match credential {
        Credential::None => reqwest::Client::new().post(url),
        Credential::Header(key) => reqwest::Client::new().post(url).bearer_auth(key),
        Credential::Query(key) => reqwest::Client::new().post(format!("{url}?api_key={key}")),
    };
    status_seen(request.send().await.unwrap().status().as_u16())
}

/// MCP over Streamable HTTP: call `cancel_task` on the tenant's task.
async fn mcp_http_probe(m: &Matrix, credential: &Credential) -> Seen {
    let base = format!("http://{}/mcp", m.addr);
    let config = match credential {
        Credential::None => StreamableHttpClientTransportConfig::with_uri(base),
        Credential::Header(key) => {
            StreamableHttpClientTransportConfig::with_uri(base).auth_header(key.clone())
        }
        Credential::Query(key) => {
            StreamableHttpClientTransportConfig::with_uri(format!("{base}?api_key={key}"))
        }
    };
    let client = match client_info(ProtocolVersion::V_2025_11_25)
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
    {
        Ok(client) => client,
        // rmcp reports the 401 as a failed initialize.
        Err(_) => return Seen::Unauthorized,
    };
    let (is_error, body) = call(&client, "cancel_task", json!({"id": m.task})).await;
    client.cancel().await.unwrap();
    tool_seen(is_error, &body)
}

/// MCP over WebSocket: call `cancel_task` on the tenant's task.
async fn mcp_ws_probe(m: &Matrix, credential: &Credential) -> Seen {
    let base = format!("ws://{}/ws", m.addr);
    let config = match credential {
        Credential::None => ClientConfig::new(base),
        Credential::Header(key) => ClientConfig::new(base).api_key(key.clone()),
        Credential::Query(key) => ClientConfig::new(format!("{base}?api_key={key}")),
    }
    .subprotocols([Subprotocol::Mcp]);
    let connection = match connect(&config).await {
        Ok(c) => c,
        Err(mesh_protocol::Error::HandshakeRefused { status }) => return status_seen(status),
        Err(e) => panic!("{e}"),
    };
    let client = rmcp_over(connection, ProtocolVersion::V_2025_11_25).await;
    let (is_error, body) = call(&client, "cancel_task", json!({"id": m.task})).await;
    client.cancel().await.unwrap();
    tool_seen(is_error, &body)
}

/// One table — credential, and what each surface does with it (hub, REST, MCP over
/// Streamable HTTP, MCP over WebSocket) — run against all four, through the one gate.
#[tokio::test]
async fn the_auth_matrix_is_one_table_for_every_surface() {
    use Seen::*;
    let engine = Engine::start(common::fast_config(), mesh_core::MemoryStores::new())
        .await
        .unwrap();
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let key = |tenant, scopes: Vec<Scope>| {
        let engine = engine.clone();
        async move {
            let (key, _) = engine
                .create_api_key(tenant, "k", scopes, None)
                .await
                .unwrap();
            key
        }
    };
    let all = key(tenant, Scope::ALL.to_vec()).await;
    let reader = key(tenant, vec![Scope::Read]).await;
    let stranger = key(other, Scope::ALL.to_vec()).await;
    let services = Services::in_memory(engine.clone());
    let config = AppConfig::default().jwt_secret(JWT_SECRET).query_keys(true);
    let (addr, _server) = common::serve_app(services, config).await;
    let task = engine
        .submit(
            tenant,
            mesh_core::TaskSpec::new("nobody-does-this", json!({})),
        )
        .await
        .unwrap();
    // Register the tenant's agent once, then let it go offline.
    let registered = {
        let base = format!("ws://{addr}/ws");
        let mut connection = connect(&ClientConfig::new(base).api_key(all.clone()))
            .await
            .unwrap();
        connection
            .send(mesh_protocol::Hello::new("matrix", ["x"]))
            .await
            .unwrap();
        let Some(Ok(Incoming::Message(mesh_protocol::Message::Welcome(w)))) =
            connection.recv().await
        else {
            panic!("welcome")
        };
        w.agent_id
    };
    let m = Matrix {
        addr,
        task: task.id.to_string(),
        agent: registered,
    };
    let later = chrono::Utc::now().timestamp() + 600;
    let jwt = |secret: &str, exp: i64| {
        mesh_core::http::sign_jwt(
            &json!({"tenant_id": tenant, "scopes": ["read", "write", "agent"], "exp": exp, "sub": "matrix"}),
            secret.as_bytes(),
        )
    };
    let header = Credential::Header;
    let table: Vec<(&str, Credential, [Seen; 4])> = vec![
        ("no credentials", Credential::None, [Unauthorized; 4]),
        (
            "an unknown key",
            header("mesh_nobody-has-this-key".into()),
            [Unauthorized; 4],
        ),
        (
            "an expired JWT",
            header(jwt(JWT_SECRET, 1)),
            [Unauthorized; 4],
        ),
        (
            "a forged JWT",
            header(jwt("another-secret-another-secret-!!", later)),
            [Unauthorized; 4],
        ),
        (
            "the tenant's JWT",
            header(jwt(JWT_SECRET, later)),
            [Allowed; 4],
        ),
        ("the tenant's key", header(all.clone()), [Allowed; 4]),
        ("a read-only key", header(reader), [Forbidden; 4]),
        ("another tenant's key", header(stranger), [Hidden; 4]),
        // Only WebSocket upgrades read the query string (allowed on this server).
        (
            "the key in the query",
            Credential::Query(all),
            [Allowed, Unauthorized, Unauthorized, Allowed],
        ),
    ];
    let mut failures = Vec::new();
    for (name, credential, expected) in &table {
        let seen = [
            hub_probe(&m, credential).await,
            rest_probe(&m, credential).await,
            mcp_http_probe(&m, credential).await,
            mcp_ws_probe(&m, credential).await,
        ];
        if seen != *expected {
            failures.push(format!("{name}: expected {expected:?}, saw {seen:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "hub, REST, MCP/HTTP, MCP/WS:\n{}",
        failures.join("\n")
    );
}

/// The official Python MCP SDK's WebSocket client (it cannot set headers) connects with
/// the key in the query string and uses the tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_mcp_sdk_connects_over_websocket_with_the_key_in_the_query() {
    let Some(python) = common::test_python() else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_ws_client.py");
    let server = server_with(AppConfig::default().query_keys(true)).await;
    let _agent = common::echo_agent_at(
        &format!("ws://{}/ws", server.addr),
        &server.key,
        "py-echo",
        &["echo"],
    );
    let url = format!("ws://{}/ws?api_key={}", server.addr, server.key);
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(&url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["server"], "mesh");
    assert_eq!(seen["tools"].as_array().unwrap().len(), 26, "{seen}");
    assert_eq!(seen["task"]["status"], "completed", "{seen}");
    assert_eq!(seen["task"]["output"]["input"], json!({"from": "python"}));
    assert_eq!(seen["bad"]["is_error"], true);
    assert_eq!(seen["bad"]["content"]["code"], "invalid_request");
}

/// Hardening issue, item 3: `/mcp` and the MCP WebSocket upgrade accepted any `Origin`
/// (DNS rebinding); now a browser origin must be loopback or allowed.
#[tokio::test]
async fn hardening_3_mcp_refuses_a_foreign_origin() {
    let server = server().await;
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "browser", "version": "1"}}});
    let post = |origin: &'static str| {
        http.post(format!("http://{}/mcp", server.addr))
            .header("accept", "application/json, text/event-stream")
            .header("origin", origin)
            .bearer_auth(&server.key)
            .json(&initialize)
            .send()
    };
    let refused = post("http://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "forbidden_origin");
    assert_eq!(post("http://localhost:5173").await.unwrap().status(), 200);
    // The WebSocket upgrade, with the same key: refused before it happens.
    let upgrade = http
        .get(format!("http://{}/ws", server.addr))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "mcp")
        .header("origin", "http://evil.example")
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 403);
    // Clients that send no Origin (not browsers) are unaffected: the rest of this file.
    let client = over_ws(&server, &server.key, ProtocolVersion::V_2025_11_25).await;
    assert!(!call(&client, "list_agents", json!({})).await.0);
}

/// Hardening issue, item 19: every server read API keys from the query string of
/// WebSocket upgrades, where URLs land in proxy and access logs. Now only when allowed.
#[tokio::test]
async fn hardening_19_keys_in_the_query_are_refused_unless_allowed() {
    let server = server().await;
    for subprotocols in [vec![Subprotocol::MeshV1], vec![Subprotocol::Mcp]] {
        let url = format!("ws://{}/ws?api_key={}", server.addr, server.key);
        let refused = connect(&ClientConfig::new(url).subprotocols(subprotocols.clone())).await;
        assert!(
            matches!(
                refused,
                Err(mesh_protocol::Error::HandshakeRefused { status: 401 })
            ),
            "{subprotocols:?}: {:?}",
            refused.err()
        );
        // The same key in a header is fine.
        let url = format!("ws://{}/ws", server.addr);
        let config = ClientConfig::new(url)
            .api_key(server.key.clone())
            .subprotocols(subprotocols);
        assert!(connect(&config).await.is_ok());
    }
}

/// The workflow tools: register, start, wait on an interrupt, resume, follow to the end,
/// history, fork, list; and the operations a finished run refuses.
async fn exercise_workflows(client: &Client) {
    let definition = json!({"name": "review", "state": {"doc": {}, "ok": {}, "echoed": {}},
    "steps": [
        {"name": "approve", "wait": {"interrupt": {"prompt": "ship?"}}, "output": "ok", "next": "echo"},
        {"name": "echo", "task": {"kind": "echo"}, "input": {"$state": "/doc"}, "output": "echoed"}
    ]});
    let (error, registered) = call(
        client,
        "register_workflow",
        json!({"definition": definition}),
    )
    .await;
    assert!(!error, "{registered}");
    assert_eq!(registered["version"], 1);
    let (error, run) = call(
        client,
        "start_workflow",
        json!({"workflow": "review", "input": {"doc": "d"}}),
    )
    .await;
    assert!(!error, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let waiting = loop {
        let (_, run) = call(client, "get_workflow", json!({"id": id})).await;
        if run["status"] == "waiting" {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let interrupt = waiting["interrupts"][0]["id"].as_str().unwrap().to_owned();
    let (error, _) = call(
        client,
        "resume_workflow",
        json!({"id": id, "interrupt": interrupt, "value": true}),
    )
    .await;
    assert!(!error);
    let done = loop {
        let (_, run) = call(client, "get_workflow", json!({"id": id})).await;
        if run["status"] == "succeeded" {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(done["output"]["ok"], true);
    assert_eq!(done["output"]["echoed"]["input"], "d");
    let (error, history) = call(client, "workflow_history", json!({"id": id})).await;
    assert!(!error);
    assert_eq!(history["entries"].as_array().unwrap().len(), 3);
    let (error, fork) = call(
        client,
        "fork_workflow",
        json!({"id": id, "seq": 1, "patch": {"doc": "e"}}),
    )
    .await;
    assert!(!error, "{fork}");
    assert_eq!(fork["forked_from"]["run"], id.as_str());
    let (error, listed) = call(client, "list_workflows", json!({"workflow": "review"})).await;
    assert!(!error);
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    for tool in ["cancel_workflow", "retry_workflow"] {
        let (error, refused) = call(client, tool, json!({"id": id})).await;
        assert!(error, "{tool}: {refused}");
        assert_eq!(refused["code"], "conflict");
    }
    let (error, refused) = call(client, "signal_workflow", json!({"id": id, "name": "late"})).await;
    assert!(error);
    assert_eq!(refused["code"], "conflict");
}
