//! `/api/v1/shared-docs`: shared documents for people and scripts — create, list,
//! read, edit, delete, and follow live (Server-Sent Events), the browser's side of what
//! agents do over the hub.

use std::convert::Infallible;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use mesh_crdt::VectorClock;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::domain::{Action, DocKind, Principal, Resource, SharedDocId, TenantId};
use crate::http::{ApiError, AppState, ErrorBody, Json, Path, permit};
use crate::shared_docs::{DocInfo, DocView, Edit, LiveDoc, SharedDocs};

/// `POST /api/v1/shared-docs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateDoc {
    /// A display name, 1 to 100 characters.
    pub name: String,
    /// `text` or `state`.
    #[schema(value_type = String)]
    pub kind: DocKind,
}

/// `POST /api/v1/shared-docs/{id}/edits`: applied in order, all or none.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EditDoc {
    /// The edits: `splice` for text; `set`, `add`, `insert`, `remove` for state.
    pub edits: Vec<Edit>,
}

/// A page of shared documents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocPage {
    /// The documents, oldest first.
    pub items: Vec<DocInfo>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Paging for `GET /api/v1/shared-docs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocListParams {
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(operation_id = "create_shared_doc", post, path = "/api/v1/shared-docs", tag = "shared documents", request_body = CreateDoc,
    responses((status = 201, body = DocInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<CreateDoc>,
) -> Result<(StatusCode, Json<DocInfo>), ApiError> {
    permit(&who, Action::Create, Resource::Documents, None)?;
    let doc = state
        .services
        .docs
        .create(who.tenant, &body.name, body.kind)
        .await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

#[utoipa::path(operation_id = "list_shared_docs", get, path = "/api/v1/shared-docs", tag = "shared documents", params(DocListParams),
    responses((status = 200, body = DocPage), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<DocListParams>,
) -> Result<Json<DocPage>, ApiError> {
    permit(&who, Action::Read, Resource::Documents, None)?;
    let limit = params.limit.unwrap_or(100);
    let (items, next) = state
        .services
        .docs
        .list(who.tenant, limit, params.cursor)
        .await?;
    Ok(Json(DocPage { items, next }))
}

#[utoipa::path(operation_id = "get_shared_doc", get, path = "/api/v1/shared-docs/{id}", tag = "shared documents",
    params(("id" = String, Path, format = Uuid, description = "The document id")),
    responses((status = 200, body = DocView, description = "The document; `content` is the text (text) or an object of paths and values (state)"),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<SharedDocId>,
) -> Result<Json<DocView>, ApiError> {
    permit(&who, Action::Read, Resource::Documents, None)?;
    Ok(Json(state.services.docs.read(who.tenant, id).await?))
}

#[utoipa::path(operation_id = "edit_shared_doc", post, path = "/api/v1/shared-docs/{id}/edits", tag = "shared documents", request_body = EditDoc,
    params(("id" = String, Path, format = Uuid, description = "The document id")),
    responses((status = 200, body = DocView, description = "The document after the edits"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn edit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<SharedDocId>,
    Json(body): Json<EditDoc>,
) -> Result<Json<DocView>, ApiError> {
    permit(&who, Action::Update, Resource::Documents, None)?;
    Ok(Json(
        state.services.docs.edit(who.tenant, id, body.edits).await?,
    ))
}

#[utoipa::path(operation_id = "delete_shared_doc", delete, path = "/api/v1/shared-docs/{id}", tag = "shared documents",
    params(("id" = String, Path, format = Uuid, description = "The document id")),
    responses((status = 204, description = "Deleted; its live streams end"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<SharedDocId>,
) -> Result<StatusCode, ApiError> {
    permit(&who, Action::Delete, Resource::Documents, None)?;
    if state.services.docs.delete(who.tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("shared document"))
    }
}

#[utoipa::path(operation_id = "shared_doc_events", get, path = "/api/v1/shared-docs/{id}/events", tag = "shared documents",
    params(("id" = String, Path, format = Uuid, description = "The document id")),
    responses((status = 200, content_type = "text/event-stream",
        description = "The document live, as Server-Sent Events: a `content` event (data: the document with its content) now and after every change — changes that arrive together give one event — and `deleted` when it is deleted."),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<SharedDocId>,
) -> Result<Response, ApiError> {
    permit(&who, Action::Read, Resource::Documents, None)?;
    let docs = state.services.docs.clone();
    let view = docs.read(who.tenant, id).await?;
    let live = docs.live(who.tenant, id).await?;
    let (updates, _) = live.open(VectorClock::new()).await?;
    let follow = Follow {
        docs,
        tenant: who.tenant,
        live,
        updates,
        first: Some(view),
        done: false,
    };
    let events = stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok::<_, Infallible>(event), follow))
    });
    let stop = state.gate.until_revoked(&who);
    Ok(
        Sse::new(futures_util::StreamExt::take_until(events, Box::pin(stop)))
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

/// One browser following a document.
struct Follow {
    docs: SharedDocs,
    tenant: TenantId,
    live: LiveDoc,
    updates: tokio::sync::broadcast::Receiver<crate::shared_docs::Relayed>,
    first: Option<DocView>,
    done: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<SseEvent> {
        if let Some(view) = self.first.take() {
            return Some(content_event(&view));
        }
        if self.done {
            return None;
        }
        match self.updates.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {
                // Coalesce what else has arrived: one read for all of it.
                while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
                    self.updates.try_recv()
                {}
                match self.docs.read(self.tenant, self.live.id()).await {
                    Ok(view) => Some(content_event(&view)),
                    Err(_) => self.deleted(),
                }
            }
            Err(RecvError::Closed) => self.deleted(),
        }
    }

    fn deleted(&mut self) -> Option<SseEvent> {
        self.done = true;
        Some(SseEvent::default().event("deleted").data("{}"))
    }
}

fn content_event(view: &DocView) -> SseEvent {
    SseEvent::default()
        .event("content")
        .data(serde_json::to_string(view).unwrap_or_default())
}
