//! The MCP server (feature `mcp`), on the official Rust SDK (rmcp): Streamable HTTP at
//! `/mcp` and WebSocket text frames at `/ws` (subprotocol `mcp`), protocol versions
//! 2025-06-18 and 2025-11-25.
//!
//! Tools: `list_agents`, `submit_task`, `get_task`, `cancel_task`, `run_collab`,
//! `index_document`, `search`, `execute_tool`; resources `mesh://agents`,
//! `mesh://tasks` and `mesh://tasks/{id}`. Both transports need the same credentials
//! as the REST API and act for the caller's tenant. A method the server does not serve
//! gets -32601 at once, even before `initialize`; an unknown tool a JSON-RPC error;
//! bad arguments a tool result with `isError`.

mod filter;
mod server;
mod websocket;

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use server::{MeshMcp, PROTOCOL_VERSIONS};
pub(crate) use websocket::websocket;

use crate::api::AppState;

/// `/mcp`: Streamable HTTP, behind authentication and the unknown-method filter.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let factory_state = state.clone();
    let mut config = StreamableHttpServerConfig::default();
    if state.mcp_hosts.iter().any(|h| h == "*") {
        config = config.disable_allowed_hosts();
    } else if !state.mcp_hosts.is_empty() {
        config = config.with_allowed_hosts(state.mcp_hosts.iter().cloned());
    }
    let service = StreamableHttpService::new(
        move || Ok(MeshMcp::new(factory_state.clone(), None)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(filter::unknown_methods))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::api::authenticate_middleware,
        ))
}
