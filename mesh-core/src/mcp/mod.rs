//! The MCP server (feature `mcp`), on the official Rust SDK (rmcp): Streamable HTTP at
//! `/mcp` and WebSocket text frames at `/ws` (subprotocol `mcp`), protocol versions
//! 2025-06-18 and 2025-11-25.
//!
//! Tools: `list_agents`, `submit_task`, `get_task`, `cancel_task`, `run_collab`,
//! `index_document`, `search`, `execute_tool`, and the workflow tools
//! (`register_workflow`, `start_workflow`, `get_workflow`, `list_workflows`,
//! `cancel_workflow`, `signal_workflow`, `resume_workflow`, `retry_workflow`,
//! `workflow_history`, `fork_workflow`), the shared-document tools
//! (`create_shared_doc`, `list_shared_docs`, `read_shared_doc`, `edit_shared_doc`,
//! `delete_shared_doc`), `register_mcp_server`, and the tools of the
//! tenant's external MCP servers (see [`Tools`](crate::tools::Tools)); resources `mesh://agents`,
//! `mesh://tasks` and `mesh://tasks/{id}`. Both transports pass the same
//! [credential gate](crate::http::Gate) as every surface and act for the caller's
//! tenant; a browser `Origin` that is neither loopback nor allowed gets 403 on both
//! (DNS-rebinding protection). A method the server does not serve gets -32601 at once, even before
//! `initialize`; an unknown tool a JSON-RPC error; bad arguments or a failed call a
//! tool result with `isError` and `{"code", "message"}` as structured content.

mod access;
mod filter;
mod origin;
mod server;
mod shared_docs;
mod sources;
mod websocket;
mod workflows;

use std::sync::Arc;

use axum::Router;
use mesh_protocol::ws::ConnectionConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use server::{MeshMcp, PROTOCOL_VERSIONS};
pub use websocket::websocket;

use crate::http::AppState;

/// MCP settings.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct McpConfig {
    /// `Host` values `/mcp` accepts (DNS-rebinding protection): loopback only if
    /// empty, any with `*`.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s allowed on `/mcp` and MCP WebSocket upgrades, besides loopback
    /// ones (`*` for any). Requests without `Origin` always pass.
    pub allowed_origins: Vec<String>,
    /// Limits, queue and keep-alive of MCP WebSocket connections.
    pub connection: ConnectionConfig,
}

/// `/mcp`: Streamable HTTP, behind the credential gate and the unknown-method filter.
pub fn routes(state: AppState, config: &McpConfig) -> Router<AppState> {
    let factory_state = state.clone();
    let mut http = StreamableHttpServerConfig::default();
    if config.allowed_hosts.iter().any(|h| h == "*") {
        http = http.disable_allowed_hosts();
    } else if !config.allowed_hosts.is_empty() {
        http = http.with_allowed_hosts(config.allowed_hosts.iter().cloned());
    }
    let service = StreamableHttpService::new(
        move || Ok(MeshMcp::new(factory_state.clone(), None)),
        Arc::new(LocalSessionManager::default()),
        http,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(filter::unknown_methods))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::http::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(config.allowed_origins.clone()),
            origin::check,
        ))
}
