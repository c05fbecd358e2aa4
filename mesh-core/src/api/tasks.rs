//! `/api/v1/tasks` and `/api/v1/collab`.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{Json, Path, Query};
use super::{ApiError, AppState, ErrorBody, Principal};
use crate::collab::CollabJob;
use crate::{
    Page, Priority, RoutingPreference, Scope, Task, TaskFilter, TaskId, TaskSpec, TaskStatus,
};

/// `POST /api/v1/tasks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitTask {
    /// The task kind (an eligible agent has it among its capabilities).
    pub kind: String,
    /// Input handed to the agent.
    #[serde(default)]
    pub input: Value,
    /// Capabilities the agent needs besides `kind`.
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    /// Urgency (`low`, `normal`, `high`, `critical`).
    #[serde(default)]
    pub priority: Priority,
    /// Routing strategy.
    #[serde(default)]
    pub routing: RoutingPreference,
    /// Attempts before it fails for good (1 to 100).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Milliseconds one attempt may take (1 to 86,400,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub timeout_ms: Option<u64>,
}

/// Filters for `GET /api/v1/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this kind.
    pub kind: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// A page of tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    /// The tasks, oldest first.
    pub items: Vec<Task>,
    /// Cursor of the next page; absent on the last.
    pub next: Option<String>,
}

impl From<Page<Task>> for TaskPage {
    fn from(p: Page<Task>) -> Self {
        Self {
            items: p.items,
            next: p.next,
        }
    }
}

#[utoipa::path(operation_id = "submit_task", post, path = "/api/v1/tasks", tag = "tasks", request_body = SubmitTask,
    responses((status = 201, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<SubmitTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    who.require(Scope::Write)?;
    if body.max_attempts.is_some_and(|a| !(1..=100).contains(&a)) {
        return Err(ApiError::invalid("max_attempts must be 1 to 100"));
    }
    if body
        .timeout_ms
        .is_some_and(|t| !(1..=86_400_000).contains(&t))
    {
        return Err(ApiError::invalid("timeout_ms must be 1 to 86400000"));
    }
    let mut spec = TaskSpec::new(body.kind, body.input)
        .require(body.required_capabilities)
        .priority(body.priority)
        .routing(body.routing);
    spec.max_attempts = body.max_attempts;
    spec.timeout_ms = body.timeout_ms;
    let task = state.services.engine.submit(who.tenant, spec).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

#[utoipa::path(operation_id = "list_tasks", get, path = "/api/v1/tasks", tag = "tasks", params(TaskListParams),
    responses((status = 200, body = TaskPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<TaskListParams>,
) -> Result<Json<TaskPage>, ApiError> {
    who.require(Scope::Read)?;
    if params.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::invalid("limit must be 1 to 1000"));
    }
    let filter = TaskFilter {
        status: params.status,
        kind: params.kind,
        limit: params.limit,
        cursor: params.cursor,
    };
    Ok(Json(
        state
            .services
            .engine
            .tasks(who.tenant, filter)
            .await?
            .into(),
    ))
}

#[utoipa::path(operation_id = "get_task", get, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "The task id")),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<TaskId>,
) -> Result<Json<Task>, ApiError> {
    who.require(Scope::Read)?;
    state
        .services
        .engine
        .task(who.tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("task"))
}

#[utoipa::path(operation_id = "cancel_task", post, path = "/api/v1/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "The task id")),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<TaskId>,
) -> Result<Json<Task>, ApiError> {
    who.require(Scope::Write)?;
    Ok(Json(state.services.engine.cancel(who.tenant, id).await?))
}

/// `POST /api/v1/collab`: a job, and how long to wait for it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CollabRequest {
    /// The job.
    #[serde(flatten)]
    pub job: CollabJob,
    /// Milliseconds to wait for the outcome (0 to 120,000; default 30,000). The job
    /// keeps running past it; its tasks can be followed with `GET /api/v1/tasks`.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 120_000)]
    pub wait_ms: Option<u64>,
}

/// The answer to `POST /api/v1/collab`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CollabResponse {
    /// `completed` (with `outcome`) or `running` (the wait ran out).
    pub status: String,
    /// The pattern's outcome.
    pub outcome: Option<Value>,
}

#[utoipa::path(operation_id = "run_collab", post, path = "/api/v1/collab", tag = "collaboration", request_body = CollabRequest,
    responses((status = 200, body = CollabResponse), (status = 202, body = CollabResponse),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn collab(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<CollabRequest>,
) -> Result<(StatusCode, Json<CollabResponse>), ApiError> {
    who.require(Scope::Write)?;
    let wait = body.wait_ms.unwrap_or(30_000);
    if wait > 120_000 {
        return Err(ApiError::invalid("wait_ms must be 0 to 120000"));
    }
    let engine = state.services.engine.clone();
    let tenant = who.tenant;
    // The job runs on its own task, so it finishes even if the wait runs out.
    let job = tokio::spawn(async move { body.job.run(&engine, tenant).await });
    match tokio::time::timeout(Duration::from_millis(wait), job).await {
        Ok(Ok(outcome)) => Ok((
            StatusCode::OK,
            Json(CollabResponse {
                status: "completed".into(),
                outcome: Some(outcome?),
            }),
        )),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        )),
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(CollabResponse {
                status: "running".into(),
                outcome: None,
            }),
        )),
    }
}
