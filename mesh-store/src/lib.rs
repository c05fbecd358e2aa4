//! # mesh-store
//!
//! Storage for [Mesh](https://github.com/mesh-agents/mesh): the traits everything the
//! engine keeps goes through, with three families of implementations that behave the
//! same (one conformance suite per trait runs against each).
//!
//! - [`Repository<T>`]: records of any serde type with an id — create, get, list with
//!   equality filters, ordering and cursor paging, update with optimistic concurrency,
//!   delete — every call scoped to a tenant.
//! - [`VectorIndex`]: vectors with metadata per tenant and named collection; top-k by
//!   cosine, inner product or L2 with a metadata filter.
//! - [`Queue`]: at-least-once work queue — send (with delay, in batches), receive with
//!   a visibility timeout and long polling, ack, nack, dead-lettering, depth.
//!
//! | feature | implementations |
//! |---|---|
//! | `memory` (default) | [`MemoryRepository`], [`MemoryVectorIndex`] (exact, contiguous), [`MemoryQueue`] |
//! | `postgres` | `PgStore`: repositories as JSONB, pgvector HNSW, the queue on `FOR UPDATE SKIP LOCKED`, `NOTIFY`/`LISTEN` between processes |
//! | `sqlite` | `SqliteStore`: one database file (WAL) — repositories as JSON, the queue safe for several processes, vectors persisted and searched exactly in memory |
//! | `sqs` | `SqsQueue`: the queue on Amazon SQS with a redrive policy to a dead-letter queue |
//!
//! ## Quick start
//!
//! ```
//! use mesh_store::{MemoryRepository, Query, Record, Repository};
//! use serde::{Deserialize, Serialize};
//! use uuid::Uuid;
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Note { id: Uuid, text: String }
//!
//! impl Record for Note {
//!     const COLLECTION: &'static str = "notes";
//!     fn id(&self) -> Uuid { self.id }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let notes = MemoryRepository::<Note>::new();
//! let note = Note { id: Uuid::now_v7(), text: "hello".into() };
//! let stored = notes.create("tenant-a", &note).await?;
//! assert_eq!(stored.version, 1);
//! assert!(notes.get("tenant-b", note.id).await?.is_none()); // tenants never mix
//! assert_eq!(notes.list("tenant-a", &Query::new()).await?.items.len(), 1);
//! # Ok::<(), mesh_store::StoreError>(()) }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod dynamic;
mod error;
mod kernels;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod queue;
mod record;
mod repository;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqs")]
mod sqs;
mod vector;

pub use dynamic::{BoxFuture, DynQueue, DynRepository, DynVectorIndex};
pub use error::{Result, StoreError};
#[doc(hidden)]
pub use kernels::sum as bandwidth_baseline;
#[cfg(feature = "memory")]
pub use memory::{MemoryQueue, MemoryRepository, MemoryVectorIndex};
#[cfg(feature = "postgres")]
pub use postgres::{
    Heard, MAX_NOTIFY_PAYLOAD, MIGRATOR, PgQueue, PgRepository, PgStore, PgVectorIndex,
};
pub use queue::{Delivery, Queue, QueueConfig, QueueDepth};
pub use record::{Direction, Page, Query, Record, Versioned};
pub use repository::{PerRecord, Repository, TenantWrites, Written};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    SQLITE_MIGRATOR, SqliteOptions, SqliteQueue, SqliteRepository, SqliteStore, SqliteVectorIndex,
};
#[cfg(feature = "sqs")]
pub use sqs::{SqsConfig, SqsQueue};
pub use vector::{Hit, Metric, VectorIndex, VectorItem};
