//! The storage the engine runs on: one bundle of mesh-store repositories.

use mesh_store::Repository;

use crate::domain::workflow::{Checkpoint, DefinitionRecord, RunMessage, WorkflowRun};
use crate::domain::{
    Agent, ApiKey, AuditHead, AuditRecord, DocEdit, IndexedDocument, Role, SharedDoc, Task, Tenant,
    ToolSource,
};

/// The repositories the engine needs. [`MemoryStores`] keeps nothing across a
/// restart; `SqliteStores` (feature `sqlite`) keeps everything in one file and
/// `PgStores` (feature `postgres`) in PostgreSQL, so an engine restarted on the same
/// file or database resumes where it stopped.
pub trait Stores: Send + Sync + 'static {
    /// Tasks.
    type Tasks: Repository<Task>;
    /// Agents.
    type Agents: Repository<Agent>;
    /// API keys.
    type Keys: Repository<ApiKey>;
    /// Tenants the engine has seen.
    #[doc(hidden)]
    type Tenants: Repository<Tenant>;
    /// Registered workflow definitions.
    type Definitions: Repository<DefinitionRecord>;
    /// Workflow runs.
    type Runs: Repository<WorkflowRun>;
    /// The runs' journals.
    type Checkpoints: Repository<Checkpoint>;
    /// Signals and resumes sent to runs.
    type Messages: Repository<RunMessage>;
    /// Indexed documents' metadata.
    type Documents: Repository<IndexedDocument>;
    /// Tenants' own roles.
    type Roles: Repository<Role>;
    /// The audit log.
    type Audit: Repository<AuditRecord>;
    /// Where each tenant's audit chain ends.
    type AuditHeads: Repository<AuditHead>;
    /// Tenants' registered tool sources (MCP servers, adapters with credentials).
    type ToolSources: Repository<ToolSource>;
    /// Shared documents' snapshots.
    type SharedDocs: Repository<SharedDoc>;
    /// Shared documents' edits since their snapshots.
    type DocEdits: Repository<DocEdit>;

    /// The task repository.
    fn tasks(&self) -> &Self::Tasks;
    /// The agent repository.
    fn agents(&self) -> &Self::Agents;
    /// The API key repository.
    fn keys(&self) -> &Self::Keys;
    /// The tenant registry.
    #[doc(hidden)]
    fn tenants(&self) -> &Self::Tenants;
    /// The workflow definition repository.
    fn definitions(&self) -> &Self::Definitions;
    /// The workflow run repository.
    fn runs(&self) -> &Self::Runs;
    /// The workflow journal repository.
    fn checkpoints(&self) -> &Self::Checkpoints;
    /// The workflow message repository.
    fn messages(&self) -> &Self::Messages;
    /// The indexed-document repository.
    fn documents(&self) -> &Self::Documents;
    /// The role repository.
    fn roles(&self) -> &Self::Roles;
    /// The audit log repository.
    fn audit(&self) -> &Self::Audit;
    /// The audit chain heads' repository.
    fn audit_heads(&self) -> &Self::AuditHeads;
    /// The tool source repository.
    fn tool_sources(&self) -> &Self::ToolSources;
    /// The shared document repository.
    fn shared_docs(&self) -> &Self::SharedDocs;
    /// The shared documents' edit log.
    fn doc_edits(&self) -> &Self::DocEdits;

    /// The stores' own clock, when instances share it (PostgreSQL's `now()`), so
    /// liveness written by one instance and read by another compares on one clock;
    /// `None` for stores one process has to itself.
    fn now(
        &self,
    ) -> impl std::future::Future<Output = mesh_store::Result<Option<chrono::DateTime<chrono::Utc>>>>
    + Send {
        async { Ok(None) }
    }
}

