//! Shared documents: what is stored of a text or state document that agents and people
//! edit live (the snapshot), and the edits appended since it was last compacted.

use mesh_store::Record;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use mesh_protocol::DocKind;

use super::ids::SharedDocId;

/// A shared document as stored: its name, kind, and the encoded state (mesh-crdt's
/// `TextDoc::encode` or `StateCrdt::encode`) as of its last compaction. Edits since then
/// are [`DocEdit`]s; the document is the snapshot merged with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SharedDoc {
    /// Its id.
    pub id: SharedDocId,
    /// A display name (1 to [`MAX_NAME_LEN`](super::MAX_NAME_LEN) characters).
    pub name: String,
    /// Text or state.
    pub kind: DocKind,
    /// The encoded state as of the last compaction.
    #[serde(with = "mesh_protocol::base64_bytes")]
    pub snapshot: Vec<u8>,
}

impl SharedDoc {
    /// A new, empty document (no snapshot yet).
    pub fn new(name: impl Into<String>, kind: DocKind) -> Self {
        Self {
            id: SharedDocId::new(),
            name: name.into(),
            kind,
            snapshot: Vec::new(),
        }
    }
}

impl Record for SharedDoc {
    const COLLECTION: &'static str = "shared_docs";
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

/// One accepted update of a shared document (mesh-crdt update bytes), stored before it
/// is relayed and folded into the snapshot by compaction. Ids are UUIDv7.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocEdit {
    /// Its id.
    pub id: Uuid,
    /// The document it belongs to.
    pub doc_id: SharedDocId,
    /// The update.
    #[serde(with = "mesh_protocol::base64_bytes")]
    pub update: Vec<u8>,
}

impl DocEdit {
    /// An edit of `doc_id`.
    pub fn new(doc_id: SharedDocId, update: Vec<u8>) -> Self {
        Self {
            id: Uuid::now_v7(),
            doc_id,
            update,
        }
    }
}

impl Record for DocEdit {
    const COLLECTION: &'static str = "shared_doc_edits";
    const INDEXED: &'static [&'static str] = &["doc_id"];
    fn id(&self) -> Uuid {
        self.id
    }
}
