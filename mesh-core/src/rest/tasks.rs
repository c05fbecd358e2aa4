//! `/api/v1/tasks` and `/api/v1/collab`. A submitted task is a [`TaskSpec`], the same
//! input every front end uses; the engine checks it.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::collab::{CollabJob, JobState, JobView};
use crate::domain::Principal;
use crate::domain::{Action, AgentId, Resource, Task, TaskId, TaskSpec, TaskStatus};
use crate::engine::{Page, TaskFilter};
use crate::http::{ApiError, AppState, Created, ErrorBody, permit};
use crate::http::{Json, Path, Query};

/// Filters for `GET /api/v1/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this kind.
    pub kind: Option<String>,
    /// Only tasks held (or last held) by this agent.
    #[param(value_type = Option<String>, format = Uuid)]
    pub agent: Option<AgentId>,
    /// `newest` for newest first (default oldest first).
    #[param(inline)]
    pub order: Option<TaskOrder>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// The order of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskOrder {
    /// Oldest first (the default).
    Oldest,
    /// Newest first.
    Newest,
}

/// A page of tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    /// The tasks, oldest first (or newest, as asked).
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

#[utoipa::path(operation_id = "submit_task", post, path = "/api/v1/tasks", tag = "tasks", request_body = TaskSpec,
    responses((status = 201, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(spec): Json<TaskSpec>,
) -> Result<(StatusCode, Extension<Created>, Json<Task>), ApiError> {
    permit(&who, Action::Create, Resource::Tasks, None)?;
    let task = state.services.engine.submit(who.tenant, spec).await?;
    let created = Created(format!("tasks:{}", task.id));
    Ok((StatusCode::CREATED, Extension(created), Json(task)))
}

#[utoipa::path(operation_id = "list_tasks", get, path = "/api/v1/tasks", tag = "tasks", params(TaskListParams),
    responses((status = 200, body = TaskPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<TaskListParams>,
) -> Result<Json<TaskPage>, ApiError> {
    permit(&who, Action::Read, Resource::Tasks, None)?;
    if params.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::invalid("limit must be 1 to 1000"));
    }
    let filter = TaskFilter {
        status: params.status,
        kind: params.kind,
        agent: params.agent,
        newest_first: params.order == Some(TaskOrder::Newest),
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
    permit(&who, Action::Read, Resource::Tasks, None)?;
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
    permit(&who, Action::Update, Resource::Tasks, None)?;
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
    /// `completed` (with `outcome`), `running` (the wait ran out; follow it at
    /// `GET /api/v1/collab/{job_id}`) or `cancelled`.
    pub status: String,
    /// The job, to follow or cancel.
    pub job_id: Uuid,
    /// The pattern's outcome.
    pub outcome: Option<Value>,
}

#[utoipa::path(operation_id = "run_collab", post, path = "/api/v1/collab", tag = "collaboration", request_body = CollabRequest,
    responses((status = 200, body = CollabResponse), (status = 202, body = CollabResponse),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "The tenant runs as many collaboration jobs as it may", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn collab(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<CollabRequest>,
) -> Result<(StatusCode, Json<CollabResponse>), ApiError> {
    permit(&who, Action::Create, Resource::Tasks, None)?;
    let wait = body.wait_ms.unwrap_or(30_000);
    if wait > 120_000 {
        return Err(ApiError::invalid("wait_ms must be 0 to 120000"));
    }
    let services = &state.services;
    // The job runs on its own task, so it finishes even if the wait runs out.
    let id = services
        .collab
        .start(&services.engine, who.tenant, body.job)?;
    let job = services
        .collab
        .wait(who.tenant, id, Duration::from_millis(wait))
        .await
        .ok_or_else(|| ApiError::not_found("collaboration job"))?;
    let (status, state, outcome) = match job.state {
        JobState::Running => (StatusCode::ACCEPTED, "running", None),
        JobState::Completed { outcome } => (StatusCode::OK, "completed", Some(outcome)),
        JobState::Cancelled => (StatusCode::OK, "cancelled", None),
        JobState::Failed { code, message } => return Err(ApiError::reported(code, &message)),
    };
    Ok((
        status,
        Json(CollabResponse {
            status: state.into(),
            job_id: id,
            outcome,
        }),
    ))
}

#[utoipa::path(operation_id = "get_collab_job", get, path = "/api/v1/collab/{id}", tag = "collaboration",
    params(("id" = Uuid, Path, description = "The job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn collab_job(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<Uuid>,
) -> Result<Json<JobView>, ApiError> {
    permit(&who, Action::Read, Resource::Tasks, None)?;
    state
        .services
        .collab
        .get(who.tenant, id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("collaboration job"))
}

#[utoipa::path(operation_id = "cancel_collab_job", post, path = "/api/v1/collab/{id}/cancel", tag = "collaboration",
    params(("id" = Uuid, Path, description = "The job id")),
    responses((status = 200, description = "The job as it ends; its running tasks are cancelled", body = JobView),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn cancel_collab_job(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<Uuid>,
) -> Result<Json<JobView>, ApiError> {
    permit(&who, Action::Update, Resource::Tasks, None)?;
    state
        .services
        .collab
        .cancel(who.tenant, id)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::not_found("collaboration job"))
}
