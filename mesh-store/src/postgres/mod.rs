//! PostgreSQL + pgvector implementations (feature `postgres`).

mod notify;
mod queue;
mod repository;
mod vector;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

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
    /// connections, and applies the [`MIGRATOR`]'s migrations. Each connection plans
    /// every run of a statement for the table as it is then ([`plan_each_run`]),
    /// unless the URL's `options` set `plan_cache_mode` themselves.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        let mut pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10));
        if !url.contains("plan_cache_mode") {
            pool = pool.after_connect(|conn, _| Box::pin(plan_each_run(conn)));
        }
        let pool = pool.connect_with(options).await.map_err(backend)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// A store on a pool you already have. Runs no DDL: apply the schema with
    /// [`migrate`](Self::migrate) (or [`MIGRATOR`] yourself) if it is not in place.
    /// Call [`plan_each_run`] in the pool's `after_connect` (or set `plan_cache_mode`
    /// for the database's role), or while a new database's table grows its lookups
    /// may scan it whole.
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

/// Has PostgreSQL plan each run of a statement on `conn` for its parameters and the
/// table's size at the time (`SET plan_cache_mode = force_custom_plan`), as
/// [`PgStore::connect`]'s connections do. A session setting, not a startup option,
/// so it passes through connection poolers such as PgBouncer.
///
/// Why: after five runs of a prepared statement PostgreSQL may settle on one generic
/// plan, costed with the table's statistics of that moment. Analyzed while a new
/// database held a few dozen records, a key lookup's cheapest plan is a sequential
/// scan, and the connection keeps that plan while the table grows (autovacuum
/// revisits statistics about once a minute), so every lookup reads every record: a
/// batch update of 131 tasks took 414 ms at 22,000 records, 2.5 ms planned afresh.
/// Planning each run costs about 13 µs per statement (pgbench, a prepared primary-key
/// select on loopback: 0.111 ms a run with cached plans, 0.124 ms planned each time;
/// per batch on the engine's write path), and lets listings keep using their
/// collection's partial indexes.
pub async fn plan_each_run(conn: &mut sqlx::PgConnection) -> std::result::Result<(), sqlx::Error> {
    sqlx::raw_sql("SET plan_cache_mode = force_custom_plan")
        .execute(conn)
        .await
        .map(drop)
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
