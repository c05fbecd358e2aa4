//! MCP over WebSocket text frames (`/ws` with subprotocol `mcp`): each connection is
//! one MCP session on the transport of mesh-protocol.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use mesh_protocol::JsonRpcError;
use mesh_protocol::ws::{Connection, Incoming, Sender, upgrade};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};

use mesh_protocol::ws::ConnectionConfig;

use super::filter::early_reply;
use super::server::MeshMcp;
use crate::domain::Principal;
use crate::http::{ApiError, AppState};

/// Answers a WebSocket upgrade with subprotocol `mcp`: checks the `Origin` against
/// `allowed_origins` (loopback always passes), authenticates through the gate,
/// upgrades, and serves one MCP session on the connection.
pub async fn websocket(
    state: AppState,
    config: ConnectionConfig,
    allowed_origins: &[String],
    mut request: Request,
) -> Response {
    if !super::origin::allowed(request.headers(), allowed_origins) {
        return super::origin::refused();
    }
    let who = match state.gate.check(&request).await {
        Ok(who) => who,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (response, pending) = match upgrade(&mut request) {
        Ok(upgraded) => upgraded,
        Err(e) => {
            return ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "bad_upgrade",
                e.to_string(),
            )
            .into_response();
        }
    };
    tokio::spawn(async move {
        match pending.into_connection(config).await {
            Ok(connection) => session(state, who, connection).await,
            Err(e) => tracing::debug!(error = %e, "MCP upgrade did not complete"),
        }
    });
    response.map(|_| axum::body::Body::empty())
}

async fn session(state: AppState, who: Principal, connection: Connection) {
    let _open = crate::observe::Open::connection("mcp");
    let sender = connection.sender();
    let closer = sender.clone();
    let revoked = state
        .gate
        .on_revoked(&who, move || closer.close(1008, "API key revoked"));
    let outgoing = Box::pin(futures_util::sink::unfold(
        sender.clone(),
        |sender: Sender, message: ServerJsonRpcMessage| async move {
            let text = serde_json::to_string(&message).map_err(std::io::Error::other)?;
            sender.try_send_text(text).map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(sender)
        },
    ));
    let incoming = Box::pin(stream::unfold(
        (connection, sender.clone()),
        |(mut connection, sender)| async move {
            loop {
                match connection.recv().await? {
                    Ok(Incoming::Text(text)) => {
                        if let Some(reply) = early_reply(text.as_bytes()) {
                            let _ = sender.try_send_text(reply.to_string());
                            continue;
                        }
                        match serde_json::from_str::<ClientJsonRpcMessage>(&text) {
                            Ok(message) => return Some((message, (connection, sender))),
                            Err(e) => {
                                let reply = serde_json::json!({"jsonrpc": "2.0", "id": null,
                                    "error": {"code": JsonRpcError::INVALID_REQUEST, "message": format!("invalid request: {e}")}});
                                let _ = sender.try_send_text(reply.to_string());
                            }
                        }
                    }
                    // Binary mesh frames have no meaning on an MCP connection.
                    Ok(Incoming::Message(_)) => {
                        let reply = serde_json::json!({"jsonrpc": "2.0", "id": null,
                            "error": {"code": JsonRpcError::INVALID_REQUEST, "message": "MCP over WebSocket uses text frames"}});
                        let _ = sender.try_send_text(reply.to_string());
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "malformed input on an MCP connection"),
                }
            }
        },
    ));
    match MeshMcp::new(state, Some(who))
        .serve((outgoing, incoming))
        .await
    {
        Ok(running) => {
            let _ = running.waiting().await;
        }
        Err(e) => tracing::debug!(error = %e, "MCP session ended before initialize"),
    }
    revoked.abort();
    sender.close(1000, "session ended");
}
