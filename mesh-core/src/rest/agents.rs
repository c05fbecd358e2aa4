//! `/api/v1/agents`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::agents::{ModelTotals, UsageTotals};
use crate::domain::{Action, Principal, Resource};
use crate::http::{ApiError, AppState, ErrorBody, permit};
use crate::http::{Json, Path, Query};
use crate::{Agent, AgentFilter, AgentId, AgentStatus};

/// Filters for `GET /api/v1/agents`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentListParams {
    /// Only agents with this status.
    pub status: Option<AgentStatus>,
    /// Only agents with this capability (a page may then hold fewer than `limit`).
    pub capability: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// A page of agents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentPage {
    /// The agents, in registration order.
    pub items: Vec<Agent>,
    /// Cursor of the next page; absent on the last.
    pub next: Option<String>,
}

#[utoipa::path(operation_id = "list_agents", get, path = "/api/v1/agents", tag = "agents", params(AgentListParams),
    responses((status = 200, body = AgentPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<AgentListParams>,
) -> Result<Json<AgentPage>, ApiError> {
    permit(&who, Action::Read, Resource::Agents, None)?;
    if params.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::invalid("limit must be 1 to 1000"));
    }
    let filter = AgentFilter {
        status: params.status,
        capability: params.capability,
        limit: params.limit,
        cursor: params.cursor,
    };
    let page = state
        .services
        .engine
        .list_agents(who.tenant, filter)
        .await?;
    Ok(Json(AgentPage {
        items: page.items,
        next: page.next,
    }))
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
    permit(&who, Action::Read, Resource::Agents, None)?;
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
    permit(&who, Action::Delete, Resource::Agents, None)?;
    if state.services.engine.deregister(who.tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("agent"))
    }
}

/// What the tenant's LLM agents spent (since this instance started; each task's own
/// usage is in its output).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentUsageReport {
    /// Across the tenant's agents.
    pub total: UsageTotals,
    /// Per agent, by name.
    pub agents: std::collections::BTreeMap<String, UsageTotals>,
    /// Per model, by id (mesh-embed's cost meter).
    pub models: std::collections::BTreeMap<String, ModelTotals>,
}

#[utoipa::path(operation_id = "agent_usage", get, path = "/api/v1/agents/usage", tag = "agents",
    responses((status = 200, body = AgentUsageReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<AgentUsageReport>, ApiError> {
    permit(&who, Action::Read, Resource::Agents, None)?;
    let usage = &state.services.agents;
    Ok(Json(AgentUsageReport {
        total: usage.total(who.tenant),
        agents: usage.of(who.tenant),
        models: usage.models(who.tenant),
    }))
}
