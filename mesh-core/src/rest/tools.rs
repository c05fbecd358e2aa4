//! `/api/v1/tools`.

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{Action, Principal, Resource};
use crate::http::{ApiError, AppState, ErrorBody, permit};
use crate::http::{Json, Path};
use crate::tools::ToolInfo;

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
    let mut tools = state.services.tools.list();
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
    let output = state
        .services
        .tools
        .execute(&name, &body.action, body.input)
        .await?;
    Ok(Json(ToolOutput { output }))
}