/// The associated types and accessors of a bundle whose fields are repositories of the
/// `$repo` family.
macro_rules! repositories {
    ($repo:ident) => {
        type Tasks = mesh_store::$repo<Task>;
        type Agents = mesh_store::$repo<Agent>;
        type Keys = mesh_store::$repo<ApiKey>;
        type Tenants = mesh_store::$repo<Tenant>;
        type Definitions = mesh_store::$repo<DefinitionRecord>;
        type Runs = mesh_store::$repo<WorkflowRun>;
        type Checkpoints = mesh_store::$repo<Checkpoint>;
        type Messages = mesh_store::$repo<RunMessage>;
        type Documents = mesh_store::$repo<IndexedDocument>;
        type Roles = mesh_store::$repo<Role>;
        type Audit = mesh_store::$repo<AuditRecord>;
        type AuditHeads = mesh_store::$repo<AuditHead>;
        type ToolSources = mesh_store::$repo<ToolSource>;
        type SharedDocs = mesh_store::$repo<SharedDoc>;
        type DocEdits = mesh_store::$repo<DocEdit>;
        fn tasks(&self) -> &Self::Tasks {
            &self.tasks
        }
        fn agents(&self) -> &Self::Agents {
            &self.agents
        }
        fn keys(&self) -> &Self::Keys {
            &self.keys
        }
        fn tenants(&self) -> &Self::Tenants {
            &self.tenants
        }
        fn definitions(&self) -> &Self::Definitions {
            &self.definitions
        }
        fn runs(&self) -> &Self::Runs {
            &self.runs
        }
        fn checkpoints(&self) -> &Self::Checkpoints {
            &self.checkpoints
        }
        fn messages(&self) -> &Self::Messages {
            &self.messages
        }
        fn documents(&self) -> &Self::Documents {
            &self.documents
        }
        fn roles(&self) -> &Self::Roles {
            &self.roles
        }
        fn audit(&self) -> &Self::Audit {
            &self.audit
        }
        fn audit_heads(&self) -> &Self::AuditHeads {
            &self.audit_heads
        }
        fn tool_sources(&self) -> &Self::ToolSources {
            &self.tool_sources
        }
        fn shared_docs(&self) -> &Self::SharedDocs {
            &self.shared_docs
        }
        fn doc_edits(&self) -> &Self::DocEdits {
            &self.doc_edits
        }
    };
}

/// Everything in memory.
#[derive(Debug, Default)]
pub struct MemoryStores {
    tasks: mesh_store::MemoryRepository<Task>,
    agents: mesh_store::MemoryRepository<Agent>,
    keys: mesh_store::MemoryRepository<ApiKey>,
    tenants: mesh_store::MemoryRepository<Tenant>,
    definitions: mesh_store::MemoryRepository<DefinitionRecord>,
    runs: mesh_store::MemoryRepository<WorkflowRun>,
    checkpoints: mesh_store::MemoryRepository<Checkpoint>,
    messages: mesh_store::MemoryRepository<RunMessage>,
    documents: mesh_store::MemoryRepository<IndexedDocument>,
    roles: mesh_store::MemoryRepository<Role>,
    audit: mesh_store::MemoryRepository<AuditRecord>,
    audit_heads: mesh_store::MemoryRepository<AuditHead>,
    tool_sources: mesh_store::MemoryRepository<ToolSource>,
    shared_docs: mesh_store::MemoryRepository<SharedDoc>,
    doc_edits: mesh_store::MemoryRepository<DocEdit>,
}

impl MemoryStores {
    /// Empty stores.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Stores for MemoryStores {
    repositories!(MemoryRepository);
}

/// Everything in PostgreSQL.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone)]
pub struct PgStores {
    store: mesh_store::PgStore,
    tasks: mesh_store::PgRepository<Task>,
    agents: mesh_store::PgRepository<Agent>,
    keys: mesh_store::PgRepository<ApiKey>,
    tenants: mesh_store::PgRepository<Tenant>,
    definitions: mesh_store::PgRepository<DefinitionRecord>,
    runs: mesh_store::PgRepository<WorkflowRun>,
    checkpoints: mesh_store::PgRepository<Checkpoint>,
    messages: mesh_store::PgRepository<RunMessage>,
    documents: mesh_store::PgRepository<IndexedDocument>,
    roles: mesh_store::PgRepository<Role>,
    audit: mesh_store::PgRepository<AuditRecord>,
    audit_heads: mesh_store::PgRepository<AuditHead>,
    tool_sources: mesh_store::PgRepository<ToolSource>,
    shared_docs: mesh_store::PgRepository<SharedDoc>,
    doc_edits: mesh_store::PgRepository<DocEdit>,
}

