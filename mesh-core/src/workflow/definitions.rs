//! Registering definitions (each registration of a name is its next version) and
//! reading them back.

use mesh_store::{Query, StoreError};

use super::{
    Action, DefinitionError, DefinitionRecord, WorkflowDefinition, WorkflowError, Workflows,
};
use crate::domain::TenantId;
use crate::engine::Page;

impl Workflows {
    /// Checks `definition` and registers it as the next version of its name.
    pub async fn register(
        &self,
        tenant: TenantId,
        definition: WorkflowDefinition,
    ) -> Result<DefinitionRecord, WorkflowError> {
        definition.validate()?;
        for step in definition.steps_by_name().values() {
            if let Action::Collab(job) = &step.action {
                super::steps::collab_job(job, None).map_err(|problem| {
                    DefinitionError::InvalidStep {
                        step: step.name.clone(),
                        problem,
                    }
                })?;
            }
        }
        let key = tenant.to_string();
        // Two registrations racing for one version: the loser takes the next.
        loop {
            let version = match self.inner.latest(tenant, &definition.name).await? {
                Some(latest) => latest.version + 1,
                None => 1,
            };
            let record = DefinitionRecord::new(definition.clone(), version);
            match self.inner.journal.definitions.create(&key, &record).await {
                Ok(_) => {
                    self.inner.forget_newest(tenant, &record.name);
                    return Ok(record);
                }
                Err(StoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Version `version` of workflow `name` (the newest when `None`).
    pub async fn definition(
        &self,
        tenant: TenantId,
        name: &str,
        version: Option<u32>,
    ) -> Result<DefinitionRecord, WorkflowError> {
        self.inner
            .definition(tenant, name, version)
            .await
            .map(|d| (*d).clone())
    }

    /// A page of the tenant's registered definitions (every version), oldest first.
    pub async fn definitions(
        &self,
        tenant: TenantId,
        name: Option<&str>,
        limit: Option<usize>,
        cursor: Option<String>,
    ) -> Result<Page<DefinitionRecord>, WorkflowError> {
        let mut query = Query::new().limit(limit.unwrap_or(100).clamp(1, 1000));
        if let Some(name) = name {
            query = query.filter("name", name);
        }
        if let Some(cursor) = cursor {
            query = query.after(cursor);
        }
        let page = self
            .inner
            .journal
            .definitions
            .list(&tenant.to_string(), &query)
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|v| v.record).collect(),
            next: page.next,
        })
    }
}
