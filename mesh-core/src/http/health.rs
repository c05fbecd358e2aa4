//! Liveness and readiness, the same on every binary whatever surfaces it serves.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Json;
use super::state::AppState;

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the store, the queue and the embedder answer (503 `not_ready`
/// naming the first that does not).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.services.ready().await {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(why) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why).into_response()
        }
    }
}
