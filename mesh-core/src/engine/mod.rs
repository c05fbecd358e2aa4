//! Layer 2, the engine: agent registry, routing, task lifecycle, delegation and events.
//!
//! One task owns all mutable engine state (the registry, the router's candidate index,
//! the tasks in flight) and serves commands (mutations) from a channel;
//! [`Engine`] is a cheap handle to it. Every transition is written through the
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
mod state;
mod stores;

use std::sync::Arc;
use std::time::Duration;

use mesh_protocol::{Hello, Message, Welcome};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::Instrument;

use self::command::{Command, Reply};
pub(crate) use self::journal::Journal;
use self::reads::{Reads, StoreReads};
use crate::domain::{
    Agent, AgentId, AgentStatus, ApiKey, Scope, SessionId, Task, TaskId, TaskSpec, Tenant,
    TenantId, hash_key,
};

pub use config::{EngineConfig, RouterFactory, WallClock};
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
    commands: mpsc::Sender<Command>,
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
    /// The engine task's time at work.
    busy: busy::Busy,
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
    pub async fn start<S: Stores>(config: EngineConfig, stores: S) -> Result<Self, EngineError> {
        let (commands, rx) = mpsc::channel(config.queue.max(16));
        let (events, _) = broadcast::channel(4096);
        let (changes, _) = broadcast::channel(4096);
        let (revoked, _) = broadcast::channel(1024);
        let config = Arc::new(config);
        let stores = Arc::new(stores);
        let state = state::State::load(
            config.clone(),
            stores.clone(),
            events.clone(),
            changes.clone(),
        )
        .await?;
        let busy = busy::Busy::default();
        tokio::spawn(busy.timing(state.run(rx)));
        Ok(Self {
            busy,
            commands,
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
    /// Exported as `mesh_engine_busy_seconds`.
    pub fn busy_time(&self) -> Duration {
        self.busy.total()
    }

    /// The CPU time the engine task has used since it started (the thread CPU clock
    /// inside its polls; `None` off unix): its cost per task, without the time a loaded
    /// machine kept it descheduled mid-poll. Exported as `mesh_engine_cpu_seconds`.
    pub fn cpu_time(&self) -> Option<Duration> {
        self.busy.cpu()
    }

    /// The workflow repositories of the engine's stores.
    pub(crate) fn journal(&self) -> &Journal {
        &self.journal
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.tell(make(tx)).await?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    async fn tell(&self, command: Command) -> Result<(), EngineError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| EngineError::Stopped)
    }

    /// Submits a task; it is routed as soon as an eligible agent is free. The spec is
    /// checked here, the same way whatever the front end: see [`TaskSpec`]'s bounds.
    ///
    /// A task submitted inside a traced span runs in its trace: a sampled trace gets a
    /// `submit_task` span here, and the agent's attempts are its children.
    pub async fn submit(&self, tenant: TenantId, spec: TaskSpec) -> Result<Task, EngineError> {
        let (span, spec) = traced(spec);
        self.ask(|reply| Command::Submit {
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
        self.ask(|reply| Command::Submit {
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
        self.ask(|reply| Command::Wait { tenant, id, reply }).await
    }

    /// How many wait for the task in this engine (tests only).
    #[cfg(test)]
    pub(crate) async fn waiters(&self, id: TaskId) -> usize {
        self.ask(|reply| Command::Waiters { id, reply })
            .await
            .unwrap_or(0)
    }

    /// Cancels a task (telling its agent, if one holds it); returns it as it ends up.
    pub async fn cancel(&self, tenant: TenantId, id: TaskId) -> Result<Task, EngineError> {
        self.ask(|reply| Command::Cancel { tenant, id, reply })
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
        self.ask(|reply| Command::Deregister { tenant, id, reply })
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
        if let Change::KeyRevoked { id } = change {
            let _ = self.revoked.send(id);
            return Ok(());
        }
        self.tell(Command::Refresh { change }).await
    }

    /// Recovers tasks stuck in flight in the stores — held by an engine that died —
    /// whose attempt ran out more than `grace` ago: they go back to pending, or time
    /// out when their attempts are used up. Also marks offline the active agents no
    /// clustered engine has vouched for in twice their heartbeat allowance. Returns how
    /// many tasks and agents it recovered.
    pub async fn sweep(&self, grace: Duration) -> Result<usize, EngineError> {
        self.ask(|reply| Command::Sweep { grace, reply }).await
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
        self.ask(|reply| Command::CreateKey {
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
            .ask(|reply| Command::RevokeKey { tenant, id, reply })
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
        self.ask(|reply| Command::CreateTenant { name, reply })
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
        self.ask(|reply| Command::Connect {
            tenant,
            hello,
            link,
            reply,
        })
        .await
    }

    /// Hands the engine a message an agent sent.
    pub async fn agent_message(
        &self,
        agent: AgentId,
        session: SessionId,
        message: Message,
    ) -> Result<(), EngineError> {
        self.tell(Command::FromAgent {
            agent,
            session,
            message,
        })
        .await
    }

    /// Tells the engine an agent's connection ended; its tasks are reassigned.
    pub async fn disconnect_agent(&self, agent: AgentId, session: SessionId) {
        let _ = self.tell(Command::Disconnect { agent, session }).await;
    }

    /// Whether the engine task is still running. False once it has stopped — shut
    /// down, or died — and then every call answers [`EngineError::Stopped`].
    pub fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }

    /// Resolves when the engine task has stopped (shut down, or died): a service
    /// selects on it to stop serving and exit non-zero rather than look healthy.
    pub async fn stopped(&self) {
        self.commands.closed().await;
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
        self.tell(Command::Resync).await
    }

    /// Waits until the engine has served every command sent before this call.
    pub(crate) async fn settle(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tell(Command::Settle { reply: tx }).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops the engine: agents are told `goodbye`; pending work stays in the stores.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tell(Command::Shutdown { reply: tx }).await.is_ok() {
            let _ = rx.await;
        }
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
