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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let run = async {
        let built = cli.backend.build().await?;
        let config = WorkerConfig::default()
            .concurrency(cli.concurrency)
            .polling(
                std::time::Duration::from_secs(cli.visibility_secs.max(1)),
                std::time::Duration::from_secs(1),
            );
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
