//! The engine task: the state it owns, how it starts (resuming unfinished tasks), and
//! its loop. Each concern's methods live in a file of their own beside this one:
//! `agents`, `tasks`, `routing`, `timers`, `keys`, `cluster`, `writes`; `rules` holds
//! the pure rules they share, `routers` the router instances, `batch` the task
//! writes of a loop turn and `shared` the copy-on-write records those writes read.
//! Those concern files only extend [`State`]; this file imports nothing from them,
//! only the four leaves.

mod agents;
mod batch;
mod cluster;
mod keys;
mod routers;
mod routing;
mod rules;
mod shared;
mod tasks;
mod timers;
mod writes;

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use foldhash::{HashMap, HashSet};
use mesh_protocol::{Goodbye, Message};
use mesh_router::CandidateIndex;
use mesh_store::Repository;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use self::rules::walk;
use self::shared::Shared;
use super::command::{Command, Reply};
use super::scan::{every, with_status};
use super::{AgentLink, Change, EngineConfig, EngineError, Event, Stores};
use crate::domain::{
    Agent, AgentId, AgentStatus, Priority, SessionId, Task, TaskId, TaskStatus, TenantId,
};

type Result<T, E = EngineError> = std::result::Result<T, E>;

/// How often a clustered engine reads the pending tasks in the stores, in case a
/// change notification was lost.
const ADOPT_EVERY: Duration = Duration::from_secs(5);

/// How often a compare-and-set write is retried when another engine wrote first.
const CAS_ATTEMPTS: usize = 5;

/// A connected (or known) agent.
struct AgentEntry {
    agent: Agent,
    version: u64,
    session: Option<(SessionId, Arc<dyn AgentLink>)>,
    in_flight: HashSet<TaskId>,
    last_seen: Instant,
}

/// A task this engine tracks (pending, in flight here, or waited on).
struct TaskEntry {
    /// Shared with the batch being written, if that writes it.
    task: Shared<Task>,
    version: u64,
    /// Tenant, kind and required capabilities hashed: tasks that cannot be routed now
    /// block others with the same signature for the rest of a routing pass.
    signature: u64,
    queue_key: Option<QueueKey>,
    assigned_at: Option<Instant>,
    deadline: Option<Instant>,
    not_before: Option<Instant>,
    /// When it fails as unroutable if still pending (`EngineConfig::pending_timeout`).
    unroutable_at: Option<Instant>,
    /// Agents that rejected it, and when (for `EngineConfig::exclusion_ttl`).
    rejected_by: Vec<(AgentId, Instant)>,
    watcher: Option<AgentId>,
    waiters: Vec<Reply<Task>>,
    /// The current attempt's `invoke_agent` span, when the task's trace is sampled;
    /// it ends with the attempt (or when the entry goes).
    attempt_span: Option<tracing::Span>,
    /// Submitted here and not stored yet: it joins the queue once it is.
    creating: bool,
    /// In a batch on its way to the stores: its next write waits for that one.
    writing: bool,
}

/// A pending task's place in the queue: most urgent first, then oldest.
type QueueKey = (Reverse<Priority>, u64, TaskId);

impl TaskEntry {
    /// Ends the current attempt's span, if any, with how the attempt ended.
    fn end_attempt(&mut self, outcome: TaskStatus) {
        if let Some(span) = self.attempt_span.take() {
            span.record("mesh.task.outcome", outcome.as_str());
            let code = if outcome == TaskStatus::Completed {
                "OK"
            } else {
                "ERROR"
            };
            span.record("otel.status_code", code);
        }
    }

    /// Adds a waiter, dropping those that stopped waiting (a timed-out request, a
    /// cancelled job): without that, a task nobody finishes would keep them all.
    fn add_waiter(&mut self, reply: Reply<Task>) {
        self.waiters.retain(|w| !w.is_closed());
        self.waiters.push(reply);
    }

    /// Takes the task out of the pending queue, with its pending-timeout wake-up.
    fn leave_queue(
        &mut self,
        pending: &mut BTreeSet<QueueKey>,
        wakeups: &mut BTreeSet<(Instant, TaskId, Wakeup)>,
    ) {
        if let Some(key) = self.queue_key.take() {
            pending.remove(&key);
        }
        if let Some(at) = self.unroutable_at.take() {
            wakeups.remove(&(at, self.task.id, Wakeup::Unroutable));
        }
    }
}

/// Why the engine task looks at a pending task again at some instant. Kept in one
/// ordered set, so a tick costs the wake-ups that are due, not a scan of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wakeup {
    /// Its retry backoff is over.
    Backoff,
    /// An agent's rejection stops excluding it.
    Exclusion,
    /// It has waited the pending timeout.
    Unroutable,
}

