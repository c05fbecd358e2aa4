//! Serving a router until a shutdown signal, for the HTTP binaries.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_core::app::{AppConfig, Surfaces, router};
use mesh_core::services::Services;

use crate::setup::{Backend, init_tracing};

/// The command line of an HTTP service binary: where state lives, and how to serve.
#[derive(Debug, clap::Args)]
pub struct HttpService {
    #[command(flatten)]
    backend: Backend,
    #[command(flatten)]
    http: Http,
}

impl HttpService {
    /// The whole `main` of an HTTP service called `name` serving `surfaces`: logs,
    /// builds the services, serves until a signal; the exit code says how it went.
    pub async fn main(self, name: &str, surfaces: Surfaces) -> std::process::ExitCode {
        let _telemetry = init_tracing(name);
        let run = async {
            let built = self.backend.build().await?;
            self.http
                .serve(built.services, surfaces, &self.backend)
                .await
        };
        match run.await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// HTTP settings shared by the REST API and MCP server binaries.
#[derive(Debug, Clone, clap::Args)]
pub struct Http {
    /// Where to listen.
    #[arg(long, env = "MESH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Requests per second per API key or JWT subject (unlimited if absent).
    #[arg(long, env = "MESH_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Browser origins allowed (CORS), comma-separated; `*` for any.
    #[arg(long, env = "MESH_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Host names the MCP endpoint accepts, comma-separated (loopback only if absent,
    /// `*` for any).
    #[arg(long, env = "MESH_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub mcp_allowed_hosts: Vec<String>,
    /// Browser origins the MCP endpoints accept besides loopback ones, comma-separated
    /// (`*` for any); requests without an `Origin` always pass.
    #[arg(long, env = "MESH_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub mcp_allowed_origins: Vec<String>,
    /// The `iss` every JWT must carry (not checked if absent).
    #[arg(long, env = "MESH_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// An `aud` every JWT must carry (not checked if absent).
    #[arg(long, env = "MESH_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Accept an API key in the `api_key` query parameter of WebSocket upgrades (for
    /// browsers and the Python MCP SDK, which cannot set headers there). Off by
    /// default: URLs end up in proxy and access logs.
    #[arg(long, env = "MESH_ALLOW_QUERY_KEYS")]
    pub allow_query_keys: bool,
    /// Milliseconds a stop (Ctrl-C, SIGTERM) waits for open requests and streams
    /// (SSE, MCP, agent sessions) before it cuts them and exits.
    #[arg(long, env = "MESH_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,
}

impl Http {
    /// Serves `surfaces` of `services` until Ctrl-C or SIGTERM, with `backend`'s JWT
    /// secret and its tenant as the operator's; prints the bound address on stdout
    /// first (`listening on <addr>`).
    pub async fn serve(
        &self,
        services: Services,
        surfaces: Surfaces,
        backend: &Backend,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut config = AppConfig::default()
            .surfaces(surfaces)
            .cors_origins(self.cors_origins.clone());
        config.mcp.allowed_hosts = self.mcp_allowed_hosts.clone();
        config.mcp.allowed_origins = self.mcp_allowed_origins.clone();
        config.gate.jwt_issuer = self.jwt_issuer.clone();
        config.gate.jwt_audience = self.jwt_audience.clone();
        config.gate.query_keys = self.allow_query_keys;
        config.gate.operator_tenant = Some(backend.tenant);
        if let Some(rate) = self.rate_limit {
            config = config.rate_limit(rate, (rate * 2.0).max(1.0));
        }
        if let Some(secret) = backend.jwt_secret.clone() {
            config = config.jwt_secret(secret);
        }
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", self.listen))?;
        let recovered = services.workflows.recover().await?;
        if recovered > 0 {
            tracing::info!(recovered, "workflow runs taken up");
        }
        println!("listening on {}", listener.local_addr()?);
        let engine = services.engine.clone();
        let audit = services.access.audit.clone();
        let app = router(services, config).into_make_service_with_connect_info::<SocketAddr>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        crate::setup::stop_signal(engine.clone()).await;
        crate::setup::engine_alive(&engine)?;
        // Stop accepting, tell agents goodbye (their tasks go back to pending), then let
        // open requests finish — within the bound: streams that stay open are cut.
        let _ = stop.send(());
        let bound = Duration::from_millis(self.shutdown_timeout_ms);
        let _ = tokio::time::timeout(bound, engine.shutdown()).await;
        match tokio::time::timeout(bound, server).await {
            Ok(Ok(served)) => served?,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => tracing::info!(?bound, "open streams cut at shutdown"),
        }
        // The audit records of the last requests are stored before the process ends.
        let _ = tokio::time::timeout(bound, audit.flush()).await;
        Ok(())
    }
}
