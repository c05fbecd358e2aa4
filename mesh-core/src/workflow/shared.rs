//! What every part of the runtime shares: the [`Workflows`] handle, its inner state
//! (the repositories, the runs driven here, the definitions read), and the reads and
//! writes of run records that several operations make.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::Utc;
use mesh_store::{Direction, Query, StoreError, Versioned};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::commit::Committer;
use super::{
    Checkpoint, DefinitionRecord, JournalEvent, ParentStep, Position, RunStatus, Schema,
    StartRequest, WorkflowConfig, WorkflowError, WorkflowRun,
};
use crate::domain::{SYSTEM_TENANT, Tenant, TenantId, WorkflowId};
use crate::engine::{Engine, Journal};
use crate::shared_docs::SharedDocs;
use crate::tools::Tools;

/// How long a start without a version trusts the newest version it last read: a
/// version registered through this instance is seen at once, one registered through
/// another within this long.
pub(super) const NEWEST_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// A definition, and when it was read.
type ReadAt = (Arc<DefinitionRecord>, std::time::Instant);

/// The workflow runtime: a cheap handle, shared by every surface.
#[derive(Clone)]
pub struct Workflows {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Workflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflows")
            .field("instance", &self.inner.config.instance)
            .finish()
    }
}

impl Workflows {
    /// This runtime's settings.
    pub fn config(&self) -> &WorkflowConfig {
        &self.inner.config
    }

    /// The engine it runs on.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Runs driven by this instance now.
    pub fn driving(&self) -> usize {
        self.inner
            .drivers()
            .values()
            .filter(|tx| is_live(tx))
            .count()
    }
}

pub(super) struct Inner {
    pub(super) engine: Engine,
    pub(super) tools: Tools,
    /// The shared documents `doc` steps read and edit.
    pub(super) docs: SharedDocs,
    pub(super) journal: Journal,
    pub(super) config: WorkflowConfig,
    /// The runs this instance drives, and how to reach their drivers.
    pub(super) drivers: Mutex<HashMap<WorkflowId, mpsc::UnboundedSender<Poke>>>,
    /// Runs written that a driver should take up (sub-workflows started by steps).
    pub(super) launches: mpsc::UnboundedSender<Launch>,
    /// Writes journal entries in groups.
    pub(super) checkpoint_writes: Committer<Checkpoint>,
    /// Writes run records in groups.
    pub(super) run_writes: Committer<WorkflowRun>,
    /// Whether the adoption loop runs.
    pub(super) adopting: std::sync::atomic::AtomicBool,
    /// Tenants known to the adoption scan.
    remembered: Mutex<std::collections::HashSet<TenantId>>,
    /// The newest version of each workflow as last read, and when.
    newest: Mutex<HashMap<(TenantId, String), ReadAt>>,
    /// Definitions read so far (a version never changes).
    cache: Mutex<HashMap<(TenantId, String, u32), Arc<DefinitionRecord>>>,
}

/// What a run's driver is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Poke {
    /// A message was sent to the run.
    Message,
    /// The run was cancelled.
    Cancel,
}

/// Whether a registered driver's pokes still reach it (or will, once it starts): a
/// registration whose launch was dropped is closed.
fn is_live(pokes: &mpsc::UnboundedSender<Poke>) -> bool {
    !pokes.is_closed()
}

/// A run just written, with what its driver starts from.
pub(super) struct Launch {
    pub(super) tenant: TenantId,
    pub(super) run: Versioned<WorkflowRun>,
    pub(super) definition: Arc<DefinitionRecord>,
    pub(super) first: Checkpoint,
    /// The driver's pokes, registered before the run was written: every message sent
    /// through this instance since then is poked, so the driver need not look for
    /// earlier ones.
    pub(super) pokes: Option<mpsc::UnboundedReceiver<Poke>>,
}

