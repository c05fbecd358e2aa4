//! Layer 5, the composition (feature `http`): one router that mounts the surfaces a
//! binary serves — the agent hub, REST, MCP (each when its feature is on and
//! [`Surfaces`] asks for it) — over one [`AppState`] and one credential gate, with
//! health checks, request ids, a body limit and CORS.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use mesh_core::app::{AppConfig, router};
//! use mesh_core::{Engine, services::Services};
//!
//! let services = Services::in_memory(Engine::in_memory().await);
//! let app = router(services, AppConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::http::{ApiError, AppState, GateConfig, healthz, readyz};
use crate::services::Services;

/// The largest request body, in bytes (2 MiB).
pub const MAX_BODY: usize = 2 << 20;

/// What one process serves, and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppConfig {
    /// The credential gate: JWT secret, rate limits, key cache.
    pub gate: GateConfig,
    /// Origins allowed to call from browsers (`*` for any); no CORS headers if empty.
    pub cors_origins: Vec<String>,
    /// Which surfaces to serve (all by default).
    pub surfaces: Surfaces,
    /// How long a request may take to be answered (408 `request_timeout` past it).
    /// Default 150 s: above the longest wait a request may ask for (a collaboration
    /// job's `wait_ms`, 120 s). WebSocket sessions and MCP streams are not bounded by
    /// it once their response has started.
    pub request_timeout: Duration,
    /// Whether to serve Prometheus metrics at `/metrics` (for the operator's admins;
    /// feature `metrics`). On by default.
    #[cfg(feature = "metrics")]
    pub metrics: bool,
    /// The agent hub's settings.
    #[cfg(feature = "hub")]
    pub hub: crate::hub::HubConfig,
    /// The MCP server's settings.
    #[cfg(feature = "mcp")]
    pub mcp: crate::mcp::McpConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            gate: GateConfig::default(),
            cors_origins: Vec::new(),
            surfaces: Surfaces::default(),
            request_timeout: Duration::from_secs(150),
            #[cfg(feature = "metrics")]
            metrics: true,
            #[cfg(feature = "hub")]
            hub: crate::hub::HubConfig::default(),
            #[cfg(feature = "mcp")]
            mcp: crate::mcp::McpConfig::default(),
        }
    }
}

impl AppConfig {
    /// Sets the JWT secret.
    pub fn jwt_secret(mut self, secret: impl Into<String>) -> Self {
        self.gate.jwt_secret = Some(secret.into().into_bytes());
        self
    }

    /// Limits each caller to `per_second` requests, with bursts of `burst`.
    pub fn rate_limit(mut self, per_second: f64, burst: f64) -> Self {
        self.gate.rate_limit = Some((per_second, burst));
        self
    }

    /// Accepts API keys in the `api_key` query parameter of WebSocket upgrades
    /// ([`GateConfig::query_keys`](crate::http::GateConfig::query_keys)).
    pub fn query_keys(mut self, allowed: bool) -> Self {
        self.gate.query_keys = allowed;
        self
    }

    /// Makes `tenant` the operator's: its admins also create and list tenants, and
    /// make keys for them.
    pub fn operator_tenant(mut self, tenant: crate::TenantId) -> Self {
        self.gate.operator_tenant = Some(tenant);
        self
    }

    /// Allows these browser origins.
    pub fn cors_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.cors_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Serves only `surfaces`.
    pub fn surfaces(mut self, surfaces: Surfaces) -> Self {
        self.surfaces = surfaces;
        self
    }
}

/// The surfaces to serve: a REST API instance, an MCP server instance, or everything
/// in one process. A surface whose feature is off is never served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Surfaces {
    /// `/api/v1/*` (feature `rest`).
    pub rest: bool,
    /// `/mcp`, and MCP on `/ws` (feature `mcp`).
    pub mcp: bool,
    /// The agent hub on `/ws` (feature `hub`).
    pub hub: bool,
    /// The dashboard at `/ui` (feature `ui`; with `rest`).
    pub ui: bool,
}

impl Default for Surfaces {
    fn default() -> Self {
        Self::ALL
    }
}

