//! `/api/v1/embeddings`, `/api/v1/documents`, `/api/v1/search`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use mesh_embed::Role;
use serde::{Deserialize, Serialize};

use crate::domain::{Action, Principal, Resource};
use crate::http::Json;
use crate::http::{ApiError, AppState, ErrorBody, permit};
use crate::knowledge::{IndexRequest, SearchHit, SearchRequest};

/// `POST /api/v1/embeddings`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmbedRequest {
    /// 1 to 256 texts.
    pub texts: Vec<String>,
    /// Embed them as search queries rather than documents.
    #[serde(default)]
    pub query: bool,
}

/// The vectors, one per text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbedResponse {
    /// The model that made them.
    pub model: String,
    /// Their length.
    pub dimensions: usize,
    /// One per text, in order.
    pub vectors: Vec<Vec<f32>>,
}

/// A queued indexing job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndexAccepted {
    /// The job's id in the queue.
    pub job_id: String,
}

/// Search results, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    /// The hits.
    pub hits: Vec<SearchHit>,
}

#[utoipa::path(operation_id = "embed_texts", post, path = "/api/v1/embeddings", tag = "embeddings", request_body = EmbedRequest,
    responses((status = 200, body = EmbedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn embed(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<EmbedRequest>,
) -> Result<Json<EmbedResponse>, ApiError> {
    permit(&who, Action::Read, Resource::Documents, None)?;
    let role = if body.query {
        Role::Query
    } else {
        Role::Document
    };
    let vectors = state.services.embed(&body.texts, role).await?;
    let model = state.services.embedder.model();
    Ok(Json(EmbedResponse {
        model: model.id.clone(),
        dimensions: model.dimensions,
        vectors,
    }))
}

#[utoipa::path(operation_id = "index_document", post, path = "/api/v1/documents", tag = "embeddings", request_body = IndexRequest,
    responses((status = 202, body = IndexAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<IndexRequest>,
) -> Result<(StatusCode, Json<IndexAccepted>), ApiError> {
    permit(&who, Action::Create, Resource::Documents, None)?;
    let job_id = state.services.index_document(who.tenant, body).await?;
    Ok((StatusCode::ACCEPTED, Json(IndexAccepted { job_id })))
}

#[utoipa::path(operation_id = "search", post, path = "/api/v1/search", tag = "embeddings", request_body = SearchRequest,
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    permit(&who, Action::Read, Resource::Documents, None)?;
    let hits = state.services.search(who.tenant, &body).await?;
    Ok(Json(SearchResponse { hits }))
}