impl Inner {
    pub(super) fn new(
        engine: Engine,
        tools: Tools,
        docs: SharedDocs,
        config: WorkflowConfig,
        launches: mpsc::UnboundedSender<Launch>,
    ) -> Self {
        let journal = engine.journal().clone();
        Self {
            checkpoint_writes: Committer::start(journal.checkpoints.clone()),
            run_writes: Committer::start(journal.runs.clone()),
            journal,
            engine,
            tools,
            docs,
            config,
            drivers: Mutex::new(HashMap::new()),
            launches,
            adopting: std::sync::atomic::AtomicBool::new(false),
            remembered: Mutex::new(std::collections::HashSet::new()),
            newest: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn drivers(
        &self,
    ) -> MutexGuard<'_, HashMap<WorkflowId, mpsc::UnboundedSender<Poke>>> {
        self.drivers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a driver here has (or is about to have) the run.
    pub(super) fn is_driven(&self, run: WorkflowId) -> bool {
        self.drivers().get(&run).is_some_and(is_live)
    }

    /// Registers a driver's pokes for `run` ahead of its driver; `None` if the run is
    /// driven here already. A registration whose driver never came (its launch was
    /// dropped: the caller went away) is closed, and taken over.
    pub(super) fn reserve(&self, run: WorkflowId) -> Option<mpsc::UnboundedReceiver<Poke>> {
        let mut drivers = self.drivers();
        if drivers.get(&run).is_some_and(is_live) {
            return None;
        }
        let (tx, pokes) = mpsc::unbounded_channel();
        drivers.insert(run, tx);
        Some(pokes)
    }

    pub(super) fn poke(&self, run: WorkflowId, poke: Poke) -> bool {
        self.drivers()
            .get(&run)
            .is_some_and(|tx| tx.send(poke).is_ok())
    }

    pub(super) fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    pub(super) async fn read_run(
        &self,
        tenant: TenantId,
        id: WorkflowId,
    ) -> Result<Versioned<WorkflowRun>, WorkflowError> {
        self.journal
            .runs
            .get(&tenant.to_string(), *id.as_uuid())
            .await?
            .ok_or(WorkflowError::RunNotFound(id))
    }

    /// Writes a new run (checked against its definition) with its first checkpoint,
    /// for a driver to take up; a run that exists under `request.id` is returned as is
    /// (`None` for the launch).
    pub(super) async fn create_run(
        &self,
        tenant: TenantId,
        request: StartRequest,
        parent: Option<(WorkflowId, u64)>,
    ) -> Result<(WorkflowRun, Option<Launch>), WorkflowError> {
        let id = request.id;
        match self.prepare(tenant, request, parent).await {
            // A taken id is found when the run is written (no read before).
            Ok((run, definition, position)) => {
                self.write_new(tenant, run, definition, position).await
            }
            // A request that would be refused still returns the run its id names.
            Err(e) => match id {
                Some(id) => match self
                    .journal
                    .runs
                    .get(&tenant.to_string(), *id.as_uuid())
                    .await?
                {
                    Some(existing) => Ok((existing.record, None)),
                    None => Err(e),
                },
                None => Err(e),
            },
        }
    }

    /// The run a start request asks for, checked against its definition.
    async fn prepare(
        &self,
        tenant: TenantId,
        request: StartRequest,
        parent: Option<(WorkflowId, u64)>,
    ) -> Result<(WorkflowRun, Arc<DefinitionRecord>, Position), WorkflowError> {
        let definition = self
            .definition(tenant, &request.workflow, request.version)
            .await?;
        let input = match request.input {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            _ => {
                return Err(WorkflowError::InvalidInput(
                    "the input must be an object".into(),
                ));
            }
        };
        if let Some(key) = input
            .keys()
            .find(|k| !definition.definition.state.contains_key(*k))
        {
            return Err(WorkflowError::InvalidInput(format!(
                "{key:?} is not a state key of workflow {:?}",
                definition.name
            )));
        }
        if let Some(schema) = &definition.definition.input_schema {
            let checked =
                Schema::compile(schema).and_then(|s| s.check(&Value::Object(input.clone())));
            if let Err(misfit) = checked {
                return Err(WorkflowError::InvalidInput(format!(
                    "the input does not fit the workflow's input_schema: {misfit}"
                )));
            }
        }
        let position = Position::start(&definition.definition, input.clone());
        let mut run = self.new_run(
            request.id.unwrap_or_default(),
            &definition,
            Value::Object(input),
        );
        run.parent = parent.map(|(run, activation)| ParentStep { run, activation });
        Ok((run, definition, position))
    }

    /// A run of `definition` from `input`, held by this instance.
    pub(super) fn new_run(
        &self,
        id: WorkflowId,
        definition: &DefinitionRecord,
        input: Value,
    ) -> WorkflowRun {
        WorkflowRun {
            id,
            workflow: definition.name.clone(),
            version: definition.version,
            status: RunStatus::Running,
            input,
            output: None,
            error: None,
            interrupts: Vec::new(),
            parent: None,
            forked_from: None,
            owner: Some(self.config.instance.clone()),
            lease_until: Some(Utc::now() + self.lease()),
            finished_at: None,
            traceparent: crate::trace::current(),
        }
    }

    /// Stores a new run and its first checkpoint (`position`, advanced).
    pub(super) async fn write_new(
        &self,
        tenant: TenantId,
        run: WorkflowRun,
        definition: Arc<DefinitionRecord>,
        mut position: Position,
    ) -> Result<(WorkflowRun, Option<Launch>), WorkflowError> {
        let key = tenant.to_string();
        self.remember(tenant).await?;
        position.advance(&definition.definition, Utc::now().timestamp_millis())?;
        let id = run.id;
        let pokes = self.reserve(id);
        let written = async {
            let written = match self.run_writes.create(&key, run).await {
                Ok(written) => written,
                // Started twice at once under one id: the first one stands.
                Err(StoreError::AlreadyExists { .. }) => return Ok(None),
                Err(e) => return Err(WorkflowError::from(e)),
            };
            let first = Checkpoint::new(id, 0, JournalEvent::Started, position);
            self.checkpoint_writes.create(&key, first.clone()).await?;
            Ok(Some((written, first)))
        }
        .await;
        let Ok(Some((written, first))) = written else {
            if pokes.is_some() {
                self.drivers().remove(&id);
            }
            return match written {
                Err(e) => Err(e),
                _ => Ok((self.read_run(tenant, id).await?.record, None)),
            };
        };
        let launch = Launch {
            tenant,
            run: written.clone(),
            definition,
            first,
            pokes,
        };
        Ok((written.record, Some(launch)))
    }

    /// Makes sure the adoption scan finds the tenant's runs (written once per tenant
    /// and process).
    async fn remember(&self, tenant: TenantId) -> Result<(), WorkflowError> {
        if self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&tenant)
        {
            return Ok(());
        }
        match self
            .journal
            .tenants
            .create(SYSTEM_TENANT, &Tenant::seen(tenant))
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {
                self.remembered
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(tenant);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn last_checkpoint(
        &self,
        tenant: TenantId,
        id: WorkflowId,
    ) -> Result<Checkpoint, WorkflowError> {
        let query = Query::new()
            .filter("run", id.to_string())
            .order_by("seq", Direction::Descending)
            .limit(1);
        let page = self
            .journal
            .checkpoints
            .list(&tenant.to_string(), &query)
            .await?;
        page.items
            .into_iter()
            .next()
            .map(|v| v.record)
            .ok_or(WorkflowError::NoSuchCheckpoint { run: id, seq: 0 })
    }

    /// The newest version of `name`, if any.
    pub(super) async fn latest(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<DefinitionRecord>, WorkflowError> {
        let query = Query::new()
            .filter("name", name)
            .order_by("version", Direction::Descending)
            .limit(1);
        let page = self
            .journal
            .definitions
            .list(&tenant.to_string(), &query)
            .await?;
        Ok(page.items.into_iter().next().map(|v| v.record))
    }

    /// Version `version` of `name` (the newest when `None`), cached once read.
    pub(super) async fn definition(
        &self,
        tenant: TenantId,
        name: &str,
        version: Option<u32>,
    ) -> Result<Arc<DefinitionRecord>, WorkflowError> {
        let unknown = || WorkflowError::UnknownWorkflow {
            name: name.to_owned(),
            version,
        };
        let record = match version {
            Some(version) => {
                if let Some(hit) = self.cached(tenant, name, version) {
                    return Ok(hit);
                }
                let id = DefinitionRecord::id_of(name, version);
                self.journal
                    .definitions
                    .get(&tenant.to_string(), id)
                    .await?
                    .map(|v| v.record)
            }
            None => {
                if let Some(hit) = self.newest_cached(tenant, name) {
                    return Ok(hit);
                }
                self.latest(tenant, name).await?
            }
        }
        .ok_or_else(unknown)?;
        let record = Arc::new(record);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (tenant, record.name.clone(), record.version),
                record.clone(),
            );
        if version.is_none() {
            self.newest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    (tenant, record.name.clone()),
                    (record.clone(), std::time::Instant::now()),
                );
        }
        Ok(record)
    }

    /// The newest version of `name` read less than [`NEWEST_FOR`] ago.
    fn newest_cached(&self, tenant: TenantId, name: &str) -> Option<Arc<DefinitionRecord>> {
        let newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        newest
            .get(&(tenant, name.to_owned()))
            .filter(|(_, read)| read.elapsed() < NEWEST_FOR)
            .map(|(record, _)| record.clone())
    }

    /// Forgets the newest version of `name` read (one was just registered here).
    pub(super) fn forget_newest(&self, tenant: TenantId, name: &str) {
        self.newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(tenant, name.to_owned()));
    }

    fn cached(&self, tenant: TenantId, name: &str, version: u32) -> Option<Arc<DefinitionRecord>> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant, name.to_owned(), version))
            .cloned()
    }
}