impl Surfaces {
    /// Everything.
    pub const ALL: Self = Self {
        rest: true,
        mcp: true,
        hub: true,
        ui: true,
    };
    /// The REST API, and the dashboard over it.
    pub const REST: Self = Self {
        rest: true,
        mcp: false,
        hub: false,
        ui: true,
    };
    /// None: health probes and metrics only (for a worker).
    pub const NONE: Self = Self {
        rest: false,
        mcp: false,
        hub: false,
        ui: false,
    };
    /// The MCP server and the agent hub.
    pub const MCP: Self = Self {
        rest: false,
        mcp: true,
        hub: true,
        ui: false,
    };
}

/// Answers 408 `request_timeout` when a request takes longer than `limit`.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("no answer within {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such route",
    )
}

/// `GET /ws`: agents (`mesh.v1`) to the hub, MCP clients (`mcp`) to the MCP server.
#[derive(Clone)]
struct WebSockets {
    #[cfg(feature = "hub")]
    hub: Option<crate::hub::Hub>,
    #[cfg(feature = "mcp")]
    mcp: Option<(
        mesh_protocol::ws::ConnectionConfig,
        std::sync::Arc<Vec<String>>,
    )>,
}

impl WebSockets {
    fn any(&self) -> bool {
        #[allow(unused_mut)]
        let mut any = false;
        #[cfg(feature = "hub")]
        {
            any |= self.hub.is_some();
        }
        #[cfg(feature = "mcp")]
        {
            any |= self.mcp.is_some();
        }
        any
    }

    async fn serve(self, state: AppState, request: Request) -> Response {
        #[cfg(feature = "mcp")]
        if let Some((connection, origins)) = self.mcp
            && mesh_protocol::ws::Subprotocol::negotiate(
                request
                    .headers()
                    .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL),
            ) == Some(mesh_protocol::ws::Subprotocol::Mcp)
        {
            return crate::mcp::websocket(state, connection, &origins, request).await;
        }
        #[cfg(feature = "hub")]
        if let Some(hub) = &self.hub {
            return hub.upgrade(request).await;
        }
        let _ = (state, request);
        not_found().await.into_response()
    }
}

/// Everything one process serves for `services` under `config`: health, and the
/// surfaces `config.surfaces` names.
pub fn router(services: Services, config: AppConfig) -> Router {
    let state = AppState::new(services, config.gate.clone());
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    #[cfg(feature = "metrics")]
    if config.metrics && crate::http::metrics::prometheus().is_some() {
        crate::observe::record(&state.services.engine);
        app = app.route("/metrics", get(crate::http::metrics::render));
    }
    #[cfg(feature = "ui")]
    if config.surfaces.ui && config.surfaces.rest {
        app = app.merge(crate::ui::routes());
    }
    #[cfg(feature = "rest")]
    {
        if config.surfaces.rest {
            app = app.merge(crate::rest::routes(state.clone()));
        } else {
            app = app.route(
                "/api/v1/openapi.json",
                get(|| async { axum::Json(<crate::rest::ApiDoc as utoipa::OpenApi>::openapi()) }),
            );
        }
    }
    let sockets = WebSockets {
        #[cfg(feature = "hub")]
        hub: config.surfaces.hub.then(|| {
            crate::hub::Hub::with_gate(
                state.services.engine.clone(),
                state.gate.clone(),
                config.hub.clone(),
            )
            .with_docs(state.services.docs.clone())
        }),
        #[cfg(feature = "mcp")]
        mcp: config.surfaces.mcp.then(|| {
            let origins = std::sync::Arc::new(config.mcp.allowed_origins.clone());
            (config.mcp.connection, origins)
        }),
    };
    if sockets.any() {
        app = app.route(
            "/ws",
            get(move |State(state): State<AppState>, request: Request| {
                sockets.clone().serve(state, request)
            }),
        );
    }
    #[cfg(feature = "mcp")]
    if config.surfaces.mcp {
        app = app.merge(crate::mcp::routes(state.clone(), &config.mcp));
    }
    let request_id = HeaderName::from_static("x-request-id");
    let mut app = app
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(
            crate::http::metrics::track_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            time_limit,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    if !config.cors_origins.is_empty() {
        let origins = if config.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                config
                    .cors_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers(Any)
                .expose_headers([HeaderName::from_static("x-request-id")]),
        );
    }
    app
}
