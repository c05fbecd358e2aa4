//! `mesh`: `mesh up` runs everything — engine, agent hub, REST API, MCP server and
//! worker — in one process on embedded defaults, on one port, keeping its data in a
//! directory; the other subcommands are clients of a running server's REST API
//! (`docs/cli.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use mesh_core::app::{AppConfig, router};
use mesh_core::services::Services;
use mesh_core::tools::{FilesAdapter, ToolRegistry};
use mesh_core::worker::{WorkerConfig, run_worker};
use mesh_core::workflow::WorkflowConfig;
use mesh_core::{Engine, Scope, TenantId};
use mesh_examples::cli::{
    Agents, Audit, CliError, Connection, Docs, Keys, ProfileCommand, Roles, Tasks, Tenants, Tools,
    Workflows,
};
use mesh_examples::data_dir::DataDir;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "mesh",
    version,
    about = "Orchestrate AI agents: the all-in-one Mesh, and a client of any Mesh server",
    after_help = "Exit codes: 0 ok, 1 other, 2 usage or invalid input, 3 credentials, \
                  4 not found, 5 conflict, 6 server or unreachable, 7 watched work \
                  did not succeed."
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the engine, agent hub, REST API, MCP server and worker in one process,
    /// keeping agents, tasks, keys, documents and vectors in a data directory.
    Up(Up),
    /// Prints the REST API's OpenAPI 3.1 document (JSON).
    Openapi,
    /// Agents: list, show, deregister.
    #[command(subcommand)]
    Agents(Agents),
    /// Tasks: submit, get, list, watch, cancel.
    #[command(subcommand)]
    Tasks(Tasks),
    /// Durable workflows: definitions, and runs.
    #[command(subcommand)]
    Workflows(Workflows),
    /// Tools: list, call.
    #[command(subcommand)]
    Tools(Tools),
    /// The knowledge base: index documents, search.
    #[command(subcommand)]
    Docs(Docs),
    /// API keys: create, list, revoke (admin).
    #[command(subcommand)]
    Keys(Keys),
    /// Tenants: create, list (the operator's admins).
    #[command(subcommand)]
    Tenants(Tenants),
    /// Roles: list, show, put, delete.
    #[command(subcommand)]
    Roles(Roles),
    /// The audit log: list, verify.
    #[command(subcommand)]
    Audit(Audit),
    /// Named connection profiles: save, list.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct Up {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// The admin API key (generated on the first start, kept in the data directory's
    /// `admin.key`, and printed, when not given).
    #[arg(long, env = "MESH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Where everything is kept (one SQLite database, created if missing). A killed
    /// process started again on it loses nothing.
    #[arg(long, env = "MESH_DATA_DIR", default_value = "mesh-data")]
    data_dir: PathBuf,
    /// Keep everything in memory instead: nothing survives a stop.
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    /// Accept an API key in the `api_key` query parameter of WebSocket upgrades (for
    /// browsers and the Python MCP SDK). Off by default: URLs end up in logs.
    #[arg(long, env = "MESH_ALLOW_QUERY_KEYS")]
    allow_query_keys: bool,
    /// The root of the `files` tool (list, read, write files under it); default the
    /// data directory's `files/`, and no `files` tool in memory unless given.
    #[arg(long, env = "MESH_FILES_ROOT")]
    files_root: Option<PathBuf>,
    /// Also start demo agents and a stream of demo tasks, printing where each goes.
    #[arg(long)]
    demo: bool,
    /// Milliseconds between demo tasks.
    #[arg(long, default_value_t = 400)]
    demo_every_ms: u64,
    /// Milliseconds a stop (Ctrl-C, SIGTERM) waits for open requests and streams
    /// before it cuts them and exits.
    #[arg(long, env = "MESH_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    shutdown_timeout_ms: u64,
    /// The tools service: its file, secret key and Redis.
    #[command(flatten)]
    tools: mesh_examples::tools_file::ToolFlags,
    /// LLM agents (on Bedrock or an OpenAI-compatible endpoint): their file.
    #[command(flatten)]
    agents: mesh_examples::agents_file::AgentFlags,
}

