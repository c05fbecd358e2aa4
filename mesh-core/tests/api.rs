//! The REST API over real HTTP on loopback: auth matrix, tenants, the task lifecycle
//! with a real agent, typed errors, documents through the worker, the GitHub tool
//! against a local HTTP server, and the OpenAPI document.
//!
//! Long on purpose: one binary, so the REST surface builds and serves once for all of
//! its cases, on one server fixture and one route table; each case is a route family
//! (tasks, keys and tenants, workflows, the live feed) or a cross-cutting rule (auth,
//! errors).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::testing as common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_core::app::AppConfig;
use mesh_core::http::sign_jwt;
use mesh_core::services::Services;
use mesh_core::tools::{GitHubAdapter, ToolRegistry};
use mesh_core::worker::{WorkerConfig, run_worker};
use mesh_core::{Engine, Scope, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Api {
    addr: SocketAddr,
    http: reqwest::Client,
    engine: Engine,
    services: Services,
    tenant: TenantId,
    admin: String,
    reader: String,
    other_tenant_admin: String,
}

const JWT_SECRET: &str = "test-secret-test-secret-test-secret";

async fn api_with(config: AppConfig, tools: ToolRegistry) -> Api {
    let engine = Engine::start(common::fast_config(), mesh_core::MemoryStores::new())
        .await
        .unwrap();
    let mut services = Services::in_memory(engine.clone());
    let config_tools = mesh_core::tools::ToolsConfig::default();
    services.tools = mesh_core::tools::Tools::start(&engine, tools, config_tools);
    let tenant = TenantId::new();
    let key = |tenant, scopes: Vec<Scope>| {
        let engine = engine.clone();
        async move {
            engine
                .create_api_key(tenant, "k", scopes, None)
                .await
                .unwrap()
                .0
        }
    };
    let admin = key(tenant, vec![Scope::Admin]).await;
    let reader = key(tenant, vec![Scope::Read]).await;
    let other_tenant_admin = key(TenantId::new(), vec![Scope::Admin]).await;
    let mut config = config.jwt_secret(JWT_SECRET).operator_tenant(tenant);
    // The auth matrix fails credentials on purpose, more often than an address may.
    config.gate.failures_per_address = (1e6, 1e6);
    let (addr, _server) = common::serve_app(services.clone(), config).await;
    Api {
        addr,
        http: reqwest::Client::new(),
        engine,
        services,
        tenant,
        admin,
        reader,
        other_tenant_admin,
    }
}

async fn api() -> Api {
    api_with(AppConfig::default(), ToolRegistry::new()).await
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let endless = path == "/api/v1/events"
            || (path.starts_with("/api/v1/shared-docs/") && path.ends_with("/events"));
        if status.is_success() && endless {
            // The live feed and a document's stream never end: the status is the answer.
            return (status, Value::Null);
        }
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Submits a task as the admin; its id.
    async fn submit(&self, kind: &str, input: Value) -> String {
        let (status, task) = self
            .post(
                "/api/v1/tasks",
                &self.admin,
                json!({"kind": kind, "input": input}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        task["id"].as_str().unwrap().to_owned()
    }

    async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        for _ in 0..500 {
            let (_, task) = self.get(&format!("/api/v1/tasks/{id}"), &self.admin).await;
            if task["status"] == status {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} never became {status}");
    }
}

/// Every protected route: method, path, body, and the scope it needs.
fn routes(
    task: &str,
    agent: &str,
    job: &str,
    run: &str,
    doc: &str,
) -> Vec<(Method, String, Option<Value>, Scope)> {
    let body = |v: Value| Some(v);
    vec![
        (Method::GET, "/api/v1/tasks".into(), None, Scope::Read),
        (
            Method::POST,
            "/api/v1/tasks".into(),
            body(json!({"kind": "echo"})),
            Scope::Write,
        ),
        (
            Method::GET,
            format!("/api/v1/tasks/{task}"),
            None,
            Scope::Read,
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{task}/cancel"),
            None,
            Scope::Write,
        ),
        (
            Method::POST,
            "/api/v1/collab".into(),
            body(json!({"pattern": "pipeline", "stages": ["x"], "wait_ms": 0})),
            Scope::Write,
        ),
        (
            Method::GET,
            format!("/api/v1/collab/{job}"),
            None,
            Scope::Read,
        ),
        (
            Method::POST,
            format!("/api/v1/collab/{job}/cancel"),
            None,
            Scope::Write,
        ),
        (Method::GET, "/api/v1/agents".into(), None, Scope::Read),
        (
            Method::GET,
            "/api/v1/agents/usage".into(),
            None,
            Scope::Read,
        ),
        (
            Method::GET,
            format!("/api/v1/agents/{agent}"),
            None,
            Scope::Read,
        ),
        (
            Method::DELETE,
            format!("/api/v1/agents/{agent}"),
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/api/v1/embeddings".into(),
            body(json!({"texts": ["hi"]})),
            Scope::Read,
        ),
        (
            Method::POST,
            "/api/v1/documents".into(),
            body(json!({"collection": "c", "document_id": "d", "text": "t"})),
            Scope::Write,
        ),
        (
            Method::POST,
            "/api/v1/search".into(),
            body(json!({"collection": "c", "query": "q"})),
            Scope::Read,
        ),
        (
            Method::POST,
            "/api/v1/shared-docs".into(),
            body(json!({"name": "notes", "kind": "text"})),
            Scope::Write,
        ),
        (Method::GET, "/api/v1/shared-docs".into(), None, Scope::Read),
        (
            Method::GET,
            format!("/api/v1/shared-docs/{doc}"),
            None,
            Scope::Read,
        ),
        (
            Method::POST,
            format!("/api/v1/shared-docs/{doc}/edits"),
            body(json!({"edits": []})),
            Scope::Write,
        ),
        (
            Method::DELETE,
            format!("/api/v1/shared-docs/{doc}"),
            None,
            Scope::Admin,
        ),
        (
            Method::GET,
            format!("/api/v1/shared-docs/{doc}/events"),
            None,
            Scope::Read,
        ),
        (Method::GET, "/api/v1/tools".into(), None, Scope::Read),
        (
            Method::POST,
            "/api/v1/tools/github/execute".into(),
            body(json!({"action": "get_repository"})),
            Scope::Write,
        ),
        (
            Method::POST,
            "/api/v1/workflow-definitions".into(),
            body(NAP.clone()),
            Scope::Write,
        ),
        (
            Method::GET,
            "/api/v1/workflow-definitions".into(),
            None,
            Scope::Read,
        ),
        (
            Method::GET,
            "/api/v1/workflow-definitions/nap".into(),
            None,
            Scope::Read,
        ),
        (
            Method::POST,
            "/api/v1/workflows".into(),
            body(json!({"workflow": "nap"})),
            Scope::Write,
        ),
        (Method::GET, "/api/v1/workflows".into(), None, Scope::Read),
        (
            Method::GET,
            format!("/api/v1/workflows/{run}"),
            None,
            Scope::Read,
        ),
        (
            Method::GET,
            format!("/api/v1/workflows/{run}/history"),
            None,
            Scope::Read,
        ),
        (
            Method::GET,
            format!("/api/v1/workflows/{run}/events"),
            None,
            Scope::Read,
        ),
        (
            Method::POST,
            format!("/api/v1/workflows/{run}/cancel"),
            None,
            Scope::Write,
        ),
        (
            Method::POST,
            format!("/api/v1/workflows/{run}/signal"),
            body(json!({"name": "go"})),
            Scope::Write,
        ),
        (
            Method::POST,
            format!("/api/v1/workflows/{run}/resume"),
            body(json!({"interrupt": uuid::Uuid::nil()})),
            Scope::Write,
        ),
        (
            Method::POST,
            format!("/api/v1/workflows/{run}/retry"),
            None,
            Scope::Write,
        ),
        (
            Method::POST,
            format!("/api/v1/workflows/{run}/fork"),
            body(json!({"seq": 0})),
            Scope::Write,
        ),
        (
            Method::POST,
            "/api/v1/workflows/prune".into(),
            body(json!({})),
            Scope::Admin,
        ),
        (
            Method::POST,
            "/api/v1/keys".into(),
            body(json!({"name": "k"})),
            Scope::Admin,
        ),
        (Method::GET, "/api/v1/keys".into(), None, Scope::Admin),
        (
            Method::DELETE,
            format!("/api/v1/keys/{}", uuid::Uuid::nil()),
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/api/v1/tenants".into(),
            body(json!({"name": "t"})),
            Scope::Admin,
        ),
        (Method::GET, "/api/v1/tenants".into(), None, Scope::Admin),
        (Method::GET, "/api/v1/roles".into(), None, Scope::Admin),
        (
            Method::GET,
            "/api/v1/roles/probe".into(),
            None,
            Scope::Admin,
        ),
        (
            Method::PUT,
            "/api/v1/roles/probe".into(),
            body(json!({"permissions": [{"resource": "tasks", "actions": ["read"]}]})),
            Scope::Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/roles/probe".into(),
            None,
            Scope::Admin,
        ),
        (Method::GET, "/api/v1/audit".into(), None, Scope::Admin),
        (
            Method::GET,
            "/api/v1/audit/verify".into(),
            None,
            Scope::Admin,
        ),
        (Method::GET, "/api/v1/overview".into(), None, Scope::Read),
        (Method::GET, "/api/v1/events".into(), None, Scope::Read),
        (
            Method::GET,
            "/api/v1/tool-sources".into(),
            None,
            Scope::Read,
        ),
        (
            Method::GET,
            "/api/v1/tool-sources/probe".into(),
            None,
            Scope::Read,
        ),
        (
            Method::PUT,
            "/api/v1/tool-sources/probe".into(),
            body(json!({"kind": "mcp"})),
            Scope::Write,
        ),
        (
            Method::DELETE,
            "/api/v1/tool-sources/probe".into(),
            None,
            Scope::Write,
        ),
    ]
}

/// A workflow that sleeps a millisecond.
static NAP: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || json!({"name": "nap", "state": {}, "steps": [{"name": "z", "wait": {"timer": {"ms": 1}}}]}),
);

#[tokio::test]
async fn keys_are_made_listed_and_revoked_and_tenants_made_by_the_operator() {
    let api = api().await;
    let (status, made) = api
        .post(
            "/api/v1/keys",
            &api.admin,
            json!({"name": "ci", "scopes": ["read", "write"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("mesh_") && made.get("hash").is_none());
    assert_eq!(made["scopes"], json!(["read", "write"]));
    assert_eq!(api.get("/api/v1/tasks", &key).await.0, StatusCode::OK);
    // Listed without secrets: neither the key nor its hash.
    let (_, listed) = api.get("/api/v1/keys", &api.admin).await;
    let text = listed.to_string();
    assert!(!text.contains(&key) && !text.contains(&mesh_core::hash_key(&key)));
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == made["id"])
    );
    // Another tenant's admin neither sees it nor revokes it.
    let other = &api.other_tenant_admin;
    let (_, theirs) = api.get("/api/v1/keys", other).await;
    assert!(
        !theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == made["id"])
    );
    let path = format!("/api/v1/keys/{}", made["id"].as_str().unwrap());
    let (status, _) = api.call(Method::DELETE, &path, Some(other), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Bad input: a clear code, nothing made.
    for (body, code) in [
        (json!({"name": ""}), StatusCode::BAD_REQUEST),
        (
            json!({"name": "x", "scopes": ["root"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "tenant": TenantId::new()}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_eq!(api.post("/api/v1/keys", &api.admin, body).await.0, code);
    }
    // Revoked: refused at once (the key was cached by the gate a moment ago).
    let (status, revoked) = api
        .call(Method::DELETE, &path, Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, error) = api.get("/api/v1/tasks", &key).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    // Revoking again changes nothing.
    let (status, again) = api
        .call(Method::DELETE, &path, Some(&api.admin), None)
        .await;
    assert_eq!(
        (status, &again["revoked_at"]),
        (StatusCode::OK, &revoked["revoked_at"])
    );

    // Tenants: only the operator's admins.
    let (status, error) = api
        .post("/api/v1/tenants", other, json!({"name": "x"}))
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(
        api.get("/api/v1/tenants", other).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, acme) = api
        .post("/api/v1/tenants", &api.admin, json!({"name": "acme"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{acme}");
    let (_, tenants) = api.get("/api/v1/tenants", &api.admin).await;
    assert!(
        tenants["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "acme")
    );
    // The operator makes the new tenant's first admin key; it sees only its tenant.
    let (status, first) = api
        .post(
            "/api/v1/keys",
            &api.admin,
            json!({"name": "acme-admin", "scopes": ["admin"], "tenant": acme["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["tenant"], acme["id"]);
    let acme_key = first["key"].as_str().unwrap();
    assert_eq!(
        api.get("/api/v1/tasks", acme_key).await.1["items"],
        json!([])
    );
    let (_, acme_keys) = api.get("/api/v1/keys", acme_key).await;
    assert_eq!(acme_keys["items"].as_array().unwrap().len(), 1);
    // …and that admin is no operator.
    assert_eq!(
        api.get("/api/v1/tenants", acme_key).await.0,
        StatusCode::FORBIDDEN
    );

    // A revoked key's open event stream ends.
    let hold = json!({"name": "hold", "state": {}, "steps": [{"name": "w", "wait": {"signal": {"name": "go"}}}]});
    api.post("/api/v1/workflow-definitions", &api.admin, hold)
        .await;
    let (_, run) = api
        .post("/api/v1/workflows", &api.admin, json!({"workflow": "hold"}))
        .await;
    let (watcher, record) = api
        .engine
        .create_api_key(api.tenant, "watcher", vec![Scope::Read], None)
        .await
        .unwrap();
    let events = format!("/api/v1/workflows/{}/events", run["id"].as_str().unwrap());
    let stream = api
        .http
        .get(api.url(&events))
        .bearer_auth(&watcher)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    api.engine
        .revoke_api_key(api.tenant, record.id)
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), stream.text())
        .await
        .expect("the stream ended")
        .unwrap();
    assert!(body.contains("event: checkpoint"), "{body}");
}

#[tokio::test]
async fn the_auth_matrix_holds_on_every_route() {
    let api = api().await;
    let _agent = common::echo_agent_at(
        &format!("ws://{}/ws", api.addr),
        &api.admin,
        "a",
        &["other"],
    );
    let task = api
        .post(
            "/api/v1/tasks",
            &api.admin,
            json!({"kind": "nobody-does-this"}),
        )
        .await
        .1;
    let task_id = task["id"].as_str().unwrap().to_owned();
    let (_, job) = api
        .post(
            "/api/v1/collab",
            &api.admin,
            json!({"pattern": "pipeline", "stages": ["nobody-does-this"], "wait_ms": 0}),
        )
        .await;
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    let agent_id = loop {
        let (_, agents) = api.get("/api/v1/agents", &api.admin).await;
        if let Some(a) = agents["items"].as_array().and_then(|a| a.first()) {
            break a["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let expired = sign_jwt(
        &json!({"tenant_id": api.tenant, "scopes": ["admin"], "exp": 1}),
        JWT_SECRET.as_bytes(),
    );
    let forged = sign_jwt(
        &json!({"tenant_id": api.tenant, "scopes": ["admin"], "exp": 4_000_000_000u64}),
        b"wrong",
    );
    api.post("/api/v1/workflow-definitions", &api.admin, NAP.clone())
        .await;
    // A tool source to read (GitHub's adapter answers nothing until called).
    let probe = json!({"kind": "github", "url": "http://127.0.0.1:9"});
    let (status, _) = api
        .call(
            Method::PUT,
            "/api/v1/tool-sources/probe",
            Some(&api.admin),
            Some(probe),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, run) = api
        .post("/api/v1/workflows", &api.admin, json!({"workflow": "nap"}))
        .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    // Finished, so its event stream ends after the journal.
    while api
        .get(&format!("/api/v1/workflows/{run_id}"), &api.admin)
        .await
        .1["status"]
        != "succeeded"
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, doc) = api
        .post(
            "/api/v1/shared-docs",
            &api.admin,
            json!({"name": "probe", "kind": "state"}),
        )
        .await;
    let doc_id = doc["id"].as_str().unwrap().to_owned();
    for (method, path, body, scope) in routes(&task_id, &agent_id, &job_id, &run_id, &doc_id) {
        // No credentials, an unknown key, an expired or forged JWT: 401.
        for key in [
            None,
            Some("not-a-key-not-a-key"),
            Some(expired.as_str()),
            Some(forged.as_str()),
        ] {
            let (status, error) = api.call(method.clone(), &path, key, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {key:?}"
            );
            assert_eq!(error["code"], "unauthorized");
        }
        // A read-only key on a route that needs more: 403.
        let (status, error) = api
            .call(method.clone(), &path, Some(&api.reader), body.clone())
            .await;
        if scope == Scope::Read {
            assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert!(status.is_success(), "{method} {path}: {status} {error}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(error["code"], "forbidden");
        }
    }
    // Tenant B never sees tenant A's records: 404, and empty lists.
    let b = &api.other_tenant_admin;
    for (method, path) in [
        (Method::GET, format!("/api/v1/tasks/{task_id}")),
        (Method::POST, format!("/api/v1/tasks/{task_id}/cancel")),
        (Method::GET, format!("/api/v1/agents/{agent_id}")),
        (Method::DELETE, format!("/api/v1/agents/{agent_id}")),
    ] {
        let (status, error) = api.call(method.clone(), &path, Some(b), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(error["code"], "not_found");
    }
    assert_eq!(api.get("/api/v1/tasks", b).await.1["items"], json!([]));
    assert_eq!(api.get("/api/v1/agents", b).await.1["items"], json!([]));
    // …and A's task is untouched.
    assert_eq!(
        api.get(&format!("/api/v1/tasks/{task_id}"), &api.admin)
            .await
            .1["status"],
        "pending"
    );

    // A valid JWT acts for its tenant with its scopes.
    let later = chrono::Utc::now().timestamp() + 600;
    let jwt = sign_jwt(
        &json!({"tenant_id": api.tenant, "scopes": ["read"], "exp": later, "sub": "ci"}),
        JWT_SECRET.as_bytes(),
    );
    assert_eq!(
        api.get(&format!("/api/v1/tasks/{task_id}"), &jwt).await.0,
        StatusCode::OK
    );
    let (status, _) = api.post("/api/v1/tasks", &jwt, json!({"kind": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // X-API-Key works as well as a bearer token.
    let response = api
        .http
        .get(api.url("/api/v1/tasks"))
        .header("X-API-Key", &api.reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn tasks_flow_from_rest_to_a_real_agent_and_back() {
    let api = api().await;
    let _agent = common::echo_agent_at(
        &format!("ws://{}/ws", api.addr),
        &api.admin,
        "echoer",
        &["echo"],
    );
    let (status, task) = api
        .post(
            "/api/v1/tasks",
            &api.admin,
            json!({"kind": "echo", "input": {"n": 1}, "priority": "high"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for field in [
        "id",
        "kind",
        "status",
        "input",
        "attempts",
        "created_at",
        "updated_at",
    ] {
        assert!(task.get(field).is_some(), "{field} in {task}");
    }
    let done = api
        .wait_for_status(task["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(done["output"], json!({"by": "echoer", "input": {"n": 1}}));
    assert!(done["agent_id"].is_string());
    assert_eq!(done["attempts"], 1);

    // Nobody can run this one: it waits, then is cancelled.
    let (_, stuck) = api
        .post("/api/v1/tasks", &api.admin, json!({"kind": "nobody"}))
        .await;
    let id = stuck["id"].as_str().unwrap();
    let (status, cancelled) = api
        .post(
            &format!("/api/v1/tasks/{id}/cancel"),
            &api.admin,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled");

    // Lists filter and page.
    let (_, completed) = api.get("/api/v1/tasks?status=completed", &api.admin).await;
    assert_eq!(completed["items"].as_array().unwrap().len(), 1);
    let (_, first) = api.get("/api/v1/tasks?limit=1", &api.admin).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next"].as_str().expect("a second page");
    let (_, second) = api
        .get(
            &format!("/api/v1/tasks?limit=1&cursor={cursor}"),
            &api.admin,
        )
        .await;
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    let (_, agents) = api
        .get("/api/v1/agents?status=active&capability=echo", &api.admin)
        .await;
    assert_eq!(agents["items"][0]["name"], "echoer");
    let (_, none) = api
        .get("/api/v1/agents?capability=nothing", &api.admin)
        .await;
    assert_eq!(none["items"], json!([]));

    // Deregistering closes the agent's connection and removes it.
    let agent_id = agents["items"][0]["id"].as_str().unwrap();
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/agents/{agent_id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .get(&format!("/api/v1/agents/{agent_id}"), &api.admin)
        .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::OK,
        "it may reconnect"
    );
}

#[tokio::test]
async fn bad_input_gets_a_typed_json_error_and_the_server_keeps_serving() {
    let api = api().await;
    let raw = |body: &'static str| {
        api.http
            .post(api.url("/api/v1/tasks"))
            .bearer_auth(&api.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        "{",
        "[]",
        "{\"kind\": 5}",
        "{\"kind\": \"x\", \"surprise\": 1}",
        "null",
    ] {
        let response = raw(body).await.unwrap();
        assert!(response.status().is_client_error(), "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "invalid_body", "{body}: {error}");
    }
    let cases = [
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"kind": ""}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"kind": "x", "max_attempts": 0}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"kind": "x", "priority": "urgent"}),
            "invalid_body",
        ),
        (
            Method::GET,
            "/api/v1/tasks/not-a-uuid",
            json!(null),
            "invalid_path",
        ),
        (
            Method::GET,
            "/api/v1/tasks?limit=0",
            json!(null),
            "invalid_request",
        ),
        (
            Method::GET,
            "/api/v1/tasks?status=bogus",
            json!(null),
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/v1/tasks?cursor=%%%",
            json!(null),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/embeddings",
            json!({"texts": []}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/documents",
            json!({"collection": "no spaces", "document_id": "d", "text": "t"}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/search",
            json!({"collection": "c", "query": "q", "k": 0}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/collab",
            json!({"pattern": "parallel", "tasks": []}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/tools/none/execute",
            json!({"action": "x"}),
            "tool_not_found",
        ),
        (
            Method::GET,
            "/api/v1/nothing-here",
            json!(null),
            "not_found",
        ),
    ];
    for (method, path, body, code) in cases {
        let body = (!body.is_null()).then_some(body);
        let (status, error) = api.call(method.clone(), path, Some(&api.admin), body).await;
        assert!(
            status.is_client_error(),
            "{method} {path}: {status} {error}"
        );
        assert_eq!(error["code"], code, "{method} {path}: {error}");
    }
    assert_eq!(api.get("/healthz", &api.admin).await.0, StatusCode::OK);
    assert_eq!(api.get("/readyz", &api.admin).await.1["status"], "ready");
}

#[tokio::test]
async fn request_ids_rate_limits_and_cors() {
    let config = AppConfig::default()
        .rate_limit(1.0, 2.0)
        .cors_origins(["https://app.example"]);
    let api = api_with(config, ToolRegistry::new()).await;
    let response = api
        .http
        .get(api.url("/api/v1/tasks"))
        .bearer_auth(&api.admin)
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    let response = api
        .http
        .get(api.url("/api/v1/tasks"))
        .bearer_auth(&api.admin)
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me");
    // The burst of 2 is spent: the next request of this key is refused…
    let (status, error) = api.get("/api/v1/tasks", &api.admin).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["code"], "rate_limited");
    // …while another key still gets through.
    assert_eq!(
        api.get("/api/v1/tasks", &api.reader).await.0,
        StatusCode::OK
    );

    let preflight = api
        .http
        .request(Method::OPTIONS, api.url("/api/v1/tasks"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let foreign = api
        .http
        .get(api.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn a_document_indexed_over_rest_is_searchable_after_the_worker_runs() {
    let api = api().await;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (status, accepted) = api
        .post("/api/v1/documents", &api.admin, json!({"collection": "docs", "document_id": "readme", "text": text, "metadata": {"source": "repo"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(accepted["job_id"].is_string());
    let (_, other) = api
        .post("/api/v1/documents", &api.admin, json!({"collection": "docs", "document_id": "bread", "text": "Knead the dough, let it rise for an hour, then bake the bread."}))
        .await;
    assert!(other["job_id"].is_string());
    // Nothing is indexed until the worker runs.
    let search = json!({"collection": "docs", "query": "bake the bread dough", "k": 3});
    assert_eq!(
        api.post("/api/v1/search", &api.reader, search.clone())
            .await
            .1["hits"],
        json!([])
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(
        api.services.clone(),
        WorkerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let hits = loop {
        let (_, found) = api
            .post("/api/v1/search", &api.reader, search.clone())
            .await;
        let hits = found["hits"].as_array().unwrap().clone();
        if hits.iter().any(|h| h["document_id"] == "bread")
            && hits.iter().any(|h| h["document_id"] == "readme")
        {
            break hits;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(hits[0]["document_id"], "bread");
    assert!(hits[0]["text"].as_str().unwrap().contains("bake the bread"));
    let filtered = json!({"collection": "docs", "query": "bread", "filter": {"source": "repo"}});
    let (_, found) = api.post("/api/v1/search", &api.reader, filtered).await;
    assert!(
        found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["document_id"] == "readme")
    );
    // Another tenant finds nothing.
    let (_, theirs) = api
        .post("/api/v1/search", &api.other_tenant_admin, search)
        .await;
    assert_eq!(theirs["hits"], json!([]));
    let (_, embedded) = api
        .post(
            "/api/v1/embeddings",
            &api.reader,
            json!({"texts": ["a", "b"], "query": true}),
        )
        .await;
    assert_eq!(embedded["vectors"].as_array().unwrap().len(), 2);
    assert_eq!(
        embedded["vectors"][0].as_array().unwrap().len(),
        embedded["dimensions"].as_u64().unwrap() as usize
    );
    stop.send(()).unwrap();
    worker.await.unwrap();
}

#[tokio::test]
async fn collaboration_jobs_run_over_rest() {
    let api = api().await;
    let url = format!("ws://{}/ws", api.addr);
    let _a = common::echo_agent_at(&url, &api.admin, "one", &["step"]);
    let _b = common::echo_agent_at(&url, &api.admin, "two", &["step"]);
    let (status, response) = api
        .post(
            "/api/v1/collab",
            &api.admin,
            json!({"pattern": "pipeline", "stages": ["step", "step"], "input": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["outcome"].as_array().unwrap().len(), 2);
    let (status, response) = api
        .post("/api/v1/collab", &api.admin, json!({"pattern": "parallel", "tasks": [{"kind": "step"}, {"kind": "step"}, {"kind": "step"}], "completion": {"mode": "majority"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["outcome"]["satisfied"], true);
    // Nobody can run it: the wait runs out and the job keeps going.
    let (status, response) = api
        .post(
            "/api/v1/collab",
            &api.admin,
            json!({"pattern": "consensus", "task": {"kind": "nobody"}, "voters": 3, "wait_ms": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(response["status"], "running");
    // Follow it, then cancel it: the job stops and so do the tasks it submitted.
    let job = response["job_id"].as_str().unwrap().to_owned();
    let (status, seen) = api.get(&format!("/api/v1/collab/{job}"), &api.admin).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["status"], "running");
    let (status, cancelled) = api
        .post(
            &format!("/api/v1/collab/{job}/cancel"),
            &api.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let tasks = cancelled["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3, "{cancelled}");
    for task in tasks {
        let (_, task) = api
            .get(
                &format!("/api/v1/tasks/{}", task.as_str().unwrap()),
                &api.admin,
            )
            .await;
        assert_eq!(task["status"], "cancelled", "{task}");
    }
    // Another tenant sees no such job.
    let (status, _) = api
        .get(&format!("/api/v1/collab/{job}"), &api.other_tenant_admin)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Hardening issue, item 13: collaboration jobs ran detached, without a quota or a way
/// to cancel them. Now a tenant runs at most `JobsConfig::per_tenant` (8) at once.
#[tokio::test]
async fn hardening_13_a_tenant_runs_a_bounded_number_of_collaboration_jobs() {
    let api = api().await;
    let job =
        json!({"pattern": "consensus", "task": {"kind": "nobody"}, "voters": 1, "wait_ms": 0});
    let mut started = Vec::new();
    for _ in 0..mesh_core::collab::JobsConfig::default().per_tenant {
        let (status, response) = api.post("/api/v1/collab", &api.admin, job.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{response}");
        started.push(response["job_id"].as_str().unwrap().to_owned());
    }
    let (status, refused) = api.post("/api/v1/collab", &api.admin, job.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["code"], "rate_limited");
    // Another tenant has its own quota; a cancelled job frees its slot.
    let (status, _) = api
        .post("/api/v1/collab", &api.other_tenant_admin, job.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let first = &started[0];
    api.post(
        &format!("/api/v1/collab/{first}/cancel"),
        &api.admin,
        json!({}),
    )
    .await;
    let (status, _) = api.post("/api/v1/collab", &api.admin, job).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// A stand-in for api.github.com: the real paths, headers and JSON shapes.
/// What the fake GitHub received: action, Authorization header, body.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

async fn fake_github(seen: Seen) -> SocketAddr {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::routing::get;
    fn record(seen: &Seen, what: &str, headers: &HeaderMap, body: Value) {
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(headers["accept"], "application/vnd.github+json");
        assert_eq!(headers["x-github-api-version"], "2022-11-28");
        seen.lock().unwrap().push((what.to_owned(), auth, body));
    }
    let app = axum::Router::new()
        .route(
            "/repos/{owner}/{repo}",
            get(|State(seen): State<Seen>, Path((owner, repo)): Path<(String, String)>, headers: HeaderMap| async move {
                record(&seen, "get_repository", &headers, Value::Null);
                axum::Json(json!({"id": 1, "name": repo, "full_name": format!("{owner}/{repo}"), "private": false, "open_issues_count": 1}))
            }),
        )
        .route(
            "/repos/{owner}/{repo}/issues",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "list_issues", &headers, Value::Null);
                axum::Json(json!([{"number": 7, "title": "Flaky test", "state": "open"}]))
            })
            .post(|State(seen): State<Seen>, headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                record(&seen, "create_issue", &headers, body.clone());
                if headers.get("authorization").is_none() {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"})));
                }
                (axum::http::StatusCode::CREATED, axum::Json(json!({"number": 8, "title": body["title"], "state": "open"})))
            }),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}",
            get(|State(seen): State<Seen>, Path((_, _, number)): Path<(String, String, u64)>, headers: HeaderMap| async move {
                record(&seen, "get_issue", &headers, Value::Null);
                if number == 7 {
                    (axum::http::StatusCode::OK, axum::Json(json!({"number": 7, "title": "Flaky test"})))
                } else {
                    (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})))
                }
            }),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_github_tool_speaks_the_github_rest_api() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let github = fake_github(seen.clone()).await;
    let mut tools = ToolRegistry::new();
    tools.register(GitHubAdapter::new(
        format!("http://{github}/"),
        Some("ghp_test".into()),
    ));
    let api = api_with(AppConfig::default(), tools).await;
    let (_, listed) = api.get("/api/v1/tools", &api.reader).await;
    assert_eq!(listed[0]["name"], "github");
    let actions: BTreeSet<&str> = listed[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from(["create_issue", "get_issue", "get_repository", "list_issues"])
    );

    let run = |action: &str, input: Value| {
        api.post(
            "/api/v1/tools/github/execute",
            &api.admin,
            json!({"action": action, "input": input}),
        )
    };
    let (status, repo) = run(
        "get_repository",
        json!({"owner": "mesh-agents", "repo": "mesh"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repo["output"]["full_name"], "mesh-agents/mesh");
    let (_, issues) = run(
        "list_issues",
        json!({"owner": "mesh-agents", "repo": "mesh", "state": "open"}),
    )
    .await;
    assert_eq!(issues["output"][0]["number"], 7);
    let (status, created) = run(
        "create_issue",
        json!({"owner": "mesh-agents", "repo": "mesh", "title": "From Mesh", "labels": ["bot"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["output"]["number"], 8);
    let (status, missing) = run(
        "get_issue",
        json!({"owner": "mesh-agents", "repo": "mesh", "number": 999}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(missing["code"], "upstream_failed");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("404: Not Found")
    );
    for (action, input, code) in [
        (
            "get_repository",
            json!({"owner": "../etc", "repo": "x"}),
            "invalid_request",
        ),
        (
            "get_issue",
            json!({"owner": "a", "repo": "b"}),
            "invalid_request",
        ),
        (
            "create_issue",
            json!({"owner": "a", "repo": "b", "title": " "}),
            "invalid_request",
        ),
        (
            "delete_everything",
            json!({"owner": "a", "repo": "b"}),
            "action_not_found",
        ),
    ] {
        let (_, error) = run(action, input).await;
        assert_eq!(error["code"], code, "{action}");
    }
    let seen = seen.lock().unwrap();
    let create = seen
        .iter()
        .find(|(what, ..)| what == "create_issue")
        .unwrap();
    assert_eq!(create.1.as_deref(), Some("Bearer ghp_test"));
    assert_eq!(
        create.2,
        json!({"title": "From Mesh", "body": null, "labels": ["bot"]})
    );
    // Nothing invalid reached GitHub.
    assert_eq!(seen.len(), 4);
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let api = api().await;
    let response = api
        .http
        .get(api.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let mut served: BTreeSet<(String, String)> = routes("{id}", "{id}", "{id}", "{id}", "{id}")
        .into_iter()
        .map(|(m, p, ..)| {
            let p = p
                .replace("/github/", "/{name}/")
                .replace(&uuid::Uuid::nil().to_string(), "{id}");
            (
                m.to_string(),
                p.replace("definitions/nap", "definitions/{name}")
                    .replace("roles/probe", "roles/{name}")
                    .replace("tool-sources/probe", "tool-sources/{name}"),
            )
        })
        .collect();
    served.extend(
        [
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/api/v1/openapi.json"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned())),
    );
    assert_eq!(documented, served);
    // Every operation says how to authenticate, except the public ones.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let public = !path.starts_with("/api/v1/") || path.ends_with("openapi.json");
            assert_eq!(op.get("security").is_some(), !public, "{method} {path}");
        }
    }
    drop(api.engine);
}

/// Hardening issue, item 10: a one-character (or empty) JWT secret was accepted.
#[tokio::test]
async fn hardening_10_short_jwt_secrets_are_refused() {
    for secret in ["", "x", "31-bytes-31-bytes-31-bytes-31-b"] {
        let config = AppConfig::default().jwt_secret(secret);
        assert_eq!(
            config.gate.check(),
            Err(mesh_core::http::GateConfigError::ShortJwtSecret { len: secret.len() }),
            "{secret:?}"
        );
        // A gate built anyway takes no JWT, not even one signed with that secret.
        let engine = Engine::in_memory().await;
        let (addr, _server) = common::serve_app(Services::in_memory(engine), config).await;
        let later = chrono::Utc::now().timestamp() + 600;
        let token = sign_jwt(
            &json!({"tenant_id": TenantId::new(), "scopes": ["admin"], "exp": later}),
            secret.as_bytes(),
        );
        let status = reqwest::Client::new()
            .get(format!("http://{addr}/api/v1/tasks"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{secret:?}");
    }
    assert!(
        AppConfig::default()
            .jwt_secret(JWT_SECRET)
            .gate
            .check()
            .is_ok()
    );
}

/// Hardening issue, item 9: an unauthenticated flood cost a key lookup per request
/// without limit, and requests had no time limit.
#[tokio::test]
async fn hardening_9_failed_credentials_are_limited_per_address_and_requests_in_time() {
    let mut config = AppConfig::default();
    config.gate.failures_per_address = (10.0, 5.0);
    config.request_timeout = Duration::from_millis(300);
    let engine = Engine::in_memory().await;
    let tenant = TenantId::new();
    let (good, _) = engine
        .create_api_key(tenant, "k", vec![Scope::Admin], None)
        .await
        .unwrap();
    let (addr, _server) = common::serve_app(Services::in_memory(engine), config).await;
    let http = reqwest::Client::new();
    let status = |key: String| {
        let request = http
            .get(format!("http://{addr}/api/v1/tasks"))
            .bearer_auth(key)
            .send();
        async move { request.await.unwrap().status() }
    };
    let mut seen = Vec::new();
    for i in 0..8 {
        seen.push(status(format!("mesh_wrong_{i}")).await);
    }
    assert_eq!(&seen[..5], &[StatusCode::UNAUTHORIZED; 5], "{seen:?}");
    assert!(
        seen[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{seen:?}"
    );
    // The address is let in again once its bucket refills (10 per second).
    let started = std::time::Instant::now();
    while status(good.clone()).await != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never let in again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A request that would wait longer than the time limit is answered 408.
    let response = http
        .post(format!("http://{addr}/api/v1/collab"))
        .bearer_auth(&good)
        .json(&json!({"pattern": "pipeline", "stages": ["nobody"], "wait_ms": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "request_timeout");
}

/// One Server-Sent Event: its `event`, `id` and `data`.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

/// Reads events from an SSE response until `stop` says so or the stream ends.
async fn read_sse(response: &mut reqwest::Response, stop: impl Fn(&Sse) -> bool) -> Vec<Sse> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = Sse {
                event: "message".into(),
                id: None,
                data: String::new(),
            };
            for line in block.lines() {
                match line.split_once(':') {
                    Some(("event", v)) => event.event = v.trim().to_owned(),
                    Some(("id", v)) => event.id = Some(v.trim().to_owned()),
                    Some(("data", v)) => event.data.push_str(v.trim_start()),
                    _ => {}
                }
            }
            if event.data.is_empty() && event.id.is_none() {
                continue; // a keep-alive comment
            }
            let done = stop(&event);
            events.push(event);
            if done {
                return events;
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), response.chunk()).await {
            Ok(Ok(Some(bytes))) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => return events,
            other => panic!("the stream stalled: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_run_event_stream_resumes_after_a_disconnect_and_misses_nothing() {
    let api = api().await;
    api.post(
        "/api/v1/workflow-definitions",
        &api.admin,
        json!({"name": "three", "state": {"one": {}, "two": {}, "three": {}}, "steps": [
            {"name": "s1", "wait": {"signal": {"name": "one"}}, "output": "one", "next": "s2"},
            {"name": "s2", "wait": {"signal": {"name": "two"}}, "output": "two", "next": "s3"},
            {"name": "s3", "wait": {"signal": {"name": "three"}}, "output": "three"}
        ]}),
    )
    .await;
    let (_, run) = api
        .post(
            "/api/v1/workflows",
            &api.admin,
            json!({"workflow": "three"}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let events_url = api.url(&format!("/api/v1/workflows/{id}/events"));
    let signal = |name: &'static str| {
        let path = format!("/api/v1/workflows/{id}/signal");
        let api = &api;
        async move {
            let (status, _) = api
                .post(&path, &api.admin, json!({"name": name, "value": name}))
                .await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
    };

    let mut first = api
        .http
        .get(&events_url)
        .bearer_auth(&api.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    signal("one").await;
    let mut seen = read_sse(&mut first, |e| e.id.as_deref() == Some("1")).await;
    // Gone: the next two entries are written while nobody listens.
    drop(first);
    signal("two").await;
    signal("three").await;

    let mut second = api
        .http
        .get(&events_url)
        .bearer_auth(&api.admin)
        .header("Last-Event-ID", "1")
        .send()
        .await
        .unwrap();
    seen.extend(read_sse(&mut second, |e| e.event == "finished").await);
    let ids: Vec<&str> = seen.iter().filter_map(|e| e.id.as_deref()).collect();
    assert_eq!(ids, ["0", "1", "2", "3"], "every entry exactly once");
    assert!(seen[..4].iter().all(|e| e.event == "checkpoint"));
    let last = seen.last().unwrap();
    assert_eq!(last.event, "finished");
    let finished: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(
        finished["output"],
        json!({"one": "one", "two": "two", "three": "three"})
    );
    let entry: Value = serde_json::from_str(&seen[2].data).unwrap();
    assert_eq!(entry["event"]["step"], "s2");
    assert_eq!(entry["position"]["root"]["state"]["two"], "two");
    // The stream ended after `finished`; a bad Last-Event-ID is refused.
    let (status, error) = api
        .call(
            Method::GET,
            &format!("/api/v1/workflows/{id}/events"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{error}");
    let refused = api
        .http
        .get(&events_url)
        .bearer_auth(&api.admin)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

/// The dashboard's feed: the tenant's events, numbered; a client back with
/// `Last-Event-ID` gets exactly what it missed, one with another process's id a
/// `reset`; another tenant sees none of them. And the overview counts what happened.
#[tokio::test]
async fn the_event_feed_resumes_without_a_gap_and_the_overview_counts() {
    let api = api().await;
    let _agent =
        common::echo_agent_at(&format!("ws://{}/ws", api.addr), &api.admin, "a", &["echo"]);
    common::wait_for_agents(&api.engine, api.tenant, 1).await;
    let feed = |key: &str, last: Option<&str>| {
        let mut request = api.http.get(api.url("/api/v1/events")).bearer_auth(key);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        request.send()
    };
    let mut first = feed(&api.admin, None).await.unwrap();
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let mut stranger = feed(&api.other_tenant_admin, None).await.unwrap();
    let id = api.submit("echo", json!({"n": 1})).await;
    api.wait_for_status(&id, "completed").await;
    let seen = read_sse(&mut first, |e| {
        e.event == "task_status" && e.data.contains("completed")
    })
    .await;
    drop(first);
    let last = seen.last().unwrap().id.clone().unwrap();
    // Missed while away: a second task, start to end.
    let missed = api.submit("echo", json!({"n": 2})).await;
    api.wait_for_status(&missed, "completed").await;
    let mut second = feed(&api.admin, Some(&last)).await.unwrap();
    let resumed = read_sse(&mut second, |e| {
        e.event == "task_status" && e.data.contains(&missed) && e.data.contains("completed")
    })
    .await;
    assert!(
        resumed
            .iter()
            .any(|e| e.event == "task_submitted" && e.data.contains(&missed))
    );
    let numbers: Vec<u64> = seen
        .iter()
        .chain(&resumed)
        .map(|e| {
            e.id.as_ref()
                .unwrap()
                .split_once('-')
                .unwrap()
                .1
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap, nothing twice: {numbers:?}"
    );
    // An id this process never gave: read everything again.
    let mut reset = feed(&api.admin, Some("1-999")).await.unwrap();
    let told = read_sse(&mut reset, |_| true).await;
    assert_eq!(told[0].event, "reset");
    // Another tenant saw nothing of it (its stream has only keep-alives).
    let theirs = tokio::time::timeout(Duration::from_millis(300), stranger.chunk()).await;
    assert!(theirs.is_err(), "{theirs:?}");

    let (status, overview) = api.get("/api/v1/overview", &api.reader).await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    let health: Vec<&str> = overview["health"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        health,
        [
            "engine", "cluster", "store", "queue", "worker", "embedder", "memory"
        ]
    );
    assert!(
        overview["health"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{overview}"
    );
    assert_eq!(overview["agents"]["active"], 1);
    assert_eq!(
        overview["tasks"]["pending"],
        json!({"count": 0, "more": false})
    );
    let series = overview["series"].as_array().unwrap();
    assert_eq!(series.len(), 60);
    let completed: u64 = series
        .iter()
        .map(|b| b["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(completed, 2, "{overview}");
    assert!(series.iter().any(|b| b["p99_ms"].is_number()));
    assert_eq!(overview["workflows"]["running"]["count"], 0);
}

/// Shared documents over REST: create, list, read, edit (text and state), follow live
/// while an agent on the hub edits the same document, refusals, and delete ending the
/// stream.
#[tokio::test]
async fn shared_documents_are_edited_over_rest_and_followed_live() {
    use mesh_core::crdt::{ReplicaId, TextDoc, TextOp};
    use mesh_protocol::ws::connect;
    use mesh_protocol::{DocOpen, DocUpdate, Hello, Message};

    let api = api().await;
    let (status, doc) = api
        .post(
            "/api/v1/shared-docs",
            &api.admin,
            json!({"name": "notes", "kind": "text"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    let id = doc["id"].as_str().unwrap().to_owned();
    let (_, listed) = api.get("/api/v1/shared-docs", &api.reader).await;
    assert_eq!(listed["items"][0]["name"], "notes");
    assert_eq!(listed["items"][0]["kind"], "text");
    let (status, error) = api
        .post(
            "/api/v1/shared-docs",
            &api.admin,
            json!({"name": " ", "kind": "text"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    // A browser follows the document.
    let mut follow = api
        .http
        .get(api.url(&format!("/api/v1/shared-docs/{id}/events")))
        .bearer_auth(&api.reader)
        .send()
        .await
        .unwrap();
    assert_eq!(follow.headers()["content-type"], "text/event-stream");
    let first = read_sse(&mut follow, |e| e.event == "content").await;
    let view: Value = serde_json::from_str(&first.last().unwrap().data).unwrap();
    assert_eq!(view["content"], "");

    // An agent on the hub edits it; the browser sees the edit.
    let ws = format!("ws://{}/ws", api.addr);
    let mut agent = connect(&common::client_config(&ws, &api.admin))
        .await
        .unwrap();
    agent.send(Hello::new("writer", ["write"])).await.unwrap();
    assert!(matches!(next(&mut agent).await, Message::Welcome(_)));
    let doc_id: uuid::Uuid = id.parse().unwrap();
    agent.send(DocOpen::new(doc_id, Vec::new())).await.unwrap();
    assert!(matches!(next(&mut agent).await, Message::DocSync(_)));
    let mut replica = TextDoc::new(ReplicaId(42));
    let op = replica.insert(0, "hello world").unwrap();
    agent
        .send(DocUpdate::new(doc_id, TextOp::encode_all(&[op])))
        .await
        .unwrap();
    let seen = read_sse(&mut follow, |e| e.data.contains("hello world")).await;
    assert_eq!(seen.last().unwrap().event, "content");

    // A person edits it over REST; the agent gets the edit relayed.
    let (status, edited) = api
        .post(
            &format!("/api/v1/shared-docs/{id}/edits"),
            &api.admin,
            json!({"edits": [{"op": "splice", "pos": 5, "delete": 6, "insert": ", mesh"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["content"], "hello, mesh");
    match next(&mut agent).await {
        Message::DocUpdate(update) => replica.apply_update(&update.update).unwrap(),
        other => panic!("expected the relayed edit, got {other:?}"),
    };
    assert_eq!(replica.text(), "hello, mesh");
    read_sse(&mut follow, |e| e.data.contains("hello, mesh")).await;

    // Refused edits change nothing.
    for (edits, why) in [
        (
            json!([{"op": "splice", "pos": 99, "insert": "x"}]),
            "past the end",
        ),
        (
            json!([{"op": "add", "path": "n", "delta": 1}]),
            "does not take",
        ),
        (
            json!([{"op": "splice", "pos": 0, "insert": "ok"}, {"op": "splice", "pos": 500}]),
            "past the end",
        ),
    ] {
        let (status, error) = api
            .post(
                &format!("/api/v1/shared-docs/{id}/edits"),
                &api.admin,
                json!({"edits": edits}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert!(error["message"].as_str().unwrap().contains(why), "{error}");
    }
    let (_, read) = api
        .get(&format!("/api/v1/shared-docs/{id}"), &api.reader)
        .await;
    assert_eq!(read["content"], "hello, mesh");
    // Another tenant does not see it.
    let (status, _) = api
        .get(
            &format!("/api/v1/shared-docs/{id}"),
            &api.other_tenant_admin,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A state document: paths and values.
    let (_, board) = api
        .post(
            "/api/v1/shared-docs",
            &api.admin,
            json!({"name": "board", "kind": "state"}),
        )
        .await;
    let board_id = board["id"].as_str().unwrap();
    let (status, board) = api
        .post(
            &format!("/api/v1/shared-docs/{board_id}/edits"),
            &api.admin,
            json!({"edits": [
                {"op": "set", "path": "build/status", "value": "green"},
                {"op": "add", "path": "runs", "delta": 2},
                {"op": "insert", "path": "owners", "element": "ada"},
                {"op": "insert", "path": "owners", "element": "bob"},
                {"op": "remove", "path": "owners", "element": "ada"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{board}");
    assert_eq!(
        board["content"],
        json!({"build/status": "green", "owners": ["bob"], "runs": 2})
    );
    let (status, _) = api
        .post(
            &format!("/api/v1/shared-docs/{board_id}/edits"),
            &api.admin,
            json!({"edits": [{"op": "set", "path": "x", "value": {"no": "objects"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Deleting ends the stream and the agent's subscription.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/shared-docs/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let end = read_sse(&mut follow, |e| e.event == "deleted").await;
    assert_eq!(end.last().unwrap().event, "deleted");
    match next(&mut agent).await {
        Message::Error(e) => assert_eq!(e.code, "doc_not_found"),
        other => panic!("expected doc_not_found, got {other:?}"),
    }
    let (status, _) = api
        .get(&format!("/api/v1/shared-docs/{id}"), &api.reader)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The next message from the mesh (10 s at most).
async fn next(agent: &mut mesh_protocol::ws::Connection) -> mesh_protocol::Message {
    use mesh_protocol::ws::Incoming;
    match tokio::time::timeout(Duration::from_secs(10), agent.recv()).await {
        Ok(Some(Ok(Incoming::Message(m)))) => m,
        other => panic!("no message: {other:?}"),
    }
}
