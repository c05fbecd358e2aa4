//! `/api/v1/workflow-definitions` and `/api/v1/workflows`: registering definitions,
//! and starting, following and steering runs — including the run's journal as a
//! resumable Server-Sent Events stream.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{Action, Principal, Resource, WorkflowId};
use crate::engine::Page;
use crate::http::{ApiError, AppState, Created, ErrorBody, Json, Path, Query, permit};
use crate::workflow::{
    Checkpoint, DefinitionRecord, RunFilter, RunStatus, StartRequest, WorkflowDefinition,
    WorkflowRun,
};

/// A page of definitions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DefinitionPage {
    /// Every registered version, oldest first.
    pub items: Vec<DefinitionRecord>,
    /// Cursor of the next page; absent on the last.
    pub next: Option<String>,
}

/// A page of runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunPage {
    /// The runs, oldest first.
    pub items: Vec<WorkflowRun>,
    /// Cursor of the next page; absent on the last.
    pub next: Option<String>,
}

/// Filters for `GET /api/v1/workflow-definitions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DefinitionListParams {
    /// Only versions of this workflow.
    pub name: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// Which version of a definition.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionParams {
    /// The version (default: the newest).
    pub version: Option<u32>,
}

/// Filters for `GET /api/v1/workflows`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunListParams {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// A signal for a run.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    /// The signal's name.
    pub name: String,
    /// Its value (the waiting step's result).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub value: Value,
}

/// The value for a pending interrupt.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// The interrupt (from the run's `interrupts`).
    pub interrupt: uuid::Uuid,
    /// The value (the waiting step's result).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub value: Value,
}

/// Where to fork a run, and how its state changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// The checkpoint (its `seq` in the run's history).
    pub seq: u64,
    /// A JSON merge patch for the state at that checkpoint.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub patch: Value,
}

/// Which finished runs to delete.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Every run finished before this time; without it, the runs whose definition's
    /// `retention_secs` ran out.
    #[serde(default)]
    pub before: Option<chrono::DateTime<chrono::Utc>>,
}

/// A message kept for a run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Always true: the message is stored, and the run takes it when it can.
    pub accepted: bool,
}

/// How many runs a prune deleted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pruned {
    /// Runs deleted, with their journals.
    pub pruned: usize,
}

/// A page of a run's journal.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Entries after this `seq` (from the first when absent).
    pub after: Option<u64>,
    /// Entries, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

fn check_limit(limit: Option<usize>) -> Result<(), ApiError> {
    match limit {
        Some(l) if !(1..=1000).contains(&l) => Err(ApiError::invalid("limit must be 1 to 1000")),
        _ => Ok(()),
    }
}

