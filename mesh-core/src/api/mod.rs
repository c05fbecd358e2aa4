//! The REST API (feature `rest`): axum routes under `/api/v1`, mountable in any axum
//! server, plus `/healthz`, `/readyz`, `/api/v1/openapi.json` and the agent hub at
//! `/ws` (and, with feature `mcp`, the MCP server at `/mcp` and on `/ws`).
//!
//! Every `/api/v1` route needs credentials — an API key (`Authorization: Bearer` or
//! `X-API-Key`) or an HS256 JWT — and sees only its tenant's records. Errors are JSON
//! with a stable `code`; every response carries an `x-request-id`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use mesh_core::api::{ApiConfig, router};
//! use mesh_core::{Engine, services::Services};
//!
//! let services = Services::in_memory(Engine::in_memory().await);
//! let app = router(services, ApiConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod agents;
mod auth;
mod error;
mod extract;
mod knowledge;
mod tasks;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mesh_router::RateLimit;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use agents::AgentListParams;
#[cfg(feature = "mcp")]
pub(crate) use auth::authenticate as authenticate_middleware;
pub use auth::{Principal, sign_jwt};
pub use error::{ApiError, ErrorBody};
pub use extract::Json;
pub use knowledge::{EmbedRequest, EmbedResponse, IndexAccepted, SearchResponse};
pub use tasks::{CollabRequest, CollabResponse, SubmitTask, TaskListParams, TaskPage};
pub use tools::{ExecuteTool, ToolOutput};

use crate::hub::{Hub, HubConfig};
use crate::services::Services;

/// API settings.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ApiConfig {
    /// The HS256 secret JWTs are verified with; JWTs are refused without one.
    pub jwt_secret: Option<String>,
    /// Requests per second and burst allowed per API key or JWT subject; unlimited if
    /// `None`.
    pub rate_limit: Option<(f64, f64)>,
    /// Origins allowed to call from browsers (`*` for any); no CORS headers if empty.
    pub cors_origins: Vec<String>,
    /// The agent hub's settings.
    pub hub: HubConfig,
    /// Which parts to serve (all by default).
    pub surfaces: Surfaces,
    /// `Host` values the MCP endpoint accepts (DNS-rebinding protection): loopback
    /// only if empty, any with `*`.
    pub mcp_allowed_hosts: Vec<String>,
}

impl ApiConfig {
    /// Sets the JWT secret.
    pub fn jwt_secret(mut self, secret: impl Into<String>) -> Self {
        self.jwt_secret = Some(secret.into());
        self
    }

    /// Limits each caller to `per_second` requests, with bursts of `burst`.
    pub fn rate_limit(mut self, per_second: f64, burst: f64) -> Self {
        self.rate_limit = Some((per_second, burst));
        self
    }

    /// Allows these browser origins.
    pub fn cors_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.cors_origins = origins.into_iter().map(Into::into).collect();
        self
    }
}

/// The parts of the router to serve: a REST API instance, an MCP server instance, or
/// everything in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Surfaces {
    /// `/api/v1/*` (the OpenAPI document is always served).
    pub rest: bool,
    /// `/mcp`, and MCP on `/ws` (feature `mcp`).
    pub mcp: bool,
    /// The agent hub on `/ws`.
    pub hub: bool,
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
    };
    /// The REST API alone.
    pub const REST: Self = Self {
        rest: true,
        mcp: false,
        hub: false,
    };
    /// The MCP server and the agent hub.
    pub const MCP: Self = Self {
        rest: false,
        mcp: true,
        hub: true,
    };
}

impl ApiConfig {
    /// Serves only `surfaces`.
    pub fn surfaces(mut self, surfaces: Surfaces) -> Self {
        self.surfaces = surfaces;
        self
    }
}

/// What every handler gets: the services, the auth gate and the hub.
#[derive(Clone)]
pub struct AppState {
    /// The shared services.
    pub services: Services,
    pub(crate) gate: Arc<auth::Gate>,
    pub(crate) hub: Hub,
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    pub(crate) mcp_hosts: Arc<Vec<String>>,
    pub(crate) surfaces: Surfaces,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("services", &self.services)
            .finish()
    }
}

impl AppState {
    /// The caller of a request with these headers (401 without valid credentials).
    pub async fn principal(&self, headers: &axum::http::HeaderMap) -> Result<Principal, ApiError> {
        auth::principal(self, headers).await
    }
}

