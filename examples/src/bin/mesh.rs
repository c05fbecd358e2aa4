//! `mesh up`: everything — engine, agent hub, REST API, MCP server and worker — in one
//! process on embedded defaults, on one port.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mesh_core::app::{AppConfig, router};
use mesh_core::services::Services;
use mesh_core::worker::{WorkerConfig, run_worker};
use mesh_core::{Engine, Scope, TenantId};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "mesh",
    version,
    about = "Orchestrate AI agents: the all-in-one Mesh"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the engine, agent hub, REST API, MCP server and worker in one process,
    /// everything in memory.
    Up {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
        /// The admin API key (generated and printed when not given).
        #[arg(long, env = "MESH_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Also start demo agents and a stream of demo tasks, printing where each goes.
        #[arg(long)]
        demo: bool,
        /// Milliseconds between demo tasks.
        #[arg(long, default_value_t = 400)]
        demo_every_ms: u64,
    },
    /// Prints the REST API's OpenAPI 3.1 document (JSON).
    Openapi,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,hyper=warn,mesh_protocol=warn".into()),
        )
        .with_target(false)
        .init();
    let run = match Cli::parse().command {
        Command::Up {
            listen,
            api_key,
            demo,
            demo_every_ms,
        } => {
            up(
                listen,
                api_key,
                demo,
                Duration::from_millis(demo_every_ms.max(10)),
            )
            .await
        }
        Command::Openapi => {
            use mesh_core::rest::ApiDoc;
            use utoipa::OpenApi;
            ApiDoc::openapi()
                .to_pretty_json()
                .map(|doc| println!("{doc}"))
                .map_err(Into::into)
        }
    };
    match run {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn up(
    listen: SocketAddr,
    api_key: Option<String>,
    demo: bool,
    every: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::in_memory().await;
    let tenant = TenantId::new();
    let generated = api_key.is_none();
    let (key, _) = engine
        .create_api_key(tenant, "admin", Scope::ALL.to_vec(), api_key)
        .await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop) = watch::channel(false);

    println!(
        "Mesh {} — all-in-one, embedded defaults (in memory)",
        env!("CARGO_PKG_VERSION")
    );
    println!("  agent hub   ws://{addr}/ws          (subprotocol mesh.v1)");
    println!("  REST API    http://{addr}/api/v1     (OpenAPI: /api/v1/openapi.json)");
    println!("  MCP         http://{addr}/mcp        (or ws://{addr}/ws, subprotocol mcp)");
    println!("  health      http://{addr}/healthz");
    if generated {
        println!("  admin key   {key}   (set MESH_API_KEY to choose it)");
    } else {
        println!("  admin key   from MESH_API_KEY");
    }
    println!("  agents connect with: Authorization: Bearer <key>   — Ctrl-C to stop");
    println!();

    let services = Services::in_memory(engine.clone());
    let app = router(services.clone(), AppConfig::default());
    let mut server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = server_stop.wait_for(|s| *s).await;
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
    });
    let mut worker_stop = stop.clone();
    let mut tasks = vec![tokio::spawn(run_worker(
        services,
        WorkerConfig::default(),
        async move {
            let _ = worker_stop.wait_for(|s| *s).await;
        },
    ))];
    if demo {
        tasks.extend(mesh_examples::demo::start_agents(
            &format!("ws://{addr}/ws"),
            &key,
            stop.clone(),
        ));
        tasks.push(tokio::spawn(mesh_examples::demo::run_tasks(
            engine.clone(),
            tenant,
            every,
            stop.clone(),
        )));
    }
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal?,
        () = engine.stopped() => {
            let _ = stop_tx.send(true);
            return Err("the engine stopped unexpectedly (see the log above)".into());
        }
    }
    println!("\nstopping: telling agents goodbye");
    let _ = stop_tx.send(true);
    engine.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    println!("stopped");
    Ok(())
}
