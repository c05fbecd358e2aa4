//! The engine: agent registry, routing, task lifecycle, delegation and events.
//!
//! One task owns all engine state (the registry, the router's candidate index, the
//! tasks in flight) and serves commands from a channel; [`Engine`] is a cheap handle
//! to it. Every task transition is written through the [`Stores`] before it is
//! announced, so an engine restarted on PostgreSQL resumes where it stopped.

mod state;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mesh_protocol::{Hello, Message, Welcome};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::auth::{ApiKey, Scope};
use crate::stores::Stores;
use crate::{
    Agent, AgentId, AgentStatus, Priority, RoutingPreference, SessionId, Task, TaskId, TaskStatus,
    TenantId,
};

pub use state::EngineError;

/// How the engine talks to one connected agent: the hub gives it the connection's
/// sender; tests can give it anything.
pub trait AgentLink: Send + Sync + 'static {
    /// Queues `message` for the agent without waiting; an error means the agent is
    /// gone or too slow, and the engine treats it as disconnected.
    fn send(&self, message: Message) -> Result<(), mesh_protocol::Error>;
    /// Ends the connection.
    fn close(&self, code: u16, reason: &str);
}

#[cfg(feature = "hub")]
impl AgentLink for mesh_protocol::ws::Sender {
    fn send(&self, message: Message) -> Result<(), mesh_protocol::Error> {
        self.try_send(message)
    }

    fn close(&self, code: u16, reason: &str) {
        mesh_protocol::ws::Sender::close(self, code, reason);
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How often agents are asked to heartbeat. Default 10 s.
    pub heartbeat_interval: Duration,
    /// Heartbeats an agent may miss before it counts as gone. Default 3.
    pub missed_heartbeats: u32,
    /// How long one attempt of a task may take unless the task says. Default 60 s.
    pub task_timeout: Duration,
    /// Delay before retrying a failed or timed-out task; doubles per attempt. Default 100 ms.
    pub retry_backoff: Duration,
    /// Largest retry delay. Default 10 s.
    pub max_backoff: Duration,
    /// Attempts a task gets unless it says. Default 3.
    pub max_attempts: u32,
    /// How often deadlines and heartbeats are checked. Default 50 ms.
    pub tick: Duration,
    /// Capacity of the command channel (back-pressure on submitters). Default 65,536.
    pub queue: usize,
    /// Whether other engines share the stores (several service instances on one
    /// PostgreSQL). A clustered engine does not take back in-flight tasks when it starts
    /// (their owners still hold them; [`Engine::sweep`] recovers those of dead
    /// instances) and claims tasks with optimistic concurrency. Default false.
    pub clustered: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            missed_heartbeats: 3,
            task_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: 3,
            tick: Duration::from_millis(50),
            queue: 65_536,
            clustered: false,
        }
    }
}

impl EngineConfig {
    /// Sets the heartbeat interval and how many may be missed.
    pub fn heartbeat(mut self, interval: Duration, missed: u32) -> Self {
        self.heartbeat_interval = interval;
        self.missed_heartbeats = missed.max(1);
        self
    }

    /// Sets the default per-attempt timeout.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = timeout;
        self
    }

    /// Sets the retry backoff (initial and largest).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the default number of attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets how often deadlines are checked.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Marks the engine as one of several sharing the stores (see [`Self::clustered`]).
    pub fn clustered(mut self, clustered: bool) -> Self {
        self.clustered = clustered;
        self
    }
}

/// A record this engine wrote, so that other engines on the same stores can pick the
/// change up ([`Engine::changes`], [`Engine::refresh`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// A task was created or changed.
    Task {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        id: TaskId,
    },
    /// An agent was registered, changed or deregistered.
    Agent {
        /// Its tenant.
        tenant: TenantId,
        /// The agent.
        id: AgentId,
    },
}

/// Which of a tenant's tasks to list ([`Engine::tasks`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskFilter {
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this kind.
    pub kind: Option<String>,
    /// At most this many (1 to 1,000; default 100).
    pub limit: Option<usize>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// Which of a tenant's agents to list ([`Engine::list_agents`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentFilter {
    /// Only agents with this status.
    pub status: Option<AgentStatus>,
    /// Only agents that have this capability.
    pub capability: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// Pass back as the cursor for the next page; `None` on the last.
    pub next: Option<String>,
}

