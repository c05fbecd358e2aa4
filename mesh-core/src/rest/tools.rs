//! `/api/v1/tools`.

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Scope;
use crate::domain::Principal;
use crate::http::{ApiError, AppState, ErrorBody, require};
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

#[utoipa::path(operation_id = "list_tools", get, path = "/api/v1/tools", tag = "tools",
    responses((status = 200, body = Vec<ToolInfo>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Vec<ToolInfo>>, ApiError> {
    require(&who, Scope::Read)?;
    Ok(Json(state.services.tools.list()))
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
    require(&who, Scope::Write)?;
    let output = state
        .services
        .tools
        .execute(&name, &body.action, body.input)
        .await?;
    Ok(Json(ToolOutput { output }))
}
