//! The engine's state and the task that owns it.

mod shared;

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mesh_protocol::{
    ErrorMessage, Goodbye, Hello, Message, TaskAssign, TaskCancel, TaskStatus as WireStatus,
    TaskSubmitted, Welcome,
};
use mesh_router::{
    CandidateId, CandidateIndex, CandidateSpec, CapabilityMatch, CostOptimized, DefaultPolicy,
    Learning, LeastLoaded, Outcome, Performance, RoundRobin, RouteRequest, Router,
};
use mesh_store::{Query, Repository, StoreError};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::{AgentLink, Change, Command, EngineConfig, Event, Reply, TaskSpec};
use crate::auth::{ApiKey, Scope, generate_key, hash_key};
use crate::records::{SYSTEM_TENANT, TenantEntry};
use crate::stores::Stores;
use crate::{
    Agent, AgentId, AgentStatus, Priority, RoutingPreference, SessionId, Task, TaskId, TaskStatus,
    TenantId,
};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
    /// No such task for this tenant.
    #[error("task {0} not found")]
    TaskNotFound(TaskId),
    /// The task (or agent registration) is not acceptable.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A lifecycle rule was broken (a bug in the engine if it ever surfaces).
    #[error(transparent)]
    Transition(#[from] crate::Error),
    /// The stores failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl EngineError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}

type Result<T, E = EngineError> = std::result::Result<T, E>;

struct AgentEntry {
    agent: Agent,
    version: u64,
    session: Option<(SessionId, Arc<dyn AgentLink>)>,
    in_flight: HashSet<TaskId>,
    last_seen: Instant,
}

struct TaskEntry {
    task: Task,
    version: u64,
    /// Tenant, kind and required capabilities hashed: tasks that cannot be routed now
    /// block others with the same signature for the rest of a routing pass.
    signature: u64,
    queue_key: Option<(Reverse<Priority>, u64, TaskId)>,
    assigned_at: Option<Instant>,
    deadline: Option<Instant>,
    not_before: Option<Instant>,
    rejected_by: Vec<AgentId>,
    watcher: Option<AgentId>,
    waiters: Vec<Reply<Task>>,
}

pub(super) struct State<S> {
    config: Arc<EngineConfig>,
    stores: S,
    events: broadcast::Sender<Event>,
    changes: broadcast::Sender<Change>,
    index: CandidateIndex,
    routers: HashMap<RoutingPreference, Box<dyn Router>>,
    agents: HashMap<AgentId, AgentEntry>,
    tasks: HashMap<TaskId, TaskEntry>,
    pending: BTreeSet<(Reverse<Priority>, u64, TaskId)>,
    deadlines: BTreeSet<(Instant, TaskId)>,
    seq: u64,
    tenants: HashSet<TenantId>,
    keys: HashMap<String, ApiKey>,
    /// Something changed that may let any pending task through (capacity freed, an
    /// agent came): the next pass looks at the whole queue.
    dirty: bool,
    /// Tasks that became pending since the last pass; when nothing else changed, only
    /// they can be routable (the rest were not, and no capacity came), so a submit
    /// costs a look at one task, not at the whole queue.
    fresh: Vec<(Reverse<Priority>, u64, TaskId)>,
    last_heartbeat_check: Instant,
    last_adopt: Instant,
    last_seen_saved: Instant,
}

fn candidate(agent: AgentId) -> CandidateId {
    CandidateId(agent.as_uuid().as_u128())
}

fn agent_of(candidate: CandidateId) -> AgentId {
    AgentId::from_uuid(uuid::Uuid::from_u128(candidate.0))
}

fn tenant_capability(tenant: TenantId) -> String {
    format!("tenant:{tenant}")
}

fn router_for(routing: RoutingPreference) -> Box<dyn Router> {
    match routing {
        RoutingPreference::RoundRobin => Box::new(RoundRobin::new()),
        RoutingPreference::LeastLoaded => Box::new(LeastLoaded),
        RoutingPreference::CapabilityMatch => Box::new(CapabilityMatch::default()),
        RoutingPreference::CostOptimized => Box::new(CostOptimized),
        RoutingPreference::Performance => Box::new(Performance::default()),
        RoutingPreference::Learning => Box::new(Learning::default()),
        _ => Box::new(DefaultPolicy::default()),
    }
}

fn router_priority(p: Priority) -> mesh_router::Priority {
    match p {
        Priority::Low => mesh_router::Priority::Low,
        Priority::High => mesh_router::Priority::High,
        Priority::Critical => mesh_router::Priority::Critical,
        _ => mesh_router::Priority::Normal,
    }
}

fn wire_status(s: TaskStatus) -> WireStatus {
    match s {
        TaskStatus::Pending => WireStatus::Pending,
        TaskStatus::Assigned => WireStatus::Assigned,
        TaskStatus::Accepted => WireStatus::Accepted,
        TaskStatus::InProgress => WireStatus::InProgress,
        TaskStatus::Completed => WireStatus::Completed,
        TaskStatus::Failed => WireStatus::Failed,
        TaskStatus::Cancelled => WireStatus::Cancelled,
        _ => WireStatus::TimedOut,
    }
}

/// How often a clustered engine reads the pending tasks in the stores, in case a
/// change notification was lost.
const ADOPT_EVERY: Duration = Duration::from_secs(5);

/// Whether another engine wrote the record first.
fn is_conflict(e: &EngineError) -> bool {
    matches!(e, EngineError::Store(StoreError::Conflict { .. }))
}

/// The delay before retrying after `attempts` attempts: doubling, capped.
fn backoff(config: &EngineConfig, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
    (config.retry_backoff * factor).min(config.max_backoff)
}

/// The statuses an agent passes through to reach `to` from `from`.
fn agent_path(from: AgentStatus, to: AgentStatus) -> &'static [AgentStatus] {
    use AgentStatus::*;
    match (from, to) {
        (Offline, Active) => &[Starting, Active],
        (Starting, Active) | (Inactive, Active) | (Maintenance, Active) => &[Active],
        (Draining, Active) => &[Inactive, Active],
        (Error, Active) => &[Stopping, Offline, Starting, Active],
        (Stopping, Active) => &[Offline, Starting, Active],
        (Active, Offline) | (Inactive, Offline) | (Maintenance, Offline) | (Error, Offline) => {
            &[Stopping, Offline]
        }
        (Draining, Offline) => &[Inactive, Stopping, Offline],
        (Starting, Offline) => &[Error, Stopping, Offline],
        (Stopping, Offline) => &[Offline],
        (Active, Draining) => &[Draining],
        (Draining, Inactive) => &[Inactive],
        _ => &[],
    }
}

