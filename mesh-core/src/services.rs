//! The shared services: what the REST API, the MCP server and the worker all hold —
//! the engine, the vector index, the embedder, the job queue and the tools. Document
//! indexing and search over them live in [`knowledge`](crate::knowledge).

use std::sync::Arc;

use mesh_embed::{EmbedError, Embedder, HashEmbedder};
use mesh_store::{DynQueue, DynVectorIndex, MemoryQueue, MemoryVectorIndex, StoreError};

use crate::domain::TenantId;
use crate::engine::Engine;
pub use crate::health::Check;
use crate::tools::{ToolRegistry, Tools, ToolsConfig};

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
    /// The tools: the operator's adapters and each tenant's sources.
    pub tools: Tools,
    /// Collaboration jobs started through the surfaces (per-tenant quota, cancel).
    pub collab: crate::collab::CollabJobs,
    /// Durable workflows (on the engine's stores, with `tools` and `docs`).
    pub workflows: crate::workflow::Workflows,
    /// What the health checks remember: this process's worker, the embedder.
    pub probes: crate::health::Probes,
    /// Roles and the audit log (one writer for the process; flush it on the way out).
    pub access: crate::access::Access,
    /// What LLM agents spent, per tenant and agent (since the process started).
    pub agents: crate::agents::AgentUsage,
    /// Shared documents (on the engine's stores; the hub, REST and MCP share them).
    pub docs: crate::shared_docs::SharedDocs,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("engine", &self.engine)
            .field("embedder", &self.embedder.model().id)
            .field("tools", &self.tools)
            .finish()
    }
}

impl Services {
    /// Services around `engine` on embedded defaults: in-memory vectors and queue, the
    /// offline hash embedder, no tools, and a workflow runtime on the engine's stores
    /// (not yet recovering stored runs: see [`Workflows::recover`](crate::workflow::Workflows::recover)).
    /// Must run inside a tokio runtime.
    pub fn in_memory(engine: Engine) -> Self {
        let tools = Tools::start(&engine, ToolRegistry::new(), ToolsConfig::default());
        let docs =
            crate::shared_docs::SharedDocs::new(&engine, crate::shared_docs::DocLimits::default());
        Self {
            engine: engine.clone(),
            vectors: Arc::new(MemoryVectorIndex::new()),
            embedder: Arc::new(HashEmbedder::default()),
            jobs: Arc::new(MemoryQueue::new(mesh_store::QueueConfig::default())),
            tools: tools.clone(),
            collab: crate::collab::CollabJobs::default(),
            workflows: crate::workflow::Workflows::with_docs(
                engine.clone(),
                tools,
                docs.clone(),
                crate::workflow::WorkflowConfig::default(),
            ),
            probes: crate::health::Probes::default(),
            access: crate::access::Access::new(&engine),
            agents: crate::agents::AgentUsage::default(),
            docs,
        }
    }

    /// Sets the operator's tools (tenants' sources kept in the engine's stores, the
    /// default limits), and a workflow runtime configured by `config` that uses them
    /// (replacing the one there was).
    pub fn with_tools(self, tools: ToolRegistry, config: crate::workflow::WorkflowConfig) -> Self {
        let tools = Tools::start(&self.engine, tools, ToolsConfig::default());
        self.with_tool_service(tools, config)
    }

    /// Sets the tools service, and a workflow runtime configured by `config` that uses
    /// it (replacing the one there was).
    pub fn with_tool_service(
        mut self,
        tools: Tools,
        config: crate::workflow::WorkflowConfig,
    ) -> Self {
        self.tools = tools.clone();
        self.workflows = crate::workflow::Workflows::with_docs(
            self.engine.clone(),
            tools,
            self.docs.clone(),
            config,
        );
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
    /// the job queue (with its depth), this process's worker (if one runs here), the
    /// embedder, memory, and the disk (when `probes` watch one) — each answer awaited at
    /// most `health::CHECK_TIMEOUT`, the embedder asked at most once a minute.
    pub async fn checks(&self) -> Vec<Check> {
        let flag = |name, up: bool, yes: &str, no: &str| {
            let outcome = if up {
                Ok(yes.to_owned())
            } else {
                Err(no.to_owned())
            };
            Check::of(name, std::time::Instant::now(), outcome)
        };
        let store = Check::within("store", async {
            let nobody = TenantId::from_uuid(uuid::Uuid::nil());
            let filter = crate::engine::TaskFilter::default();
            let read = self.engine.tasks(nobody, filter).await;
            read.map(|_| "answers".to_owned())
                .map_err(|e| e.to_string())
        });
        let queue = Check::within("queue", async {
            let depth = self.jobs.depth().await.map_err(|e| e.to_string())?;
            Ok(format!(
                "{} waiting, {} in flight, {} dead",
                depth.available + depth.delayed,
                depth.in_flight,
                depth.dead
            ))
        });
        vec![
            flag("engine", self.engine.is_running(), "running", "stopped"),
            flag(
                "cluster",
                self.engine.is_listening(),
                "listening",
                "not listening for other instances' changes",
            ),
            store.await,
            queue.await,
            self.probes.worker(),
            self.probes.embedder(self.embedder.as_ref()).await,
            self.probes.memory(),
        ]
        .into_iter()
        .chain(self.probes.disk())
        .collect()
    }
}
