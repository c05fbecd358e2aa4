//! Layer 2, the engine: agent registry, routing, task lifecycle, delegation and events.
//!
//! One task owns all mutable engine state (the registry, the router's candidate index,
//! the tasks in flight) and serves commands (mutations) from a channel — one task per
//! slice of the tenants when [`EngineConfig::shards`] asks for several;
//! [`Engine`] is a cheap handle to them. Every transition is written through the
//! [`Stores`] before it is announced, so plain reads (a task, a list, an API key) go to
//! the stores directly and never queue behind routing, and an engine restarted on
//! PostgreSQL resumes where it stopped.
//!
//! | file | concern |
//! |---|---|
//! | `config.rs` | [`EngineConfig`], custom routers by name |
//! | `command.rs` | the mutations the engine task serves |
//! | `reads.rs` | reads served from the stores |
//! | `local.rs` | in-process agents ([`Engine::connect_local`]) |
//! | `shards.rs` | which engine task serves a tenant, an agent |
//! | `state/` | the engine task: `agents`, `tasks`, `routing`, `timers`, `keys`, `cluster` |

mod busy;
mod command;
mod config;
mod error;
mod event;
mod journal;
mod link;
mod local;
mod query;
mod reads;
mod scan;
mod shards;
mod state;
mod stores;

use std::sync::Arc;
use std::time::Duration;

use mesh_protocol::{Hello, Message, Welcome};
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;

use self::command::{Command, Reply};
pub(crate) use self::journal::Journal;
use self::reads::{Reads, StoreReads};
use self::shards::{Shard, Shards};
use crate::domain::{
    Agent, AgentId, AgentStatus, ApiKey, Scope, SessionId, Task, TaskId, TaskSpec, Tenant,
    TenantId, hash_key,
};

pub use config::{EngineConfig, MAX_SHARDS, MAX_WRITES_IN_FLIGHT, RouterFactory, WallClock};
pub use error::EngineError;
pub use event::{Change, Event, WorkflowUpdate};
pub use link::AgentLink;
pub use local::{LocalAgent, Progress};
pub use query::{AgentFilter, Page, TaskFilter};
#[cfg(feature = "postgres")]
pub use stores::PgStores;
#[cfg(feature = "sqlite")]
pub use stores::SqliteStores;
pub use stores::{MemoryStores, Stores};

