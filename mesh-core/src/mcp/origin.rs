//! DNS-rebinding protection: the MCP specification says a server MUST validate the
//! `Origin` of Streamable HTTP requests; Mesh does the same on MCP WebSocket upgrades.
//! A request without `Origin` (not from a browser) passes; a browser's must be a
//! loopback origin or one the operator allowed.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::http::ApiError;

/// Whether a request with these headers may reach the MCP server, given the origins
/// the operator allowed (`*` for any).
pub(crate) fn allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        rest.split(':').next().unwrap_or_default()
    };
    matches!(scheme, "http" | "https")
        && (host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1")
}

/// 403 `forbidden_origin` for a browser origin that is not allowed.
pub(crate) fn refused() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden_origin",
        "this Origin may not use the MCP server (see --mcp-allowed-origins)",
    )
    .into_response()
}

/// Middleware: [`allowed`] or [`refused`].
pub(crate) async fn check(
    State(origins): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    if allowed(request.headers(), &origins) {
        next.run(request).await
    } else {
        refused()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_origin(origin: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        headers
    }

    #[test]
    fn loopback_and_allowed_origins_pass_others_do_not() {
        let none: Vec<String> = Vec::new();
        assert!(allowed(&HeaderMap::new(), &none));
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://[::1]:8443",
        ] {
            assert!(allowed(&with_origin(ok), &none), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example",
            "file://",
        ] {
            assert!(!allowed(&with_origin(bad), &none), "{bad}");
        }
        let app = vec!["https://app.example".to_owned()];
        assert!(allowed(&with_origin("https://app.example"), &app));
        assert!(!allowed(&with_origin("https://other.example"), &app));
        assert!(allowed(
            &with_origin("http://evil.example"),
            &["*".to_owned()]
        ));
    }
}
