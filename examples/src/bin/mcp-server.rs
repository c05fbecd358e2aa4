//! `mcp-server`: MCP over Streamable HTTP (`/mcp`) and WebSocket (`/ws`, subprotocol
//! `mcp`), and the agent hub (`/ws`, subprotocol `mesh.v1`).

use clap::Parser;
use mesh_core::api::Surfaces;
use mesh_examples::serve::Http;
use mesh_examples::setup::{Backend, init_tracing};

/// The Mesh MCP server and agent hub. Several instances can share one PostgreSQL:
/// an agent on any of them receives tasks submitted through any other.
#[derive(Parser)]
#[command(name = "mcp-server", version)]
struct Cli {
    #[command(flatten)]
    backend: Backend,
    #[command(flatten)]
    http: Http,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let run = async {
        let built = cli.backend.build().await?;
        cli.http
            .serve(
                built.services,
                Surfaces::MCP,
                cli.backend.jwt_secret.clone(),
            )
            .await
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
