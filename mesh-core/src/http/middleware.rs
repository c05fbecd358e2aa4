//! The credential gate as axum middleware, for the routes of REST and MCP over HTTP.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

/// Middleware: authenticates and rate-limits through the gate, and hands the
/// [`Principal`](crate::Principal) on in the request's extensions.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match state.gate.check(&request).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
