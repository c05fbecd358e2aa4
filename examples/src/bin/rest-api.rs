//! `rest-api`: the REST API service (`/api/v1`, `/healthz`, `/readyz`, OpenAPI).

use clap::Parser;
use mesh_core::api::Surfaces;
use mesh_examples::serve::Http;
use mesh_examples::setup::{Backend, init_tracing};

/// The Mesh REST API. Several instances can share one PostgreSQL.
#[derive(Parser)]
#[command(name = "rest-api", version)]
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
                Surfaces::REST,
                cli.backend.jwt_secret.clone(),
            )
            .await
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rest-api: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
