//! `/api/v1/tools` (what a tenant may call, and calling it) and
//! `/api/v1/tool-sources` (the MCP servers and adapters a tenant registers).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{Action, Principal, Resource};
use crate::http::{ApiError, AppState, ErrorBody, permit};
use crate::http::{Json, Path};
use crate::tools::{Caller, SourceInput, SourceView, ToolInfo};

/// `POST /api/v1/tools/{name}/execute`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExecuteTool {
    /// The action.
    pub action: String,
    /// Its input (see the action's `input_schema`).
    #[serde(default)]
    pub input: Value,
}

/// What the action returned.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolOutput {
    /// The tool's answer.
    pub output: Value,
}

/// The tools the caller may see (its `read` permissions on tools, by name).
#[utoipa::path(operation_id = "list_tools", get, path = "/api/v1/tools", tag = "tools",
    responses((status = 200, body = Vec<ToolInfo>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Vec<ToolInfo>>, ApiError> {
    permit(&who, Action::Read, Resource::Tools, None)?;
    let mut tools = state.services.tools.list(who.tenant).await?;
    tools.retain(|tool| who.may(Action::Read, Resource::Tools, Some(&tool.name)));
    Ok(Json(tools))
}

#[utoipa::path(operation_id = "execute_tool", post, path = "/api/v1/tools/{name}/execute", tag = "tools", request_body = ExecuteTool,
    params(("name" = String, Path, description = "The tool")),
    responses((status = 200, body = ToolOutput), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "The service behind the tool failed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn execute(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(body): Json<ExecuteTool>,
) -> Result<Json<ToolOutput>, ApiError> {
    permit(&who, Action::Execute, Resource::Tools, Some(&name))?;
    let caller = Caller {
        tenant: who.tenant,
        key: Some(&who.subject),
    };
    let tools = &state.services.tools;
    let output = tools
        .execute(caller, &name, &body.action, body.input)
        .await?;
    Ok(Json(ToolOutput { output }))
}

/// The tenant's tool sources.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceList {
    /// The operator's first, then the tenant's own by name.
    pub items: Vec<SourceView>,
}

#[utoipa::path(operation_id = "list_tool_sources", get, path = "/api/v1/tool-sources", tag = "tools",
    responses((status = 200, body = SourceList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn sources(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<SourceList>, ApiError> {
    permit(&who, Action::Read, Resource::Tools, None)?;
    let items = state.services.tools.sources(who.tenant).await?;
    Ok(Json(SourceList { items }))
}

#[utoipa::path(operation_id = "get_tool_source", get, path = "/api/v1/tool-sources/{name}", tag = "tools",
    params(("name" = String, Path, description = "The source")),
    responses((status = 200, body = SourceView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn source(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<SourceView>, ApiError> {
    permit(&who, Action::Read, Resource::Tools, None)?;
    let all = state.services.tools.sources(who.tenant).await?;
    all.into_iter()
        .find(|s| s.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("tool source"))
}

#[utoipa::path(operation_id = "put_tool_source", put, path = "/api/v1/tool-sources/{name}", tag = "tools", request_body = SourceInput,
    params(("name" = String, Path, description = "The source: 1-32 of a-z, 0-9, _ and -")),
    responses((status = 201, body = SourceView, description = "Registered: its tools are callable at once"),
        (status = 200, body = SourceView, description = "Replaced"),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "Its tools' names are taken (prefix `never`), or the operator's source has the name"),
        (status = 502, body = ErrorBody, description = "The MCP server did not answer"), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn put_source(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(body): Json<SourceInput>,
) -> Result<(StatusCode, Json<SourceView>), ApiError> {
    permit(&who, Action::Create, Resource::Tools, None)?;
    permit(&who, Action::Update, Resource::Tools, None)?;
    let (view, created) = state
        .services
        .tools
        .register(who.tenant, &name, body)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

#[utoipa::path(operation_id = "delete_tool_source", delete, path = "/api/v1/tool-sources/{name}", tag = "tools",
    params(("name" = String, Path, description = "The source")),
    responses((status = 204, description = "Removed: its tools are gone, its connection closed"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn delete_source(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    permit(&who, Action::Delete, Resource::Tools, None)?;
    if state.services.tools.remove(who.tenant, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("tool source"))
    }
}
