//! The MCP handler: tools and resources over the shared services.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::{AppState, Principal};
use crate::collab::CollabJob;
use crate::services::{IndexRequest, SearchRequest};
use crate::{
    AgentFilter, AgentStatus, Priority, RoutingPreference, Scope, TaskFilter, TaskId, TaskSpec,
};

/// The protocol versions served.
pub const PROTOCOL_VERSIONS: [ProtocolVersion; 2] =
    [ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_11_25];

/// The tools, by name (what `tools/call` accepts).
const TOOL_NAMES: [&str; 8] = [
    "list_agents",
    "submit_task",
    "get_task",
    "cancel_task",
    "run_collab",
    "index_document",
    "search",
    "execute_tool",
];

/// The MCP server for one connection (WebSocket) or one HTTP session.
#[derive(Clone)]
pub struct MeshMcp {
    state: AppState,
    /// Known up front on WebSocket; on HTTP it comes with each request.
    principal: Option<Principal>,
}

impl std::fmt::Debug for MeshMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshMcp")
            .field("principal", &self.principal)
            .finish()
    }
}

/// A tool call that went wrong in a way the model should see (`isError`).
struct ToolFailure(String);

impl<E: std::fmt::Display> From<E> for ToolFailure {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

type ToolResult = Result<Value, ToolFailure>;

fn schema<T: schemars::JsonSchema>() -> Arc<JsonObject> {
    let schema = schemars::schema_for!(T);
    match serde_json::to_value(schema) {
        Ok(Value::Object(map)) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ListAgentsArgs {
    /// Only agents with this status (e.g. `active`).
    status: Option<AgentStatus>,
    /// Only agents with this capability.
    capability: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SubmitArgs {
    /// The task kind.
    kind: String,
    /// Input for the agent.
    #[serde(default)]
    input: Value,
    /// Capabilities the agent needs besides the kind.
    #[serde(default)]
    required_capabilities: Vec<String>,
    /// low, normal, high or critical.
    #[serde(default)]
    priority: Priority,
    /// The routing strategy.
    #[serde(default)]
    routing: RoutingPreference,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct TaskArgs {
    /// The task id (a UUID).
    id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ExecuteArgs {
    /// The registered tool.
    tool: String,
    /// Its action.
    action: String,
    /// The action's input.
    #[serde(default)]
    input: Value,
}

fn args<T: DeserializeOwned>(arguments: Option<JsonObject>) -> Result<T, ToolFailure> {
    serde_json::from_value(Value::Object(arguments.unwrap_or_default()))
        .map_err(|e| ToolFailure(format!("invalid arguments: {e}")))
}

fn task_id(id: &str) -> Result<TaskId, ToolFailure> {
    id.parse()
        .map_err(|e| ToolFailure(format!("invalid task id: {e}")))
}

fn collab_schema() -> Arc<JsonObject> {
    object(json!({
        "type": "object",
        "description": "A collaboration job, by pattern: parallel {tasks, completion?}, map_reduce {map_kind, inputs, reduce_kind}, pipeline {stages, input?}, consensus {task, voters}. Tasks are {kind, input?, required_capabilities?, priority?}.",
        "properties": {
            "pattern": {"type": "string", "enum": ["parallel", "map_reduce", "pipeline", "consensus"]},
            "tasks": {"type": "array", "items": {"type": "object"}},
            "completion": {"type": "object", "description": "{\"mode\": \"all\" | \"any\" | \"majority\"} or {\"mode\": \"first_n\", \"n\": 2}"},
            "map_kind": {"type": "string"},
            "inputs": {"type": "array"},
            "reduce_kind": {"type": "string"},
            "stages": {"type": "array", "items": {"type": "string"}},
            "input": {},
            "task": {"type": "object"},
            "voters": {"type": "integer", "minimum": 1},
            "wait_ms": {"type": "integer", "minimum": 0, "maximum": 120000}
        },
        "required": ["pattern"]
    }))
}

impl MeshMcp {
    /// A server acting for `principal` (or, over HTTP, for each request's caller).
    pub fn new(state: AppState, principal: Option<Principal>) -> Self {
        Self { state, principal }
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Principal, ErrorData> {
        self.principal
            .clone()
            .or_else(|| {
                context
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Principal>().cloned())
            })
            .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))
    }

    fn tools() -> Vec<Tool> {
        vec![
            Tool::new(
                "list_agents",
                "List the tenant's registered agents, optionally by status or capability.",
                schema::<ListAgentsArgs>(),
            ),
            Tool::new(
                "submit_task",
                "Submit a task; it is routed to an eligible agent. Returns the task.",
                schema::<SubmitArgs>(),
            ),
            Tool::new(
                "get_task",
                "Get a task: status, agent, output, error.",
                schema::<TaskArgs>(),
            ),
            Tool::new(
                "cancel_task",
                "Cancel a task; its agent is told to stop.",
                schema::<TaskArgs>(),
            ),
            Tool::new(
                "run_collab",
                "Run a collaboration job (parallel, map_reduce, pipeline, consensus) and return its outcome.",
                collab_schema(),
            ),
            Tool::new(
                "index_document",
                "Queue a document to be chunked, embedded and indexed into a collection.",
                schema::<IndexRequest>(),
            ),
            Tool::new(
                "search",
                "Semantic search over a collection's indexed documents.",
                schema::<SearchRequest>(),
            ),
            Tool::new(
                "execute_tool",
                "Run an action of a registered tool (see the REST API's /api/v1/tools for the list).",
                schema::<ExecuteArgs>(),
            ),
        ]
    }

    async fn run(&self, who: &Principal, name: &str, arguments: Option<JsonObject>) -> ToolResult {
        let services = &self.state.services;
        let need = |scope: Scope| {
            if who.allows(scope) {
                Ok(())
            } else {
                Err(ToolFailure(format!(
                    "forbidden: this needs the {scope:?} scope"
                )))
            }
        };
        match name {
            "list_agents" => {
                need(Scope::Read)?;
                let a: ListAgentsArgs = args(arguments)?;
                let filter = AgentFilter {
                    status: a.status,
                    capability: a.capability,
                };
                Ok(serde_json::to_value(
                    services.engine.list_agents(who.tenant, filter).await?,
                )?)
            }
            "submit_task" => {
                need(Scope::Write)?;
                let a: SubmitArgs = args(arguments)?;
                let spec = TaskSpec::new(a.kind, a.input)
                    .require(a.required_capabilities)
                    .priority(a.priority)
                    .routing(a.routing);
                Ok(serde_json::to_value(
                    services.engine.submit(who.tenant, spec).await?,
                )?)
            }
            "get_task" => {
                need(Scope::Read)?;
                let a: TaskArgs = args(arguments)?;
                let id = task_id(&a.id)?;
                match services.engine.task(who.tenant, id).await? {
                    Some(task) => Ok(serde_json::to_value(task)?),
                    None => Err(ToolFailure(format!("task {id} not found"))),
                }
            }
            "cancel_task" => {
                need(Scope::Write)?;
                let a: TaskArgs = args(arguments)?;
                let id = task_id(&a.id)?;
                Ok(serde_json::to_value(
                    services.engine.cancel(who.tenant, id).await?,
                )?)
            }
            "run_collab" => {
                need(Scope::Write)?;
                let mut arguments = arguments.unwrap_or_default();
                let wait = arguments
                    .remove("wait_ms")
                    .and_then(|w| w.as_u64())
                    .unwrap_or(30_000)
                    .min(120_000);
                let job: CollabJob = args(Some(arguments))?;
                let (engine, tenant) = (services.engine.clone(), who.tenant);
                let job = tokio::spawn(async move { job.run(&engine, tenant).await });
                match tokio::time::timeout(std::time::Duration::from_millis(wait), job).await {
                    Ok(Ok(outcome)) => Ok(json!({"status": "completed", "outcome": outcome?})),
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Ok(json!({"status": "running"})),
                }
            }
            "index_document" => {
                need(Scope::Write)?;
                let request: IndexRequest = args(arguments)?;
                let job_id = services.index_document(who.tenant, request).await?;
                Ok(json!({"job_id": job_id}))
            }
            "search" => {
                need(Scope::Read)?;
                let request: SearchRequest = args(arguments)?;
                Ok(json!({"hits": services.search(who.tenant, &request).await?}))
            }
            "execute_tool" => {
                need(Scope::Write)?;
                let a: ExecuteArgs = args(arguments)?;
                let output = services.tools.execute(&a.tool, &a.action, a.input).await?;
                Ok(json!({"output": output}))
            }
            _ => Err(ToolFailure(format!("unknown tool {name}"))),
        }
    }

    async fn read(&self, who: &Principal, uri: &str) -> Result<Value, ErrorData> {
        let engine = &self.state.services.engine;
        let failed = |e: crate::EngineError| ErrorData::internal_error(e.to_string(), None);
        if !who.allows(Scope::Read) {
            return Err(ErrorData::invalid_request(
                "forbidden: this needs the read scope",
                None,
            ));
        }
        match uri {
            "mesh://agents" => Ok(json!(
                engine
                    .list_agents(who.tenant, AgentFilter::default())
                    .await
                    .map_err(failed)?
            )),
            "mesh://tasks" => {
                let filter = TaskFilter {
                    limit: Some(100),
                    ..TaskFilter::default()
                };
                Ok(json!(
                    engine.tasks(who.tenant, filter).await.map_err(failed)?
                ))
            }
            _ => {
                let id = uri
                    .strip_prefix("mesh://tasks/")
                    .and_then(|id| id.parse::<TaskId>().ok())
                    .ok_or_else(|| {
                        ErrorData::resource_not_found(format!("no resource {uri}"), None)
                    })?;
                match engine.task(who.tenant, id).await.map_err(failed)? {
                    Some(task) => Ok(json!(task)),
                    None => Err(ErrorData::resource_not_found(
                        format!("no resource {uri}"),
                        None,
                    )),
                }
            }
        }
    }
}

impl ServerHandler for MeshMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_server_info(rmcp::model::Implementation::new("mesh", env!("CARGO_PKG_VERSION")))
            .with_instructions("Mesh orchestrates AI agents: submit tasks, follow them, run collaboration jobs, index and search documents.")
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(PROTOCOL_VERSIONS.to_vec())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let who = self.caller(&context)?;
        if !TOOL_NAMES.contains(&request.name.as_ref()) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {}", request.name),
                None,
            ));
        }
        let result = match self.run(&who, &request.name, request.arguments).await {
            Ok(value) => CallToolResult::success(vec![ContentBlock::text(value.to_string())]),
            Err(ToolFailure(message)) => CallToolResult::error(vec![ContentBlock::text(message)]),
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new("mesh://agents", "agents")
                .with_description("The tenant's registered agents"),
            Resource::new("mesh://tasks", "tasks").with_description("The tenant's first 100 tasks"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("mesh://tasks/{id}", "task"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let who = self.caller(&context)?;
        let value = self.read(&who, &request.uri).await?;
        Ok(
            ReadResourceResult::new(vec![ResourceContents::text(value.to_string(), request.uri)])
                .into(),
        )
    }
}
