//! PostgreSQL + pgvector implementations (feature `postgres`).

mod notify;
mod queue;
mod repository;
mod vector;

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

pub use notify::{Heard, MAX_NOTIFY_PAYLOAD};
pub use queue::PgQueue;
pub use repository::PgRepository;
pub use vector::PgVectorIndex;

use crate::{QueueConfig, Record, Result, StoreError};

/// The schema's migrations (`mesh-store/migrations/postgres/`), embedded at build time. Run them
/// with [`PgStore::migrate`], or yourself (`MIGRATOR.run(&pool)`) alongside your own;
/// they are recorded in sqlx's `_sqlx_migrations` table and take sqlx's advisory lock,
/// so instances starting at once apply each one once.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Serializes schema changes between instances starting at once.
const SCHEMA_LOCK: i64 = 0x6d65_7368_5f73_6368; // "mesh_sch"

/// A connection pool with the schema in place; hands out repositories, the vector
/// index and queues that share it.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    let retryable = matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    ) || matches!(&e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c == "40001" || c == "40P01"));
    StoreError::Backend {
        backend: "postgres",
        retryable,
        source: Box::new(e),
    }
}

impl PgStore {
    /// Connects (`postgres://user@host:port/db`), with up to `max_connections` pooled
    /// connections, and applies the [`MIGRATOR`]'s migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(backend)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// A store on a pool you already have. Runs no DDL: apply the schema with
    /// [`migrate`](Self::migrate) (or [`MIGRATOR`] yourself) if it is not in place.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The database server's clock (`now()`): one clock for every instance on it.
    pub async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    /// The pool, for queries of your own.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the [`MIGRATOR`]'s migrations not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| crate::sql::migrate_error(e, "postgres", &MIGRATOR, backend))
    }

    /// The repository of `T`, with expression indexes on its `INDEXED` fields.
    pub async fn repository<T: Record>(&self) -> Result<PgRepository<T>> {
        PgRepository::new(self.pool.clone()).await
    }

    /// The vector index.
    pub fn vectors(&self) -> PgVectorIndex {
        PgVectorIndex::new(self.pool.clone())
    }

    /// The queue called `name`.
    pub fn queue(&self, name: &str, config: QueueConfig) -> Result<PgQueue> {
        PgQueue::new(self.pool.clone(), name, config)
    }
}

/// Runs DDL once across instances (under the schema lock).
pub(crate) async fn ddl(pool: &PgPool, statements: &[String]) -> Result<()> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    for sql in statements {
        // Identifiers in `statements` are checked by `check_name`: [a-z0-9_] only.
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}
