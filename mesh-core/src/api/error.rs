//! Errors as JSON with a stable `code`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::EngineError;
use crate::collab::CollabError;
use crate::services::ServiceError;
use crate::tools::ToolError;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`,
    /// `invalid_request`, `rate_limited`, …
    pub code: String,
    /// For people.
    pub message: String,
}

/// An error response: a status and an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
            },
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::TaskNotFound(_) => Self::not_found("task"),
            EngineError::Invalid(m) => Self::invalid(m.clone()),
            EngineError::Stopped => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            EngineError::Store(s) if s.is_retryable() => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            EngineError::Transition(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            _ => {
                tracing::error!(error = %e, "engine error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => Self::invalid(m),
            ServiceError::Embed(e) => {
                Self::new(StatusCode::BAD_GATEWAY, "embedder_failed", e.to_string())
            }
            ServiceError::Store(s) => EngineError::Store(s).into(),
        }
    }
}

impl From<ToolError> for ApiError {
    fn from(e: ToolError) -> Self {
        let message = e.to_string();
        match e {
            ToolError::UnknownTool(_) => {
                Self::new(StatusCode::NOT_FOUND, "tool_not_found", message)
            }
            ToolError::UnknownAction(_) => {
                Self::new(StatusCode::NOT_FOUND, "action_not_found", message)
            }
            ToolError::InvalidInput(_) => Self::invalid(message),
            _ => Self::new(StatusCode::BAD_GATEWAY, "upstream_failed", message),
        }
    }
}

impl From<CollabError> for ApiError {
    fn from(e: CollabError) -> Self {
        match e {
            CollabError::Engine(e) => e.into(),
            CollabError::Empty => Self::invalid("the job has no tasks"),
            e => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "collab_failed",
                e.to_string(),
            ),
        }
    }
}
