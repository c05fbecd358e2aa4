//! `worker`: drains the job queue (document indexing) and sweeps tasks whose service
//! instance died.

use clap::Parser;
use mesh_core::worker::{WorkerConfig, run_worker};
use mesh_examples::setup::{Backend, engine_alive, init_tracing, stop_signal};

/// The Mesh worker. Run as many as the queue needs.
#[derive(Parser)]
#[command(name = "worker", version)]
struct Cli {
    #[command(flatten)]
    backend: Backend,
    /// Jobs handled at once.
    #[arg(long, env = "MESH_WORKER_CONCURRENCY", default_value_t = 4)]
    concurrency: usize,
    /// Seconds a received job stays hidden from other workers.
    #[arg(long, env = "MESH_WORKER_VISIBILITY", default_value_t = 60)]
    visibility_secs: u64,
    /// Where to serve `/healthz`, `/readyz` and `/metrics` (the probes of the HTTP
    /// services, this worker's included); none if absent.
    #[arg(long, env = "MESH_HEALTH_LISTEN")]
    health_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mesh_examples::disable_transparent_huge_pages();
    let _telemetry = init_tracing("worker");
    let cli = Cli::parse();
    let run = async {
        let built = cli.backend.build().await?;
        let config = WorkerConfig::default()
            .concurrency(cli.concurrency)
            .polling(
                std::time::Duration::from_secs(cli.visibility_secs.max(1)),
                std::time::Duration::from_secs(1),
            );
        if let Some(addr) = cli.health_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            println!("listening on {}", listener.local_addr()?);
            let mut config = mesh_core::app::AppConfig::default()
                .surfaces(mesh_core::app::Surfaces::NONE)
                .operator_tenant(cli.backend.tenant);
            if let Some(secret) = cli.backend.jwt_secret.clone() {
                config = config.jwt_secret(secret);
            }
            let probes = mesh_core::app::router(built.services.clone(), config);
            tokio::spawn(axum::serve(listener, probes).into_future());
        }
        println!("worker running");
        let engine = built.services.engine.clone();
        run_worker(built.services, config, stop_signal(engine.clone())).await;
        engine_alive(&engine)
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