/// A handle to a running engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    /// The engine tasks: one, or one per slice of the tenants.
    shards: Arc<Shards>,
    events: broadcast::Sender<Event>,
    changes: broadcast::Sender<Change>,
    /// API keys revoked here or by another engine on the same stores.
    revoked: broadcast::Sender<uuid::Uuid>,
    reads: Arc<dyn Reads>,
    journal: Journal,
    config: Arc<EngineConfig>,
    /// False while a cluster listener has lost its connection (see `cluster::join`).
    listening: Arc<std::sync::atomic::AtomicBool>,
    /// Whether its events are already recorded as metrics (`observe::record`).
    observed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    /// Starts an engine on `stores`, resuming the unfinished tasks they hold (their
    /// in-flight attempts are put back to `pending`: the agents that held them are
    /// not connected to this engine). Must run inside a tokio runtime.
    pub async fn start<S: Stores>(
        mut config: EngineConfig,
        stores: S,
    ) -> Result<Self, EngineError> {
        config.shards = config.shards.clamp(1, MAX_SHARDS);
        config.writes_in_flight = config.writes_in_flight.clamp(1, MAX_WRITES_IN_FLIGHT);
        let (events, _) = broadcast::channel(4096);
        let (changes, _) = broadcast::channel(4096);
        let (revoked, _) = broadcast::channel(1024);
        let config = Arc::new(config);
        let stores = Arc::new(stores);
        let mut shards = Vec::with_capacity(config.shards);
        let mut states = Vec::with_capacity(config.shards);
        for index in 0..config.shards {
            let (commands, rx) = mpsc::channel(config.queue.max(16));
            let state = state::State::load(
                config.clone(),
                stores.clone(),
                events.clone(),
                changes.clone(),
                index,
            )
            .await?;
            states.push((state, rx));
            shards.push(Shard {
                commands,
                busy: busy::Busy::default(),
            });
        }
        for ((state, rx), shard) in states.into_iter().zip(&shards) {
            tokio::spawn(shard.busy.timing(state.run(rx)));
        }
        Ok(Self {
            shards: Arc::new(Shards::new(shards)),
            events,
            changes,
            revoked,
            journal: Journal::of(&stores),
            reads: Arc::new(StoreReads(stores)),
            config,
            listening: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            observed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Starts an engine on embedded defaults (everything in memory).
    pub async fn in_memory() -> Self {
        match Self::start(EngineConfig::default(), MemoryStores::new()).await {
            Ok(engine) => engine,
            Err(e) => unreachable!("memory stores cannot fail to load: {e}"),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// How long the engine task has been working since it started (the time inside its
    /// polls): its saturation over an interval, and on the memory stores its CPU time.
    /// With several engine tasks ([`EngineConfig::shards`]), their sum (each one's is
    /// in [`busy_times`](Self::busy_times)). Exported as `mesh_engine_busy_seconds`.
    pub fn busy_time(&self) -> Duration {
        self.busy_times().into_iter().sum()
    }

    /// Which engine task serves `tenant` (an index into [`busy_times`](Self::busy_times)
    /// and [`cpu_times`](Self::cpu_times)); always 0 with one.
    pub fn shard_of(&self, tenant: TenantId) -> usize {
        shards::shard_of(tenant, self.shards.all().len())
    }

    /// Each engine task's busy time ([`busy_time`](Self::busy_time)), in order.
    pub fn busy_times(&self) -> Vec<Duration> {
        self.shards.all().iter().map(|s| s.busy.total()).collect()
    }

    /// The CPU time the engine task has used since it started (the thread CPU clock
    /// inside its polls; `None` off unix): its cost per task, without the time a loaded
    /// machine kept it descheduled mid-poll. With several engine tasks, their sum (each
    /// one's is in [`cpu_times`](Self::cpu_times)). Exported as
    /// `mesh_engine_cpu_seconds`.
    pub fn cpu_time(&self) -> Option<Duration> {
        self.cpu_times().map(|times| times.into_iter().sum())
    }

    /// Each engine task's CPU time ([`cpu_time`](Self::cpu_time)), in order.
    pub fn cpu_times(&self) -> Option<Vec<Duration>> {
        self.shards.all().iter().map(|s| s.busy.cpu()).collect()
    }

    /// The workflow repositories of the engine's stores.
    pub(crate) fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Asks the engine task serving `tenant`.
    async fn ask<T>(
        &self,
        tenant: TenantId,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, EngineError> {
        self.shards.of_tenant(tenant).ask(make).await
    }

    /// Submits a task; it is routed as soon as an eligible agent is free. The spec is
    /// checked here, the same way whatever the front end: see [`TaskSpec`]'s bounds.
    ///
    /// A task submitted inside a traced span runs in its trace: a sampled trace gets a
    /// `submit_task` span here, and the agent's attempts are its children.
    pub async fn submit(&self, tenant: TenantId, spec: TaskSpec) -> Result<Task, EngineError> {
        let (span, spec) = traced(spec);
        self.ask(tenant, |reply| Command::Submit {
            tenant,
            spec,
            id: None,
            reply,
        })
        .instrument(span)
        .await
    }

    /// Submits a task under `id`, once: when the tenant already has a task with this
    /// id (submitted before a crash, say), that task is returned and nothing is
    /// dispatched again. Workflows derive `id` from the run and the step's activation.
    pub(crate) async fn submit_once(
        &self,
        tenant: TenantId,
        id: TaskId,
        spec: TaskSpec,
    ) -> Result<Task, EngineError> {
        let (span, spec) = traced(spec);
        self.ask(tenant, |reply| Command::Submit {
            tenant,
            spec,
            id: Some(id),
            reply,
        })
        .instrument(span)
        .await
    }

    /// The task, if the tenant has it (read from the stores).
    pub async fn task(&self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, EngineError> {
        self.reads.task(tenant, id).await
    }

    /// Waits until the task is finished (completed, failed, cancelled, timed out).
    pub async fn wait(&self, tenant: TenantId, id: TaskId) -> Result<Task, EngineError> {
        self.ask(tenant, |reply| Command::Wait { tenant, id, reply })
            .await
    }

    /// How many wait for the task in this engine (tests only).
    #[cfg(test)]
    pub(crate) async fn waiters(&self, id: TaskId) -> usize {
        self.shards
            .ask_all(|reply| Command::Waiters { id, reply })
            .await
            .map_or(0, |counts| counts.into_iter().sum())
    }

    /// Cancels a task (telling its agent, if one holds it); returns it as it ends up.
    pub async fn cancel(&self, tenant: TenantId, id: TaskId) -> Result<Task, EngineError> {
        self.ask(tenant, |reply| Command::Cancel { tenant, id, reply })
            .await
    }

    /// The tenant's agents that are active now (on this engine or, clustered, on any).
    pub async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>, EngineError> {
        let mut filter = AgentFilter {
            status: Some(AgentStatus::Active),
            limit: Some(1000),
            ..AgentFilter::default()
        };
        let mut all = Vec::new();
        loop {
            let page = self.list_agents(tenant, filter.clone()).await?;
            all.extend(page.items);
            match page.next {
                Some(next) => filter.cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// A page of the tenant's registered agents that match `filter` (read from the
    /// stores), in registration order.
    pub async fn list_agents(
        &self,
        tenant: TenantId,
        filter: AgentFilter,
    ) -> Result<Page<Agent>, EngineError> {
        self.reads.agents(tenant, filter).await
    }

    /// The agent, if the tenant has it (read from the stores).
    pub async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>, EngineError> {
        self.reads.agent(tenant, id).await
    }

    /// Removes an agent from the registry: its connection is closed (on whichever
    /// engine holds it) and its tasks go back to pending. False if there was no such
    /// agent.
    pub async fn deregister(&self, tenant: TenantId, id: AgentId) -> Result<bool, EngineError> {
        self.ask(tenant, |reply| Command::Deregister { tenant, id, reply })
            .await
    }

    /// One page of the tenant's tasks, oldest first (read from the stores).
    pub async fn tasks(
        &self,
        tenant: TenantId,
        filter: TaskFilter,
    ) -> Result<Page<Task>, EngineError> {
        self.reads.tasks(tenant, filter).await
    }

    /// Records this engine wrote; publish them so other engines on the same stores can
    /// [`refresh`](Self::refresh).
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Tells the engine another engine changed a record: it reloads it, routes a task
    /// that became pending, finishes one that ended elsewhere, and closes the session
    /// of an agent deregistered elsewhere.
    pub async fn refresh(&self, change: Change) -> Result<(), EngineError> {
        let tenant = match change {
            Change::KeyRevoked { id } => {
                let _ = self.revoked.send(id);
                return Ok(());
            }
            Change::Task { tenant, .. } | Change::Agent { tenant, .. } => tenant,
        };
        self.shards
            .of_tenant(tenant)
            .tell(Command::Refresh { change })
            .await
    }

    /// Recovers tasks stuck in flight in the stores — held by an engine that died —
    /// whose attempt ran out more than `grace` ago: they go back to pending, or time
    /// out when their attempts are used up. Also marks offline the active agents no
    /// clustered engine has vouched for in twice their heartbeat allowance. Returns how
    /// many tasks and agents it recovered.
    pub async fn sweep(&self, grace: Duration) -> Result<usize, EngineError> {
        let recovered = self
            .shards
            .ask_all(|reply| Command::Sweep { grace, reply })
            .await?;
        Ok(recovered.into_iter().sum())
    }

    /// Creates an API key for `tenant`; returns the key (shown once; only its hash is
    /// stored) and its record. `key` chooses the key instead of generating one.
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        name: impl Into<String>,
        scopes: Vec<Scope>,
        key: Option<String>,
    ) -> Result<(String, ApiKey), EngineError> {
        self.create_api_key_with_roles(tenant, name, scopes, Vec::new(), key)
            .await
    }

    /// Creates an API key holding `roles` besides `scopes` (role names are not
    /// checked here: the access service does, see `rest`'s `POST /api/v1/keys`).
    pub async fn create_api_key_with_roles(
        &self,
        tenant: TenantId,
        name: impl Into<String>,
        scopes: Vec<Scope>,
        roles: Vec<String>,
        key: Option<String>,
    ) -> Result<(String, ApiKey), EngineError> {
        let name = name.into();
        self.ask(tenant, |reply| Command::CreateKey {
            tenant,
            name,
            scopes,
            roles,
            key,
            reply,
        })
        .await
    }

    /// The key's record if `key` is a valid API key, not revoked (read from the
    /// stores; the credential gate of the HTTP layer caches the answers).
    pub async fn authenticate(&self, key: &str) -> Result<Option<ApiKey>, EngineError> {
        let found = self.reads.key(hash_key(key)).await?;
        Ok(found.filter(ApiKey::is_active))
    }

    /// Revokes `tenant`'s API key `id`: from now on it is refused here, and — through
    /// [`changes`](Self::changes) — by every engine on the same stores; sessions opened
    /// with it are told through [`revocations`](Self::revocations). Returns the record.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<ApiKey, EngineError> {
        let revoked = self
            .ask(tenant, |reply| Command::RevokeKey { tenant, id, reply })
            .await?;
        let _ = self.revoked.send(id);
        Ok(revoked)
    }

    /// The ids of API keys as they are revoked, here or by another engine on the same
    /// stores. A receiver more than 1,024 revocations behind is told it lagged (and
    /// should then distrust every key it holds).
    pub fn revocations(&self) -> broadcast::Receiver<uuid::Uuid> {
        self.revoked.subscribe()
    }

    /// `tenant`'s API keys, revoked ones included, oldest first (their records: never
    /// a key itself).
    pub async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, EngineError> {
        self.reads.keys_of(tenant).await
    }

    /// Creates a tenant called `name`.
    pub async fn create_tenant(&self, name: impl Into<String>) -> Result<Tenant, EngineError> {
        let name = name.into();
        // Any engine task can write the record; each serves its own slice of tenants.
        self.shards.all()[0]
            .ask(|reply| Command::CreateTenant { name, reply })
            .await
    }

    /// Every tenant: those created by name, and those first seen on a record.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, EngineError> {
        self.reads.tenants().await
    }

    /// Follows what happens. A subscriber that falls more than 4,096 events behind
    /// misses the oldest (and is told so by the channel).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Tells subscribers what happened outside the engine task (workflow runs).
    pub(crate) fn publish(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Registers (or resumes) an agent connected through `link`, and sends it its
    /// `welcome` (before any task); returns the welcome and the session id.
    pub async fn connect_agent(
        &self,
        tenant: TenantId,
        hello: Hello,
        link: Arc<dyn AgentLink>,
    ) -> Result<(Welcome, SessionId), EngineError> {
        let (welcome, session) = self
            .ask(tenant, |reply| Command::Connect {
                tenant,
                hello,
                link,
                reply,
            })
            .await?;
        let agent = AgentId::from_uuid(welcome.agent_id);
        self.shards.joined(agent, session, tenant);
        Ok((welcome, session))
    }

    /// Hands the engine a message an agent sent.
    pub async fn agent_message(
        &self,
        agent: AgentId,
        session: SessionId,
        message: Message,
    ) -> Result<(), EngineError> {
        // An agent not connected here has nobody to hear it.
        let Some(shard) = self.shards.of_agent(agent) else {
            return Ok(());
        };
        shard
            .tell(Command::FromAgent {
                agent,
                session,
                message,
            })
            .await
    }

    /// Tells the engine an agent's connection ended; its tasks are reassigned.
    pub async fn disconnect_agent(&self, agent: AgentId, session: SessionId) {
        if let Some(shard) = self.shards.of_agent(agent) {
            let _ = shard.tell(Command::Disconnect { agent, session }).await;
        }
        self.shards.left(agent, session);
    }

    /// Whether the engine tasks are all still running. False once one has stopped —
    /// shut down, or died — and then calls it would serve answer
    /// [`EngineError::Stopped`].
    pub fn is_running(&self) -> bool {
        self.shards.all_open()
    }

    /// Resolves when an engine task has stopped (shut down, or died): a service
    /// selects on it to stop serving and exit non-zero rather than look healthy.
    pub async fn stopped(&self) {
        self.shards.one_closed().await;
    }

    /// Whether the engine hears other engines' changes (always, when not clustered);
    /// false while a cluster listener is reconnecting.
    pub fn is_listening(&self) -> bool {
        self.listening.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True the first time it is asked: whoever gets it records the metrics.
    pub(crate) fn start_observing(&self) -> bool {
        !self
            .observed
            .swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// Set by the cluster listener (feature `postgres`).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn set_listening(&self, listening: bool) {
        self.listening
            .store(listening, std::sync::atomic::Ordering::Relaxed);
    }

    /// Re-reads everything the engine tracks, after change notifications were missed.
    pub async fn resync(&self) -> Result<(), EngineError> {
        self.shards.tell_all(|| Command::Resync).await
    }

    /// Waits until the engine has served every command sent before this call.
    pub(crate) async fn settle(&self) {
        self.shards
            .sync_all(|reply| Command::Settle { reply })
            .await;
    }

    /// Stops the engine: agents are told `goodbye`; pending work stays in the stores.
    pub async fn shutdown(&self) {
        self.shards
            .sync_all(|reply| Command::Shutdown { reply })
            .await;
    }
}

/// A submission's span and its spec in the caller's trace: when the caller's trace is
/// sampled, a `submit_task` span whose context the task keeps; when it is not, the
/// caller's context as it is (so downstream respects the decision); outside any trace,
/// a disabled span and nothing (no cost).
fn traced(mut spec: TaskSpec) -> (tracing::Span, TaskSpec) {
    let Some(caller) = crate::trace::current() else {
        return (tracing::Span::none(), spec);
    };
    if !crate::trace::is_sampled(&caller) {
        spec.traceparent = Some(caller);
        return (tracing::Span::none(), spec);
    }
    let span = tracing::info_span!(
        "submit_task",
        otel.kind = "internal",
        mesh.task.kind = %spec.kind,
    );
    spec.traceparent = crate::trace::of(&span).or(Some(caller));
    (span, spec)
}
