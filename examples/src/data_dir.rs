//! `mesh up`'s data directory: one SQLite file with everything the process keeps, the
//! admin tenant, and a lock so two processes never run an engine on the same files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesh_core::services::Services;
use mesh_core::tools::{SecretKey, ToolRegistry};
use mesh_core::workflow::WorkflowConfig;
use mesh_core::{Engine, EngineConfig, SqliteStores, TenantId};
use mesh_store::{QueueConfig, SqliteStore};

use crate::tools_file::ToolFlags;

/// The database file inside a data directory.
pub const DATABASE: &str = "mesh.db";
/// The job queue's name in the database.
const JOB_QUEUE: &str = "mesh_jobs";

/// An open data directory, locked for this process until dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    store: SqliteStore,
    /// Held for the process's life: the OS lets go when it exits, however it exits.
    _lock: File,
}

type Error = Box<dyn std::error::Error>;

impl DataDir {
    /// Creates the directory if needed, locks it, and opens its database.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create the data directory {}: {e}", path.display()))?;
        let lock_path = path.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "the data directory {} is in use by another mesh process; stop it, or pass another --data-dir",
                    path.display()
                )
                .into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()).into());
            }
        }
        let store = SqliteStore::open(path.join(DATABASE)).await?;
        Ok(Self {
            path: path.to_path_buf(),
            store,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The engine, the vector index, the job queue, the workflows and the tools
    /// service (its credentials sealed with the directory's `secret.key` unless
    /// `flags` give a key), all on the directory's database, with the operator's
    /// `tools`.
    pub async fn services(
        &self,
        tools: ToolRegistry,
        flags: &ToolFlags,
    ) -> Result<Services, Error> {
        let stores = SqliteStores::new(self.store.clone()).await?;
        let engine = Engine::start(EngineConfig::default(), stores).await?;
        let mut services = Services::in_memory(engine);
        services.vectors = Arc::new(self.store.vectors().await?);
        let jobs = self.store.queue(JOB_QUEUE, QueueConfig::default())?;
        // The directory is locked to this process: jobs received before were the
        // previous process's, which is gone — run them now, not when their leases end.
        let released = jobs.release_in_flight().await?;
        if released > 0 {
            tracing::info!(released, "jobs in flight at the last stop are queued again");
        }
        services.jobs = Arc::new(jobs);
        // Its file system fills as the data grows: the health checks watch it.
        services.probes = services.probes.watch_disk(&self.path);
        // The directory is locked to this process: the runs a previous one held are
        // this one's to take back at once.
        let workflows = WorkflowConfig::default().instance("local");
        let key = match &flags.secret_key {
            Some(_) => None,
            None => Some(self.secret_key()?),
        };
        let tools = flags.start(&services.engine, tools, key).await?;
        Ok(services.with_tool_service(tools, workflows))
    }

    /// The admin tenant: chosen on the first start and kept in the file `tenant`.
    pub fn tenant(&self) -> Result<TenantId, Error> {
        let file = self.path.join("tenant");
        match std::fs::read_to_string(&file) {
            Ok(text) => text
                .trim()
                .parse()
                .map_err(|e| format!("{} is not a tenant id: {e}", file.display()).into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let tenant = TenantId::new();
                write_private(&file, &tenant.to_string())?;
                Ok(tenant)
            }
            Err(e) => Err(format!("cannot read {}: {e}", file.display()).into()),
        }
    }

    /// The admin key generated on the first start (file `admin.key`, readable by its
    /// owner only), if there is one.
    pub fn admin_key(&self) -> Result<Option<String>, Error> {
        let file = self.path.join("admin.key");
        match std::fs::read_to_string(&file) {
            Ok(key) => Ok(Some(key.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", file.display()).into()),
        }
    }

    /// The key tool credentials are sealed with: made on the first start and kept in
    /// the file `secret.key` (only its owner can read it). Losing it loses the
    /// credentials stored with it.
    pub fn secret_key(&self) -> Result<String, Error> {
        let file = self.path.join("secret.key");
        match std::fs::read_to_string(&file) {
            Ok(key) => Ok(key.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretKey::generate();
                write_private(&file, &key)?;
                Ok(key)
            }
            Err(e) => Err(format!("cannot read {}: {e}", file.display()).into()),
        }
    }

    /// Keeps a generated admin key for the next start.
    pub fn save_admin_key(&self, key: &str) -> Result<(), Error> {
        write_private(&self.path.join("admin.key"), key)
    }

    /// Closes the database, folding its write-ahead log into the file.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// Writes `text` to a new file only its owner can read, durably.
fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