fn walk(agent: &mut Agent, to: AgentStatus) -> Result<()> {
    for &step in agent_path(agent.status(), to) {
        agent.transition(step)?;
    }
    Ok(())
}

/// Moves a task out of flight to a terminal status, through `accepted` where the
/// lifecycle requires it (an agent may complete or fail without accepting first).
fn finish_status(task: &mut Task, to: TaskStatus) -> Result<()> {
    if task.status() == TaskStatus::Assigned
        && matches!(to, TaskStatus::Completed | TaskStatus::Failed)
    {
        task.transition(TaskStatus::Accepted)?;
    }
    task.transition(to)?;
    Ok(())
}

impl<S: Stores> State<S> {
    pub(super) async fn load(
        config: Arc<EngineConfig>,
        stores: S,
        events: broadcast::Sender<Event>,
        changes: broadcast::Sender<Change>,
    ) -> Result<Self> {
        let mut state = Self {
            config,
            stores,
            events,
            changes,
            index: CandidateIndex::default(),
            routers: HashMap::new(),
            agents: HashMap::new(),
            tasks: HashMap::new(),
            pending: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            seq: 0,
            tenants: HashSet::new(),
            keys: HashMap::new(),
            dirty: false,
            fresh: Vec::new(),
            last_heartbeat_check: Instant::now(),
            last_adopt: Instant::now(),
            last_seen_saved: Instant::now(),
        };
        state.resume().await?;
        Ok(state)
    }

