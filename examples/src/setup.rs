//! What the service binaries share: where state lives (flags and environment), and
//! building the services on it.

use std::sync::Arc;

use mesh_core::services::Services;
use mesh_core::tools::{GitHubAdapter, ToolRegistry};
use mesh_core::workflow::WorkflowConfig;
use mesh_core::{Engine, EngineConfig, MemoryStores, PgStores, Scope, TenantId};
use mesh_store::DynQueue;
use mesh_store::{PgStore, QueueConfig, SqsConfig, SqsQueue};

/// The name of the job queue in PostgreSQL.
pub const JOB_QUEUE: &str = "mesh_jobs";

/// Where state lives and how callers are let in; shared by every binary.
#[derive(Clone, clap::Args)]
pub struct Backend {
    /// PostgreSQL (with pgvector) holding all state; in memory if absent (one
    /// instance only).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most pooled PostgreSQL connections.
    #[arg(long, env = "MESH_DB_CONNECTIONS", default_value_t = 10)]
    pub db_connections: u32,
    /// SQS queue URL or name for the worker's jobs; the PostgreSQL queue if absent.
    #[arg(long, env = "MESH_SQS_QUEUE")]
    pub sqs_queue: Option<String>,
    /// SQS endpoint (for a local SQS); the AWS default if absent.
    #[arg(long, env = "MESH_SQS_ENDPOINT")]
    pub sqs_endpoint: Option<String>,
    /// Receives before a job is dead-lettered.
    #[arg(long, env = "MESH_MAX_RECEIVES", default_value_t = 5)]
    pub max_receives: u32,
    /// Engine tasks the tenants are split over (one core each; one tenant is served
    /// by one), 1 to 64.
    #[arg(long, env = "MESH_ENGINE_SHARDS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub engine_shards: u16,
    /// Batches of task writes each engine task has in flight at once, 1 to 16.
    #[arg(long, env = "MESH_ENGINE_WRITES", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    pub engine_writes: u8,
    /// An API key to make sure exists (admin and agent scopes), e.g. for bootstrapping.
    #[arg(long, env = "MESH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The tenant of `--api-key`.
    #[arg(
        long,
        env = "MESH_TENANT",
        default_value = "00000000-0000-0000-0000-000000000001"
    )]
    pub tenant: TenantId,
    /// Secret for HS256 JWTs; JWTs are refused without one.
    #[arg(long, env = "MESH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// GitHub REST API base URL for the `github` tool (registered when set).
    #[arg(long, env = "MESH_GITHUB_URL")]
    pub github_url: Option<String>,
    /// GitHub token for the `github` tool.
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
    /// This instance's name in workflow run leases: distinct for instances sharing a
    /// database; one restarted under its old name takes its runs back at once. A fresh
    /// UUID if absent.
    #[arg(long, env = "MESH_INSTANCE")]
    pub instance: Option<String>,
    /// Milliseconds a workflow run's lease lasts: how soon another instance takes up
    /// the runs of one that died.
    #[arg(long, env = "MESH_WORKFLOW_LEASE_MS", default_value_t = 30_000)]
    pub workflow_lease_ms: u64,
    /// The tools service: its file, secret key and Redis.
    #[command(flatten)]
    pub tools: crate::tools_file::ToolFlags,
}

impl std::fmt::Debug for Backend {
    /// Never shows the API key, the JWT secret, the GitHub token or a database password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Backend")
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_password),
            )
            .field("db_connections", &self.db_connections)
            .field("sqs_queue", &self.sqs_queue)
            .field("sqs_endpoint", &self.sqs_endpoint)
            .field("max_receives", &self.max_receives)
            .field("engine_shards", &self.engine_shards)
            .field("engine_writes", &self.engine_writes)
            .field("api_key", &secret(&self.api_key))
            .field("tenant", &self.tenant)
            .field("jwt_secret", &secret(&self.jwt_secret))
            .field("github_url", &self.github_url)
            .field("github_token", &secret(&self.github_token))
            .field("instance", &self.instance)
            .field("workflow_lease_ms", &self.workflow_lease_ms)
            .field("tools", &self.tools)
            .finish()
    }
}

