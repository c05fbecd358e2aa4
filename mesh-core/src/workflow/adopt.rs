//! Taking up runs nobody drives: at start, the runs this instance (by its name) held;
//! from then on, every run whose lease ran out — its instance crashed or lost the
//! database. A run is claimed by a versioned write of its record, so only one instance
//! wins it.

use std::sync::{Arc, Weak};

use chrono::Utc;
use mesh_store::{Query, StoreError};
use tokio::sync::mpsc;

use super::shared::{Inner, Launch};
use super::{RunFilter, RunStatus, WorkflowConfig, WorkflowError, Workflows, driver};
use crate::domain::{SYSTEM_TENANT, Tenant, TenantId};
use crate::engine::Engine;
use crate::shared_docs::{DocLimits, SharedDocs};
use crate::tools::Tools;

impl Workflows {
    /// The runtime on `engine`'s stores, with `tools` for tool steps and shared
    /// documents of its own for `doc` steps. Runs started through it are driven at
    /// once; runs already in the stores wait for [`recover`](Self::recover). Must run
    /// inside a tokio runtime.
    pub fn new(engine: Engine, tools: impl Into<Tools>, config: WorkflowConfig) -> Self {
        let docs = SharedDocs::new(&engine, DocLimits::default());
        Self::with_docs(engine, tools, docs, config)
    }

    /// [`new`](Self::new), with `doc` steps editing `docs` — the documents the hub,
    /// REST and MCP serve, so their followers see a step's edits live.
    pub fn with_docs(
        engine: Engine,
        tools: impl Into<Tools>,
        docs: SharedDocs,
        config: WorkflowConfig,
    ) -> Self {
        let (launches, pending) = mpsc::unbounded_channel();
        let workflows = Self {
            inner: Arc::new(Inner::new(engine, tools.into(), docs, config, launches)),
        };
        tokio::spawn(take_launches(Arc::downgrade(&workflows.inner), pending));
        workflows
    }

    /// A runtime on `engine` with no tools and the default configuration.
    pub fn in_memory(engine: Engine) -> Self {
        Self::new(engine, Tools::default(), WorkflowConfig::default())
    }

    /// [`new`](Self::new), then [`recover`](Self::recover).
    pub async fn start(
        engine: Engine,
        tools: impl Into<Tools>,
        config: WorkflowConfig,
    ) -> Result<Self, WorkflowError> {
        let workflows = Self::new(engine, tools, config);
        workflows.recover().await?;
        Ok(workflows)
    }

    /// Takes up the runs in the stores that nobody drives — at once those this
    /// instance's name held (it restarted), and from then on, every `adopt_every`, those
    /// whose lease ran out. Returns how many it took up now; calling it again only
    /// looks again.
    pub async fn recover(&self) -> Result<usize, WorkflowError> {
        let adopted = self.adopt(true).await?;
        if !self
            .inner
            .adopting
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            tokio::spawn(keep_adopting(Arc::downgrade(&self.inner)));
        }
        Ok(adopted)
    }
}

/// Drives the runs steps start (sub-workflows), for as long as the runtime lives.
async fn take_launches(inner: Weak<Inner>, mut pending: mpsc::UnboundedReceiver<Launch>) {
    while let Some(launch) = pending.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        driver::launch(inner, launch);
    }
}

/// Looks for runs to adopt every `adopt_every`, for as long as the runtime lives.
async fn keep_adopting(inner: Weak<Inner>) {
    loop {
        let Some(every) = inner.upgrade().map(|i| i.config.adopt_every) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(e) = (Workflows { inner }).adopt(false).await {
            tracing::warn!(error = %e, "looking for workflow runs to take up failed");
        }
    }
}

impl Workflows {
    /// Claims and drives the runs nobody drives: those whose lease ran out, and with
    /// `own` those this instance's name holds (it restarted). Returns how many.
    pub(super) async fn adopt(&self, own: bool) -> Result<usize, WorkflowError> {
        let mut adopted = 0;
        let mut cursor = None;
        loop {
            let mut query = Query::new().limit(500);
            if let Some(c) = cursor {
                query = query.after(c);
            }
            let tenants = self
                .inner
                .journal
                .tenants
                .list(SYSTEM_TENANT, &query)
                .await?;
            for tenant in tenants.items {
                adopted += self.adopt_tenant(tenant.record, own).await?;
            }
            match tenants.next {
                Some(next) => cursor = Some(next),
                None => return Ok(adopted),
            }
        }
    }

    async fn adopt_tenant(&self, tenant: Tenant, own: bool) -> Result<usize, WorkflowError> {
        let tenant: TenantId = tenant.id;
        let me = self.inner.config.instance.as_str();
        let mut adopted = 0;
        for status in [RunStatus::Running, RunStatus::Waiting] {
            let mut cursor = None;
            loop {
                let filter = RunFilter {
                    status: Some(status),
                    cursor,
                    limit: Some(500),
                    ..RunFilter::default()
                };
                let page = self.runs(tenant, filter).await?;
                for run in page.items {
                    let mine = run.owner.as_deref() == Some(me);
                    let expired = run.lease_until.is_none_or(|until| until < Utc::now());
                    let driven = self.inner.is_driven(run.id);
                    if !driven && ((own && mine) || expired) && self.claim(tenant, run.id).await? {
                        adopted += 1;
                    }
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(adopted)
    }

    /// Takes the run (if nobody else took it first) and drives it from its last
    /// checkpoint.
    async fn claim(
        &self,
        tenant: TenantId,
        id: crate::domain::WorkflowId,
    ) -> Result<bool, WorkflowError> {
        let current = self.inner.read_run(tenant, id).await?;
        let mut run = current.record.clone();
        run.owner = Some(self.inner.config.instance.clone());
        run.lease_until = Some(Utc::now() + self.inner.lease());
        let written = match self
            .inner
            .journal
            .runs
            .update(&tenant.to_string(), &run, current.version)
            .await
        {
            Ok(written) => written,
            Err(StoreError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let definition = self
            .inner
            .definition(tenant, &run.workflow, Some(run.version))
            .await?;
        let last = self.inner.last_checkpoint(tenant, id).await?;
        tracing::info!(run = %id, seq = last.seq, "taking up a workflow run");
        driver::spawn(self.inner.clone(), tenant, written, definition, last, false);
        Ok(true)
    }
}
