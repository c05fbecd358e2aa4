//! SQLite implementations (feature `sqlite`): one database file holds everything.

mod queue;
mod repository;
mod vector;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::OnceCell;

pub use queue::SqliteQueue;
pub use repository::SqliteRepository;
pub use vector::SqliteVectorIndex;

use crate::{QueueConfig, Record, Result, StoreError};

/// The SQLite schema's migrations (`mesh-store/migrations/sqlite/`), embedded at build
/// time; [`SqliteStore::open`] applies them.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How a [`SqliteStore`] opens its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long a write waits for another process's write to finish before failing
    /// with a "locked by another writer" error. Default 5 s.
    pub busy_timeout: Duration,
    /// Whether every commit is flushed to disk (`synchronous = FULL`) so it survives a
    /// power loss, not just a crash of the process. Default `true`; `false`
    /// (`synchronous = NORMAL`) still loses nothing when the process is killed.
    pub sync_every_commit: bool,
    /// Connections for reads, which run concurrently (WAL). Default 4. Writes go
    /// through one connection of their own, so they queue in the process instead of
    /// spinning on the file lock.
    pub readers: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            sync_every_commit: true,
            readers: 4,
        }
    }
}

impl SqliteOptions {
    /// Sets [`busy_timeout`](Self::busy_timeout).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`sync_every_commit`](Self::sync_every_commit).
    pub fn sync_every_commit(mut self, sync: bool) -> Self {
        self.sync_every_commit = sync;
        self
    }

    /// Sets [`readers`](Self::readers) (at least 1).
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }
}

/// One SQLite database file (WAL mode) with the schema in place; hands out
/// repositories, the vector index and queues that share it. Several processes may
/// open the same file: SQLite serializes their writes.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pools: Pools,
    path: PathBuf,
    vectors: Arc<OnceCell<SqliteVectorIndex>>,
}

/// The write connection and the read connections of one file.
#[derive(Debug, Clone)]
pub(crate) struct Pools {
    pub(crate) writer: SqlitePool,
    pub(crate) readers: SqlitePool,
    busy_timeout: Duration,
}

impl Pools {
    /// A database error as a store error, naming lock contention for what it is.
    pub(crate) fn error(&self, e: sqlx::Error) -> StoreError {
        backend(e, self.busy_timeout)
    }
}

/// SQLite's result codes for a file another connection holds locked.
fn is_lock_contention(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        c.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
    }))
}

/// Another process kept the database locked longer than the busy timeout.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database file is locked by another writer (waited {waited:?}; raise SqliteOptions::busy_timeout if that writer is expected to hold it longer): {source}"
)]
struct Locked {
    waited: Duration,
    source: sqlx::Error,
}

fn backend(e: sqlx::Error, busy_timeout: Duration) -> StoreError {
    if is_lock_contention(&e) {
        return StoreError::Backend {
            backend: "sqlite",
            retryable: true,
            source: Box::new(Locked {
                waited: busy_timeout,
                source: e,
            }),
        };
    }
    let retryable = matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed
    );
    StoreError::Backend {
        backend: "sqlite",
        retryable,
        source: Box::new(e),
    }
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path` with the default
    /// [`SqliteOptions`], and applies the [`SQLITE_MIGRATOR`]'s migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database file at `path` with these options.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sync_every_commit {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let error = |e| backend(e, options.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(connect.clone())
            .await
            .map_err(error)?;
        SQLITE_MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| crate::sql::migrate_error(e, "sqlite", &SQLITE_MIGRATOR, error))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(connect.read_only(true))
            .await
            .map_err(error)?;
        Ok(Self {
            pools: Pools {
                writer,
                readers,
                busy_timeout: options.busy_timeout,
            },
            path,
            vectors: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pool every write goes through (one connection), for queries of your own.
    pub fn writer(&self) -> &SqlitePool {
        &self.pools.writer
    }

    /// The repository of `T`, with expression indexes on its `INDEXED` fields.
    pub async fn repository<T: Record>(&self) -> Result<SqliteRepository<T>> {
        SqliteRepository::new(self.pools.clone()).await
    }

    /// The vector index. The first call loads every stored vector into memory (where
    /// searches run); later calls share that index. Vectors another process writes to
    /// the file after this load are not seen: give one process the writing of vectors.
    pub async fn vectors(&self) -> Result<SqliteVectorIndex> {
        self.vectors
            .get_or_try_init(|| SqliteVectorIndex::load(self.pools.clone()))
            .await
            .cloned()
    }

    /// The queue called `name`.
    pub fn queue(&self, name: &str, config: QueueConfig) -> Result<SqliteQueue> {
        SqliteQueue::new(self.pools.clone(), name, config)
    }

    /// Closes every connection, checkpointing the write-ahead log into the file.
    pub async fn close(&self) {
        self.pools.readers.close().await;
        self.pools.writer.close().await;
    }
}

/// Microseconds since the Unix epoch, as the schema stores times.
pub(crate) fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored time back as a timestamp.
pub(crate) fn time(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
