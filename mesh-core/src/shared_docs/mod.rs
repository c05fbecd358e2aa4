//! Shared documents: text and state that agents and people edit live, per tenant.
//!
//! A document is a mesh-crdt [`TextDoc`](mesh_crdt::TextDoc) or
//! [`StateCrdt`](mesh_crdt::StateCrdt). While it is open, one task in this process owns
//! the mesh's replica ([`LiveDoc`]): every update is checked (size, rate, decoding),
//! stored in the engine's stores, applied, then relayed to the document's subscribers —
//! agents on the hub (`doc_open`/`doc_update`), browsers on the REST event stream.
//! Every [`DocLimits::compact_every`] edits the task folds the stored edits into the
//! document's snapshot, so a restarted process, or another one on the same PostgreSQL,
//! serves the same document.
//!
//! | file | concern |
//! |---|---|
//! | `live.rs` | the task that owns an open document: accept, relay, compact |
//! | `replica.rs` | a text or state replica behind one interface |
//! | `edit.rs` | edits made through the mesh (REST, MCP, workflows) |
//! | `limits.rs` | [`DocLimits`] |
//! | `error.rs` | [`DocError`] |
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_core::shared_docs::{DocLimits, Edit, SharedDocs};
//! use mesh_core::domain::DocKind;
//! use mesh_core::{Engine, TenantId};
//!
//! let engine = Engine::in_memory().await;
//! let docs = SharedDocs::new(&engine, DocLimits::default());
//! let tenant = TenantId::new();
//! let doc = docs.create(tenant, "notes", DocKind::Text).await?;
//! let edit = Edit::Splice { pos: 0, delete: 0, insert: "hello".into() };
//! docs.edit(tenant, doc.id, vec![edit]).await?;
//! assert_eq!(docs.read(tenant, doc.id).await?.content, "hello");
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

mod edit;
mod error;
mod limits;
mod live;
mod replica;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use mesh_store::Query;
use serde::Serialize;
use serde_json::Value;

pub use edit::{Edit, MAX_EDITS, MAX_PATH_LEN};
pub use error::DocError;
pub use limits::DocLimits;
pub use live::{LiveDoc, Relayed, Synced};
pub use replica::state_content;

use crate::domain::{DocKind, MAX_NAME_LEN, SharedDoc, SharedDocId, TenantId, valid_name};
use crate::engine::{Engine, Journal};
use live::Storage;

/// A shared document as listed: what it is, not what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct DocInfo {
    /// Its id.
    pub id: SharedDocId,
    /// Its name.
    pub name: String,
    /// `text` or `state`.
    #[cfg_attr(feature = "rest", schema(value_type = String))]
    pub kind: DocKind,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A shared document with its content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct DocView {
    /// What it is.
    #[serde(flatten)]
    pub info: DocInfo,
    /// A text document's text (a string); a state document's paths and values (an
    /// object).
    pub content: Value,
}

/// The shared documents of every tenant; cheap to clone. One per process: the hub,
/// REST and MCP share it, so an edit made through one reaches the others' subscribers.
#[derive(Clone)]
pub struct SharedDocs {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Journal,
    limits: Arc<DocLimits>,
    /// The open documents.
    open: Mutex<HashMap<(TenantId, SharedDocId), LiveDoc>>,
}

impl std::fmt::Debug for SharedDocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDocs")
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl SharedDocs {
    /// Shared documents kept in `engine`'s stores.
    pub fn new(engine: &Engine, limits: DocLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                journal: engine.journal().clone(),
                limits: Arc::new(limits),
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &DocLimits {
        &self.inner.limits
    }

    /// Creates an empty document.
    pub async fn create(
        &self,
        tenant: TenantId,
        name: &str,
        kind: DocKind,
    ) -> Result<DocInfo, DocError> {
        if !valid_name(name) {
            return Err(DocError::InvalidName { max: MAX_NAME_LEN });
        }
        let doc = SharedDoc::new(name.trim(), kind);
        let stored = self
            .inner
            .journal
            .shared_docs
            .create(&tenant.to_string(), &doc)
            .await?;
        Ok(info(stored))
    }

    /// A page of the tenant's documents, oldest first (`cursor` from the last page).
    pub async fn list(
        &self,
        tenant: TenantId,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<DocInfo>, Option<String>), DocError> {
        let mut query = Query::new().limit(limit.clamp(1, Query::MAX_LIMIT));
        if let Some(cursor) = cursor {
            query = query.after(cursor);
        }
        let page = self
            .inner
            .journal
            .shared_docs
            .list(&tenant.to_string(), &query)
            .await?;
        Ok((page.items.into_iter().map(info).collect(), page.next))
    }

    /// A document and its current content.
    pub async fn read(&self, tenant: TenantId, id: SharedDocId) -> Result<DocView, DocError> {
        let info = self.info(tenant, id).await?;
        let content = self.live(tenant, id).await?.content().await?;
        Ok(DocView { info, content })
    }

    /// Applies `edits` (all or none) and returns the document with its new content.
    pub async fn edit(
        &self,
        tenant: TenantId,
        id: SharedDocId,
        edits: Vec<Edit>,
    ) -> Result<DocView, DocError> {
        let info = self.info(tenant, id).await?;
        let content = self.live(tenant, id).await?.edit(edits).await?;
        Ok(DocView { info, content })
    }

    /// Deletes a document and its stored edits; its subscribers' streams end. Returns
    /// whether it existed.
    pub async fn delete(&self, tenant: TenantId, id: SharedDocId) -> Result<bool, DocError> {
        let open = self.open().remove(&(tenant, id));
        if let Some(live) = open {
            live.stop().await;
        }
        let key = tenant.to_string();
        let existed = self
            .inner
            .journal
            .shared_docs
            .delete(&key, *id.as_uuid())
            .await?;
        let query = Query::new()
            .filter("doc_id", id.to_string())
            .limit(Query::MAX_LIMIT);
        loop {
            let page = self.inner.journal.doc_edits.list(&key, &query).await?;
            if page.items.is_empty() {
                break;
            }
            let ids: Vec<_> = page.items.iter().map(|edit| edit.record.id).collect();
            self.inner.journal.doc_edits.delete_many(&key, &ids).await?;
        }
        Ok(existed)
    }

    /// The open document `id`, loaded from the stores if this process has not opened
    /// it yet.
    pub async fn live(&self, tenant: TenantId, id: SharedDocId) -> Result<LiveDoc, DocError> {
        if let Some(live) = self.open().get(&(tenant, id)) {
            return Ok(live.clone());
        }
        let storage = Storage {
            tenant: tenant.to_string(),
            docs: self.inner.journal.shared_docs.clone(),
            edits: self.inner.journal.doc_edits.clone(),
        };
        let loaded = LiveDoc::load(id, storage, self.inner.limits.clone()).await?;
        // Two callers may have loaded it at once: the first to get here wins, the
        // other's copy is dropped (its task ends with it).
        Ok(self.open().entry((tenant, id)).or_insert(loaded).clone())
    }

    async fn info(&self, tenant: TenantId, id: SharedDocId) -> Result<DocInfo, DocError> {
        let stored = self
            .inner
            .journal
            .shared_docs
            .get(&tenant.to_string(), *id.as_uuid())
            .await?
            .ok_or(DocError::NotFound(id))?;
        Ok(info(stored))
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, SharedDocId), LiveDoc>> {
        self.inner.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn info(stored: mesh_store::Versioned<SharedDoc>) -> DocInfo {
    DocInfo {
        id: stored.record.id,
        name: stored.record.name,
        kind: stored.record.kind,
        created_at: stored.created_at,
    }
}
