//! [`ApiError`]: every HTTP error is JSON with a stable `code` (the same code MCP tool
//! errors carry), mapped here from each layer's typed errors.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::gate::AuthError;
use crate::collab::CollabError;
use crate::engine::EngineError;
use crate::services::ServiceError;
use crate::tools::ToolError;
use crate::workflow::WorkflowError;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
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
    /// Seconds to wait before trying again (a 429's `Retry-After`; 1 if unset).
    pub retry_after: Option<u64>,
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
            retry_after: None,
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

    /// The status that goes with a stable code of the core's errors (every `code()`
    /// of `EngineError`, `CollabError`, `ServiceError`, `ToolError`, `AuthError`).
    fn status_of(code: &str) -> StatusCode {
        match code {
            "invalid_request" => StatusCode::BAD_REQUEST,
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden" => StatusCode::FORBIDDEN,
            "not_found" => StatusCode::NOT_FOUND,
            "conflict" => StatusCode::CONFLICT,
            "collab_failed" => StatusCode::UNPROCESSABLE_ENTITY,
            "tool_not_found" | "action_not_found" => StatusCode::NOT_FOUND,
            "upstream_failed" | "embedder_failed" => StatusCode::BAD_GATEWAY,
            "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
            "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error a finished job reported, by its stable code (for REST's job views).
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    pub(crate) fn reported(code: &str, message: &str) -> Self {
        let status = Self::status_of(code);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return Self::new(status, "internal", "internal error");
        }
        Self::new(status, code, message)
    }

    /// The error for `code` with `error`'s message; internal errors are logged and
    /// not shown.
    fn coded(code: &'static str, error: &dyn std::fmt::Display) -> Self {
        let status = Self::status_of(code);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "internal error");
            return Self::new(status, "internal", "internal error");
        }
        Self::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = self.retry_after.unwrap_or(1).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        Self::coded(e.code(), &e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::coded(e.code(), &e)
    }
}

impl From<crate::access::AccessError> for ApiError {
    fn from(e: crate::access::AccessError) -> Self {
        Self::coded(e.code(), &e)
    }
}

impl From<CollabError> for ApiError {
    fn from(e: CollabError) -> Self {
        Self::coded(e.code(), &e)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self::coded(e.code(), &e)
    }
}

impl From<ToolError> for ApiError {
    fn from(e: ToolError) -> Self {
        let mut error = Self::coded(e.code(), &e);
        error.retry_after = e.retry_after().map(|wait| wait.as_secs_f64().ceil() as u64);
        error
    }
}

impl From<crate::tools::SourceError> for ApiError {
    fn from(e: crate::tools::SourceError) -> Self {
        Self::coded(e.code(), &e)
    }
}

impl From<crate::shared_docs::DocError> for ApiError {
    fn from(e: crate::shared_docs::DocError) -> Self {
        Self::coded(e.code(), &e)
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        Self::coded(e.code(), &e)
    }
}