/// What to run: the input to [`Engine::submit`].
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskSpec {
    /// The task kind; an eligible agent has it among its capabilities.
    pub kind: String,
    /// Input handed to the agent.
    #[serde(default)]
    pub input: serde_json::Value,
    /// Capabilities the agent needs besides `kind`.
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    /// Urgency.
    #[serde(default)]
    pub priority: Priority,
    /// Which routing strategy picks the agent.
    #[serde(default)]
    pub routing: RoutingPreference,
    /// Attempts before it fails for good (the engine's default if `None`).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Milliseconds one attempt may take (the engine's default if `None`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// When it must be done by, at the latest.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// The task it is a sub-task of.
    #[serde(default)]
    pub parent: Option<TaskId>,
}

impl TaskSpec {
    /// A task of `kind` with `input`.
    pub fn new(kind: impl Into<String>, input: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            input,
            ..Self::default()
        }
    }

    /// Adds required capabilities.
    pub fn require(mut self, caps: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.required_capabilities
            .extend(caps.into_iter().map(Into::into));
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the routing strategy.
    pub fn routing(mut self, routing: RoutingPreference) -> Self {
        self.routing = routing;
        self
    }

    /// Sets the number of attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(timeout.as_millis() as u64);
        self
    }

    /// Makes it a sub-task of `parent`.
    pub fn parent(mut self, parent: TaskId) -> Self {
        self.parent = Some(parent);
        self
    }
}

/// Something that happened, for front-ends to follow ([`Engine::subscribe`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// An agent registered or resumed.
    AgentConnected {
        /// Its tenant.
        tenant: TenantId,
        /// The agent.
        agent: AgentId,
        /// Its name.
        name: String,
    },
    /// An agent's connection ended.
    AgentDisconnected {
        /// Its tenant.
        tenant: TenantId,
        /// The agent.
        agent: AgentId,
    },
    /// A task was submitted.
    TaskSubmitted {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        task: TaskId,
        /// Its kind.
        kind: String,
    },
    /// A task was given to an agent.
    TaskAssigned {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
        /// The agent's name.
        agent_name: String,
        /// Which attempt.
        attempt: u32,
    },
    /// A task's status changed.
    TaskStatus {
        /// Its tenant.
        tenant: TenantId,
        /// The task.
        task: TaskId,
        /// The new status.
        status: TaskStatus,
    },
}

/// Why a request to the engine failed.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

pub(crate) enum Command {
    Connect {
        tenant: TenantId,
        hello: Hello,
        link: Arc<dyn AgentLink>,
        reply: Reply<(Welcome, SessionId)>,
    },
    FromAgent {
        agent: AgentId,
        session: SessionId,
        message: Message,
    },
    Disconnect {
        agent: AgentId,
        session: SessionId,
    },
    Submit {
        tenant: TenantId,
        spec: TaskSpec,
        reply: Reply<Task>,
    },
    Get {
        tenant: TenantId,
        id: TaskId,
        reply: Reply<Option<Task>>,
    },
    Wait {
        tenant: TenantId,
        id: TaskId,
        reply: Reply<Task>,
    },
    Cancel {
        tenant: TenantId,
        id: TaskId,
        reply: Reply<Task>,
    },
    ListAgents {
        tenant: TenantId,
        filter: AgentFilter,
        reply: Reply<Vec<Agent>>,
    },
    GetAgent {
        tenant: TenantId,
        id: AgentId,
        reply: Reply<Option<Agent>>,
    },
    Deregister {
        tenant: TenantId,
        id: AgentId,
        reply: Reply<bool>,
    },
    ListTasks {
        tenant: TenantId,
        filter: TaskFilter,
        reply: Reply<Page<Task>>,
    },
    Refresh {
        change: Change,
    },
    Sweep {
        grace: Duration,
        reply: Reply<usize>,
    },
    CreateKey {
        tenant: TenantId,
        name: String,
        scopes: Vec<Scope>,
        key: Option<String>,
        reply: Reply<(String, ApiKey)>,
    },
    Authenticate {
        key: String,
        reply: Reply<Option<ApiKey>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A handle to a running engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    changes: broadcast::Sender<Change>,
    config: Arc<EngineConfig>,
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
        let config = Arc::new(config);
        let state =
            state::State::load(config.clone(), stores, events.clone(), changes.clone()).await?;
        tokio::spawn(state.run(rx));
        Ok(Self {
            commands,
            events,
            changes,
            config,
        })
    }