#[utoipa::path(operation_id = "register_workflow", post, path = "/api/v1/workflow-definitions", tag = "workflows",
    request_body(content = Object, description = "A workflow definition (see docs/workflows.md)"),
    responses((status = 201, body = DefinitionRecord), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(definition): Json<WorkflowDefinition>,
) -> Result<(StatusCode, Json<DefinitionRecord>), ApiError> {
    permit(&who, Action::Create, Resource::Definitions, None)?;
    let record = state
        .services
        .workflows
        .register(who.tenant, definition)
        .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[utoipa::path(operation_id = "list_workflow_definitions", get, path = "/api/v1/workflow-definitions", tag = "workflows",
    params(DefinitionListParams), responses((status = 200, body = DefinitionPage)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn definitions(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<DefinitionListParams>,
) -> Result<Json<DefinitionPage>, ApiError> {
    permit(&who, Action::Read, Resource::Definitions, None)?;
    check_limit(params.limit)?;
    let Page { items, next } = state
        .services
        .workflows
        .definitions(
            who.tenant,
            params.name.as_deref(),
            params.limit,
            params.cursor,
        )
        .await?;
    Ok(Json(DefinitionPage { items, next }))
}

#[utoipa::path(operation_id = "get_workflow_definition", get, path = "/api/v1/workflow-definitions/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name"), VersionParams),
    responses((status = 200, body = DefinitionRecord), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn definition(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(params): Query<VersionParams>,
) -> Result<Json<DefinitionRecord>, ApiError> {
    permit(&who, Action::Read, Resource::Definitions, None)?;
    let record = state
        .services
        .workflows
        .definition(who.tenant, &name, params.version)
        .await?;
    Ok(Json(record))
}

#[utoipa::path(operation_id = "start_workflow", post, path = "/api/v1/workflows", tag = "workflows",
    request_body = StartRequest,
    responses((status = 201, body = WorkflowRun, description = "Started, or the run that has this `id` already"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn start(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(request): Json<StartRequest>,
) -> Result<(StatusCode, Extension<Created>, Json<WorkflowRun>), ApiError> {
    permit(&who, Action::Create, Resource::Workflows, None)?;
    let run = state
        .services
        .workflows
        .start_run(who.tenant, request)
        .await?;
    let created = Created(format!("workflows:{}", run.id));
    Ok((StatusCode::CREATED, Extension(created), Json(run)))
}

#[utoipa::path(operation_id = "list_workflows", get, path = "/api/v1/workflows", tag = "workflows",
    params(RunListParams), responses((status = 200, body = RunPage)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<RunListParams>,
) -> Result<Json<RunPage>, ApiError> {
    permit(&who, Action::Read, Resource::Workflows, None)?;
    check_limit(params.limit)?;
    let filter = RunFilter {
        status: params.status,
        workflow: params.workflow,
        since: params.since,
        limit: params.limit,
        cursor: params.cursor,
    };
    let Page { items, next } = state.services.workflows.runs(who.tenant, filter).await?;
    Ok(Json(RunPage { items, next }))
}

#[utoipa::path(operation_id = "get_workflow", get, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id")),
    responses((status = 200, body = WorkflowRun), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
) -> Result<Json<WorkflowRun>, ApiError> {
    permit(&who, Action::Read, Resource::Workflows, None)?;
    Ok(Json(state.services.workflows.run(who.tenant, id).await?))
}

#[utoipa::path(operation_id = "cancel_workflow", post, path = "/api/v1/workflows/{id}/cancel", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id")),
    responses((status = 200, body = WorkflowRun), (status = 409, body = ErrorBody, description = "It has finished")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
) -> Result<Json<WorkflowRun>, ApiError> {
    permit(&who, Action::Update, Resource::Workflows, None)?;
    Ok(Json(state.services.workflows.cancel(who.tenant, id).await?))
}

#[utoipa::path(operation_id = "signal_workflow", post, path = "/api/v1/workflows/{id}/signal", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id")), request_body = SignalRequest,
    responses((status = 202, body = Accepted, description = "Kept for the run"), (status = 409, body = ErrorBody, description = "It has finished")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn signal(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
    Json(request): Json<SignalRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    permit(&who, Action::Update, Resource::Workflows, None)?;
    if request.name.is_empty() || request.name.len() > 128 {
        return Err(ApiError::invalid("a signal's name is 1 to 128 characters"));
    }
    state
        .services
        .workflows
        .signal(who.tenant, id, &request.name, request.value)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted: true })))
}

#[utoipa::path(operation_id = "resume_workflow", post, path = "/api/v1/workflows/{id}/resume", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id")), request_body = ResumeRequest,
    responses((status = 202, body = Accepted, description = "The interrupt's step takes the value"), (status = 404, body = ErrorBody, description = "No such pending interrupt")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn resume(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
    Json(request): Json<ResumeRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    permit(&who, Action::Update, Resource::Workflows, None)?;
    state
        .services
        .workflows
        .resume(who.tenant, id, request.interrupt, request.value)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted: true })))
}

#[utoipa::path(operation_id = "retry_workflow", post, path = "/api/v1/workflows/{id}/retry", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id")),
    responses((status = 200, body = WorkflowRun), (status = 409, body = ErrorBody, description = "It has not failed")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
) -> Result<Json<WorkflowRun>, ApiError> {
    permit(&who, Action::Update, Resource::Workflows, None)?;
    Ok(Json(state.services.workflows.retry(who.tenant, id).await?))
}

#[utoipa::path(operation_id = "workflow_history", get, path = "/api/v1/workflows/{id}/history", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id"), HistoryParams),
    responses((status = 200, body = Vec<Checkpoint>)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn history(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<Vec<Checkpoint>>, ApiError> {
    permit(&who, Action::Read, Resource::Workflows, None)?;
    check_limit(params.limit)?;
    let entries = state
        .services
        .workflows
        .history(who.tenant, id, params.after, params.limit)
        .await?;
    Ok(Json(entries))
}

#[utoipa::path(operation_id = "fork_workflow", post, path = "/api/v1/workflows/{id}/fork", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id")), request_body = ForkRequest,
    responses((status = 201, body = WorkflowRun, description = "The new run")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn fork(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
    Json(request): Json<ForkRequest>,
) -> Result<(StatusCode, Json<WorkflowRun>), ApiError> {
    permit(&who, Action::Update, Resource::Workflows, None)?;
    let run = state
        .services
        .workflows
        .fork(who.tenant, id, request.seq, request.patch)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

#[utoipa::path(operation_id = "prune_workflows", post, path = "/api/v1/workflows/prune", tag = "workflows",
    request_body = PruneRequest, responses((status = 200, body = Pruned, description = "Needs the admin scope")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn prune(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(request): Json<PruneRequest>,
) -> Result<Json<Pruned>, ApiError> {
    permit(&who, Action::Delete, Resource::Workflows, None)?;
    let pruned = state
        .services
        .workflows
        .prune(who.tenant, request.before)
        .await?;
    Ok(Json(Pruned { pruned }))
}

#[utoipa::path(operation_id = "workflow_events", get, path = "/api/v1/workflows/{id}/events", tag = "workflows",
    params(("id" = String, Path, format = Uuid, description = "The run id"),
           ("after" = Option<u64>, Query, description = "Entries after this seq (or the `Last-Event-ID` header)")),
    responses((status = 200, content_type = "text/event-stream",
        description = "The run's journal as Server-Sent Events: `checkpoint` events (id = seq, data = a checkpoint), then `finished` (data = the run) when it ends. Reconnect with `Last-Event-ID` to miss nothing.")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<WorkflowId>,
    Query(params): Query<HistoryParams>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    permit(&who, Action::Read, Resource::Workflows, None)?;
    let resumed = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID must be a checkpoint seq"))?,
        ),
        None => params.after,
    };
    // The run must exist (and be this tenant's) before a stream opens.
    state.services.workflows.run(who.tenant, id).await?;
    Ok(crate::http::journal_stream(
        state.services.workflows.clone(),
        who.tenant,
        id,
        resumed,
        state.gate.until_revoked(&who),
    ))
}
