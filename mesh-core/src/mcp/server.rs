//! The MCP handler: Mesh's tools, declared once with rmcp's tool macros (input schemas
//! from the argument types, dispatch, structured output), and its resources.
//!
//! Long on purpose: the core tools' declarations sit beside the one handler that
//! checks, audits and dispatches every call (workflow and source tools live apart).

use std::borrow::Cow;

use rmcp::handler::server::common::{FromContextPart, schema_for_type};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{IntoCallToolResult, ToolCallContext};
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::Instrument;

use super::access::{audit_entry, may_call, needs, rate_limited, refusal, resource_of};
use crate::collab::{CollabJob, JobState, JobView};
use crate::domain::{Action, AgentStatus, Decision, Principal, TaskId, TaskSpec};
use crate::engine::{AgentFilter, TaskFilter};
use crate::http::{AppState, permit};
use crate::knowledge::{IndexRequest, SearchRequest};

/// The protocol versions served.
pub const PROTOCOL_VERSIONS: [ProtocolVersion; 2] =
    [ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_11_25];

/// The MCP server for one connection (WebSocket) or one HTTP session.
#[derive(Clone)]
pub struct MeshMcp {
    state: AppState,
    /// Known up front on WebSocket; on HTTP it comes with each request.
    principal: Option<Principal>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for MeshMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshMcp")
            .field("principal", &self.principal)
            .finish()
    }
}

/// A tool call that went wrong in a way the model should see: a result with `isError`
/// whose structured content is `{"code", "message"}` — the same stable codes as REST.
#[derive(Debug)]
pub(crate) struct ToolFailure {
    code: &'static str,
    message: String,
    /// A rate-limited call's JSON-RPC error (with `retry_after_ms`), not a result.
    limited: Option<ErrorData>,
}

impl ToolFailure {
    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: "invalid_request",
            message: message.into(),
            limited: None,
        }
    }
}

impl IntoCallToolResult for ToolFailure {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        if let Some(limited) = self.limited {
            return Err(limited);
        }
        let body = json!({"code": self.code, "message": self.message});
        Ok(CallToolResult::structured_error(body).into())
    }
}

/// Every core error carries its stable code into the tool result.
macro_rules! coded_failure {
    ($($error:ty),*) => {$(
        impl From<$error> for ToolFailure {
            fn from(e: $error) -> Self {
                Self { code: e.code(), message: e.to_string(), limited: None }
            }
        }
    )*};
}
coded_failure!(
    crate::engine::EngineError,
    crate::collab::CollabError,
    crate::http::AuthError,
    crate::services::ServiceError,
    crate::tools::SourceError,
    crate::workflow::WorkflowError,
    crate::shared_docs::DocError
);

impl From<crate::tools::ToolError> for ToolFailure {
    fn from(e: crate::tools::ToolError) -> Self {
        let limited = e.retry_after().map(|_| rate_limited(&e));
        Self {
            code: e.code(),
            message: e.to_string(),
            limited,
        }
    }
}

pub(super) type ToolResult = Result<CallToolResult, ToolFailure>;

/// A tool's output: structured content when it is an object, text otherwise.
pub(super) fn output(value: impl serde::Serialize) -> ToolResult {
    let value = serde_json::to_value(value).map_err(|e| ToolFailure::invalid(e.to_string()))?;
    Ok(if value.is_object() {
        CallToolResult::structured(value)
    } else {
        CallToolResult::success(vec![ContentBlock::text(value.to_string())])
    })
}

