//! The crate's error type.

use uuid::Uuid;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No record with this id in this tenant's collection.
    #[error("{collection} {id} not found")]
    NotFound {
        /// The collection.
        collection: &'static str,
        /// The record id.
        id: Uuid,
    },
    /// A record with this id already exists.
    #[error("{collection} {id} already exists")]
    AlreadyExists {
        /// The collection.
        collection: &'static str,
        /// The record id.
        id: Uuid,
    },
    /// Optimistic concurrency: the record changed since it was read.
    #[error("version conflict: expected {expected}, found {actual}")]
    Conflict {
        /// The version the caller had.
        expected: u64,
        /// The version stored now.
        actual: u64,
    },
    /// A vector's length does not match its collection.
    #[error("vector has {got} dimensions, collection {collection} has {expected}")]
    DimensionMismatch {
        /// The collection.
        collection: String,
        /// Its dimensions.
        expected: usize,
        /// The vector's.
        got: usize,
    },
    /// The vector collection has not been created (or with another metric).
    #[error("unknown vector collection {0}")]
    UnknownCollection(String),
    /// A name, cursor or query the store cannot use.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The queue receipt no longer holds the message: it was acked, or its visibility
    /// timed out and it was handed to another consumer.
    #[error("receipt expired")]
    ReceiptExpired,
    /// The database was migrated by a newer version of mesh-store than this one: its
    /// schema has migrations this build does not know. Upgrade rather than write to it.
    #[error(
        "the {backend} database was written by a newer mesh-store (it has migration {applied}, this build knows up to {known}); upgrade mesh-store to open it"
    )]
    NewerSchema {
        /// Which backend.
        backend: &'static str,
        /// A migration the database has that this build lacks.
        applied: i64,
        /// The newest migration this build has.
        known: i64,
    },
    /// A record did not (de)serialize.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The backend (database, queue service) failed.
    #[error("{backend} error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// Whether trying again may help (connection loss, throttling, timeouts).
        retryable: bool,
        /// What it reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Backend {
                retryable: true,
                ..
            }
        )
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid(reason.into())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