/// A database URL without its password (`postgres://user:<redacted>@host/db`).
fn redact_password(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if rest.contains(':') => {
            let credentials = &url[scheme.len() + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:<redacted>{}", &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Services built from a [`Backend`], and the database they run on, if any.
pub struct Built {
    /// The services.
    pub services: Services,
    /// The database, when there is one (the cluster runs on it).
    pub store: Option<PgStore>,
}

impl Backend {
    /// The workflow runtime's settings from the flags.
    pub fn workflow_config(&self) -> WorkflowConfig {
        let mut config = WorkflowConfig::default()
            .lease(std::time::Duration::from_millis(self.workflow_lease_ms))
            .adopt_every(std::time::Duration::from_millis(
                (self.workflow_lease_ms / 4).clamp(50, 5_000),
            ));
        if let Some(name) = &self.instance {
            config = config.instance(name.clone());
        }
        config
    }

    /// The engine's settings these flags choose.
    fn engine_config(&self) -> EngineConfig {
        EngineConfig::default()
            .shards(usize::from(self.engine_shards))
            .writes_in_flight(usize::from(self.engine_writes))
    }

    /// Connects, starts the engine (clustered on PostgreSQL), and ensures the
    /// bootstrap key.
    pub async fn build(&self) -> Result<Built, Box<dyn std::error::Error>> {
        if let Some(secret) = &self.jwt_secret {
            // Refuse to start on a guessable secret rather than serve with it.
            mesh_core::app::AppConfig::default()
                .jwt_secret(secret.clone())
                .gate
                .check()?;
        }
        let queue_config = QueueConfig::max_receives(self.max_receives);
        let mut tools = ToolRegistry::new();
        if let Some(url) = &self.github_url {
            tools.register(GitHubAdapter::new(url.clone(), self.github_token.clone()));
        }
        let (mut services, store) = match &self.database_url {
            Some(url) => {
                let store = PgStore::connect(url, self.db_connections).await?;
                let config = self.engine_config().clustered(true);
                let engine = Engine::start(config, PgStores::new(store.clone()).await?).await?;
                mesh_core::cluster::join(&engine, &store).await?;
                let mut services = Services::in_memory(engine);
                services.vectors = Arc::new(store.vectors());
                if self.sqs_queue.is_none() {
                    services.jobs = Arc::new(store.queue(JOB_QUEUE, queue_config)?);
                }
                (services, Some(store))
            }
            None => {
                let engine = Engine::start(self.engine_config(), MemoryStores::new()).await?;
                (Services::in_memory(engine), None)
            }
        };
        if let Some(queue) = &self.sqs_queue {
            // A queue URL ends in the queue's name.
            let name = queue
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(queue);
            let mut config = SqsConfig::new(name).queue(queue_config);
            if let Some(endpoint) = &self.sqs_endpoint {
                config = config.endpoint(endpoint.clone());
            }
            services.jobs = Arc::new(SqsQueue::connect(&config).await?) as Arc<dyn DynQueue>;
        }
        let tools = self.tools.start(&services.engine, tools, None).await?;
        let services = services.with_tool_service(tools, self.workflow_config());
        if let Some(key) = &self.api_key
            && services.engine.authenticate(key).await?.is_none()
        {
            services
                .engine
                .create_api_key(
                    self.tenant,
                    "bootstrap",
                    Scope::ALL.to_vec(),
                    Some(key.clone()),
                )
                .await?;
        }
        Ok(Built { services, store })
    }
}

/// What the binaries log by default (`RUST_LOG` overrides it).
pub const DEFAULT_LOG_FILTER: &str = "info,hyper=warn,mesh_protocol=warn,rmcp=warn";

/// Which spans are exported (`MESH_TRACE_FILTER` overrides it, in `RUST_LOG`'s syntax):
/// Mesh's spans are at info, so `RUST_LOG=warn` quiets the log without losing traces.
pub const DEFAULT_TRACE_FILTER: &str = "info";

/// Logs to stderr, filtered by `RUST_LOG` (info by default), and traces over OTLP when
/// an endpoint is configured: see [`init_tracing_with`].
pub fn init_tracing(service: &str) -> Telemetry {
    init_tracing_with(service, DEFAULT_LOG_FILTER)
}

/// The process's logs and traces. Keep it until `main` returns: dropping it exports the
/// spans still buffered (bounded by `OTEL_BSP_EXPORT_TIMEOUT`, 30 s by default).
#[must_use = "dropping it ends tracing: keep it until main returns"]
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("exporting the last spans failed: {e}");
        }
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (else `default_filter`): text, or
/// with `MESH_LOG_FORMAT=json` one JSON object per line (timestamp, level, target,
/// message and fields, the current span — an HTTP request's carries its `request_id`
/// — and, when traced, `openTelemetry.traceId` and `spanId`). Credentials are never
/// logged.
///
/// Spans are exported over OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and `OTEL_SDK_DISABLED` is not `true`;
/// the standard `OTEL_*` variables apply (`OTEL_SERVICE_NAME`, else `service`;
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, parent-based always-on by
/// default; `OTEL_EXPORTER_OTLP_HEADERS`; `OTEL_BSP_*`), and `MESH_TRACE_FILTER`
/// chooses the spans, apart from the log's `RUST_LOG`. An exporter that cannot be
/// built is reported and the process runs untraced.
pub fn init_tracing_with(service: &str, default_filter: &str) -> Telemetry {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let log_filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| default_filter.into())
    };
    let json = std::env::var("MESH_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let provider = otlp_provider(service);
    let traces = provider.as_ref().map(|p| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("MESH_TRACE_FILTER")
            .unwrap_or_else(|_| DEFAULT_TRACE_FILTER.into());
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("mesh"))
            .with_filter(filter)
    });
    let registry = tracing_subscriber::registry().with(traces);
    // Boxed, not an `Option`: json-subscriber reads trace ids through the dispatch it
    // is handed at registration, which `Option<Layer>` does not pass on.
    let logs = if json {
        json_subscriber::layer()
            .with_current_span(true)
            .with_span_list(false)
            .with_opentelemetry_ids(true)
            .with_writer(std::io::stderr)
            .with_filter(log_filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(std::io::stderr)
            .with_filter(log_filter())
            .boxed()
    };
    let _ = registry.with(logs).try_init();
    Telemetry { provider }
}