#[tokio::main]
async fn main() -> ExitCode {
    mesh_examples::disable_transparent_huge_pages();
    let cli = Cli::parse();
    let run = match cli.command {
        Command::Up(args) => {
            let _telemetry = mesh_examples::setup::init_tracing_with(
                "mesh",
                "info,hyper=warn,mesh_protocol=warn,mesh::access=warn",
            );
            up(args).await
        }
        Command::Openapi => {
            use mesh_core::rest::ApiDoc;
            use utoipa::OpenApi;
            ApiDoc::openapi()
                .to_pretty_json()
                .map(|doc| println!("{doc}"))
                .map_err(Into::into)
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "mesh", &mut std::io::stdout());
            Ok(())
        }
        Command::Profile(command) => return finish(command.run(&cli.connection)),
        client => return finish(run_client(client, &cli.connection).await),
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command against the server the connection settings name.
async fn run_client(command: Command, connection: &Connection) -> Result<(), CliError> {
    let ctx = connection.context()?;
    match command {
        Command::Agents(command) => command.run(&ctx).await,
        Command::Tasks(command) => command.run(&ctx).await,
        Command::Workflows(command) => command.run(&ctx).await,
        Command::Tools(command) => command.run(&ctx).await,
        Command::Docs(command) => command.run(&ctx).await,
        Command::Keys(command) => command.run(&ctx).await,
        Command::Tenants(command) => command.run(&ctx).await,
        Command::Roles(command) => command.run(&ctx).await,
        Command::Audit(command) => command.run(&ctx).await,
        _ => Err(CliError::Usage("not a client command".into())),
    }
}

/// A client command's outcome as an exit code; the server's code and message on
/// standard error.
fn finish(outcome: Result<(), CliError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh: {e}");
            e.exit_code()
        }
    }
}

/// Where `mesh up` keeps its state: the admin tenant, the admin key (when it made
/// one), and the services on it.
struct Home {
    data: Option<DataDir>,
    tenant: TenantId,
    services: Services,
}

impl Home {
    async fn open(args: &Up) -> Result<Self, Box<dyn std::error::Error>> {
        let files = |root: Option<PathBuf>| {
            let mut tools = ToolRegistry::new();
            if let Some(root) = root {
                std::fs::create_dir_all(&root)?;
                tools.register(FilesAdapter::new(root));
            }
            Ok::<_, std::io::Error>(tools)
        };
        if args.in_memory {
            let engine = Engine::in_memory().await;
            // Nothing is kept: a key for this process alone seals what it holds.
            let key = Some(mesh_core::tools::SecretKey::generate());
            let registry = files(args.files_root.clone())?;
            let tools = args.tools.start(&engine, registry, key).await?;
            let services =
                Services::in_memory(engine).with_tool_service(tools, WorkflowConfig::default());
            return Ok(Self {
                data: None,
                tenant: TenantId::new(),
                services,
            });
        }
        let data = DataDir::open(&args.data_dir).await?;
        Ok(Self {
            tenant: data.tenant()?,
            services: data
                .services(
                    files(Some(
                        args.files_root
                            .clone()
                            .unwrap_or_else(|| data.path().join("files")),
                    ))?,
                    &args.tools,
                )
                .await?,
            data: Some(data),
        })
    }

    /// The admin key: the one given, else the one kept from an earlier start, else a
    /// new one (kept for the next start). Made sure to exist in the admin tenant.
    /// `true` when it is to be printed (not given by the user).
    async fn admin_key(
        &self,
        given: Option<String>,
    ) -> Result<(String, bool), Box<dyn std::error::Error>> {
        let engine = &self.services.engine;
        let kept = match (&given, &self.data) {
            (None, Some(data)) => data.admin_key()?,
            _ => None,
        };
        let show = given.is_none();
        let key = match given.or(kept) {
            Some(key) if engine.authenticate(&key).await?.is_some() => key,
            wanted => {
                let (key, _) = engine
                    .create_api_key(self.tenant, "admin", Scope::ALL.to_vec(), wanted.clone())
                    .await?;
                if let (None, Some(data)) = (wanted, &self.data) {
                    data.save_admin_key(&key)?;
                }
                key
            }
        };
        Ok((key, show))
    }
}