    /// Takes back every unfinished task in the stores: in-flight ones return to pending.
    async fn resume(&mut self) -> Result<()> {
        let tenants = self.known_tenants().await?;
        // Clustered, in-flight tasks belong to the engines holding them.
        let statuses: &[TaskStatus] = if self.config.clustered {
            &[TaskStatus::Pending]
        } else {
            &[
                TaskStatus::Pending,
                TaskStatus::Assigned,
                TaskStatus::Accepted,
                TaskStatus::InProgress,
            ]
        };
        for tenant in tenants {
            for &status in statuses {
                let query = shared::with_status(status.as_str());
                let key = tenant.to_string();
                for stored in shared::every(self.stores.tasks(), &key, query).await? {
                    let mut task = stored.record;
                    let mut version = stored.version;
                    if task.status().is_in_flight() {
                        task.transition(TaskStatus::Pending)?;
                        task.agent_id = None;
                        version = self
                            .stores
                            .tasks()
                            .update(&key, &task, version)
                            .await?
                            .version;
                    }
                    self.track(task, version, None);
                }
            }
        }
        if !self.tasks.is_empty() {
            tracing::info!(tasks = self.tasks.len(), "resumed unfinished tasks");
        }
        Ok(())
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    if !self.handle(command).await {
                        break;
                    }
                    // Take what else is queued before routing, so bursts route once.
                    for _ in 0..256 {
                        let Ok(command) = commands.try_recv() else { break };
                        if !self.handle(command).await {
                            return;
                        }
                    }
                }
                _ = tick.tick() => self.on_tick().await,
            }
            if self.dirty || !self.fresh.is_empty() {
                self.route_pending().await;
            }
        }
    }

    /// Serves one command; false once the engine should stop.
    async fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Connect {
                tenant,
                hello,
                link,
                reply,
            } => {
                let _ = reply.send(self.connect(tenant, hello, link).await);
            }
            Command::FromAgent {
                agent,
                session,
                message,
            } => {
                if let Err(e) = self.on_agent_message(agent, session, message).await {
                    tracing::error!(error = %e, %agent, "handling an agent message failed");
                }
            }
            Command::Disconnect { agent, session } => {
                let current = self
                    .agents
                    .get(&agent)
                    .and_then(|a| a.session.as_ref())
                    .is_some_and(|(s, _)| *s == session);
                if current && let Err(e) = self.agent_lost(agent).await {
                    tracing::error!(error = %e, %agent, "handling a disconnect failed");
                }
            }
            Command::Submit {
                tenant,
                spec,
                reply,
            } => {
                let _ = reply.send(self.submit(tenant, spec, None).await);
            }
            Command::Get { tenant, id, reply } => {
                let _ = reply.send(self.get(tenant, id).await);
            }
            Command::Wait { tenant, id, reply } => self.wait(tenant, id, reply).await,
            Command::Cancel { tenant, id, reply } => {
                let _ = reply.send(self.cancel(tenant, id).await);
            }
            Command::ListAgents {
                tenant,
                filter,
                reply,
            } => {
                let _ = reply.send(self.list_agents(tenant, filter).await);
            }
            Command::GetAgent { tenant, id, reply } => {
                let _ = reply.send(self.get_agent(tenant, id).await);
            }
            Command::Deregister { tenant, id, reply } => {
                let _ = reply.send(self.deregister(tenant, id).await);
            }
            Command::ListTasks {
                tenant,
                filter,
                reply,
            } => {
                let _ = reply.send(self.list_tasks(tenant, filter).await);
            }
            Command::Refresh { change } => {
                if let Err(e) = self.refresh(change).await {
                    tracing::warn!(error = %e, ?change, "refreshing a record failed");
                }
            }
            Command::Sweep { grace, reply } => {
                let _ = reply.send(self.sweep(grace).await);
            }
            Command::CreateKey {
                tenant,
                name,
                scopes,
                key,
                reply,
            } => {
                let _ = reply.send(self.create_key(tenant, name, scopes, key).await);
            }
            Command::Authenticate { key, reply } => {
                let _ = reply.send(self.authenticate(&key).await);
            }
            Command::Shutdown { reply } => {
                let connected: Vec<AgentId> = self
                    .agents
                    .iter()
                    .filter(|(_, a)| a.session.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                for id in connected {
                    if let Some((_, link)) = self.agents.get_mut(&id).and_then(|a| a.session.take())
                    {
                        let _ = link.send(Message::Goodbye(Goodbye::new(Some(
                            "the mesh is shutting down".into(),
                        ))));
                        link.close(1001, "shutting down");
                    }
                    // The registry says they are gone (their tasks stay for the next engine).
                    if let Some(a) = self.agents.get_mut(&id)
                        && walk(&mut a.agent, AgentStatus::Offline).is_ok()
                        && let Err(e) = self.save_agent(id).await
                    {
                        tracing::warn!(error = %e, agent = %id, "recording an agent offline failed");
                    }
                }
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    // ----- agents -------------------------------------------------------------------

    async fn connect(
        &mut self,
        tenant: TenantId,
        hello: Hello,
        link: Arc<dyn AgentLink>,
    ) -> Result<(Welcome, SessionId)> {
        if hello.name.trim().is_empty() || hello.name.len() > 256 {
            return Err(EngineError::Invalid(
                "hello.name must be 1 to 256 characters".into(),
            ));
        }
        if hello.capabilities.len() > 256
            || hello
                .capabilities
                .iter()
                .any(|c| c.is_empty() || c.len() > 128)
        {
            return Err(EngineError::Invalid(
                "at most 256 capabilities of 1 to 128 characters".into(),
            ));
        }
        let id = hello.agent_id.map(AgentId::from_uuid).unwrap_or_default();
        let session = SessionId::new();
        if let Some(existing) = self.agents.get(&id) {
            if existing.agent.tenant_id != tenant {
                return Err(EngineError::Invalid(
                    "agent_id belongs to another tenant".into(),
                ));
            }
            if let Some((_, old)) = &existing.session {
                old.close(4000, "replaced by a new session");
            }
            self.requeue_agent_tasks(id).await?;
        }
        let (mut agent, version) = match self.agents.remove(&id) {
            Some(entry) => (entry.agent, Some(entry.version)),
            None => match self
                .stores
                .agents()
                .get(&tenant.to_string(), *id.as_uuid())
                .await?
            {
                Some(stored) => (stored.record, Some(stored.version)),
                None => {
                    let mut agent = Agent::new(tenant, hello.name.clone(), Vec::<String>::new());
                    agent.id = id;
                    (agent, None)
                }
            },
        };
        agent.name = hello.name.clone();
        agent.capabilities = hello.capabilities.iter().cloned().collect();
        agent.max_concurrency = hello
            .max_concurrency
            .unwrap_or(Agent::DEFAULT_MAX_CONCURRENCY)
            .clamp(1, 10_000);
        agent.cost_per_hour = hello.cost_per_hour.filter(|c| c.is_finite() && *c >= 0.0);
        agent.labels = hello.labels.clone().unwrap_or_default();
        agent.last_seen_at = Utc::now();
        walk(&mut agent, AgentStatus::Active)?;
        self.remember_tenant(tenant).await?;
        let tenant_key = tenant.to_string();
        let version = match version {
            Some(v) => {
                self.stores
                    .agents()
                    .update(&tenant_key, &agent, v)
                    .await?
                    .version
            }
            None => {
                self.stores
                    .agents()
                    .create(&tenant_key, &agent)
                    .await?
                    .version
            }
        };
        let _ = self.changes.send(Change::Agent { tenant, id });
        let mut caps: Vec<String> = hello.capabilities.clone();
        caps.push(tenant_capability(tenant));
        self.index.upsert(
            CandidateSpec::new(candidate(id), caps)
                .max_concurrency(agent.max_concurrency)
                .cost_per_hour(agent.cost_per_hour.unwrap_or(0.0)),
        );
        let _ = self.index.set_available(candidate(id), true);
        let _ = self.index.set_active(candidate(id), 0);
        let _ = self.events.send(Event::AgentConnected {
            tenant,
            agent: id,
            name: agent.name.clone(),
        });
        // The welcome goes out here, before any task can be routed to the agent.
        let heartbeat_ms = self.config.heartbeat_interval.as_millis() as u64;
        let welcome = Welcome::new(*id.as_uuid(), *session.as_uuid(), heartbeat_ms);
        link.send(Message::Welcome(welcome.clone()))
            .map_err(|e| EngineError::Invalid(format!("agent link: {e}")))?;
        self.agents.insert(
            id,
            AgentEntry {
                agent,
                version,
                session: Some((session, link)),
                in_flight: HashSet::new(),
                last_seen: Instant::now(),
            },
        );
        self.dirty = true;
        Ok((welcome, session))
    }

    /// The agent's connection is gone (or it stopped heartbeating): its tasks go back
    /// to pending, it goes offline.
    async fn agent_lost(&mut self, id: AgentId) -> Result<()> {
        self.requeue_agent_tasks(id).await?;
        let _ = self.index.set_available(candidate(id), false);
        let Some(entry) = self.agents.get_mut(&id) else {
            return Ok(());
        };
        if let Some((_, link)) = entry.session.take() {
            link.close(1001, "gone");
        }
        walk(&mut entry.agent, AgentStatus::Offline)?;
        let tenant = entry.agent.tenant_id;
        self.save_agent(id).await?;
        let _ = self
            .events
            .send(Event::AgentDisconnected { tenant, agent: id });
        tracing::info!(agent = %id, "agent disconnected; its tasks are reassigned");
        Ok(())
    }

    /// Puts every task the agent holds back to pending (no backoff: the agent, not the
    /// task, was the problem).
    async fn requeue_agent_tasks(&mut self, id: AgentId) -> Result<()> {
        let held: Vec<TaskId> = self
            .agents
            .get_mut(&id)
            .map(|a| a.in_flight.drain().collect())
            .unwrap_or_default();
        for task in held {
            let _ = self.index.release(candidate(id));
            self.back_to_pending(task, None).await?;
        }
        Ok(())
    }

    async fn on_agent_message(
        &mut self,
        agent: AgentId,
        session: SessionId,
        message: Message,
    ) -> Result<()> {
        let Some(entry) = self.agents.get_mut(&agent) else {
            return Ok(());
        };
        if entry.session.as_ref().is_none_or(|(s, _)| *s != session) {
            return Ok(()); // a stale connection
        }
        entry.last_seen = Instant::now();
        match message {
            Message::Heartbeat(_) => Ok(()),
            Message::TaskAccept(m) => self.on_accept(agent, TaskId::from_uuid(m.task_id)).await,
            Message::TaskReject(m) => {
                self.on_reject(agent, TaskId::from_uuid(m.task_id), m.reason)
                    .await
            }
            Message::TaskProgress(m) => {
                self.on_progress(agent, TaskId::from_uuid(m.task_id), m.progress)
                    .await
            }
            Message::TaskComplete(m) => {
                self.on_result(agent, TaskId::from_uuid(m.task_id), Ok(m.output))
                    .await
            }
            Message::TaskFail(m) => {
                self.on_result(
                    agent,
                    TaskId::from_uuid(m.task_id),
                    Err((m.error, m.retryable)),
                )
                .await
            }
            Message::TaskSubmit(m) => self.on_delegate(agent, m).await,
            Message::Goodbye(_) => self.on_goodbye(agent).await,
            Message::Hello(_) => {
                self.tell(
                    agent,
                    "already_registered",
                    "this session is registered; hello is sent once",
                    None,
                );
                Ok(())
            }
            other => {
                let name = other.msg_type().name().unwrap_or("extension");
                self.tell(
                    agent,
                    "unexpected_message",
                    &format!("the mesh does not take {name} from agents"),
                    None,
                );
                Ok(())
            }
        }
    }

    /// Sends an `error` message to an agent.
    fn tell(&self, agent: AgentId, code: &str, message: &str, task: Option<TaskId>) {
        if let Some((_, link)) = self.agents.get(&agent).and_then(|a| a.session.as_ref()) {
            let mut e = ErrorMessage::new(code, message);
            e.reference = task.map(|t| t.to_string());
            let _ = link.send(Message::Error(e));
        }
    }

    /// Whether `agent` holds `task` now.
    fn holds(&self, agent: AgentId, task: TaskId) -> bool {
        self.tasks
            .get(&task)
            .is_some_and(|e| e.task.status().is_in_flight() && e.task.agent_id == Some(agent))
    }

    async fn on_accept(&mut self, agent: AgentId, task: TaskId) -> Result<()> {
        if !self.holds(agent, task) {
            self.tell(
                agent,
                "not_assigned",
                "that task is not assigned to you",
                Some(task),
            );
            return Ok(());
        }
        if self
            .tasks
            .get(&task)
            .is_some_and(|e| e.task.status() == TaskStatus::Assigned)
        {
            self.set_status(task, TaskStatus::Accepted).await?;
        }
        Ok(())
    }

    async fn on_progress(&mut self, agent: AgentId, task: TaskId, progress: f64) -> Result<()> {
        if !self.holds(agent, task) {
            self.tell(
                agent,
                "not_assigned",
                "that task is not assigned to you",
                Some(task),
            );
            return Ok(());
        }
        let status = self.tasks.get(&task).map(|e| e.task.status());
        if let Some(entry) = self.tasks.get_mut(&task) {
            entry.task.progress = Some(progress);
        }
        match status {
            Some(TaskStatus::Assigned) => {
                self.set_status(task, TaskStatus::Accepted).await?;
                self.set_status(task, TaskStatus::InProgress).await
            }
            Some(TaskStatus::Accepted) => self.set_status(task, TaskStatus::InProgress).await,
            _ => Ok(()),
        }
    }

    async fn on_reject(&mut self, agent: AgentId, task: TaskId, reason: String) -> Result<()> {
        if !self.holds(agent, task) {
            return Ok(());
        }
        let _ = self.index.release(candidate(agent));
        if let Some(a) = self.agents.get_mut(&agent) {
            a.in_flight.remove(&task);
        }
        let Some(entry) = self.tasks.get_mut(&task) else {
            return Ok(());
        };
        entry.rejected_by.push(agent);
        if entry.task.attempts >= entry.task.max_attempts {
            entry.task.error = Some(format!("rejected: {reason}"));
            self.terminate(task, TaskStatus::Failed).await
        } else {
            self.back_to_pending(task, None).await
        }
    }

    async fn on_result(
        &mut self,
        agent: AgentId,
        task: TaskId,
        result: std::result::Result<serde_json::Value, (String, bool)>,
    ) -> Result<()> {
        if !self.holds(agent, task) {
            self.tell(
                agent,
                "not_assigned",
                "that task is not assigned to you",
                Some(task),
            );
            return Ok(());
        }
        let Some(entry) = self.tasks.get_mut(&task) else {
            return Ok(());
        };
        let latency = entry.assigned_at.map_or(Duration::ZERO, |t| t.elapsed());
        let outcome = if result.is_ok() {
            Outcome::success(latency)
        } else {
            Outcome::failure(latency)
        };
        let _ = self
            .index
            .finish(candidate(agent), &entry.task.kind, outcome);
        if let Some(a) = self.agents.get_mut(&agent) {
            a.in_flight.remove(&task);
        }
        match result {
            Ok(output) => {
                entry.task.output = Some(output);
                entry.task.error = None;
                self.terminate(task, TaskStatus::Completed).await
            }
            Err((error, retryable)) => {
                entry.task.error = Some(error);
                if retryable && entry.task.attempts < entry.task.max_attempts {
                    let backoff = backoff(&self.config, entry.task.attempts);
                    self.back_to_pending(task, Some(backoff)).await
                } else {
                    self.terminate(task, TaskStatus::Failed).await
                }
            }
        }
    }

    async fn on_delegate(
        &mut self,
        agent: AgentId,
        submit: mesh_protocol::TaskSubmit,
    ) -> Result<()> {
        let Some(tenant) = self.agents.get(&agent).map(|a| a.agent.tenant_id) else {
            return Ok(());
        };
        let mut spec =
            TaskSpec::new(submit.kind, submit.input).require(submit.required_capabilities);
        spec.parent = submit.parent.map(TaskId::from_uuid);
        match self.submit(tenant, spec, Some(agent)).await {
            Ok(task) => {
                if let Some((_, link)) = self.agents.get(&agent).and_then(|a| a.session.as_ref()) {
                    let _ = link.send(Message::TaskSubmitted(TaskSubmitted::new(
                        submit.request_id,
                        *task.id.as_uuid(),
                    )));
                }
            }
            Err(e) => {
                let mut error = ErrorMessage::new("submit_refused", e.to_string());
                error.reference = Some(submit.request_id);
                if let Some((_, link)) = self.agents.get(&agent).and_then(|a| a.session.as_ref()) {
                    let _ = link.send(Message::Error(error));
                }
            }
        }
        Ok(())
    }

    async fn on_goodbye(&mut self, agent: AgentId) -> Result<()> {
        let _ = self.index.set_available(candidate(agent), false);
        let Some(entry) = self.agents.get_mut(&agent) else {
            return Ok(());
        };
        walk(&mut entry.agent, AgentStatus::Draining)?;
        if entry.in_flight.is_empty() {
            walk(&mut entry.agent, AgentStatus::Inactive)?;
        }
        self.save_agent(agent).await
    }

    /// Writes an agent's record through the store.
    async fn save_agent(&mut self, id: AgentId) -> Result<()> {
        let Some(entry) = self.agents.get_mut(&id) else {
            return Ok(());
        };
        let tenant = entry.agent.tenant_id;
        entry.version = self
            .stores
            .agents()
            .update(&tenant.to_string(), &entry.agent, entry.version)
            .await?
            .version;
        let _ = self.changes.send(Change::Agent { tenant, id });
        Ok(())
    }

    // ----- tasks --------------------------------------------------------------------

    /// Starts tracking a task in memory; pending ones join the queue.
    fn track(&mut self, task: Task, version: u64, watcher: Option<AgentId>) {
        let mut hasher = DefaultHasher::new();
        (task.tenant_id, &task.kind, &task.required_capabilities).hash(&mut hasher);
        let id = task.id;
        let deadline = task.deadline.map(|d| {
            let left = (d - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            Instant::now() + left
        });
        let mut entry = TaskEntry {
            task,
            version,
            signature: hasher.finish(),
            queue_key: None,
            assigned_at: None,
            deadline,
            not_before: None,
            rejected_by: Vec::new(),
            watcher,
            waiters: Vec::new(),
        };
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        if entry.task.status() == TaskStatus::Pending {
            self.seq += 1;
            let key = (Reverse(entry.task.priority), self.seq, id);
            self.pending.insert(key);
            entry.queue_key = Some(key);
            self.fresh.push(key);
        }
        self.tasks.insert(id, entry);
    }

    async fn submit(
        &mut self,
        tenant: TenantId,
        spec: TaskSpec,
        watcher: Option<AgentId>,
    ) -> Result<Task> {
        if spec.kind.trim().is_empty() || spec.kind.len() > 128 {
            return Err(EngineError::Invalid(
                "kind must be 1 to 128 characters".into(),
            ));
        }
        if spec.required_capabilities.len() > 64 {
            return Err(EngineError::Invalid(
                "at most 64 required capabilities".into(),
            ));
        }
        let mut task = Task::new(tenant, spec.kind, spec.input);
        task.required_capabilities = spec.required_capabilities.into_iter().collect();
        task.priority = spec.priority;
        task.routing = spec.routing;
        task.max_attempts = spec.max_attempts.unwrap_or(self.config.max_attempts).max(1);
        task.timeout_ms = spec.timeout_ms;
        task.deadline = spec.deadline;
        task.parent = spec.parent;
        let tenant_key = tenant.to_string();
        if let Some(parent) = spec.parent {
            self.add_child(tenant, parent, task.id).await?;
        }
        self.remember_tenant(tenant).await?;
        let version = self
            .stores
            .tasks()
            .create(&tenant_key, &task)
            .await?
            .version;
        let _ = self.changes.send(Change::Task {
            tenant,
            id: task.id,
        });
        let _ = self.events.send(Event::TaskSubmitted {
            tenant,
            task: task.id,
            kind: task.kind.clone(),
        });
        self.track(task.clone(), version, watcher);
        Ok(task)
    }

    /// Records a tenant the engine has seen, so restarts and sweeps find its records.
    async fn remember_tenant(&mut self, tenant: TenantId) -> Result<()> {
        if self.tenants.insert(tenant) {
            match self
                .stores
                .tenants()
                .create(SYSTEM_TENANT, &TenantEntry { id: tenant })
                .await
            {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => {
                    self.tenants.remove(&tenant);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn add_child(&mut self, tenant: TenantId, parent: TaskId, child: TaskId) -> Result<()> {
        if let Some(entry) = self
            .tasks
            .get_mut(&parent)
            .filter(|e| e.task.tenant_id == tenant)
        {
            entry.task.children.push(child);
            entry.version = self
                .stores
                .tasks()
                .update(&tenant.to_string(), &entry.task, entry.version)
                .await?
                .version;
            return Ok(());
        }
        let key = tenant.to_string();
        let Some(mut stored) = self.stores.tasks().get(&key, *parent.as_uuid()).await? else {
            return Err(EngineError::Invalid(format!(
                "unknown parent task {parent}"
            )));
        };
        stored.record.children.push(child);
        self.stores
            .tasks()
            .update(&key, &stored.record, stored.version)
            .await?;
        let _ = self.changes.send(Change::Task { tenant, id: parent });
        Ok(())
    }

    /// Writes a task's record through the store.
    async fn save_task(&mut self, id: TaskId) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        let tenant = entry.task.tenant_id;
        match self
            .stores
            .tasks()
            .update(&tenant.to_string(), &entry.task, entry.version)
            .await
        {
            Ok(saved) => entry.version = saved.version,
            Err(e @ StoreError::Conflict { .. }) => {
                // Another engine wrote first: take its version, and tell the caller.
                self.refresh_task(tenant, id).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
        let _ = self.changes.send(Change::Task { tenant, id });
        Ok(())
    }

    async fn set_status(&mut self, id: TaskId, status: TaskStatus) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        entry.task.transition(status)?;
        let tenant = entry.task.tenant_id;
        self.save_task(id).await?;
        let _ = self.events.send(Event::TaskStatus {
            tenant,
            task: id,
            status,
        });
        Ok(())
    }

    /// Takes a task out of flight (or leaves it pending) and queues it again after
    /// `delay`.
    async fn back_to_pending(&mut self, id: TaskId, delay: Option<Duration>) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        if entry.task.status().is_terminal() {
            return Ok(());
        }
        if let Some(d) = entry.assigned_at.take().and(entry.deadline) {
            self.deadlines.remove(&(d, id));
        }
        if entry.task.status() != TaskStatus::Pending {
            entry.task.transition(TaskStatus::Pending)?;
            entry.task.agent_id = None;
            entry.task.progress = None;
        }
        entry.not_before = delay.map(|d| Instant::now() + d);
        // Restore the absolute deadline, if the task has one.
        entry.deadline = entry
            .task
            .deadline
            .map(|d| Instant::now() + (d - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        if let Some(d) = entry.deadline {
            self.deadlines.insert((d, id));
        }
        self.seq += 1;
        let key = (Reverse(entry.task.priority), self.seq, id);
        if let Some(old) = entry.queue_key.replace(key) {
            self.pending.remove(&old);
        }
        self.pending.insert(key);
        let tenant = entry.task.tenant_id;
        self.save_task(id).await?;
        let _ = self.events.send(Event::TaskStatus {
            tenant,
            task: id,
            status: TaskStatus::Pending,
        });
        self.dirty = true;
        Ok(())
    }

    /// Ends a task: persists the final status, answers waiters and the delegating
    /// agent, and forgets it.
    async fn terminate(&mut self, id: TaskId, status: TaskStatus) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        finish_status(&mut entry.task, status)?;
        if let Some(key) = entry.queue_key.take() {
            self.pending.remove(&key);
        }
        if let Some(d) = entry.deadline.take() {
            self.deadlines.remove(&(d, id));
        }
        self.save_task(id).await?;
        let Some(entry) = self.tasks.remove(&id) else {
            return Ok(());
        };
        let agent = entry.task.agent_id;
        self.announce_end(entry.task, entry.waiters, entry.watcher);
        // A draining agent that just finished its last task becomes inactive.
        if let Some(agent_id) = agent
            && let Some(a) = self.agents.get_mut(&agent_id)
            && a.agent.status() == AgentStatus::Draining
            && a.in_flight.is_empty()
        {
            walk(&mut a.agent, AgentStatus::Inactive)?;
            self.save_agent(agent_id).await?;
        }
        self.dirty = true;
        Ok(())
    }

    async fn get(&mut self, tenant: TenantId, id: TaskId) -> Result<Option<Task>> {
        if let Some(entry) = self.tasks.get(&id) {
            return Ok((entry.task.tenant_id == tenant).then(|| entry.task.clone()));
        }
        Ok(self
            .stores
            .tasks()
            .get(&tenant.to_string(), *id.as_uuid())
            .await?
            .map(|v| v.record))
    }

    async fn wait(&mut self, tenant: TenantId, id: TaskId, reply: Reply<Task>) {
        if let Some(entry) = self
            .tasks
            .get_mut(&id)
            .filter(|e| e.task.tenant_id == tenant)
        {
            entry.waiters.push(reply);
            return;
        }
        let found = self
            .stores
            .tasks()
            .get(&tenant.to_string(), *id.as_uuid())
            .await;
        // Held by another engine: wait here until it ends there.
        if let Ok(Some(v)) = &found
            && !v.record.status().is_terminal()
        {
            self.track(v.record.clone(), v.version, None);
            if let Some(entry) = self.tasks.get_mut(&id) {
                entry.waiters.push(reply);
            }
            return;
        }
        let _ = reply.send(match found {
            Ok(Some(v)) => Ok(v.record),
            Ok(None) => Err(EngineError::TaskNotFound(id)),
            Err(e) => Err(e.into()),
        });
    }

    async fn cancel(&mut self, tenant: TenantId, id: TaskId) -> Result<Task> {
        match self.cancel_tracked(tenant, id).await {
            // Another engine moved the task meanwhile: cancel what is stored.
            Err(e) if is_conflict(&e) => self.cancel_stored(tenant, id).await,
            other => other,
        }
    }

    async fn cancel_tracked(&mut self, tenant: TenantId, id: TaskId) -> Result<Task> {
        let Some(entry) = self
            .tasks
            .get_mut(&id)
            .filter(|e| e.task.tenant_id == tenant)
        else {
            return self.cancel_stored(tenant, id).await;
        };
        if let Some(agent) = entry
            .task
            .agent_id
            .filter(|_| entry.task.status().is_in_flight())
        {
            let _ = self.index.release(candidate(agent));
            if let Some(a) = self.agents.get_mut(&agent) {
                a.in_flight.remove(&id);
                if let Some((_, link)) = &a.session {
                    let mut cancel = TaskCancel::new(*id.as_uuid());
                    cancel.reason = Some("cancelled by a client".into());
                    let _ = link.send(Message::TaskCancel(cancel));
                }
            }
        }
        self.terminate(id, TaskStatus::Cancelled).await?;
        self.get(tenant, id)
            .await?
            .ok_or(EngineError::TaskNotFound(id))
    }

    // ----- routing ------------------------------------------------------------------

    async fn route_pending(&mut self) {
        let mut fresh = std::mem::take(&mut self.fresh);
        let queue: Vec<(Reverse<Priority>, u64, TaskId)> = if std::mem::take(&mut self.dirty) {
            self.pending.iter().copied().collect()
        } else {
            fresh.sort_unstable();
            fresh
        };
        let now = Instant::now();
        let mut blocked: HashSet<u64> = HashSet::new();
        for key in queue {
            let id = key.2;
            let Some(entry) = self.tasks.get(&id) else {
                self.pending.remove(&key);
                continue;
            };
            if entry.queue_key != Some(key) {
                continue; // routed, or queued again under a newer key
            }
            if entry.not_before.is_some_and(|t| t > now) || blocked.contains(&entry.signature) {
                continue;
            }
            let signature = entry.signature;
            match self.assign(id).await {
                Ok(true) => {}
                Ok(false) => {
                    blocked.insert(signature);
                }
                Err(e) => tracing::error!(error = %e, task = %id, "assigning a task failed"),
            }
        }
    }

    /// Routes one pending task and sends it to the chosen agent; false if no agent can
    /// take it now.
    async fn assign(&mut self, id: TaskId) -> Result<bool> {
        let Some(entry) = self.tasks.get(&id) else {
            return Ok(false);
        };
        let task = &entry.task;
        let request = RouteRequest::new(task.kind.clone())
            .require(
                task.required_capabilities
                    .iter()
                    .cloned()
                    .chain([tenant_capability(task.tenant_id)]),
            )
            .priority(router_priority(task.priority))
            .cost_sensitive(task.routing == RoutingPreference::CostOptimized)
            .exclude(entry.rejected_by.iter().map(|a| candidate(*a)));
        let router = self
            .routers
            .entry(task.routing)
            .or_insert_with(|| router_for(task.routing));
        let Ok(chosen) = self.index.dispatch(router.as_mut(), &request) else {
            return Ok(false);
        };
        let agent_id = agent_of(chosen);
        let Some(link) = self
            .agents
            .get(&agent_id)
            .and_then(|a| a.session.as_ref())
            .map(|(_, l)| l.clone())
        else {
            let _ = self.index.release(chosen);
            let _ = self.index.set_available(chosen, false);
            return Ok(false);
        };
        let timeout = entry
            .task
            .timeout_ms
            .map_or(self.config.task_timeout, Duration::from_millis);
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(false);
        };
        entry.task.transition(TaskStatus::Assigned)?;
        entry.task.agent_id = Some(agent_id);
        entry.task.attempts += 1;
        let now = Instant::now();
        entry.assigned_at = Some(now);
        entry.not_before = None;
        if let Some(key) = entry.queue_key.take() {
            self.pending.remove(&key);
        }
        let attempt_deadline = now + timeout;
        let deadline = entry
            .deadline
            .map_or(attempt_deadline, |d| d.min(attempt_deadline));
        if let Some(old) = entry.deadline.replace(deadline) {
            self.deadlines.remove(&(old, id));
        }
        self.deadlines.insert((deadline, id));
        let mut assign = TaskAssign::new(
            *id.as_uuid(),
            entry.task.kind.clone(),
            entry.task.input.clone(),
            entry.task.attempts,
        );
        assign.deadline_ms = Some(timeout.as_millis() as u64);
        let tenant = entry.task.tenant_id;
        let attempt = entry.task.attempts;
        if let Err(e) = self.save_task(id).await {
            // Another engine changed the task first (claimed or cancelled it); the
            // entry now holds its version.
            let _ = self.index.release(chosen);
            return if is_conflict(&e) { Ok(true) } else { Err(e) };
        }
        let agent_name = match self.agents.get_mut(&agent_id) {
            Some(a) => {
                a.in_flight.insert(id);
                a.agent.name.clone()
            }
            None => String::new(),
        };
        let _ = self.events.send(Event::TaskAssigned {
            tenant,
            task: id,
            agent: agent_id,
            agent_name,
            attempt,
        });
        if let Err(e) = link.send(Message::TaskAssign(assign)) {
            tracing::warn!(error = %e, agent = %agent_id, "agent cannot take messages; dropping it");
            self.agent_lost(agent_id).await?;
        }
        Ok(true)
    }

    // ----- time ---------------------------------------------------------------------

    async fn on_tick(&mut self) {
        let now = Instant::now();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Err(e) = self.expire(id).await {
                tracing::error!(error = %e, task = %id, "expiring a task failed");
            }
        }
        if self.config.clustered
            && now.duration_since(self.last_seen_saved) >= self.config.heartbeat_interval
        {
            self.last_seen_saved = now;
            self.save_last_seen().await;
        }
        if now.duration_since(self.last_heartbeat_check) >= Duration::from_millis(500) {
            self.last_heartbeat_check = now;
            let limit = self.config.heartbeat_interval * self.config.missed_heartbeats;
            let silent: Vec<AgentId> = self
                .agents
                .iter()
                .filter(|(_, a)| a.session.is_some() && now.duration_since(a.last_seen) > limit)
                .map(|(id, _)| *id)
                .collect();
            for id in silent {
                tracing::warn!(agent = %id, "agent missed its heartbeats");
                if let Err(e) = self.agent_lost(id).await {
                    tracing::error!(error = %e, agent = %id, "dropping a silent agent failed");
                }
            }
        }
        if self.config.clustered && now.duration_since(self.last_adopt) >= ADOPT_EVERY {
            self.last_adopt = now;
            if let Err(e) = self.adopt_pending().await {
                tracing::warn!(error = %e, "reading pending tasks failed");
            }
        }
        if self.pending.iter().any(|k| {
            self.tasks
                .get(&k.2)
                .is_some_and(|e| e.not_before.is_some_and(|t| t <= now))
        }) {
            self.dirty = true;
        }
    }

    /// A task's attempt (or its absolute deadline) ran out.
    async fn expire(&mut self, id: TaskId) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        entry.deadline = None;
        let past_deadline = entry.task.deadline.is_some_and(|d| d <= Utc::now());
        if let Some(agent) = entry
            .task
            .agent_id
            .filter(|_| entry.task.status().is_in_flight())
        {
            let latency = entry.assigned_at.map_or(Duration::ZERO, |t| t.elapsed());
            let _ = self.index.finish(
                candidate(agent),
                &entry.task.kind,
                Outcome::failure(latency),
            );
            if let Some(a) = self.agents.get_mut(&agent) {
                a.in_flight.remove(&id);
                if let Some((_, link)) = &a.session {
                    let mut cancel = TaskCancel::new(*id.as_uuid());
                    cancel.reason = Some("timed out".into());
                    let _ = link.send(Message::TaskCancel(cancel));
                }
            }
            let Some(entry) = self.tasks.get_mut(&id) else {
                return Ok(());
            };
            if !past_deadline && entry.task.attempts < entry.task.max_attempts {
                entry.task.error = Some(format!("attempt {} timed out", entry.task.attempts));
                let backoff = backoff(&self.config, entry.task.attempts);
                return self.back_to_pending(id, Some(backoff)).await;
            }
            entry.task.error = Some("timed out".into());
            return self.terminate(id, TaskStatus::TimedOut).await;
        }
        if past_deadline {
            if let Some(entry) = self.tasks.get_mut(&id) {
                entry.task.error = Some("deadline passed before an agent took it".into());
            }
            return self.terminate(id, TaskStatus::TimedOut).await;
        }
        Ok(())
    }

    // ----- keys ---------------------------------------------------------------------

    async fn create_key(
        &mut self,
        tenant: TenantId,
        name: String,
        scopes: Vec<Scope>,
        key: Option<String>,
    ) -> Result<(String, ApiKey)> {
        let key = match key {
            Some(k) if k.len() >= 16 => k,
            Some(_) => {
                return Err(EngineError::Invalid(
                    "an API key has at least 16 characters".into(),
                ));
            }
            None => generate_key(),
        };
        let record = ApiKey {
            id: uuid::Uuid::now_v7(),
            tenant_id: tenant,
            name,
            hash: hash_key(&key),
            scopes: if scopes.is_empty() {
                vec![Scope::Read]
            } else {
                scopes
            },
            created_at: Utc::now(),
        };
        self.stores.keys().create(SYSTEM_TENANT, &record).await?;
        self.keys.insert(record.hash.clone(), record.clone());
        Ok((key, record))
    }

    async fn authenticate(&mut self, key: &str) -> Result<Option<ApiKey>> {
        let hash = hash_key(key);
        if let Some(record) = self.keys.get(&hash) {
            return Ok(Some(record.clone()));
        }
        let page = self
            .stores
            .keys()
            .list(
                SYSTEM_TENANT,
                &Query::new().filter("hash", hash.clone()).limit(1),
            )
            .await?;
        let found = page.items.into_iter().next().map(|v| v.record);
        if let Some(record) = &found {
            self.keys.insert(hash, record.clone());
        }
        Ok(found)
    }
}
