//! The shared services: what the REST API, the MCP server and the worker all hold —
//! the engine, the vector index, the embedder, the job queue and the tools. Document
//! indexing and search over them live in [`knowledge`](crate::knowledge).

use std::sync::Arc;

use mesh_embed::{EmbedError, Embedder, HashEmbedder, Role};
use mesh_store::{DynQueue, DynVectorIndex, MemoryQueue, MemoryVectorIndex, StoreError};

use crate::domain::TenantId;
use crate::engine::Engine;
use crate::tools::ToolRegistry;

/// Why a service operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A collection name outside the rule.
    #[error("collection must be 1 to 64 characters of A-Z, a-z, 0-9, - and _")]
    InvalidCollection,
    /// A document id that is empty or too long.
    #[error("document_id must be 1 to 256 characters")]
    InvalidDocumentId,
    /// A document text that is empty or too large.
    #[error("text must be non-empty and at most {max} bytes")]
    InvalidText {
        /// The largest allowed, in bytes.
        max: usize,
    },
    /// Metadata that is not a JSON object.
    #[error("metadata must be an object")]
    InvalidMetadata,
    /// Metadata larger than a document may carry.
    #[error("metadata may be at most {max} bytes of JSON")]
    MetadataTooLarge {
        /// The limit ([`MAX_METADATA_BYTES`](crate::knowledge::MAX_METADATA_BYTES)).
        max: usize,
    },
    /// Too few or too many texts to embed at once.
    #[error("embed 1 to {max} texts at a time")]
    InvalidTextCount {
        /// The most allowed.
        max: usize,
    },
    /// A search's `k` out of range.
    #[error("k must be 1 to 100")]
    InvalidK,
    /// An empty search query.
    #[error("query must not be empty")]
    EmptyQuery,
    /// The embedder failed.
    #[error("embedding: {0}")]
    Embed(#[from] EmbedError),
    /// The stores or the queue failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// A stable code: `invalid_request` for a request outside the rules,
    /// `embedder_failed`, or the engine's codes for storage.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCollection
            | Self::InvalidDocumentId
            | Self::InvalidText { .. }
            | Self::InvalidMetadata
            | Self::MetadataTooLarge { .. }
            | Self::InvalidTextCount { .. }
            | Self::InvalidK
            | Self::EmptyQuery => "invalid_request",
            Self::Embed(_) => "embedder_failed",
            Self::Store(StoreError::Invalid(_)) => "invalid_request",
            Self::Store(e) if e.is_retryable() => "unavailable",
            Self::Store(_) => "internal",
        }
    }
}

/// The shared services. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The engine.
    pub engine: Engine,
    /// Where document chunks are indexed.
    pub vectors: Arc<dyn DynVectorIndex>,
    /// What turns text into vectors.
    pub embedder: Arc<dyn Embedder>,
    /// The worker's queue.
    pub jobs: Arc<dyn DynQueue>,
    /// The registered tools.
    pub tools: Arc<ToolRegistry>,
    /// Collaboration jobs started through the surfaces (per-tenant quota, cancel).
    pub collab: crate::collab::CollabJobs,
    /// Durable workflows (on the engine's stores, with `tools`).
    pub workflows: crate::workflow::Workflows,
    /// When this process's worker last heard from the job queue.
    pub worker: WorkerBeat,
}

/// When a worker in this process last heard from the job queue (each receive, at least
/// once per poll wait): its health check.
#[derive(Debug, Clone, Default)]
pub struct WorkerBeat(Arc<std::sync::atomic::AtomicI64>);

impl WorkerBeat {
    /// A worker heard from the queue now.
    pub fn beat(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        self.0.store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// When it last did; `None` if no worker runs in this process.
    pub fn last(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            ms => chrono::DateTime::from_timestamp_millis(ms),
        }
    }
}

/// A worker silent for longer than this is reported unhealthy.
const WORKER_SILENCE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("engine", &self.engine)
            .field("embedder", &self.embedder.model().id)
            .field("tools", &self.tools.names())
            .finish()
    }
}