/// A tool's arguments, parsed leniently: arguments that do not fit are a tool result
/// with `isError` (the model can correct them), not a protocol error.
pub(crate) struct Args<T>(pub(super) Result<T, ToolFailure>);

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Args<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        let arguments = Value::Object(context.arguments.take().unwrap_or_default());
        Ok(Self(serde_json::from_value(arguments).map_err(|e| {
            ToolFailure::invalid(format!("invalid arguments: {e}"))
        })))
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ListAgentsArgs {
    /// Only agents with this status (e.g. `active`).
    status: Option<AgentStatus>,
    /// Only agents with this capability.
    capability: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
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

/// A collaboration job and how long to wait for it.
#[derive(Deserialize)]
struct CollabArgs {
    #[serde(flatten)]
    job: CollabJob,
    #[serde(default)]
    wait_ms: Option<u64>,
}

/// The schema of [`CollabArgs`]: a job, by pattern — parallel {tasks, completion?},
/// map_reduce {map_kind, inputs, reduce_kind}, pipeline {stages, input?}, consensus
/// {task, voters} — and how long to wait for it.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct CollabShape {
    /// `parallel`, `map_reduce`, `pipeline` or `consensus`.
    pattern: String,
    /// parallel: the tasks.
    tasks: Option<Vec<TaskSpec>>,
    /// parallel: `{"mode": "all" | "any" | "majority"}` or `{"mode": "first_n", "n": 2}`.
    completion: Option<Value>,
    /// map_reduce: the map tasks' kind.
    map_kind: Option<String>,
    /// map_reduce: one map task per input.
    inputs: Option<Vec<Value>>,
    /// map_reduce: the reduce task's kind.
    reduce_kind: Option<String>,
    /// pipeline: task kinds, in order.
    stages: Option<Vec<String>>,
    /// pipeline: the first stage's input.
    input: Option<Value>,
    /// consensus: the task.
    task: Option<TaskSpec>,
    /// consensus: how many times to run it.
    voters: Option<usize>,
    /// Milliseconds to wait for the outcome (0 to 120,000; default 30,000); the job
    /// keeps running past it.
    #[schemars(range(max = 120_000))]
    wait_ms: Option<u64>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct JobArgs {
    /// The collaboration job's id (a UUID, from `run_collab`).
    id: String,
}

fn job_id(id: &str) -> Result<uuid::Uuid, ToolFailure> {
    id.parse()
        .map_err(|e| ToolFailure::invalid(format!("invalid job id: {e}")))
}

/// A collaboration job as a tool result: a failed job is a tool error with its code.
fn collab_output(job: Option<JobView>) -> ToolResult {
    match job {
        None => Err(ToolFailure {
            code: "not_found",
            message: "no such collaboration job".into(),
            limited: None,
        }),
        Some(JobView {
            state: JobState::Failed { code, message },
            ..
        }) => Err(ToolFailure {
            code,
            message,
            limited: None,
        }),
        Some(job) => output(job),
    }
}

fn task_id(id: &str) -> Result<TaskId, ToolFailure> {
    id.parse()
        .map_err(|e| ToolFailure::invalid(format!("invalid task id: {e}")))
}

#[tool_router]
impl MeshMcp {
    /// A server acting for `principal` (or, over HTTP, for each request's caller).
    pub fn new(state: AppState, principal: Option<Principal>) -> Self {
        Self {
            state,
            principal,
            tool_router: Self::tool_router()
                + Self::workflow_tools()
                + Self::source_tools()
                + Self::doc_tools(),
        }
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

    /// The tools service.
    pub(super) fn tools(&self) -> &crate::tools::Tools {
        &self.state.services.tools
    }

    /// The shared documents.
    pub(super) fn docs(&self) -> &crate::shared_docs::SharedDocs {
        &self.state.services.docs
    }

    /// The workflow runtime.
    pub(super) fn workflows(&self) -> &crate::workflow::Workflows {
        &self.state.services.workflows
    }

    /// The caller of a tool call (whose permission `call_tool` has checked).
    pub(super) fn allowed(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Principal, ToolFailure> {
        self.caller(context).map_err(|e| ToolFailure {
            code: "unauthorized",
            message: e.message.to_string(),
            limited: None,
        })
    }

    #[tool(
        description = "List the tenant's registered agents, optionally by status or capability.",
        input_schema = schema_for_type::<ListAgentsArgs>()
    )]
    async fn list_agents(
        &self,
        Args(args): Args<ListAgentsArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        let filter = AgentFilter {
            status: args.status,
            capability: args.capability,
            limit: args.limit,
            cursor: args.cursor,
        };
        output(
            self.state
                .services
                .engine
                .list_agents(who.tenant, filter)
                .await?,
        )
    }

    #[tool(
        description = "Submit a task; it is routed to an eligible agent. Returns the task.",
        input_schema = schema_for_type::<TaskSpec>()
    )]
    async fn submit_task(
        &self,
        Args(spec): Args<TaskSpec>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        output(self.state.services.engine.submit(who.tenant, spec?).await?)
    }

    #[tool(
        description = "Get a task: status, agent, output, error.",
        input_schema = schema_for_type::<TaskArgs>()
    )]
    async fn get_task(
        &self,
        Args(args): Args<TaskArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let id = task_id(&args?.id)?;
        match self.state.services.engine.task(who.tenant, id).await? {
            Some(task) => output(task),
            None => Err(crate::engine::EngineError::TaskNotFound(id).into()),
        }
    }

    #[tool(
        description = "Cancel a task; its agent is told to stop.",
        input_schema = schema_for_type::<TaskArgs>()
    )]
    async fn cancel_task(
        &self,
        Args(args): Args<TaskArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let id = task_id(&args?.id)?;
        output(self.state.services.engine.cancel(who.tenant, id).await?)
    }

    #[tool(
        description = "Run a collaboration job (parallel, map_reduce, pipeline, consensus) and return its outcome.",
        input_schema = schema_for_type::<CollabShape>()
    )]
    async fn run_collab(
        &self,
        Args(args): Args<CollabArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        let wait = args.wait_ms.unwrap_or(30_000).min(120_000);
        let services = &self.state.services;
        // The job runs on its own task, so it finishes even if the wait runs out.
        let id = services
            .collab
            .start(&services.engine, who.tenant, args.job)?;
        let job = services
            .collab
            .wait(who.tenant, id, std::time::Duration::from_millis(wait))
            .await;
        collab_output(job)
    }

    #[tool(
        description = "Get a collaboration job started with run_collab: running, completed (with its outcome), failed or cancelled, and the tasks it submitted.",
        input_schema = schema_for_type::<JobArgs>()
    )]
    async fn get_collab_job(
        &self,
        Args(args): Args<JobArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let id = job_id(&args?.id)?;
        collab_output(self.state.services.collab.get(who.tenant, id))
    }

    #[tool(
        description = "Cancel a collaboration job and the tasks it submitted that are still running.",
        input_schema = schema_for_type::<JobArgs>()
    )]
    async fn cancel_collab_job(
        &self,
        Args(args): Args<JobArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let id = job_id(&args?.id)?;
        collab_output(self.state.services.collab.cancel(who.tenant, id).await)
    }

    #[tool(
        description = "Queue a document to be chunked, embedded and indexed into a collection.",
        input_schema = schema_for_type::<IndexRequest>()
    )]
    async fn index_document(
        &self,
        Args(request): Args<IndexRequest>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let services = &self.state.services;
        let job_id = services.index_document(who.tenant, request?).await?;
        output(json!({"job_id": job_id}))
    }

    #[tool(
        description = "Semantic search over a collection's indexed documents.",
        input_schema = schema_for_type::<SearchRequest>()
    )]
    async fn search(
        &self,
        Args(request): Args<SearchRequest>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let hits = self.state.services.search(who.tenant, &request?).await?;
        output(json!({ "hits": hits }))
    }

    #[tool(
        description = "Run an action of a registered tool (see the REST API's /api/v1/tools for the list).",
        input_schema = schema_for_type::<ExecuteArgs>()
    )]
    async fn execute_tool(
        &self,
        Args(args): Args<ExecuteArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        permit(
            &who,
            Action::Execute,
            crate::domain::Resource::Tools,
            Some(&args.tool),
        )?;
        let caller = crate::tools::Caller {
            tenant: who.tenant,
            key: Some(&who.subject),
        };
        let called = self
            .tools()
            .execute(caller, &args.tool, &args.action, args.input);
        output(json!({ "output": called.await? }))
    }

    async fn read(&self, who: &Principal, uri: &str) -> Result<Value, ErrorData> {
        let engine = &self.state.services.engine;
        let failed = |e: crate::engine::EngineError| ErrorData::internal_error(e.to_string(), None);
        let resource = resource_of(uri);
        if !who.may(Action::Read, resource, None) {
            return Err(ErrorData::invalid_request(
                format!("forbidden: read on {resource} is not allowed to this caller"),
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

#[tool_handler(router = self.tool_router)]
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

    /// Every tool call in an `execute_tool` span, in the caller's trace: the request's
    /// `_meta.traceparent`, else the HTTP request's `traceparent` header.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        let span = tracing::info_span!(
            "execute_tool",
            otel.name = format!("execute_tool {}", request.name),
            otel.kind = "server",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = %request.name,
        );
        let header = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("traceparent"))
            .and_then(|v| v.to_str().ok());
        let meta = context.meta.get("traceparent").and_then(|v| v.as_str());
        if let Some(traceparent) = meta.or(header) {
            crate::trace::set_parent(&span, traceparent);
        }
        let who = self.caller(&context)?;
        let audit = self.state.gate.access().audit.clone();
        let tenant = who.tenant.to_string();
        let entry = |decision| audit_entry(&who, &request, &context.id, decision);
        // A tool Mesh does not have is a federated one (or unknown).
        if needs(&request.name).is_none() {
            if !who.may(
                Action::Execute,
                crate::domain::Resource::Tools,
                Some(&request.name),
            ) {
                audit.record_later(&tenant, entry(Decision::Refused));
                return Ok(refusal(&request.name).into());
            }
            let allowed = entry(Decision::Allowed);
            let arguments = Value::Object(request.arguments.unwrap_or_default());
            let called = self.call_federated(&who, &request.name, arguments);
            let result = called.instrument(span).await;
            audit.record_later(&tenant, allowed);
            return result.map(Into::into);
        }
        if !may_call(&who, &request.name, &self.runnable(&who).await) {
            audit.record_later(&tenant, entry(Decision::Refused));
            return Ok(refusal(&request.name).into());
        }
        let allowed = entry(Decision::Allowed);
        let call = ToolCallContext::new(self, request, context);
        let result = self.tool_router.call(call).instrument(span).await;
        audit.record_later(&tenant, allowed);
        result
    }

    /// The tools this caller may call, and only those.
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        let who = self.caller(&context)?;
        let runnable = self.runnable(&who).await;
        let mut tools = self.tool_router.list_all();
        tools.retain(|tool| may_call(&who, &tool.name, &runnable));
        tools.extend(self.federated_tools(&who).await);
        Ok(rmcp::model::ListToolsResult::with_all_items(tools))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let who = self.caller(&context)?;
        let mut all = vec![
            Resource::new("mesh://agents", "agents")
                .with_description("The tenant's registered agents"),
            Resource::new("mesh://tasks", "tasks").with_description("The tenant's first 100 tasks"),
        ];
        all.retain(|r| who.may(Action::Read, resource_of(&r.uri), None));
        Ok(ListResourcesResult::with_all_items(all))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let who = self.caller(&context)?;
        let mut all = vec![ResourceTemplate::new("mesh://tasks/{id}", "task")];
        all.retain(|t| who.may(Action::Read, resource_of(&t.uri_template), None));
        Ok(ListResourceTemplatesResult::with_all_items(all))
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
