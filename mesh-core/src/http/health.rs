//! Liveness and readiness, the same on every binary whatever surfaces it serves.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::extract::Json;
use super::state::AppState;

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: every check of [`Services::checks`](crate::services::Services::checks)
/// passes — 200 `{"status": "ready", "checks": […]}`, else 503 `not_ready` naming the
/// first that failed, with every check in `checks`. Never more than one embedding a
/// minute, whatever the probe rate.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let checks = state.services.checks().await;
    match checks.iter().find(|c| !c.ok) {
        None => Json(serde_json::json!({"status": "ready", "checks": checks})).into_response(),
        Some(failed) => {
            let why = format!("{}: {}", failed.name, failed.detail);
            let mut response = Json(serde_json::json!({
                "code": "not_ready", "message": why, "checks": checks,
            }))
            .into_response();
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}