#[cfg(feature = "postgres")]
impl PgStores {
    /// The engine's repositories on `store` (migrations applied, indexes created).
    pub async fn new(store: mesh_store::PgStore) -> mesh_store::Result<Self> {
        Ok(Self {
            tasks: store.repository().await?,
            agents: store.repository().await?,
            keys: store.repository().await?,
            tenants: store.repository().await?,
            definitions: store.repository().await?,
            runs: store.repository().await?,
            checkpoints: store.repository().await?,
            messages: store.repository().await?,
            documents: store.repository().await?,
            roles: store.repository().await?,
            audit: store.repository().await?,
            audit_heads: store.repository().await?,
            tool_sources: store.repository().await?,
            shared_docs: store.repository().await?,
            doc_edits: store.repository().await?,
            store,
        })
    }

    /// The underlying store (pool, vector index, queues).
    pub fn store(&self) -> &mesh_store::PgStore {
        &self.store
    }
}

#[cfg(feature = "postgres")]
impl Stores for PgStores {
    repositories!(PgRepository);

    async fn now(&self) -> mesh_store::Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(Some(self.store.now().await?))
    }
}

/// Everything in one SQLite file. One engine per file: engines share a database only
/// through PostgreSQL, whose notifications carry what each must hear of the others.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
pub struct SqliteStores {
    store: mesh_store::SqliteStore,
    tasks: mesh_store::SqliteRepository<Task>,
    agents: mesh_store::SqliteRepository<Agent>,
    keys: mesh_store::SqliteRepository<ApiKey>,
    tenants: mesh_store::SqliteRepository<Tenant>,
    definitions: mesh_store::SqliteRepository<DefinitionRecord>,
    runs: mesh_store::SqliteRepository<WorkflowRun>,
    checkpoints: mesh_store::SqliteRepository<Checkpoint>,
    messages: mesh_store::SqliteRepository<RunMessage>,
    documents: mesh_store::SqliteRepository<IndexedDocument>,
    roles: mesh_store::SqliteRepository<Role>,
    audit: mesh_store::SqliteRepository<AuditRecord>,
    audit_heads: mesh_store::SqliteRepository<AuditHead>,
    tool_sources: mesh_store::SqliteRepository<ToolSource>,
    shared_docs: mesh_store::SqliteRepository<SharedDoc>,
    doc_edits: mesh_store::SqliteRepository<DocEdit>,
}

#[cfg(feature = "sqlite")]
impl SqliteStores {
    /// The engine's repositories on `store` (indexes created).
    pub async fn new(store: mesh_store::SqliteStore) -> mesh_store::Result<Self> {
        Ok(Self {
            tasks: store.repository().await?,
            agents: store.repository().await?,
            keys: store.repository().await?,
            tenants: store.repository().await?,
            definitions: store.repository().await?,
            runs: store.repository().await?,
            checkpoints: store.repository().await?,
            messages: store.repository().await?,
            documents: store.repository().await?,
            roles: store.repository().await?,
            audit: store.repository().await?,
            audit_heads: store.repository().await?,
            tool_sources: store.repository().await?,
            shared_docs: store.repository().await?,
            doc_edits: store.repository().await?,
            store,
        })
    }

    /// The underlying store (vector index, queues).
    pub fn store(&self) -> &mesh_store::SqliteStore {
        &self.store
    }
}

#[cfg(feature = "sqlite")]
impl Stores for SqliteStores {
    repositories!(SqliteRepository);
}
