//! `/api/v1/events` and `/api/v1/overview`: what a dashboard follows — the tenant's
//! live events, resumable, and the state of things at a glance.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use serde::Serialize;

use crate::domain::workflow::RunStatus;
use crate::domain::{Action, Principal, Resource};
use crate::http::{ApiError, AppState, Bucket, ErrorBody, Json, permit};
use crate::services::Check;
use crate::workflow::RunFilter;
use crate::{AgentFilter, TaskFilter, TaskStatus};

/// Most records counted per status in an overview; past it a count says `more`.
pub const COUNT_CAP: usize = 1000;

/// How many records there are, up to [`COUNT_CAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Count {
    /// How many (at most the cap).
    pub count: u64,
    /// Whether there are more than that.
    pub more: bool,
}

/// The tenant's state at a glance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Overview {
    /// Each component's health (`Services::checks`: the embedder asked at most once a
    /// minute).
    pub health: Vec<Check>,
    /// Agents by status.
    pub agents: BTreeMap<String, u64>,
    /// Tasks waiting for an agent, and held by one.
    pub tasks: TaskCounts,
    /// Workflow runs by status.
    pub workflows: BTreeMap<String, Count>,
    /// Tasks ended per 5-second slice over the last 5 minutes, with their latency.
    pub series: Vec<Bucket>,
}

/// Tasks waiting and in flight.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskCounts {
    /// Waiting for an agent: the queue's depth.
    pub pending: Count,
    /// Assigned, accepted or in progress.
    pub in_flight: Count,
}

#[utoipa::path(operation_id = "events", get, path = "/api/v1/events", tag = "system",
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses((status = 200, content_type = "text/event-stream",
        description = "The tenant's events as Server-Sent Events: `id` (resume with `Last-Event-ID`), `event` (agent_connected, agent_disconnected, task_submitted, task_assigned, task_status, workflow_update, or `reset`: read everything again), `data` (JSON)"),
        (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    permit(&who, Action::Read, Resource::Tasks, None)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    Ok(state
        .events
        .stream(who.tenant, resume, state.gate.until_revoked(&who)))
}

#[utoipa::path(operation_id = "overview", get, path = "/api/v1/overview", tag = "system",
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn overview(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Overview>, ApiError> {
    permit(&who, Action::Read, Resource::Tasks, None)?;
    let engine = &state.services.engine;
    let mut agents = BTreeMap::new();
    let mut filter = AgentFilter {
        limit: Some(COUNT_CAP),
        ..AgentFilter::default()
    };
    loop {
        let page = engine.list_agents(who.tenant, filter.clone()).await?;
        for agent in &page.items {
            *agents
                .entry(agent.status().as_str().to_owned())
                .or_insert(0) += 1;
        }
        match page.next {
            Some(next) => filter.cursor = Some(next),
            None => break,
        }
    }
    let tasks_with = |status: TaskStatus| {
        let filter = TaskFilter {
            status: Some(status),
            limit: Some(COUNT_CAP),
            ..TaskFilter::default()
        };
        async move {
            let page = engine.tasks(who.tenant, filter).await?;
            Ok::<_, ApiError>(count(page.items.len(), page.next.is_some()))
        }
    };
    let pending = tasks_with(TaskStatus::Pending).await?;
    let mut in_flight = Count {
        count: 0,
        more: false,
    };
    for status in [
        TaskStatus::Assigned,
        TaskStatus::Accepted,
        TaskStatus::InProgress,
    ] {
        let counted = tasks_with(status).await?;
        in_flight.count += counted.count;
        in_flight.more |= counted.more;
    }
    let mut workflows = BTreeMap::new();
    for status in [
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ] {
        let filter = RunFilter {
            status: Some(status),
            limit: Some(COUNT_CAP),
            ..RunFilter::default()
        };
        let page = state.services.workflows.runs(who.tenant, filter).await?;
        workflows.insert(
            status.as_str().to_owned(),
            count(page.items.len(), page.next.is_some()),
        );
    }
    Ok(Json(Overview {
        health: state.services.checks().await,
        agents,
        tasks: TaskCounts { pending, in_flight },
        workflows,
        series: state.events.series(who.tenant, 60, Duration::from_secs(5)),
    }))
}

fn count(len: usize, more: bool) -> Count {
    Count {
        count: u64::try_from(len).unwrap_or(u64::MAX),
        more,
    }
}
