//! Roles, permissions and the audit log over real HTTP: every built-in role against
//! every REST route, MCP tool and the agent hub; `tools/list` against what each role
//! can call; a custom role with one tool pattern; the audit trail of a scripted
//! session; tampering found on SQLite and PostgreSQL; tenants kept apart.
//!
//! The expected permissions below are written out by hand from `docs/security.md`,
//! not taken from the code under test.
//!
//! Long on purpose: one binary and one server fixture for the whole permission model,
//! with the hand-written tables (routes, MCP tools, roles) every case checks against.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::testing as common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use mesh_core::app::AppConfig;
use mesh_core::domain::{AuditEntry, Break, Decision};
use mesh_core::services::Services;
use mesh_core::tools::{ToolAction, ToolAdapter, ToolError, ToolRegistry};
use mesh_core::{Engine, Scope, Stores, TenantId};
use mesh_embed::BoxFuture;
use mesh_protocol::ws::{ClientConfig, Incoming, connect};
use mesh_store::Repository;
use reqwest::{Method, StatusCode};
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig as McpClientConfig, Implementation,
    ReadResourceRequestParams,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

/// A tool that answers its own name: enough to tell a call that ran from one refused.
struct Named(&'static str);

impl ToolAdapter for Named {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "answers its name"
    }
    fn capabilities(&self) -> Vec<String> {
        Vec::new()
    }
    fn actions(&self) -> Vec<ToolAction> {
        vec![ToolAction::new(
            "name",
            "its name",
            json!({"type": "object"}),
        )]
    }
    fn execute<'a>(
        &'a self,
        _action: &'a str,
        _input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move { Ok(json!(self.0)) })
    }
}

const TOOLS: [&str; 3] = ["git-log", "github", "calc"];
const ROLES: [&str; 5] = ["admin", "operator", "developer", "viewer", "agent"];

