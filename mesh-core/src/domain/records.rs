//! How the domain types are stored (mesh-store `Record`s).

use chrono::{DateTime, Utc};
use mesh_store::Record;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Agent, Task, TenantId};

impl Record for Task {
    const COLLECTION: &'static str = "tasks";
    const INDEXED: &'static [&'static str] = &["status", "kind", "parent"];
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

impl Record for Agent {
    const COLLECTION: &'static str = "agents";
    const INDEXED: &'static [&'static str] = &["status"];
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

/// A tenant: created by an operator (with a name), or first seen on a record (a task,
/// a workflow run) and remembered so that a restarted engine finds every tenant's
/// unfinished work. Kept in an engine-wide registry, outside every tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its name, when an operator created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When an operator created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl Tenant {
    /// A tenant first seen on a record: no name.
    pub fn seen(id: TenantId) -> Self {
        Self {
            id,
            name: None,
            created_at: None,
        }
    }

    /// A new tenant called `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            id: TenantId::new(),
            name: Some(name.into()),
            created_at: Some(Utc::now()),
        }
    }
}

impl Record for Tenant {
    const COLLECTION: &'static str = "tenants";
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

/// An indexed document's metadata, kept once per document: its chunks in the vector
/// index carry only their text, position and the document's id, so a document's
/// metadata costs its size once, not once per chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IndexedDocument {
    /// Derived from the collection and the document id (see [`IndexedDocument::id_of`]).
    pub id: Uuid,
    /// The vector collection the document's chunks are in.
    pub collection: String,
    /// The document's id in its collection.
    pub document_id: String,
    /// The metadata it was indexed with (a JSON object, or null).
    pub metadata: serde_json::Value,
    /// How many chunks it was cut into.
    pub chunks: u64,
}

impl IndexedDocument {
    /// The record id of `document_id` in `collection`.
    pub fn id_of(collection: &str, document_id: &str) -> Uuid {
        let hash = super::hash_key(&format!("{collection}\0{document_id}"));
        Uuid::parse_str(&hash[..32]).unwrap_or_default()
    }
}

impl Record for IndexedDocument {
    const COLLECTION: &'static str = "documents";
    const INDEXED: &'static [&'static str] = &["collection"];
    fn id(&self) -> Uuid {
        self.id
    }
}

/// The tenant under which engine-wide records (tenants, API keys) are kept.
pub(crate) const SYSTEM_TENANT: &str = "_system";