async fn up(args: Up) -> Result<(), Box<dyn std::error::Error>> {
    let home = Home::open(&args).await?;
    let (services, tenant, listen) = (home.services.clone(), home.tenant, args.listen);
    let engine = services.engine.clone();
    let (key, generated) = home.admin_key(args.api_key.clone()).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop) = watch::channel(false);
    // Runs a previous process left unfinished go on from their last checkpoints.
    let recovered = services.workflows.recover().await?;
    // Kept for as long as the process serves: dropping them stops the agents.
    let llm_agents = args.agents.start(&services, tenant).await?;

    match &home.data {
        Some(data) => println!(
            "Mesh {} — all-in-one, data in {} (--in-memory to keep nothing)",
            env!("CARGO_PKG_VERSION"),
            data.path().display()
        ),
        None => println!(
            "Mesh {} — all-in-one, in memory: nothing is kept after a stop",
            env!("CARGO_PKG_VERSION")
        ),
    }
    for outcome in &llm_agents.outcomes {
        match &outcome.result {
            Ok(runs) => println!("  LLM agent   {}: started ({runs})", outcome.name),
            Err(why) => println!("  LLM agent   {}: not started: {why}", outcome.name),
        }
    }
    println!("  agent hub   ws://{addr}/ws          (subprotocol mesh.v1)");
    println!("  REST API    http://{addr}/api/v1     (OpenAPI: /api/v1/openapi.json)");
    println!("  MCP         http://{addr}/mcp        (or ws://{addr}/ws, subprotocol mcp)");
    println!("  dashboard   http://{addr}/ui/        (sign in with the admin key)");
    println!("  health      http://{addr}/healthz     (metrics: /metrics, with the admin key)");
    if generated {
        println!("  admin key   {key}   (set MESH_API_KEY to choose it)");
    } else {
        println!("  admin key   from MESH_API_KEY");
    }
    if recovered > 0 {
        println!(
            "  workflows   {recovered} unfinished run(s) taken up from their last checkpoints"
        );
    }
    println!("  agents connect with: Authorization: Bearer <key>   — Ctrl-C (or SIGTERM) to stop");
    println!();

    let audit = services.access.audit.clone();
    let app = router(
        services.clone(),
        AppConfig::default()
            .query_keys(args.allow_query_keys)
            .operator_tenant(tenant),
    );
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
    if args.demo {
        tasks.extend(mesh_examples::demo::start_agents(
            &format!("ws://{addr}/ws"),
            &key,
            stop.clone(),
        ));
        tasks.push(tokio::spawn(mesh_examples::demo::run_tasks(
            engine.clone(),
            tenant,
            Duration::from_millis(args.demo_every_ms.max(10)),
            stop.clone(),
        )));
    }
    tokio::select! {
        () = mesh_examples::setup::shutdown_signal() => {}
        () = engine.stopped() => {
            let _ = stop_tx.send(true);
            return Err("the engine stopped unexpectedly (see the log above)".into());
        }
    }
    println!("\nstopping: telling agents goodbye");
    drop(llm_agents);
    let _ = stop_tx.send(true);
    let bound = Duration::from_millis(args.shutdown_timeout_ms);
    let _ = tokio::time::timeout(bound, engine.shutdown()).await;
    if tokio::time::timeout(bound, server).await.is_err() {
        println!("streams still open after {bound:?}: cut");
    }
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    // The audit records of the last requests are stored before the files close.
    let _ = tokio::time::timeout(bound, audit.flush()).await;
    if let Some(data) = &home.data {
        data.close().await;
    }
    println!("stopped");
    Ok(())
}
