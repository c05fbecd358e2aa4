//! The repositories of the engine's [`Stores`] that the services use (the workflow
//! runtime's, the knowledge services' documents), erased, so they run on whatever
//! stores the engine was started with.

use std::future::Future;
use std::sync::Arc;

use mesh_store::{DynRepository, Page, Query, Record, Repository, Versioned};
use uuid::Uuid;

use super::stores::Stores;
use crate::domain::workflow::{Checkpoint, DefinitionRecord, RunMessage, WorkflowRun};
use crate::domain::{
    AuditHead, AuditRecord, DocEdit, IndexedDocument, Role, SharedDoc, Tenant, ToolSource,
};

/// The repositories workflows keep their definitions, runs, journals and messages in.
#[derive(Clone)]
pub(crate) struct Journal {
    pub(crate) definitions: Arc<dyn DynRepository<DefinitionRecord>>,
    pub(crate) runs: Arc<dyn DynRepository<WorkflowRun>>,
    pub(crate) checkpoints: Arc<dyn DynRepository<Checkpoint>>,
    pub(crate) messages: Arc<dyn DynRepository<RunMessage>>,
    pub(crate) tenants: Arc<dyn DynRepository<Tenant>>,
    /// Indexed documents' metadata (the knowledge services keep it here).
    pub(crate) documents: Arc<dyn DynRepository<IndexedDocument>>,
    /// Tenants' own roles (the access service's).
    pub(crate) roles: Arc<dyn DynRepository<Role>>,
    /// The audit log (the access service's).
    pub(crate) audit: Arc<dyn DynRepository<AuditRecord>>,
    /// Where each tenant's audit chain ends.
    pub(crate) audit_heads: Arc<dyn DynRepository<AuditHead>>,
    /// Tenants' registered tool sources (the tools service's).
    pub(crate) tool_sources: Arc<dyn DynRepository<ToolSource>>,
    /// Shared documents' snapshots (the shared documents service's).
    pub(crate) shared_docs: Arc<dyn DynRepository<SharedDoc>>,
    /// Shared documents' edits since their snapshots.
    pub(crate) doc_edits: Arc<dyn DynRepository<DocEdit>>,
}

impl Journal {
    pub(crate) fn of<S: Stores>(stores: &Arc<S>) -> Self {
        Self {
            definitions: Arc::new(Field::new(stores, S::definitions)),
            runs: Arc::new(Field::new(stores, S::runs)),
            checkpoints: Arc::new(Field::new(stores, S::checkpoints)),
            messages: Arc::new(Field::new(stores, S::messages)),
            tenants: Arc::new(Field::new(stores, S::tenants)),
            documents: Arc::new(Field::new(stores, S::documents)),
            roles: Arc::new(Field::new(stores, S::roles)),
            audit: Arc::new(Field::new(stores, S::audit)),
            audit_heads: Arc::new(Field::new(stores, S::audit_heads)),
            tool_sources: Arc::new(Field::new(stores, S::tool_sources)),
            shared_docs: Arc::new(Field::new(stores, S::shared_docs)),
            doc_edits: Arc::new(Field::new(stores, S::doc_edits)),
        }
    }
}

/// One repository of a shared bundle.
struct Field<S, R> {
    stores: Arc<S>,
    pick: fn(&S) -> &R,
}

impl<S, R> Field<S, R> {
    fn new(stores: &Arc<S>, pick: fn(&S) -> &R) -> Self {
        Self {
            stores: stores.clone(),
            pick,
        }
    }

    fn repo(&self) -> &R {
        (self.pick)(&self.stores)
    }
}

impl<S: Send + Sync, T: Record, R: Repository<T>> Repository<T> for Field<S, R> {
    fn create(
        &self,
        tenant: &str,
        record: &T,
    ) -> impl Future<Output = mesh_store::Result<Versioned<T>>> + Send {
        self.repo().create(tenant, record)
    }

    fn get(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> impl Future<Output = mesh_store::Result<Option<Versioned<T>>>> + Send {
        self.repo().get(tenant, id)
    }

    fn list(
        &self,
        tenant: &str,
        query: &Query,
    ) -> impl Future<Output = mesh_store::Result<Page<T>>> + Send {
        self.repo().list(tenant, query)
    }

    fn update(
        &self,
        tenant: &str,
        record: &T,
        expected_version: u64,
    ) -> impl Future<Output = mesh_store::Result<Versioned<T>>> + Send {
        self.repo().update(tenant, record, expected_version)
    }

    fn delete(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> impl Future<Output = mesh_store::Result<bool>> + Send {
        self.repo().delete(tenant, id)
    }

    fn delete_many(
        &self,
        tenant: &str,
        ids: &[Uuid],
    ) -> impl Future<Output = mesh_store::Result<usize>> + Send {
        self.repo().delete_many(tenant, ids)
    }

    fn create_many(
        &self,
        tenant: &str,
        records: &[T],
    ) -> impl Future<Output = mesh_store::Result<Vec<mesh_store::Result<Versioned<T>>>>> + Send
    {
        self.repo().create_many(tenant, records)
    }

    fn update_many(
        &self,
        tenant: &str,
        updates: &[(T, u64)],
    ) -> impl Future<Output = mesh_store::Result<Vec<mesh_store::Result<Versioned<T>>>>> + Send
    {
        self.repo().update_many(tenant, updates)
    }
}
