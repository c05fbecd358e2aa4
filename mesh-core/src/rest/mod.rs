//! The REST API (feature `rest`): axum routes under `/api/v1` over the shared
//! [`AppState`], with an OpenAPI 3.1 document ([`ApiDoc`], served at
//! `/api/v1/openapi.json`).
//!
//! Every `/api/v1` route needs credentials (the [credential gate](crate::http::Gate))
//! and sees only its tenant's records. Errors are JSON with a stable `code`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use mesh_core::http::{AppState, GateConfig};
//! use mesh_core::{Engine, services::Services};
//!
//! let services = Services::in_memory(Engine::in_memory().await);
//! let state = AppState::new(services, GateConfig::default());
//! let app = mesh_core::rest::routes(state.clone()).with_state(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod access;
mod agents;
mod keys;
mod knowledge;
mod live;
mod shared_docs;
mod tasks;
mod tools;
mod workflows;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use access::{PutRole, RoleInfo, RoleList};
pub use agents::{AgentListParams, AgentPage, AgentUsageReport};
pub use keys::{CreateKey, CreateTenant, CreatedKey, KeyInfo, KeyList, TenantList};
pub use knowledge::{EmbedRequest, EmbedResponse, IndexAccepted, SearchResponse};
pub use live::{COUNT_CAP, Count, Overview, TaskCounts};
pub use shared_docs::{CreateDoc, DocListParams, DocPage, EditDoc};
pub use tasks::{CollabRequest, CollabResponse, TaskListParams, TaskOrder, TaskPage};
pub use tools::{ExecuteTool, SourceList, ToolOutput};
pub use workflows::{
    Accepted, DefinitionListParams, DefinitionPage, ForkRequest, HistoryParams, PruneRequest,
    Pruned, ResumeRequest, RunListParams, RunPage, SignalRequest, VersionParams,
};

use crate::http::{AppState, ErrorBody};

/// The OpenAPI 3.1 document of the REST API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Mesh REST API", description = "Orchestrate AI agents: tasks, agents, collaboration, durable workflows, embeddings, shared documents, tools."),
    paths(
        tasks::submit, tasks::list, tasks::get, tasks::cancel, tasks::collab,
        tasks::collab_job, tasks::cancel_collab_job,
        agents::list, agents::usage, agents::get, agents::deregister,
        keys::create, keys::list, keys::revoke, keys::create_tenant, keys::tenants,
        access::list, access::get, access::put, access::delete, access::audit, access::verify,
        knowledge::embed, knowledge::index, knowledge::search,
        shared_docs::create, shared_docs::list, shared_docs::get, shared_docs::edit,
        shared_docs::delete, shared_docs::events,
        tools::list, tools::execute, tools::sources, tools::source, tools::put_source, tools::delete_source,
        workflows::register, workflows::definitions, workflows::definition,
        workflows::start, workflows::list, workflows::get, workflows::cancel,
        workflows::signal, workflows::resume, workflows::retry, workflows::history,
        workflows::fork, workflows::prune, workflows::events,
        live::events, live::overview,
        healthz, readyz, openapi_json,
    ),
    modifiers(&Security),
    tags(
        (name = "tasks"), (name = "collaboration"), (name = "agents"),
        (name = "embeddings"), (name = "shared documents"), (name = "tools"), (name = "workflows"), (name = "keys"), (name = "access"),
        (name = "system"),
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
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ]
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
// Documents the route `app::router` serves for every binary.
#[allow(dead_code)]
pub(crate) async fn healthz() -> Response {
    crate::http::healthz().await
}

/// Readiness: the store, the queue and the embedder answer.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "Ready"), (status = 503, body = ErrorBody, description = "A dependency is down")))]
// Documents the route `app::router` serves for every binary.
#[allow(dead_code)]
pub(crate) async fn readyz(state: State<AppState>) -> Response {
    crate::http::readyz(state).await
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "The OpenAPI 3.1 document")))]
pub(crate) async fn openapi_json() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

/// The REST routes under `/api/v1`, with authentication; mount them in your own router.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/tasks", post(tasks::submit).get(tasks::list))
        .route("/api/v1/tasks/{id}", get(tasks::get))
        .route("/api/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/api/v1/collab", post(tasks::collab))
        .route("/api/v1/collab/{id}", get(tasks::collab_job))
        .route("/api/v1/collab/{id}/cancel", post(tasks::cancel_collab_job))
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/agents/usage", get(agents::usage))
        .route(
            "/api/v1/agents/{id}",
            get(agents::get).delete(agents::deregister),
        )
        .route("/api/v1/keys", post(keys::create).get(keys::list))
        .route("/api/v1/keys/{id}", axum::routing::delete(keys::revoke))
        .route(
            "/api/v1/tenants",
            post(keys::create_tenant).get(keys::tenants),
        )
        .route("/api/v1/roles", get(access::list))
        .route(
            "/api/v1/roles/{name}",
            get(access::get).put(access::put).delete(access::delete),
        )
        .route("/api/v1/audit", get(access::audit))
        .route("/api/v1/audit/verify", get(access::verify))
        .route("/api/v1/events", get(live::events))
        .route("/api/v1/overview", get(live::overview))
        .route("/api/v1/embeddings", post(knowledge::embed))
        .route("/api/v1/documents", post(knowledge::index))
        .route("/api/v1/search", post(knowledge::search))
        .route(
            "/api/v1/shared-docs",
            post(shared_docs::create).get(shared_docs::list),
        )
        .route(
            "/api/v1/shared-docs/{id}",
            get(shared_docs::get).delete(shared_docs::delete),
        )
        .route("/api/v1/shared-docs/{id}/edits", post(shared_docs::edit))
        .route("/api/v1/shared-docs/{id}/events", get(shared_docs::events))
        .route("/api/v1/tools", get(tools::list))
        .route("/api/v1/tools/{name}/execute", post(tools::execute))
        .route("/api/v1/tool-sources", get(tools::sources))
        .route(
            "/api/v1/tool-sources/{name}",
            get(tools::source)
                .put(tools::put_source)
                .delete(tools::delete_source),
        )
        .route(
            "/api/v1/workflow-definitions",
            post(workflows::register).get(workflows::definitions),
        )
        .route(
            "/api/v1/workflow-definitions/{name}",
            get(workflows::definition),
        )
        .route(
            "/api/v1/workflows",
            post(workflows::start).get(workflows::list),
        )
        .route("/api/v1/workflows/prune", post(workflows::prune))
        .route("/api/v1/workflows/{id}", get(workflows::get))
        .route("/api/v1/workflows/{id}/cancel", post(workflows::cancel))
        .route("/api/v1/workflows/{id}/signal", post(workflows::signal))
        .route("/api/v1/workflows/{id}/resume", post(workflows::resume))
        .route("/api/v1/workflows/{id}/retry", post(workflows::retry))
        .route("/api/v1/workflows/{id}/history", get(workflows::history))
        .route("/api/v1/workflows/{id}/fork", post(workflows::fork))
        .route("/api/v1/workflows/{id}/events", get(workflows::events))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::http::authenticate,
        ))
        // The document itself needs no credentials.
        .route("/api/v1/openapi.json", get(openapi_json))
}