struct Fixture {
    addr: SocketAddr,
    http: reqwest::Client,
    tenant: TenantId,
    /// A key per built-in role, then the custom role `git-runner`.
    keys: Vec<(&'static str, String)>,
    other_admin: String,
}

async fn fixture_on<S: Stores>(stores: S) -> Fixture {
    let engine = Engine::start(common::fast_config(), stores).await.unwrap();
    let tenant = TenantId::new();
    let mut services = Services::in_memory(engine.clone());
    let mut tools = ToolRegistry::new();
    for name in TOOLS {
        tools.register(Named(name));
    }
    services.tools = tools.into();
    let mut config = AppConfig::default().operator_tenant(tenant);
    config.gate.failures_per_address = (1e6, 1e6);
    let (addr, _server) = common::serve_app(services, config).await;
    let mut keys = Vec::new();
    for role in ROLES {
        let (key, _) = engine
            .create_api_key_with_roles(tenant, role, vec![], vec![role.into()], None)
            .await
            .unwrap();
        keys.push((role, key));
    }
    let (other_admin, _) = engine
        .create_api_key(TenantId::new(), "other", vec![Scope::Admin], None)
        .await
        .unwrap();
    let f = Fixture {
        addr,
        http: reqwest::Client::new(),
        tenant,
        keys,
        other_admin,
    };
    // The custom role, defined and handed out over REST by the admin.
    let git = json!({"permissions": [
        {"resource": "tools", "actions": ["read", "execute"], "names": "git*"}
    ]});
    let (status, _) = f
        .call(
            Method::PUT,
            "/api/v1/roles/git-runner",
            f.key("admin"),
            Some(git),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, made) = f
        .call(
            Method::POST,
            "/api/v1/keys",
            f.key("admin"),
            Some(json!({"name": "git", "roles": ["git-runner"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let git_key = made["key"].as_str().unwrap().to_owned();
    Fixture {
        keys: [f.keys, vec![("git-runner", git_key)]].concat(),
        ..f
    }
}

impl Fixture {
    fn key(&self, role: &str) -> &str {
        &self.keys.iter().find(|(r, _)| *r == role).unwrap().1
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if path == "/api/v1/events" && status.is_success() {
            return (status, Value::Null); // a stream that never ends
        }
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn mcp(
        &self,
        key: &str,
    ) -> rmcp::service::RunningService<rmcp::RoleClient, McpClientConfig> {
        let config =
            StreamableHttpClientTransportConfig::with_uri(format!("http://{}/mcp", self.addr))
                .auth_header(key.to_owned());
        McpClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("access-tests", "0.1.0"),
        )
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
    }
}

/// What each built-in role may do, as `docs/security.md` states it:
/// `(action, resource)` pairs.
fn allowed(role: &str, action: &str, resource: &str) -> bool {
    let work = [
        "agents",
        "tasks",
        "workflows",
        "definitions",
        "tools",
        "documents",
    ]
    .contains(&resource);
    match role {
        "admin" => true,
        "operator" => work || (resource == "audit" && action == "read"),
        "developer" => {
            (work && action == "read")
                || (["tasks", "workflows", "definitions", "documents"].contains(&resource)
                    && ["create", "update"].contains(&action))
                || (resource == "tools" && action == "execute")
        }
        "viewer" => work && action == "read",
        "agent" => resource == "agents" && action == "connect",
        _ => unreachable!(),
    }
}

/// Every REST route under `/api/v1` with what it needs. Ids are unknown ones: an
/// allowed call answers 404 or 400, never 403.
fn routes() -> Vec<(Method, String, Option<Value>, &'static str, &'static str)> {
    let id = uuid::Uuid::now_v7();
    let p = |method: Method, path: &str, body: Option<Value>, action, resource| {
        (
            method,
            path.replace("{id}", &id.to_string()),
            body,
            action,
            resource,
        )
    };
    vec![
        p(
            Method::POST,
            "/api/v1/tasks",
            Some(json!({"kind": "k", "input": {}})),
            "create",
            "tasks",
        ),
        p(Method::GET, "/api/v1/tasks", None, "read", "tasks"),
        p(Method::GET, "/api/v1/tasks/{id}", None, "read", "tasks"),
        p(
            Method::POST,
            "/api/v1/tasks/{id}/cancel",
            None,
            "update",
            "tasks",
        ),
        p(
            Method::POST,
            "/api/v1/collab",
            Some(json!({"pattern": "pipeline", "stages": ["x"], "wait_ms": 0})),
            "create",
            "tasks",
        ),
        p(Method::GET, "/api/v1/collab/{id}", None, "read", "tasks"),
        p(
            Method::POST,
            "/api/v1/collab/{id}/cancel",
            None,
            "update",
            "tasks",
        ),
        p(Method::GET, "/api/v1/agents", None, "read", "agents"),
        p(Method::GET, "/api/v1/agents/usage", None, "read", "agents"),
        p(Method::GET, "/api/v1/agents/{id}", None, "read", "agents"),
        p(
            Method::DELETE,
            "/api/v1/agents/{id}",
            None,
            "delete",
            "agents",
        ),
        p(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "n", "scopes": ["read"]})),
            "create",
            "keys",
        ),
        p(Method::GET, "/api/v1/keys", None, "read", "keys"),
        p(Method::DELETE, "/api/v1/keys/{id}", None, "delete", "keys"),
        p(Method::GET, "/api/v1/roles", None, "read", "roles"),
        p(Method::GET, "/api/v1/roles/viewer", None, "read", "roles"),
        p(
            Method::PUT,
            "/api/v1/roles/readers",
            Some(json!({"permissions": [{"resource": "tasks", "actions": ["read"]}]})),
            "update",
            "roles",
        ),
        p(
            Method::DELETE,
            "/api/v1/roles/nobody",
            None,
            "delete",
            "roles",
        ),
        p(Method::GET, "/api/v1/audit", None, "read", "audit"),
        p(Method::GET, "/api/v1/audit/verify", None, "read", "audit"),
        p(Method::GET, "/api/v1/tool-sources", None, "read", "tools"),
        p(Method::GET, "/api/v1/tool-sources/x", None, "read", "tools"),
        p(
            Method::PUT,
            "/api/v1/tool-sources/x",
            Some(json!({"kind": "mcp"})),
            "update",
            "tools",
        ),
        p(
            Method::DELETE,
            "/api/v1/tool-sources/x",
            None,
            "delete",
            "tools",
        ),
        p(Method::GET, "/api/v1/events", None, "read", "tasks"),
        p(Method::GET, "/api/v1/overview", None, "read", "tasks"),
        p(
            Method::POST,
            "/api/v1/embeddings",
            Some(json!({"texts": ["a"]})),
            "read",
            "documents",
        ),
        p(
            Method::POST,
            "/api/v1/documents",
            Some(json!({"collection": "c", "document_id": "d", "text": "t"})),
            "create",
            "documents",
        ),
        p(
            Method::POST,
            "/api/v1/search",
            Some(json!({"collection": "c", "query": "q"})),
            "read",
            "documents",
        ),
        p(
            Method::POST,
            "/api/v1/shared-docs",
            Some(json!({"name": "notes", "kind": "text"})),
            "create",
            "documents",
        ),
        p(
            Method::GET,
            "/api/v1/shared-docs",
            None,
            "read",
            "documents",
        ),
        p(
            Method::GET,
            "/api/v1/shared-docs/{id}",
            None,
            "read",
            "documents",
        ),
        p(
            Method::POST,
            "/api/v1/shared-docs/{id}/edits",
            Some(json!({"edits": []})),
            "update",
            "documents",
        ),
        p(
            Method::DELETE,
            "/api/v1/shared-docs/{id}",
            None,
            "delete",
            "documents",
        ),
        p(
            Method::GET,
            "/api/v1/shared-docs/{id}/events",
            None,
            "read",
            "documents",
        ),
        p(Method::GET, "/api/v1/tools", None, "read", "tools"),
        p(
            Method::POST,
            "/api/v1/tools/calc/execute",
            Some(json!({"action": "name"})),
            "execute",
            "tools",
        ),
        p(
            Method::POST,
            "/api/v1/workflow-definitions",
            Some(
                json!({"name": "nap", "state": {}, "steps": [{"name": "z", "wait": {"timer": {"ms": 1}}}]}),
            ),
            "create",
            "definitions",
        ),
        p(
            Method::GET,
            "/api/v1/workflow-definitions",
            None,
            "read",
            "definitions",
        ),
        p(
            Method::GET,
            "/api/v1/workflow-definitions/nothing",
            None,
            "read",
            "definitions",
        ),
        p(
            Method::POST,
            "/api/v1/workflows",
            Some(json!({"workflow": "nap"})),
            "create",
            "workflows",
        ),
        p(Method::GET, "/api/v1/workflows", None, "read", "workflows"),
        p(
            Method::POST,
            "/api/v1/workflows/prune",
            Some(json!({})),
            "delete",
            "workflows",
        ),
        p(
            Method::GET,
            "/api/v1/workflows/{id}",
            None,
            "read",
            "workflows",
        ),
        p(
            Method::POST,
            "/api/v1/workflows/{id}/cancel",
            None,
            "update",
            "workflows",
        ),
        p(
            Method::POST,
            "/api/v1/workflows/{id}/signal",
            Some(json!({"name": "go"})),
            "update",
            "workflows",
        ),
        p(
            Method::POST,
            "/api/v1/workflows/{id}/resume",
            Some(json!({"interrupt": uuid::Uuid::nil()})),
            "update",
            "workflows",
        ),
        p(
            Method::POST,
            "/api/v1/workflows/{id}/retry",
            None,
            "update",
            "workflows",
        ),
        p(
            Method::GET,
            "/api/v1/workflows/{id}/history",
            None,
            "read",
            "workflows",
        ),
        p(
            Method::POST,
            "/api/v1/workflows/{id}/fork",
            Some(json!({"seq": 0})),
            "update",
            "workflows",
        ),
        p(
            Method::GET,
            "/api/v1/workflows/{id}/events",
            None,
            "read",
            "workflows",
        ),
    ]
}

/// What each MCP tool needs, written out here independently of the server's table.
const MCP_TOOLS: [(&str, &str, &str); 26] = [
    ("list_agents", "read", "agents"),
    ("submit_task", "create", "tasks"),
    ("get_task", "read", "tasks"),
    ("cancel_task", "update", "tasks"),
    ("run_collab", "create", "tasks"),
    ("get_collab_job", "read", "tasks"),
    ("cancel_collab_job", "update", "tasks"),
    ("index_document", "create", "documents"),
    ("search", "read", "documents"),
    ("create_shared_doc", "create", "documents"),
    ("list_shared_docs", "read", "documents"),
    ("read_shared_doc", "read", "documents"),
    ("edit_shared_doc", "update", "documents"),
    ("delete_shared_doc", "delete", "documents"),
    ("execute_tool", "execute", "tools"),
    ("register_workflow", "create", "definitions"),
    ("start_workflow", "create", "workflows"),
    ("get_workflow", "read", "workflows"),
    ("list_workflows", "read", "workflows"),
    ("cancel_workflow", "update", "workflows"),
    ("signal_workflow", "update", "workflows"),
    ("resume_workflow", "update", "workflows"),
    ("retry_workflow", "update", "workflows"),
    ("workflow_history", "read", "workflows"),
    ("fork_workflow", "update", "workflows"),
    ("register_mcp_server", "update", "tools"),
];

#[tokio::test]
async fn every_role_against_every_rest_route() {
    let f = fixture_on(mesh_core::MemoryStores::new()).await;
    let mut checked = 0;
    for role in ROLES {
        for (method, path, body, action, resource) in routes() {
            let (status, answer) = f.call(method.clone(), &path, f.key(role), body).await;
            let expected = allowed(role, action, resource);
            if expected {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{role} {method} {path}: {status} {answer}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} {method} {path}: {answer}"
                );
                assert_eq!(answer["code"], "forbidden", "{role} {method} {path}");
            }
            checked += 1;
        }
        // Tenants are the operator's admins' alone.
        let (status, _) = f
            .call(Method::GET, "/api/v1/tenants", f.key(role), None)
            .await;
        let operator_admin = role == "admin";
        assert_eq!(
            status.is_success(),
            operator_admin,
            "{role} tenants: {status}"
        );
    }
    assert_eq!(checked, ROLES.len() * routes().len());
    // Nobody hands on more than they hold: an operator's key cannot make an admin key.
    let admin_key = json!({"name": "up", "roles": ["admin"]});
    let (status, _) = f
        .call(
            Method::POST,
            "/api/v1/keys",
            f.key("admin"),
            Some(json!({"name": "op-maker", "roles": ["operator"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = f
        .call(
            Method::POST,
            "/api/v1/keys",
            f.key("operator"),
            Some(admin_key),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Unknown roles are named as such.
    let (status, body) = f
        .call(
            Method::POST,
            "/api/v1/keys",
            f.key("admin"),
            Some(json!({"name": "x", "roles": ["ghost"]})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn every_role_against_every_mcp_tool_resource_and_the_hub() {
    let f = fixture_on(mesh_core::MemoryStores::new()).await;
    let all: Vec<&str> = [&ROLES[..], &["git-runner"]].concat();
    for role in all {
        let client = f.mcp(f.key(role)).await;
        let listed: BTreeSet<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let mut callable = BTreeSet::new();
        for (tool, action, resource) in MCP_TOOLS {
            let arguments = if tool == "execute_tool" {
                json!({"tool": "github", "action": "name"})
            } else {
                json!({})
            };
            let result = client
                .call_tool(
                    CallToolRequestParams::new(tool)
                        .with_arguments(arguments.as_object().unwrap().clone()),
                )
                .await
                .unwrap();
            let body = result.structured_content.clone().unwrap_or(Value::Null);
            let refused = result.is_error == Some(true) && body["code"] == "forbidden";
            let expected = if role == "git-runner" {
                tool == "execute_tool"
            } else {
                allowed(role, action, resource)
            };
            assert_eq!(!refused, expected, "{role} {tool}: {body}");
            if !refused {
                callable.insert(tool.to_owned());
            }
        }
        assert_eq!(listed, callable, "{role}: tools/list is what it can call");

        // Resources: resources/list and resources/templates/list show what
        // resources/read serves this caller.
        let mut readable = BTreeSet::new();
        for (uri, resource) in [("mesh://agents", "agents"), ("mesh://tasks", "tasks")] {
            let read = client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await;
            let expected = role != "git-runner" && allowed(role, "read", resource);
            assert_eq!(read.is_ok(), expected, "{role} reads {uri}: {read:?}");
            if read.is_ok() {
                readable.insert(uri.to_owned());
            }
        }
        let resources: BTreeSet<String> = client
            .list_all_resources()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.uri.clone())
            .collect();
        assert_eq!(
            resources, readable,
            "{role}: resources/list is what it can read"
        );
        let templates = client.list_all_resource_templates().await.unwrap();
        assert_eq!(
            !templates.is_empty(),
            readable.contains("mesh://tasks"),
            "{role}: the task template"
        );
        client.cancel().await.unwrap();

        // The hub: only roles that connect agents get a session.
        let config = ClientConfig::new(format!("ws://{}/ws", f.addr)).api_key(f.key(role));
        let connected = match connect(&config).await {
            Ok(mut connection) => {
                connection
                    .send(mesh_protocol::Hello::new("probe", ["x"]))
                    .await
                    .unwrap();
                matches!(
                    connection.recv().await,
                    Some(Ok(Incoming::Message(mesh_protocol::Message::Welcome(_))))
                )
            }
            Err(mesh_protocol::Error::HandshakeRefused { status }) => {
                assert_eq!(status, 403, "{role}");
                false
            }
            Err(e) => panic!("{e}"),
        };
        let connects = role != "git-runner" && allowed(role, "connect", "agents");
        assert_eq!(connected, connects, "{role} on the hub");
    }
}

#[tokio::test]
async fn a_custom_role_with_one_tool_pattern_sees_and_runs_only_matching_tools() {
    let f = fixture_on(mesh_core::MemoryStores::new()).await;
    let key = f.key("git-runner");
    let (_, tools) = f.call(Method::GET, "/api/v1/tools", key, None).await;
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["git-log", "github"]);
    let run = |tool: &str| format!("/api/v1/tools/{tool}/execute");
    let (status, out) = f
        .call(
            Method::POST,
            &run("github"),
            key,
            Some(json!({"action": "name"})),
        )
        .await;
    assert_eq!(
        (status, out["output"].clone()),
        (StatusCode::OK, json!("github"))
    );
    let (status, out) = f
        .call(
            Method::POST,
            &run("calc"),
            key,
            Some(json!({"action": "name"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{out}");
    // Over MCP: execute_tool runs github, not calc.
    let client = f.mcp(key).await;
    for (tool, runs) in [("github", true), ("calc", false)] {
        let result = client
            .call_tool(
                CallToolRequestParams::new("execute_tool").with_arguments(
                    json!({"tool": tool, "action": "name"})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            )
            .await
            .unwrap();
        assert_eq!(result.is_error != Some(true), runs, "{tool}: {result:?}");
    }
    client.cancel().await.unwrap();
    // Narrowed, the role takes effect at once for keys already holding it.
    let narrower = json!({"permissions": [{"resource": "tools", "actions": ["read", "execute"], "names": "git-*"}]});
    let (status, _) = f
        .call(
            Method::PUT,
            "/api/v1/roles/git-runner",
            f.key("admin"),
            Some(narrower),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, tools) = f.call(Method::GET, "/api/v1/tools", key, None).await;
    assert_eq!(tools.as_array().unwrap().len(), 1, "{tools}");
}

/// The (actor, action, resource, decision) of the tenant's records, oldest first.
async fn trail(f: &Fixture, key: &str, query: &str) -> Vec<(String, String, String, String)> {
    let (status, page) = f
        .call(Method::GET, &format!("/api/v1/audit{query}"), key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut records: Vec<_> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("actor"), s("action"), s("resource"), s("decision"))
        })
        .collect();
    records.reverse();
    records
}

#[tokio::test]
async fn a_scripted_session_leaves_exactly_its_trail_and_tenants_see_only_theirs() {
    let f = fixture_on(mesh_core::MemoryStores::new()).await;
    let (admin, viewer) = (f.key("admin"), f.key("viewer"));
    let whoami = |key: &str| {
        let key = key.to_owned();
        let f = &f;
        async move {
            // The subject of a key is `key:<id>`; find it through the key list.
            let (_, keys) = f
                .call(Method::GET, "/api/v1/keys", f.key("admin"), None)
                .await;
            let name = f.keys.iter().find(|(_, k)| *k == key).unwrap().0;
            let id = keys["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["name"] == name)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            format!("key:{id}")
        }
    };
    let (admin_id, viewer_id) = (whoami(admin).await, whoami(viewer).await);
    let before = trail(&f, admin, "?limit=1000").await.len();

    let (_, task) = f
        .call(
            Method::POST,
            "/api/v1/tasks",
            admin,
            Some(json!({"kind": "k", "input": {}})),
        )
        .await;
    let task = task["id"].as_str().unwrap().to_owned();
    f.call(
        Method::POST,
        &format!("/api/v1/tasks/{task}/cancel"),
        admin,
        None,
    )
    .await;
    let (status, _) = f
        .call(
            Method::POST,
            "/api/v1/tasks",
            viewer,
            Some(json!({"kind": "k", "input": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, key) = f
        .call(
            Method::POST,
            "/api/v1/keys",
            admin,
            Some(json!({"name": "temp"})),
        )
        .await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    f.call(
        Method::DELETE,
        &format!("/api/v1/keys/{key_id}"),
        admin,
        None,
    )
    .await;
    f.call(
        Method::POST,
        "/api/v1/tools/calc/execute",
        admin,
        Some(json!({"action": "name"})),
    )
    .await;
    let (status, _) = f
        .call(Method::GET, "/api/v1/tasks", "mesh_not-a-key", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let client = f.mcp(admin).await;
    client
        .call_tool(
            CallToolRequestParams::new("submit_task").with_arguments(
                json!({"kind": "k", "input": {}})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    client.cancel().await.unwrap();

    let s = |x: &str| x.to_owned();
    let expected = vec![
        (
            s(&admin_id),
            s("tasks.create"),
            format!("tasks:{task}"),
            s("allowed"),
        ),
        (
            s(&admin_id),
            s("tasks.cancel"),
            format!("tasks:{task}"),
            s("allowed"),
        ),
        (
            s(&viewer_id),
            s("tasks.create"),
            s("/api/v1/tasks"),
            s("refused"),
        ),
        (
            s(&admin_id),
            s("keys.create"),
            format!("keys:{key_id}"),
            s("allowed"),
        ),
        (
            s(&admin_id),
            s("keys.delete"),
            format!("keys:{key_id}"),
            s("allowed"),
        ),
        (
            s(&admin_id),
            s("tools.execute"),
            s("tools:calc"),
            s("allowed"),
        ),
        (
            s("anonymous"),
            s("tasks.read"),
            s("/api/v1/tasks"),
            s("refused"),
        ),
        (s(&admin_id), s("mcp.submit_task"), s("tasks"), s("allowed")),
    ];
    // Refusals are written without waiting: wait for the last one to land.
    let mut got = Vec::new();
    for _ in 0..200 {
        got = trail(&f, admin, "?limit=1000").await.split_off(before);
        if got.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(got, expected);
    // Filters: refusals only; one actor's.
    let refused = trail(&f, admin, "?decision=refused&limit=1000").await;
    assert!(refused.iter().all(|r| r.3 == "refused") && refused.len() >= 2);
    let viewers = trail(&f, admin, &format!("?actor={viewer_id}")).await;
    assert_eq!(viewers, vec![expected[2].clone()]);
    let (_, verified) = f
        .call(Method::GET, "/api/v1/audit/verify", admin, None)
        .await;
    assert_eq!(verified["ok"], true, "{verified}");
    // Another tenant's admin sees its own log only.
    let theirs = trail(&f, &f.other_admin, "?limit=1000").await;
    assert!(
        theirs.iter().all(|r| r.0 != admin_id && r.0 != viewer_id),
        "{theirs:?}"
    );
    let (_, verified) = f
        .call(Method::GET, "/api/v1/audit/verify", &f.other_admin, None)
        .await;
    assert_eq!(verified["ok"], true);
    assert!(verified["records"].as_u64().unwrap() < got.len() as u64);
    // And a viewer may not read the log.
    let (status, _) = f.call(Method::GET, "/api/v1/audit", viewer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let _ = f.tenant;
}

/// Alters one stored record and deletes another, through the store itself; the
/// verification reports both, the first first.
async fn tampering_is_found<S: Stores + Clone>(stores: S) {
    let engine = Engine::start(common::fast_config(), stores.clone())
        .await
        .unwrap();
    let access = mesh_core::access::Access::new(&engine);
    let tenant = TenantId::new().to_string();
    for i in 0..10 {
        let entry = AuditEntry::new(
            "key:1",
            "tasks.create",
            format!("tasks:{i}"),
            Decision::Allowed,
            None,
        );
        access.audit.record(&tenant, entry).await.unwrap();
    }
    assert!(access.audit.verify(&tenant).await.unwrap().ok);
    let audit = stores.audit();
    let page = audit
        .list(&tenant, &mesh_store::Query::new())
        .await
        .unwrap();
    let third = page.items.iter().find(|v| v.record.seq == 3).unwrap();
    let mut altered = third.record.clone();
    altered.resource = "tasks:forged".into();
    audit
        .update(&tenant, &altered, third.version)
        .await
        .unwrap();
    let sixth = page.items.iter().find(|v| v.record.seq == 6).unwrap();
    assert!(audit.delete(&tenant, sixth.record.id).await.unwrap());
    let verified = access.audit.verify(&tenant).await.unwrap();
    assert!(!verified.ok);
    let breaks: Vec<(u64, Break)> = verified.breaks.iter().map(|b| (b.seq, b.problem)).collect();
    assert_eq!(breaks, vec![(3, Break::Altered), (6, Break::Missing)]);
    assert_eq!(verified.first_break.map(|b| b.seq), Some(3));
    // Deleting the tail shows too: the head still counts it.
    let last = page.items.iter().find(|v| v.record.seq == 10).unwrap();
    audit.delete(&tenant, last.record.id).await.unwrap();
    let verified = access.audit.verify(&tenant).await.unwrap();
    assert_eq!(
        verified.breaks.last().map(|b| (b.seq, b.problem)),
        Some((10, Break::Missing))
    );
}

#[tokio::test]
async fn tampering_with_the_log_is_found_on_sqlite() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("audit-{}.db", uuid::Uuid::now_v7().simple()));
    let store = mesh_store::SqliteStore::open(&path).await.unwrap();
    tampering_is_found(mesh_core::SqliteStores::new(store).await.unwrap()).await;
}

#[tokio::test]
async fn tampering_with_the_log_is_found_on_postgres() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    tampering_is_found(common::pg_stores(&url).await).await;
}
