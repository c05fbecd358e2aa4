//! Answers JSON-RPC requests for methods the server does not serve with -32601 before
//! they reach the SDK — which would otherwise insist on `initialize` first.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mesh_protocol::JsonRpcError;
use serde_json::{Value, json};

/// The methods the MCP server serves; every other request gets -32601.
pub(crate) const SERVED: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
];

/// The largest MCP request body read.
const MAX_BODY: usize = 4 << 20;

/// The error reply for one JSON-RPC message, if the server must answer it itself:
/// -32700 for unreadable JSON, -32600 for a non-object, -32601 for a request whose
/// method is not served. `None` passes the message on.
pub(crate) fn early_reply(text: &[u8]) -> Option<Value> {
    let error = |id: Value, code: i64, message: String| {
        Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
    };
    let message: Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            return error(
                Value::Null,
                JsonRpcError::PARSE_ERROR,
                format!("parse error: {e}"),
            );
        }
    };
    let Some(object) = message.as_object() else {
        return error(
            Value::Null,
            JsonRpcError::INVALID_REQUEST,
            "invalid request: expected one JSON-RPC object".into(),
        );
    };
    let (Some(id), Some(method)) = (object.get("id"), object.get("method")) else {
        return None;
    };
    match method.as_str() {
        Some(m) if SERVED.contains(&m) => None,
        Some(m) => error(
            id.clone(),
            JsonRpcError::METHOD_NOT_FOUND,
            format!("method not found: {m}"),
        ),
        None => error(
            id.clone(),
            JsonRpcError::INVALID_REQUEST,
            "invalid request: method must be a string".into(),
        ),
    }
}

pub(crate) async fn unknown_methods(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return crate::http::ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "an MCP message has at most 4 MiB",
            )
            .into_response();
        }
    };
    if let Some(reply) = early_reply(&bytes) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            reply.to_string(),
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_answered_and_the_rest_passes() {
        let reply = early_reply(br#"{"jsonrpc":"2.0","id":7,"method":"nope/nothing"}"#).unwrap();
        assert_eq!(reply["error"]["code"], -32601);
        assert_eq!(reply["id"], 7);
        assert!(early_reply(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).is_none());
        // Notifications and responses pass.
        assert!(
            early_reply(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_none()
        );
        assert_eq!(early_reply(b"{oops").unwrap()["error"]["code"], -32700);
        assert_eq!(early_reply(b"[1]").unwrap()["error"]["code"], -32600);
        assert_eq!(
            early_reply(br#"{"id":1,"method":5}"#).unwrap()["error"]["code"],
            -32600
        );
    }
}
