//! `mcp-server`: MCP over Streamable HTTP (`/mcp`) and WebSocket (`/ws`, subprotocol
//! `mcp`), and the agent hub (`/ws`, subprotocol `mesh.v1`).

use clap::Parser;
use mesh_core::app::Surfaces;
use mesh_examples::serve::HttpService;

/// The Mesh MCP server and agent hub. Several instances can share one PostgreSQL:
/// an agent on any of them receives tasks submitted through any other.
#[derive(Parser)]
#[command(name = "mcp-server", version)]
struct Cli {
    #[command(flatten)]
    service: HttpService,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mesh_examples::disable_transparent_huge_pages();
    Cli::parse().service.main("mcp-server", Surfaces::MCP).await
}
