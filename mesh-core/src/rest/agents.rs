//! `/api/v1/agents`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::domain::Principal;
use crate::http::{ApiError, AppState, ErrorBody, require};
use crate::http::{Json, Path, Query};
use crate::{Agent, AgentFilter, AgentId, AgentStatus, Scope};

/// Filters for `GET /api/v1/agents`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentListParams {
    /// Only agents with this status.
    pub status: Option<AgentStatus>,
    /// Only agents with this capability.
    pub capability: Option<String>,
}

#[utoipa::path(operation_id = "list_agents", get, path = "/api/v1/agents", tag = "agents", params(AgentListParams),
    responses((status = 200, body = Vec<Agent>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<AgentListParams>,
) -> Result<Json<Vec<Agent>>, ApiError> {
    require(&who, Scope::Read)?;
    let filter = AgentFilter {
        status: params.status,
        capability: params.capability,
    };
    Ok(Json(
        state
            .services
            .engine
            .list_agents(who.tenant, filter)
            .await?,
    ))
}

#[utoipa::path(operation_id = "get_agent", get, path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, format = Uuid, description = "The agent id")),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    require(&who, Scope::Read)?;
    state
        .services
        .engine
        .agent(who.tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("agent"))
}

#[utoipa::path(operation_id = "deregister_agent", delete, path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, format = Uuid, description = "The agent id")),
    responses((status = 204, description = "Deregistered; its connection is closed and its tasks reassigned"),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn deregister(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AgentId>,
) -> Result<StatusCode, ApiError> {
    require(&who, Scope::Admin)?;
    if state.services.engine.deregister(who.tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("agent"))
    }
}