    /// Starts an engine on embedded defaults (everything in memory).
    pub async fn in_memory() -> Self {
        match Self::start(EngineConfig::default(), crate::MemoryStores::new()).await {
            Ok(engine) => engine,
            Err(e) => unreachable!("memory stores cannot fail to load: {e}"),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Submits a task; it is routed as soon as an eligible agent is free.
    pub async fn submit(&self, tenant: TenantId, spec: TaskSpec) -> Result<Task, EngineError> {
        self.ask(|reply| Command::Submit {
            tenant,
            spec,
            reply,
        })
        .await
    }

    /// The task, if the tenant has it.
    pub async fn task(&self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, EngineError> {
        self.ask(|reply| Command::Get { tenant, id, reply }).await
    }

    /// Waits until the task is finished (completed, failed, cancelled, timed out).
    pub async fn wait(&self, tenant: TenantId, id: TaskId) -> Result<Task, EngineError> {
        self.ask(|reply| Command::Wait { tenant, id, reply }).await
    }

    /// Cancels a task (telling its agent, if one holds it); returns it as it ends up.
    pub async fn cancel(&self, tenant: TenantId, id: TaskId) -> Result<Task, EngineError> {
        self.ask(|reply| Command::Cancel { tenant, id, reply })
            .await
    }

    /// The tenant's agents that are active now (on this engine or, clustered, on any).
    pub async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>, EngineError> {
        let filter = AgentFilter {
            status: Some(AgentStatus::Active),
            capability: None,
        };
        self.list_agents(tenant, filter).await
    }

    /// The tenant's registered agents that match `filter`, from the stores.
    pub async fn list_agents(
        &self,
        tenant: TenantId,
        filter: AgentFilter,
    ) -> Result<Vec<Agent>, EngineError> {
        self.ask(|reply| Command::ListAgents {
            tenant,
            filter,
            reply,
        })
        .await
    }

    /// The agent, if the tenant has it.
    pub async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>, EngineError> {
        self.ask(|reply| Command::GetAgent { tenant, id, reply })
            .await
    }

    /// Removes an agent from the registry: its connection is closed (on whichever
    /// engine holds it) and its tasks go back to pending. False if there was no such
    /// agent.
    pub async fn deregister(&self, tenant: TenantId, id: AgentId) -> Result<bool, EngineError> {
        self.ask(|reply| Command::Deregister { tenant, id, reply })
            .await
    }

    /// One page of the tenant's tasks, oldest first.
    pub async fn tasks(
        &self,
        tenant: TenantId,
        filter: TaskFilter,
    ) -> Result<Page<Task>, EngineError> {
        self.ask(|reply| Command::ListTasks {
            tenant,
            filter,
            reply,
        })
        .await
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
        self.commands
            .send(Command::Refresh { change })
            .await
            .map_err(|_| EngineError::Stopped)
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
        let name = name.into();
        self.ask(|reply| Command::CreateKey {
            tenant,
            name,
            scopes,
            key,
            reply,
        })
        .await
    }

    /// The key's record if `key` is a valid API key.
    pub async fn authenticate(&self, key: &str) -> Result<Option<ApiKey>, EngineError> {
        let key = key.to_owned();
        self.ask(|reply| Command::Authenticate { key, reply }).await
    }

    /// Follows what happens. A subscriber that falls more than 4,096 events behind
    /// misses the oldest (and is told so by the channel).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
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
        self.commands
            .send(Command::FromAgent {
                agent,
                session,
                message,
            })
            .await
            .map_err(|_| EngineError::Stopped)
    }

    /// Tells the engine an agent's connection ended; its tasks are reassigned.
    pub async fn disconnect_agent(&self, agent: AgentId, session: SessionId) {
        let _ = self
            .commands
            .send(Command::Disconnect { agent, session })
            .await;
    }

    /// Stops the engine: agents are told `goodbye`; pending work stays in the stores.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}