/// The OpenAPI 3.1 document of the REST API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Mesh REST API", description = "Orchestrate AI agents: tasks, agents, collaboration, embeddings, tools."),
    paths(
        tasks::submit, tasks::list, tasks::get, tasks::cancel, tasks::collab,
        agents::list, agents::get, agents::deregister,
        knowledge::embed, knowledge::index, knowledge::search,
        tools::list, tools::execute,
        healthz, readyz, openapi_json,
    ),
    modifiers(&Security),
    tags(
        (name = "tasks"), (name = "collaboration"), (name = "agents"),
        (name = "embeddings"), (name = "tools"), (name = "system"),
    ),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key or an HS256 JWT"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        document_common_errors(openapi);
    }
}

/// Adds the error responses every protected operation can give (bad credentials,
/// scope, rate limit, unreadable path, query or body) where the operation does not
/// list them itself.
fn document_common_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |why: &str| {
        ResponseBuilder::new()
            .description(why)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let has_path_params = path.contains('{');
        for operation in [&mut item.get, &mut item.post, &mut item.delete]
            .into_iter()
            .flatten()
        {
            if operation.security.is_none() {
                continue;
            }
            let mut add = |code: &str, why: &str| {
                operation
                    .responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error(why).into());
            };
            add("400", "Unreadable path, query or body, or an invalid value");
            add("401", "Missing or invalid credentials");
            add("403", "The credentials lack the scope");
            add(
                "429",
                "Rate limited; retry after the Retry-After header's seconds",
            );
            if has_path_params {
                add("404", "No such record for this tenant");
            }
            if operation.request_body.is_some() {
                add("413", "The body is larger than 2 MiB");
                add("415", "The body is not application/json");
                add("422", "The body does not fit the schema");
            }
        }
    }
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "The process serves requests")))]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store, the queue and the embedder answer.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "Ready"), (status = 503, body = ErrorBody, description = "A dependency is down")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.services.ready().await {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(why) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why).into_response()
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "The OpenAPI 3.1 document")))]
pub(crate) async fn openapi_json() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

/// `GET /ws`: agents (`mesh.v1`), or MCP clients (`mcp`) with feature `mcp`.
async fn websocket(State(state): State<AppState>, request: Request) -> Response {
    #[cfg(feature = "mcp")]
    if state.surfaces.mcp
        && mesh_protocol::ws::Subprotocol::negotiate(
            request
                .headers()
                .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL),
        ) == Some(mesh_protocol::ws::Subprotocol::Mcp)
    {
        return crate::mcp::websocket(state, request).await;
    }
    if !state.surfaces.hub {
        return not_found().await.into_response();
    }
    state.hub.handle(request).await.map(axum::body::Body::new)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The REST routes under `/api/v1`, with authentication; mount them in your own router.
pub fn api_routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/tasks", post(tasks::submit).get(tasks::list))
        .route("/api/v1/tasks/{id}", get(tasks::get))
        .route("/api/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/api/v1/collab", post(tasks::collab))
        .route("/api/v1/agents", get(agents::list))
        .route(
            "/api/v1/agents/{id}",
            get(agents::get).delete(agents::deregister),
        )
        .route("/api/v1/embeddings", post(knowledge::embed))
        .route("/api/v1/documents", post(knowledge::index))
        .route("/api/v1/search", post(knowledge::search))
        .route("/api/v1/tools", get(tools::list))
        .route("/api/v1/tools/{name}/execute", post(tools::execute))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::authenticate,
        ))
}

/// The application state for `services` under `config`.
pub fn state(services: Services, config: &ApiConfig) -> AppState {
    let limit = config
        .rate_limit
        .map(|(per_second, burst)| RateLimit::new(per_second, burst));
    AppState {
        hub: Hub::new(services.engine.clone(), config.hub.clone()),
        mcp_hosts: Arc::new(config.mcp_allowed_hosts.clone()),
        surfaces: config.surfaces,
        gate: Arc::new(auth::Gate::new(
            config.jwt_secret.as_ref().map(|s| s.as_bytes().to_vec()),
            limit,
        )),
        services,
    }
}

/// Everything one service instance serves: the REST API, health, the OpenAPI
/// document, the agent hub at `/ws` and, with feature `mcp`, the MCP server.
pub fn router(services: Services, config: ApiConfig) -> Router {
    let state = state(services, &config);
    let mut app = Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if config.surfaces.rest {
        app = app.merge(api_routes(state.clone()));
    }
    if config.surfaces.hub || config.surfaces.mcp {
        app = app.route("/ws", get(websocket));
    }
    #[cfg(feature = "mcp")]
    if config.surfaces.mcp {
        app = app.merge(crate::mcp::routes(state.clone()));
    }
    let request_id = HeaderName::from_static("x-request-id");
    let mut app = app
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(2 << 20))
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