pub(super) struct State<S> {
    config: Arc<EngineConfig>,
    /// Which of the engine's tasks this is: it serves the tenants `shard_of` gives it.
    shard: usize,
    stores: Arc<S>,
    events: broadcast::Sender<Event>,
    changes: broadcast::Sender<Change>,
    index: CandidateIndex,
    routers: routers::Routers,
    agents: HashMap<AgentId, AgentEntry>,
    tasks: HashMap<TaskId, TaskEntry>,
    pending: BTreeSet<QueueKey>,
    deadlines: BTreeSet<(Instant, TaskId)>,
    wakeups: BTreeSet<(Instant, TaskId, Wakeup)>,
    seq: u64,
    tenants: HashSet<TenantId>,
    /// Something changed that may let any pending task through (capacity freed, an
    /// agent came): the next pass looks at the whole queue.
    dirty: bool,
    /// Tasks that became pending since the last pass; when nothing else changed, only
    /// they can be routable (the rest were not, and no capacity came), so a submit
    /// costs a look at one task, not at the whole queue.
    fresh: Vec<QueueKey>,
    /// The task writes decided since the last batch was dispatched (`writes`).
    batch: batch::Batch,
    /// The batches being written, oldest first (at most `writes_in_flight`).
    writing: std::collections::VecDeque<batch::Writing>,
    /// The batch holds only writes of tasks being written: nothing to dispatch until
    /// a write comes back.
    stalled: bool,
    /// Told when a batch being written is.
    write_done: Arc<tokio::sync::Notify>,
    last_heartbeat_check: Instant,
    last_adopt: Instant,
    last_seen_saved: Instant,
}

impl<S: Stores> State<S> {
    pub(super) async fn load(
        config: Arc<EngineConfig>,
        stores: Arc<S>,
        events: broadcast::Sender<Event>,
        changes: broadcast::Sender<Change>,
        shard: usize,
    ) -> Result<Self> {
        let routers = routers::Routers::new(&config);
        let mut state = Self {
            config,
            shard,
            stores,
            events,
            changes,
            index: CandidateIndex::default(),
            routers,
            agents: HashMap::default(),
            tasks: HashMap::default(),
            pending: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            wakeups: BTreeSet::new(),
            seq: 0,
            tenants: HashSet::default(),
            dirty: false,
            fresh: Vec::new(),
            batch: batch::Batch::default(),
            writing: std::collections::VecDeque::new(),
            stalled: false,
            write_done: Arc::default(),
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
                let query = with_status(status.as_str());
                let key = tenant.to_string();
                for stored in every(self.stores.tasks(), &key, query).await? {
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
        let write_done = self.write_done.clone();
        loop {
            // Something to route or write: take what is queued, but do not wait.
            let busy = self.dirty
                || !self.fresh.is_empty()
                || (self.can_dispatch() && !self.batch.is_empty());
            let writing = !self.writing.is_empty();
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    if !self.handle(command).await {
                        break;
                    }
                    // Take what else is queued before routing, so bursts route once
                    // and are written together.
                    for _ in 0..256 {
                        let Ok(command) = commands.try_recv() else { break };
                        if !self.handle(command).await {
                            return;
                        }
                    }
                }
                _ = tick.tick() => self.on_tick().await,
                () = write_done.notified(), if writing => self.settle_finished().await,
                () = std::future::ready(()), if busy => {}
            }
            if self.dirty || !self.fresh.is_empty() {
                self.route_pending();
            }
            self.dispatch().await;
        }
        self.flush().await;
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
                id,
                reply,
            } => {
                let ack = batch::Ack::Reply(reply);
                match id {
                    Some(id) => self.submit_once(tenant, id, spec, ack).await,
                    None => self.submit(tenant, spec, None, ack).await,
                }
            }
            Command::Wait { tenant, id, reply } => self.wait(tenant, id, reply).await,
            #[cfg(test)]
            Command::Waiters { id, reply } => {
                let _ = reply.send(Ok(self.tasks.get(&id).map_or(0, |e| e.waiters.len())));
            }
            Command::Cancel { tenant, id, reply } => {
                let result = self.cancel(tenant, id).await;
                // An end still to be written is told when it is.
                match self.tasks.get_mut(&id) {
                    Some(entry) if result.is_ok() && entry.task.status().is_terminal() => {
                        entry.add_waiter(reply);
                    }
                    _ => {
                        let _ = reply.send(result);
                    }
                }
            }
            Command::Deregister { tenant, id, reply } => {
                let _ = reply.send(self.deregister(tenant, id).await);
            }
            Command::Refresh { change } => {
                if let Err(e) = self.refresh(change).await {
                    tracing::warn!(error = %e, ?change, "refreshing a record failed");
                }
            }
            Command::Resync => {
                if let Err(e) = self.resync().await {
                    tracing::warn!(error = %e, "catching up with the stores failed");
                }
            }
            Command::Sweep { grace, reply } => {
                let _ = reply.send(self.sweep(grace).await);
            }
            Command::CreateKey {
                tenant,
                name,
                scopes,
                roles,
                key,
                reply,
            } => {
                let _ = reply.send(self.create_key(tenant, name, scopes, roles, key).await);
            }
            Command::RevokeKey { tenant, id, reply } => {
                let _ = reply.send(self.revoke_key(tenant, id).await);
            }
            Command::CreateTenant { name, reply } => {
                let _ = reply.send(self.create_tenant(name).await);
            }
            Command::Settle { reply } => {
                // Served means written too.
                self.flush().await;
                let _ = reply.send(());
            }
            Command::Shutdown { reply } => {
                self.flush().await;
                self.shutdown().await;
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    /// The agents connected to this engine now.
    fn connected_agents(&self) -> Vec<AgentId> {
        self.agents
            .iter()
            .filter(|(_, a)| a.session.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Tells every connected agent goodbye and records it offline; its tasks stay in
    /// the stores for the next engine.
    async fn shutdown(&mut self) {
        let connected = self.connected_agents();
        for id in connected {
            if let Some((_, link)) = self.agents.get_mut(&id).and_then(|a| a.session.take()) {
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
    }
}
