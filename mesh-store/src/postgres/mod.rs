//! PostgreSQL + pgvector implementations (feature `postgres`).

mod notify;
mod queue;
mod repository;
mod vector;

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

pub use notify::MAX_NOTIFY_PAYLOAD;
pub use queue::PgQueue;
pub use repository::PgRepository;
pub use vector::PgVectorIndex;

use crate::{QueueConfig, Record, Result, StoreError};

/// Embedded migrations, applied in order, each once.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../../migrations/0001_init.sql"))];

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
    /// connections, and applies the embedded migrations.
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

    /// The pool, for queries of your own.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS mesh_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        for (version, sql) in MIGRATIONS {
            let applied: Option<i32> =
                sqlx::query_scalar("SELECT version FROM mesh_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            if applied.is_none() {
                sqlx::raw_sql(*sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                sqlx::query("INSERT INTO mesh_migrations (version) VALUES ($1)")
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
        }
        tx.commit().await.map_err(backend)
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
