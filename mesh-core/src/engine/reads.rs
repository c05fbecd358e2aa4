//! Plain reads, served straight from the stores rather than queued behind routing in
//! the engine task: every mutation is written through before it is announced, so the
//! stores are always as new as what the engine could answer.

use std::sync::Arc;

use mesh_embed::BoxFuture;
use mesh_store::{Query, Repository, StoreError};

use super::EngineError;
use super::query::{AgentFilter, Page, TaskFilter};
use super::scan::{every, with_status};
use super::stores::Stores;
use crate::domain::{Agent, AgentId, ApiKey, SYSTEM_TENANT, Task, TaskId, Tenant, TenantId};

type Reply<'a, T> = BoxFuture<'a, Result<T, EngineError>>;

/// The reads, as a trait object so the engine handle is not generic over its stores.
pub(crate) trait Reads: Send + Sync {
    fn task(&self, tenant: TenantId, id: TaskId) -> Reply<'_, Option<Task>>;
    fn tasks(&self, tenant: TenantId, filter: TaskFilter) -> Reply<'_, Page<Task>>;
    fn agent(&self, tenant: TenantId, id: AgentId) -> Reply<'_, Option<Agent>>;
    fn agents(&self, tenant: TenantId, filter: AgentFilter) -> Reply<'_, Page<Agent>>;
    fn key(&self, hash: String) -> Reply<'_, Option<ApiKey>>;
    fn keys_of(&self, tenant: TenantId) -> Reply<'_, Vec<ApiKey>>;
    fn tenants(&self) -> Reply<'_, Vec<Tenant>>;
}

/// [`Reads`] over a [`Stores`] bundle.
pub(crate) struct StoreReads<S>(pub(crate) Arc<S>);

impl<S: Stores> Reads for StoreReads<S> {
    fn task(&self, tenant: TenantId, id: TaskId) -> Reply<'_, Option<Task>> {
        Box::pin(async move {
            let stored = self
                .0
                .tasks()
                .get(&tenant.to_string(), *id.as_uuid())
                .await?;
            Ok(stored.map(|v| v.record))
        })
    }

    fn tasks(&self, tenant: TenantId, filter: TaskFilter) -> Reply<'_, Page<Task>> {
        Box::pin(async move {
            let mut query = Query::new().limit(filter.limit.unwrap_or(100).clamp(1, 1000));
            if let Some(status) = filter.status {
                query = query.filter("status", status.as_str());
            }
            if let Some(kind) = filter.kind {
                query = query.filter("kind", kind);
            }
            if let Some(agent) = filter.agent {
                query = query.filter("agent_id", agent.to_string());
            }
            if filter.newest_first {
                query = query.order_by("created_at", mesh_store::Direction::Descending);
            }
            page(self.0.tasks(), tenant, query, filter.cursor, |_| true).await
        })
    }

    fn agent(&self, tenant: TenantId, id: AgentId) -> Reply<'_, Option<Agent>> {
        Box::pin(async move {
            let stored = self
                .0
                .agents()
                .get(&tenant.to_string(), *id.as_uuid())
                .await?;
            Ok(stored.map(|v| v.record))
        })
    }

    fn agents(&self, tenant: TenantId, filter: AgentFilter) -> Reply<'_, Page<Agent>> {
        Box::pin(async move {
            let query = match filter.status {
                Some(status) => with_status(status.as_str()),
                None => Query::new(),
            }
            .limit(filter.limit.unwrap_or(100).clamp(1, 1000));
            let capability = filter.capability;
            page(
                self.0.agents(),
                tenant,
                query,
                filter.cursor,
                |a: &Agent| {
                    capability
                        .as_ref()
                        .is_none_or(|c| a.capabilities.contains(c))
                },
            )
            .await
        })
    }

    fn key(&self, hash: String) -> Reply<'_, Option<ApiKey>> {
        Box::pin(async move {
            let query = Query::new().filter("hash", hash).limit(1);
            let page = self.0.keys().list(SYSTEM_TENANT, &query).await?;
            Ok(page.items.into_iter().next().map(|v| v.record))
        })
    }

    fn keys_of(&self, tenant: TenantId) -> Reply<'_, Vec<ApiKey>> {
        Box::pin(async move {
            let query = Query::new().filter("tenant_id", tenant.to_string());
            let keys = every(self.0.keys(), SYSTEM_TENANT, query).await?;
            Ok(keys.into_iter().map(|v| v.record).collect())
        })
    }

    fn tenants(&self) -> Reply<'_, Vec<Tenant>> {
        Box::pin(async move {
            let tenants = every(self.0.tenants(), SYSTEM_TENANT, Query::new()).await?;
            Ok(tenants.into_iter().map(|v| v.record).collect())
        })
    }
}

/// One page of `repository`'s records of `tenant` matching `query`, after `cursor`,
/// those that `keep` accepts; a malformed cursor is [`EngineError::InvalidCursor`].
async fn page<T: mesh_store::Record>(
    repository: &impl Repository<T>,
    tenant: TenantId,
    query: Query,
    cursor: Option<String>,
    keep: impl Fn(&T) -> bool,
) -> Result<Page<T>, EngineError> {
    let query = match cursor {
        Some(cursor) => query.after(cursor),
        None => query,
    };
    let page = repository
        .list(&tenant.to_string(), &query)
        .await
        .map_err(|e| match e {
            StoreError::Invalid(why) => EngineError::InvalidCursor(why),
            e => e.into(),
        })?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|v| v.record)
            .filter(|r| keep(r))
            .collect(),
        next: page.next,
    })
}
