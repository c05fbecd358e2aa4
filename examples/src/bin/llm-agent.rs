//! `llm-agent`: one built-in LLM agent in a process of its own, connected to a Mesh hub
//! over the agent protocol — the agents file's entry named `--name` (or its only one),
//! with its profile's own tools. Each task's usage is in its output.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mesh_core::TenantId;
use mesh_core::protocol::Hello;
use mesh_core::protocol::ws::{AgentContext, ClientConfig, TaskFuture, run_agent};
use mesh_examples::agents_file::standalone;
use mesh_examples::setup::{init_tracing, shutdown_signal};

/// One LLM agent (code analyzer, database analyzer, documentation generator) connected
/// to a Mesh hub.
#[derive(Parser)]
#[command(name = "llm-agent", version)]
struct Cli {
    /// The hub (`ws://host:port/ws`).
    #[arg(long, env = "MESH_HUB_URL")]
    url: String,
    /// An API key with the `agent` scope (or the `agents:connect` permission).
    #[arg(long, env = "MESH_API_KEY", hide_env_values = true)]
    key: String,
    /// The agents file (TOML, as `mesh up --agents-config` reads it).
    #[arg(long, env = "MESH_AGENTS_CONFIG")]
    agents_config: PathBuf,
    /// Which of its agents (needed when it has several).
    #[arg(long)]
    name: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    mesh_examples::disable_transparent_huge_pages();
    let _telemetry = init_tracing("llm-agent");
    let cli = Cli::parse();
    let run = async {
        let (agent, model) = standalone(&cli.agents_config, cli.name.as_deref()).await?;
        let spec = agent.spec();
        let mut hello = Hello::new(spec.name.clone(), spec.capabilities.clone());
        hello.max_concurrency = Some(spec.concurrency.max(1));
        println!(
            "llm-agent {}: {} on {model}, connecting to {}",
            spec.name,
            spec.capabilities.join(", "),
            cli.url
        );
        // The tenant is the key's, on Mesh's side; here it only keys the local usage.
        let tenant = TenantId::from_uuid(uuid::Uuid::nil());
        let handler =
            move |task: mesh_core::protocol::TaskAssign, ctx: AgentContext| -> TaskFuture {
                let agent = agent.clone();
                Box::pin(async move { agent.handle(tenant, &task.input, &ctx).await })
            };
        let config = ClientConfig::new(cli.url.clone()).api_key(cli.key.clone());
        run_agent(config, hello, handler, shutdown_signal()).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llm-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
