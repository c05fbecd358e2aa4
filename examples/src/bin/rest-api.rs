//! `rest-api`: the REST API service (`/api/v1`, `/healthz`, `/readyz`, OpenAPI).

use clap::Parser;
use mesh_core::app::Surfaces;
use mesh_examples::serve::HttpService;

/// The Mesh REST API. Several instances can share one PostgreSQL.
#[derive(Parser)]
#[command(name = "rest-api", version)]
struct Cli {
    #[command(flatten)]
    service: HttpService,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mesh_examples::disable_transparent_huge_pages();
    Cli::parse().service.main("rest-api", Surfaces::REST).await
}