impl Services {
    /// Services around `engine` on embedded defaults: in-memory vectors and queue, the
    /// offline hash embedder, no tools, and a workflow runtime on the engine's stores
    /// (not yet recovering stored runs: see [`Workflows::recover`](crate::workflow::Workflows::recover)).
    /// Must run inside a tokio runtime.
    pub fn in_memory(engine: Engine) -> Self {
        let tools = Arc::new(ToolRegistry::new());
        Self {
            engine: engine.clone(),
            vectors: Arc::new(MemoryVectorIndex::new()),
            embedder: Arc::new(HashEmbedder::default()),
            jobs: Arc::new(MemoryQueue::new(mesh_store::QueueConfig::default())),
            tools: tools.clone(),
            collab: crate::collab::CollabJobs::default(),
            workflows: crate::workflow::Workflows::new(
                engine.clone(),
                tools,
                crate::workflow::WorkflowConfig::default(),
            ),
            worker: WorkerBeat::default(),
        }
    }

    /// Sets the tools, and a workflow runtime configured by `config` that uses them
    /// (replacing the one there was).
    pub fn with_tools(
        mut self,
        tools: ToolRegistry,
        config: crate::workflow::WorkflowConfig,
    ) -> Self {
        self.tools = Arc::new(tools);
        self.workflows =
            crate::workflow::Workflows::new(self.engine.clone(), self.tools.clone(), config);
        self
    }

    /// Whether the engine runs and the stores, the queue and the embedder answer; the
    /// first failure if not.
    pub async fn ready(&self) -> Result<(), String> {
        match self.checks().await.into_iter().find(|c| !c.ok) {
            Some(failed) => Err(format!("{}: {}", failed.name, failed.detail)),
            None => Ok(()),
        }
    }

    /// Each component's health, in order: the engine, the cluster listener, the store,
    /// the job queue (with its depth), this process's worker (if one runs here) and the
    /// embedder. Runs one embedding.
    pub async fn checks(&self) -> Vec<Check> {
        let timed =
            |name: &'static str, started: std::time::Instant, outcome: Result<String, String>| {
                let millis = started.elapsed().as_secs_f64() * 1000.0;
                match outcome {
                    Ok(detail) => Check {
                        name,
                        ok: true,
                        detail,
                        millis,
                    },
                    Err(detail) => Check {
                        name,
                        ok: false,
                        detail,
                        millis,
                    },
                }
            };
        let mut checks = Vec::with_capacity(5);
        let started = std::time::Instant::now();
        checks.push(timed(
            "engine",
            started,
            if self.engine.is_running() {
                Ok("running".into())
            } else {
                Err("stopped".into())
            },
        ));
        checks.push(timed(
            "cluster",
            started,
            if self.engine.is_listening() {
                Ok("listening".into())
            } else {
                Err("not listening for other instances' changes".into())
            },
        ));
        let started = std::time::Instant::now();
        let store = self
            .engine
            .tasks(
                TenantId::from_uuid(uuid::Uuid::nil()),
                crate::engine::TaskFilter::default(),
            )
            .await
            .map(|_| "answers".to_owned())
            .map_err(|e| e.to_string());
        checks.push(timed("store", started, store));
        let started = std::time::Instant::now();
        let queue = self
            .jobs
            .depth()
            .await
            .map(|d| {
                format!(
                    "{} waiting, {} in flight, {} dead",
                    d.available + d.delayed,
                    d.in_flight,
                    d.dead
                )
            })
            .map_err(|e| e.to_string());
        checks.push(timed("queue", started, queue));
        let started = std::time::Instant::now();
        let worker = match self.worker.last() {
            None => Ok("none in this process (workers may run apart: see the queue)".to_owned()),
            Some(at) => {
                let silent = chrono::Utc::now() - at;
                let seconds = silent.num_milliseconds() as f64 / 1000.0;
                if silent > WORKER_SILENCE {
                    Err(format!("silent for {seconds:.0} s"))
                } else {
                    Ok(format!("polled the queue {seconds:.1} s ago"))
                }
            }
        };
        checks.push(timed("worker", started, worker));
        let started = std::time::Instant::now();
        let embedder = self
            .embedder
            .embed(&["ready".to_owned()], Role::Query)
            .await
            .map(|_| self.embedder.model().id.clone())
            .map_err(|e| e.to_string());
        checks.push(timed("embedder", started, embedder));
        checks
    }
}

/// One component's health.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Check {
    /// The component: `engine`, `cluster`, `store`, `queue`, `worker` or `embedder`.
    pub name: &'static str,
    /// Whether it is healthy.
    pub ok: bool,
    /// What it said, or why it failed.
    pub detail: String,
    /// How long the check took, in milliseconds.
    pub millis: f64,
}
