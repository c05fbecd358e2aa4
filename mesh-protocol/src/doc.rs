//! Shared documents over the hub: open, sync, update, close.
//!
//! Updates and versions are opaque bytes to the protocol (mesh-crdt's update and
//! version-vector encodings); in the JSON payload they travel as standard base64
//! strings with padding, so an agent in any language can carry them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a shared document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DocKind {
    /// Text (mesh-crdt's `TextDoc`).
    Text,
    /// A JSON-like tree addressed by paths (mesh-crdt's `StateCrdt`).
    State,
}

impl DocKind {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::State => "state",
        }
    }
}

/// `doc_open` (agent → mesh): start receiving a document's edits.
///
/// `version` is the agent's version vector of the document (empty when it has
/// nothing); the mesh answers [`DocSync`] with what the agent lacks, then relays every
/// edit as [`DocUpdate`]. Opening a document that is already open resyncs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocOpen {
    /// The document.
    pub doc_id: Uuid,
    /// The agent's version vector, encoded.
    #[serde(default, with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub version: Vec<u8>,
}

impl DocOpen {
    /// Opens `doc_id`, the agent having `version` (empty: nothing).
    pub fn new(doc_id: Uuid, version: Vec<u8>) -> Self {
        Self { doc_id, version }
    }
}

/// `doc_sync` (mesh → agent): the answer to [`DocOpen`].
///
/// `update` holds the operations the agent lacks; `version` is the mesh's version
/// vector, from which the agent computes what the mesh lacks (edits made while
/// disconnected) and sends it as a [`DocUpdate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocSync {
    /// The document.
    pub doc_id: Uuid,
    /// What it holds.
    pub kind: DocKind,
    /// The operations the agent lacks, encoded as an update.
    #[serde(with = "base64_bytes")]
    pub update: Vec<u8>,
    /// The mesh's version vector, encoded.
    #[serde(with = "base64_bytes")]
    pub version: Vec<u8>,
}

impl DocSync {
    /// A `doc_sync`.
    pub fn new(doc_id: Uuid, kind: DocKind, update: Vec<u8>, version: Vec<u8>) -> Self {
        Self {
            doc_id,
            kind,
            update,
            version,
        }
    }
}

/// `doc_update` (both): edits to an open document, as one encoded update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocUpdate {
    /// The document.
    pub doc_id: Uuid,
    /// The operations, encoded as an update.
    #[serde(with = "base64_bytes")]
    pub update: Vec<u8>,
}

impl DocUpdate {
    /// A `doc_update`.
    pub fn new(doc_id: Uuid, update: Vec<u8>) -> Self {
        Self { doc_id, update }
    }
}

/// `doc_close` (agent → mesh): stop receiving a document's edits. Reopen with the
/// version the agent has to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocClose {
    /// The document.
    pub doc_id: Uuid,
}

impl DocClose {
    /// A `doc_close`.
    pub fn new(doc_id: Uuid) -> Self {
        Self { doc_id }
    }
}

/// Serde for bytes as a standard base64 string (with padding), as the document
/// messages carry them: `#[serde(with = "mesh_protocol::base64_bytes")]`.
pub mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads base64 into bytes; anything else is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bytes_travel_as_base64() {
        let update = DocUpdate::new(Uuid::nil(), vec![1, 2, 3, 250]);
        let json = serde_json::to_string(&update).unwrap();
        assert_eq!(
            json,
            r#"{"doc_id":"00000000-0000-0000-0000-000000000000","update":"AQID+g=="}"#
        );
        assert_eq!(serde_json::from_str::<DocUpdate>(&json).unwrap(), update);
        let bad = r#"{"doc_id":"00000000-0000-0000-0000-000000000000","update":"not base64!"}"#;
        assert!(serde_json::from_str::<DocUpdate>(bad).is_err());
    }

    #[test]
    fn an_empty_version_is_left_out() {
        let open = DocOpen::new(Uuid::nil(), Vec::new());
        let json = serde_json::to_string(&open).unwrap();
        assert_eq!(json, r#"{"doc_id":"00000000-0000-0000-0000-000000000000"}"#);
        assert_eq!(serde_json::from_str::<DocOpen>(&json).unwrap(), open);
    }
}
