//! What the engine learns through the stores it may share with other engines: changes
//! made elsewhere, tasks whose engine died, agents no engine vouches for any more.

use std::time::Duration;

use chrono::Utc;
use mesh_protocol::{Message, TaskCancel};
use mesh_store::{Query, Repository, StoreError};

use super::rules::{candidate, walk};
use super::shared::Shared;
use super::{CAS_ATTEMPTS, Result, State};
use crate::domain::{AgentId, AgentStatus, SYSTEM_TENANT, Task, TaskId, TaskStatus, TenantId};
use crate::engine::scan::{every, with_status};
use crate::engine::shards::shard_of;
use crate::engine::{Change, EngineError, Event, Stores};

impl<S: Stores> State<S> {
    /// Takes in a change another engine made.
    pub(super) async fn refresh(&mut self, change: Change) -> Result<()> {
        match change {
            Change::Task { tenant, id } => self.learn_task(tenant, id).await,
            Change::Agent { tenant, id } => {
                let stored = self
                    .stores
                    .agents()
                    .get(&tenant.to_string(), *id.as_uuid())
                    .await?;
                match (stored, self.agents.get_mut(&id)) {
                    (None, Some(_)) => self.drop_agent(id, "deregistered").await,
                    (Some(stored), Some(entry)) if stored.version > entry.version => {
                        // Another engine's view is newer (the agent reconnected there):
                        // this session is stale.
                        entry.version = stored.version;
                        if entry.session.is_some() {
                            self.drop_agent(id, "reconnected elsewhere").await?;
                        }
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            // The engine handle passes revocations on; the engine task holds no keys.
            Change::KeyRevoked { .. } => Ok(()),
        }
    }

    /// Takes in what another engine made of a task — unless this engine's end of it is
    /// still to be written: the entry holds that end until the write, which then
    /// conflicts, and `save_end` re-reads and decides.
    async fn learn_task(&mut self, tenant: TenantId, id: TaskId) -> Result<()> {
        if self
            .tasks
            .get(&id)
            .is_some_and(|e| e.task.status().is_terminal())
        {
            return Ok(());
        }
        self.refresh_task(tenant, id).await
    }

    pub(super) async fn refresh_task(&mut self, tenant: TenantId, id: TaskId) -> Result<()> {
        let Some(stored) = self
            .stores
            .tasks()
            .get(&tenant.to_string(), *id.as_uuid())
            .await?
        else {
            return Ok(());
        };
        let (task, version) = (stored.record, stored.version);
        let Some(entry) = self.tasks.get_mut(&id) else {
            if task.status() == TaskStatus::Pending {
                self.track(task, version, None);
            }
            return Ok(());
        };
        if entry.version >= version {
            return Ok(());
        }
        let held_here = entry
            .task
            .agent_id
            .filter(|_| entry.task.status().is_in_flight());
        if held_here.is_some() && task.status().is_in_flight() && task.agent_id == held_here {
            // Still ours; only the version moved.
            entry.task = Shared::new(task);
            entry.version = version;
            return Ok(());
        }
        // Whatever this engine had in flight for the task is no longer its to hold.
        if let Some(agent) = held_here
            && let Some(a) = self.agents.get_mut(&agent)
            && a.in_flight.remove(&id)
        {
            let _ = self.index.release(candidate(agent));
            if let Some((_, link)) = &a.session {
                let mut cancel = TaskCancel::new(*id.as_uuid());
                cancel.reason = Some(format!("the task is {} elsewhere", task.status()));
                let _ = link.send(Message::TaskCancel(cancel));
            }
        }
        entry.leave_queue(&mut self.pending, &mut self.wakeups);
        if let Some(d) = entry.deadline.take() {
            self.deadlines.remove(&(d, id));
        }
        entry.assigned_at = None;
        let status = task.status();
        entry.task = Shared::new(task);
        entry.version = version;
        if status == TaskStatus::Pending {
            self.enqueue(id);
        } else if status.is_terminal() || (entry.waiters.is_empty() && entry.watcher.is_none()) {
            let Some(entry) = self.tasks.remove(&id) else {
                return Ok(());
            };
            if status.is_terminal() {
                self.announce_end(entry.task.into_inner(), entry.waiters, entry.watcher);
            }
        }
        Ok(())
    }

    /// Cancels a task this engine does not track (another engine holds it, or it is
    /// finished) by writing the store directly; the holder learns it by refresh.
    pub(super) async fn cancel_stored(&mut self, tenant: TenantId, id: TaskId) -> Result<Task> {
        let key = tenant.to_string();
        for _ in 0..CAS_ATTEMPTS {
            let Some(stored) = self.stores.tasks().get(&key, *id.as_uuid()).await? else {
                return Err(EngineError::TaskNotFound(id));
            };
            let mut task = stored.record;
            if task.status().is_terminal() {
                return Ok(task);
            }
            task.transition(TaskStatus::Cancelled)?;
            match self
                .stores
                .tasks()
                .update(&key, &task, stored.version)
                .await
            {
                Ok(_) => {
                    let _ = self.changes.send(Change::Task { tenant, id });
                    if self.tasks.contains_key(&id) {
                        // Finishes the stale local entry and answers its waiters.
                        self.refresh_task(tenant, id).await?;
                    } else {
                        let _ = self.events.send(Event::TaskStatus {
                            tenant,
                            task: id,
                            status: TaskStatus::Cancelled,
                        });
                    }
                    return Ok(task);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contended(id))
    }

    /// Recovers in-flight tasks whose attempt ran out more than `grace` ago and that no
    /// engine here holds, and marks offline the agents no engine vouches for any more.
    pub(super) async fn sweep(&mut self, grace: Duration) -> Result<usize> {
        let mut recovered = 0;
        let tenants = self.known_tenants().await?;
        let now = Utc::now();
        for tenant in tenants {
            recovered += self.sweep_agents(tenant).await?;
            let key = tenant.to_string();
            for status in [
                TaskStatus::Assigned,
                TaskStatus::Accepted,
                TaskStatus::InProgress,
            ] {
                let stuck = every(self.stores.tasks(), &key, with_status(status.as_str())).await?;
                for stored in stuck {
                    let mut task = stored.record;
                    if self.tasks.contains_key(&task.id) {
                        continue;
                    }
                    let timeout = task
                        .timeout_ms
                        .map_or(self.config.task_timeout, Duration::from_millis);
                    let stale_after = chrono::Duration::from_std(timeout.saturating_add(grace))
                        .unwrap_or(chrono::Duration::MAX);
                    // Never stale when the sum is past the calendar's end.
                    if task
                        .updated_at
                        .checked_add_signed(stale_after)
                        .is_none_or(|stale_at| stale_at > now)
                    {
                        continue;
                    }
                    let id = task.id;
                    let past_deadline = task.deadline.is_some_and(|d| d <= now);
                    if !past_deadline && task.attempts < task.max_attempts {
                        task.transition(TaskStatus::Pending)?;
                        task.agent_id = None;
                        task.error = Some(format!("attempt {} was lost", task.attempts));
                    } else {
                        task.transition(TaskStatus::TimedOut)?;
                        task.error = Some("timed out".into());
                    }
                    match self
                        .stores
                        .tasks()
                        .update(&key, &task, stored.version)
                        .await
                    {
                        Ok(saved) => {
                            recovered += 1;
                            let status = task.status();
                            let _ = self.changes.send(Change::Task { tenant, id });
                            let _ = self.events.send(Event::TaskStatus {
                                tenant,
                                task: id,
                                status,
                            });
                            if status == TaskStatus::Pending {
                                self.track(task, saved.version, None);
                            }
                        }
                        // Its holder moved it meanwhile: it is alive after all.
                        Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        if recovered > 0 {
            tracing::info!(recovered, "swept tasks whose engine stopped holding them");
        }
        Ok(recovered)
    }

    /// Catches up after change notifications were missed: re-reads every tracked task
    /// and local agent, and adopts pending tasks it does not track.
    pub(super) async fn resync(&mut self) -> Result<()> {
        let tasks: Vec<(TenantId, TaskId)> = self
            .tasks
            .values()
            .map(|e| (e.task.tenant_id, e.task.id))
            .collect();
        for (tenant, id) in tasks {
            self.learn_task(tenant, id).await?;
        }
        let agents: Vec<(TenantId, AgentId)> = self
            .agents
            .values()
            .map(|a| (a.agent.tenant_id, a.agent.id))
            .collect();
        for (tenant, id) in agents {
            self.refresh(Change::Agent { tenant, id }).await?;
        }
        self.adopt_pending().await
    }

    /// Tracks the pending tasks in the stores this engine does not know of (their
    /// notification was lost), so its agents can take them.
    pub(super) async fn adopt_pending(&mut self) -> Result<()> {
        for tenant in self.known_tenants().await? {
            let query = with_status(TaskStatus::Pending.as_str());
            for stored in every(self.stores.tasks(), &tenant.to_string(), query).await? {
                if !self.tasks.contains_key(&stored.record.id) {
                    self.track(stored.record, stored.version, None);
                }
            }
        }
        Ok(())
    }

    /// Records that this engine's connected agents are alive, so other engines can tell
    /// them from agents of an engine that died ([`Self::sweep`]).
    pub(super) async fn save_last_seen(&mut self) {
        let connected = self.connected_agents();
        let now = self.shared_now().await;
        for id in connected {
            if let Some(a) = self.agents.get_mut(&id) {
                a.agent.last_seen_at = now;
            }
            if let Err(e) = self.save_agent(id).await {
                tracing::warn!(error = %e, agent = %id, "recording an agent alive failed");
            }
        }
    }

    /// Marks offline the active agents in the stores that no engine has vouched for in
    /// `missed_heartbeats` × 2 intervals (their engine died). Returns how many.
    pub(super) async fn sweep_agents(&mut self, tenant: TenantId) -> Result<usize> {
        let limit = self
            .config
            .heartbeat_interval
            .saturating_mul(self.config.missed_heartbeats.saturating_mul(2));
        let now = self.shared_now().await;
        let Some(stale_before) = chrono::Duration::from_std(limit)
            .ok()
            .and_then(|limit| now.checked_sub_signed(limit))
        else {
            return Ok(0); // nothing can be that old
        };
        let key = tenant.to_string();
        let active = with_status(AgentStatus::Active.as_str());
        let mut swept = 0;
        for stored in every(self.stores.agents(), &key, active).await? {
            let mut agent = stored.record;
            if self.agents.contains_key(&agent.id) || agent.last_seen_at > stale_before {
                continue;
            }
            walk(&mut agent, AgentStatus::Offline)?;
            match self
                .stores
                .agents()
                .update(&key, &agent, stored.version)
                .await
            {
                Ok(_) => {
                    swept += 1;
                    let _ = self.changes.send(Change::Agent {
                        tenant,
                        id: agent.id,
                    });
                    let _ = self.events.send(Event::AgentDisconnected {
                        tenant,
                        agent: agent.id,
                    });
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(swept)
    }

    /// The time on the clock every instance shares — the stores', when they have one
    /// (PostgreSQL's), else this machine's — for liveness other instances read.
    pub(super) fn shared_now(
        &self,
    ) -> impl std::future::Future<Output = chrono::DateTime<Utc>> + Send + 'static {
        // Owns what it reads, so the engine task's state is not held across the wait.
        let (stores, clock) = (self.stores.clone(), self.config.wall_clock.clone());
        async move {
            match stores.now().await {
                Ok(Some(now)) => now,
                Ok(None) => clock(),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the stores' clock failed; using ours");
                    clock()
                }
            }
        }
    }

    /// Every tenant in the stores (others' engines may have added some) that this
    /// engine task serves.
    pub(super) async fn known_tenants(&mut self) -> Result<Vec<TenantId>> {
        let stored = every(self.stores.tenants(), SYSTEM_TENANT, Query::new()).await?;
        self.tenants.extend(stored.iter().map(|t| t.record.id));
        let (shard, shards) = (self.shard, self.config.shards);
        Ok(self
            .tenants
            .iter()
            .copied()
            .filter(|t| shard_of(*t, shards) == shard)
            .collect())
    }
}