/// The OTLP trace pipeline, when the environment asks for one.
fn otlp_provider(service: &str) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled =
        std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if disabled
        || !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("{service}: traces are not exported: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(service.to_owned());
    }
    Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

/// Resolves on Ctrl-C, SIGTERM, or when `engine` stops (a dead engine must not leave
/// the process serving as if it were healthy).
pub async fn stop_signal(engine: mesh_core::Engine) {
    tokio::select! {
        () = shutdown_signal() => {}
        () = engine.stopped() => {}
    }
}

/// An error when `engine` is no longer running: the process then exits non-zero.
pub fn engine_alive(engine: &mesh_core::Engine) -> Result<(), Box<dyn std::error::Error>> {
    if engine.is_running() {
        Ok(())
    } else {
        Err("the engine stopped unexpectedly (see the log above)".into())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        backend: Backend,
    }

    /// Hardening issue, item 17: `Debug` printed the API key, the JWT secret and the
    /// GitHub token.
    #[test]
    fn hardening_17_debug_never_shows_secrets() {
        let cli = Cli::parse_from([
            "mesh",
            "--api-key",
            "key-0123456789abcdef",
            "--jwt-secret",
            "jwt-secret-0123456789abcdef-0123456789",
            "--github-token",
            "ghp_token",
            "--database-url",
            "postgres://mesh:hunter2@db:5432/mesh",
        ]);
        let shown = format!("{:?}", cli.backend);
        for secret in [
            "key-0123456789abcdef",
            "jwt-secret-0123",
            "ghp_token",
            "hunter2",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("postgres://mesh:<redacted>@db:5432/mesh"),
            "{shown}"
        );
    }
}
