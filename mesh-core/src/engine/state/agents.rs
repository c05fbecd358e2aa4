//! Agents: registration (`hello`), what they send, goodbye, loss and deregistration.

use foldhash::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mesh_protocol::{ErrorMessage, Hello, Message, Welcome};
use mesh_router::{CandidateSpec, Outcome};
use mesh_store::Repository;
use tokio::time::Instant;

use super::batch::Ack;
use super::rules::{backoff, candidate, tenant_capability, walk};
use super::{AgentEntry, Result, State, Wakeup};
use crate::domain::{
    Agent, AgentId, AgentStatus, SessionId, TaskId, TaskSpec, TaskStatus, TenantId,
};
use crate::engine::{AgentLink, Change, EngineError, Event, Stores};

impl<S: Stores> State<S> {
    pub(super) async fn connect(
        &mut self,
        tenant: TenantId,
        hello: Hello,
        link: Arc<dyn AgentLink>,
    ) -> Result<(Welcome, SessionId)> {
        if hello.name.trim().is_empty() || hello.name.len() > 256 {
            return Err(EngineError::InvalidAgentName);
        }
        if hello.capabilities.len() > 256
            || hello
                .capabilities
                .iter()
                .any(|c| c.is_empty() || c.len() > 128)
        {
            return Err(EngineError::InvalidCapabilities);
        }
        if let Some(labels) = &hello.labels
            && (labels.len() > 32
                || labels
                    .iter()
                    .any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 256))
        {
            return Err(EngineError::InvalidLabels);
        }
        let id = self.claimable_id(tenant, hello.agent_id).await?;
        let session = SessionId::new();
        if let Some(existing) = self.agents.get(&id) {
            if existing.agent.tenant_id != tenant {
                return Err(EngineError::AgentIdTaken(id));
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
        agent.last_seen_at = self.shared_now().await;
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
                .cost_per_hour(agent.cost_per_hour.unwrap_or(0.0))
                .labels(agent.labels.iter().map(|(k, v)| (k.clone(), v.clone()))),
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
            .map_err(|_| EngineError::AgentUnreachable)?;
        self.agents.insert(
            id,
            AgentEntry {
                agent,
                version,
                session: Some((session, link)),
                in_flight: HashSet::default(),
                last_seen: Instant::now(),
            },
        );
        self.dirty = true;
        Ok((welcome, session))
    }

    /// The id a hello gets: the one it asks for when this tenant's agent has it (a
    /// resume), else a new one. An id is never taken over from another tenant, nor
    /// claimed before its owner registers it: ids are the server's to hand out.
    async fn claimable_id(
        &mut self,
        tenant: TenantId,
        asked: Option<uuid::Uuid>,
    ) -> Result<AgentId> {
        let Some(asked) = asked.map(AgentId::from_uuid) else {
            return Ok(AgentId::default());
        };
        if let Some(entry) = self.agents.get(&asked) {
            return if entry.agent.tenant_id == tenant {
                Ok(asked)
            } else {
                Err(EngineError::AgentIdTaken(asked))
            };
        }
        let stored = self
            .stores
            .agents()
            .get(&tenant.to_string(), *asked.as_uuid())
            .await?;
        Ok(if stored.is_some() {
            asked
        } else {
            AgentId::default()
        })
    }

    /// The agent's connection is gone (or it stopped heartbeating): its tasks go back
    /// to pending, it goes offline.
    pub(super) async fn agent_lost(&mut self, id: AgentId) -> Result<()> {
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
    pub(super) async fn requeue_agent_tasks(&mut self, id: AgentId) -> Result<()> {
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

    pub(super) async fn on_agent_message(
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
    pub(super) fn tell(&self, agent: AgentId, code: &str, message: &str, task: Option<TaskId>) {
        if let Some((_, link)) = self.agents.get(&agent).and_then(|a| a.session.as_ref()) {
            let mut e = ErrorMessage::new(code, message);
            e.reference = task.map(|t| t.to_string());
            let _ = link.send(Message::Error(e));
        }
    }

    /// Whether `agent` holds `task` now; if not, tells it so (`not_assigned`).
    fn holds_or_say(&self, agent: AgentId, task: TaskId) -> bool {
        let holds = self.holds(agent, task);
        if !holds {
            let message = "that task is not assigned to you";
            self.tell(agent, "not_assigned", message, Some(task));
        }
        holds
    }

    /// Whether `agent` holds `task` now.
    pub(super) fn holds(&self, agent: AgentId, task: TaskId) -> bool {
        self.tasks
            .get(&task)
            .is_some_and(|e| e.task.status().is_in_flight() && e.task.agent_id == Some(agent))
    }

    pub(super) async fn on_accept(&mut self, agent: AgentId, task: TaskId) -> Result<()> {
        if !self.holds_or_say(agent, task) {
            return Ok(());
        }
        if self
            .tasks
            .get(&task)
            .is_some_and(|e| e.task.status() == TaskStatus::Assigned)
        {
            self.accept(task)?;
        }
        Ok(())
    }

    pub(super) async fn on_progress(
        &mut self,
        agent: AgentId,
        task: TaskId,
        progress: f64,
    ) -> Result<()> {
        if !self.holds_or_say(agent, task) {
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
            // Written through, so reads from the stores see the latest progress.
            Some(_) => self.save_task(task).await,
            None => Ok(()),
        }
    }

    pub(super) async fn on_reject(
        &mut self,
        agent: AgentId,
        task: TaskId,
        reason: String,
    ) -> Result<()> {
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
        let now = Instant::now();
        entry.rejected_by.push((agent, now));
        if let Some(at) = now.checked_add(self.config.exclusion_ttl) {
            self.wakeups.insert((at, task, Wakeup::Exclusion));
        }
        if entry.task.attempts >= entry.task.max_attempts {
            entry.task.error = Some(format!("rejected: {reason}"));
            self.terminate(task, TaskStatus::Failed)
        } else {
            self.back_to_pending(task, None).await
        }
    }

    pub(super) async fn on_result(
        &mut self,
        agent: AgentId,
        task: TaskId,
        result: std::result::Result<serde_json::Value, (String, bool)>,
    ) -> Result<()> {
        if !self.holds_or_say(agent, task) {
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
                self.terminate(task, TaskStatus::Completed)
            }
            Err((error, retryable)) => {
                entry.task.error = Some(error);
                if retryable && entry.task.attempts < entry.task.max_attempts {
                    let backoff = backoff(&self.config, entry.task.attempts);
                    self.back_to_pending(task, Some(backoff)).await
                } else {
                    self.terminate(task, TaskStatus::Failed)
                }
            }
        }
    }

    pub(super) async fn on_delegate(
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
        spec.traceparent = submit
            .traceparent
            .filter(|t| t.len() <= crate::trace::MAX_TRACEPARENT_LEN);
        let ack = Ack::Delegated {
            agent,
            request_id: submit.request_id,
        };
        self.submit(tenant, spec, Some(agent), ack).await;
        Ok(())
    }

    pub(super) async fn on_goodbye(&mut self, agent: AgentId) -> Result<()> {
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
    pub(super) async fn save_agent(&mut self, id: AgentId) -> Result<()> {
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

    pub(super) async fn deregister(&mut self, tenant: TenantId, id: AgentId) -> Result<bool> {
        let existed = self
            .stores
            .agents()
            .delete(&tenant.to_string(), *id.as_uuid())
            .await?;
        if existed {
            self.drop_agent(id, "deregistered").await?;
            let _ = self.changes.send(Change::Agent { tenant, id });
        }
        Ok(existed)
    }

    /// Forgets agents offline for longer than `offline_agent_ttl`: every reconnect
    /// without a known id registers a new agent, and the old ones would pile up.
    pub(super) async fn forget_long_offline(&mut self, now: Instant) {
        let Some(ttl) = self.config.offline_agent_ttl else {
            return;
        };
        let gone: Vec<(TenantId, AgentId)> = self
            .agents
            .iter()
            .filter(|(_, a)| {
                a.session.is_none()
                    && a.in_flight.is_empty()
                    && now.duration_since(a.last_seen) > ttl
            })
            .map(|(id, a)| (a.agent.tenant_id, *id))
            .collect();
        for (tenant, id) in gone {
            tracing::info!(agent = %id, "forgetting an agent offline for longer than its retention");
            if let Err(e) = self.deregister(tenant, id).await {
                tracing::warn!(error = %e, agent = %id, "forgetting an offline agent failed");
            }
        }
    }

    /// Forgets a local agent whose record is gone: closes its session and puts its
    /// tasks back to pending.
    pub(super) async fn drop_agent(&mut self, id: AgentId, reason: &str) -> Result<()> {
        if !self.agents.contains_key(&id) {
            return Ok(());
        }
        self.requeue_agent_tasks(id).await?;
        let _ = self.index.remove(candidate(id));
        if let Some(entry) = self.agents.remove(&id) {
            if let Some((_, link)) = entry.session {
                link.close(4001, reason);
            }
            let _ = self.events.send(Event::AgentDisconnected {
                tenant: entry.agent.tenant_id,
                agent: id,
            });
        }
        Ok(())
    }
}
