//! [`DocError`]: why a shared-document operation was refused.

use mesh_crdt::DecodeError;
use mesh_store::StoreError;

use crate::domain::{DocKind, SharedDocId};

/// Why a shared-document operation was refused. Nothing of a refused update or edit is
/// applied, stored or relayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// No such document in this tenant (or it was deleted).
    #[error("no shared document {0}")]
    NotFound(SharedDocId),
    /// The name is empty or too long.
    #[error("a document name has 1 to {max} characters")]
    InvalidName {
        /// The longest name.
        max: usize,
    },
    /// The update is not a well-formed update of the document's kind.
    #[error("malformed update: {0}")]
    BadUpdate(#[source] DecodeError),
    /// The update builds on changes this document does not have (a sequence number
    /// past what its replica sent, a character never seen): its sender is out of
    /// sync, or forged it. Taking it would hold operations that no stored copy of
    /// the document carries.
    #[error("the update builds on changes this document does not have; open it again to sync")]
    OutOfSync,
    /// An edit that does not fit the document (a position past its end, a state
    /// operation on a text document…).
    #[error("invalid edit: {0}")]
    BadEdit(String),
    /// The update is larger than [`DocLimits::max_update_bytes`](super::DocLimits).
    #[error("an update of {len} bytes is over the {max}-byte limit")]
    UpdateTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The document would grow past its limit (characters of a text, paths of a state).
    #[error("a {} document holds at most {max} {}", kind.as_str(), unit(*kind))]
    DocTooLarge {
        /// Its kind.
        kind: DocKind,
        /// The limit.
        max: usize,
    },
    /// Updates to this document come faster than
    /// [`DocLimits::updates_per_second`](super::DocLimits) allows.
    #[error("too many updates to this document; slow down")]
    RateLimited,
    /// The stores failed; the update was not accepted.
    #[error("the document store failed: {0}")]
    Store(#[from] StoreError),
    /// The stored snapshot does not decode.
    #[error("the stored document does not decode: {0}")]
    Corrupt(#[source] DecodeError),
}

fn unit(kind: DocKind) -> &'static str {
    match kind {
        DocKind::State => "paths",
        _ => "characters",
    }
}

impl DocError {
    /// The stable code REST and MCP carry (`not_found`, `invalid_request`,
    /// `rate_limited`, `unavailable`, `internal`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::InvalidName { .. }
            | Self::BadUpdate(_)
            | Self::OutOfSync
            | Self::BadEdit(_)
            | Self::UpdateTooLarge { .. }
            | Self::DocTooLarge { .. } => "invalid_request",
            Self::RateLimited => "rate_limited",
            Self::Store(_) => "unavailable",
            Self::Corrupt(_) => "internal",
        }
    }

    /// The code of the `error` message the hub sends an agent (see `docs/protocol.md`).
    pub fn wire_code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "doc_not_found",
            Self::InvalidName { .. } | Self::BadEdit(_) | Self::BadUpdate(_) => "bad_update",
            Self::OutOfSync => "doc_out_of_sync",
            Self::UpdateTooLarge { .. } => "update_too_large",
            Self::DocTooLarge { .. } => "doc_too_large",
            Self::RateLimited => "doc_rate_limited",
            Self::Store(_) | Self::Corrupt(_) => "doc_unavailable",
        }
    }
}
