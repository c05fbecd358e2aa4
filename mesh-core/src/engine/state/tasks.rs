//! Tasks: submission (checked here, once, for every front end), status changes written
//! through the stores, waiting, cancelling, and the end of a task.

use std::cmp::Reverse;
use std::hash::BuildHasher;
use std::time::Duration;

use chrono::Utc;
use mesh_protocol::{Message, TaskCancel, TaskUpdate};
use mesh_store::{Repository, StoreError};
use tokio::time::Instant;

use super::batch::Ack;
use super::rules::{candidate, finish_status, wire_status};
use super::shared::Shared;
use super::{Result, State, TaskEntry, Wakeup};
use crate::domain::{AgentId, SYSTEM_TENANT, Task, TaskId, TaskSpec, TaskStatus, Tenant, TenantId};
use crate::engine::command::Reply;
use crate::engine::{Change, EngineError, Event, Stores};

impl<S: Stores> State<S> {
    /// Starts tracking a task in memory; pending ones join the queue. Version 0 means
    /// not stored yet: a creation in the batch (routed before it is written, it is
    /// created assigned).
    pub(super) fn track(&mut self, task: Task, version: u64, watcher: Option<AgentId>) {
        let signature = foldhash::fast::FixedState::default().hash_one((
            task.tenant_id,
            &task.kind,
            &task.required_capabilities,
        ));
        let id = task.id;
        let deadline = task.deadline.map(|d| {
            let left = (d - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            Instant::now() + left
        });
        let entry = TaskEntry {
            task: Shared::new(task),
            version,
            signature,
            queue_key: None,
            assigned_at: None,
            deadline,
            not_before: None,
            unroutable_at: None,
            rejected_by: Vec::new(),
            watcher,
            waiters: Vec::new(),
            attempt_span: None,
            creating: version == 0,
            writing: false,
        };
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        let pending = entry.task.status() == TaskStatus::Pending;
        self.tasks.insert(id, entry);
        if pending {
            self.enqueue(id);
        }
    }

    /// Puts a tracked task at the back of the pending queue of its priority.
    pub(super) fn enqueue(&mut self, id: TaskId) {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        self.seq += 1;
        let key = (Reverse(entry.task.priority), self.seq, id);
        if let Some(old) = entry.queue_key.replace(key) {
            self.pending.remove(&old);
        }
        if let Some(at) = entry.unroutable_at.take() {
            self.wakeups.remove(&(at, id, Wakeup::Unroutable));
        }
        if let Some(limit) = self.config.pending_timeout
            && let Some(at) = Instant::now().checked_add(limit)
        {
            entry.unroutable_at = Some(at);
            self.wakeups.insert((at, id, Wakeup::Unroutable));
        }
        self.pending.insert(key);
        self.fresh.push(key);
    }

    /// Submits a task: it is stored with the batch, and `ack` hears of it then (or
    /// at once, when the spec is refused).
    pub(super) async fn submit(
        &mut self,
        tenant: TenantId,
        spec: TaskSpec,
        watcher: Option<AgentId>,
        ack: Ack,
    ) {
        match self.create_task(tenant, None, spec, watcher).await {
            Ok(id) => self.create_later(id, ack),
            Err(e) => self.acknowledge(ack, Err(e)),
        }
    }

    /// Submits under `id` unless the tenant has that task already (tracked here, or
    /// stored by any instance): then `ack` gets it as it is (once stored).
    pub(super) async fn submit_once(
        &mut self,
        tenant: TenantId,
        id: TaskId,
        spec: TaskSpec,
        ack: Ack,
    ) {
        if let Some(entry) = self.tasks.get(&id) {
            match entry.task.tenant_id == tenant {
                true if entry.creating => self.ack_later(id, ack),
                true => self.acknowledge(ack, Ok(&*entry.task)),
                false => self.acknowledge(ack, Err(EngineError::Contended(id))),
            }
            return;
        }
        let stored = self
            .stores
            .tasks()
            .get(&tenant.to_string(), *id.as_uuid())
            .await;
        match stored {
            Ok(Some(stored)) => self.acknowledge(ack, Ok(&stored.record)),
            Ok(None) => match self.create_task(tenant, Some(id), spec, None).await {
                Ok(id) => self.create_later(id, ack),
                Err(e) => self.acknowledge(ack, Err(e)),
            },
            Err(e) => self.acknowledge(ack, Err(e.into())),
        }
    }

    /// Checks a spec and tracks its task in memory, to be stored with the batch.
    async fn create_task(
        &mut self,
        tenant: TenantId,
        id: Option<TaskId>,
        spec: TaskSpec,
        watcher: Option<AgentId>,
    ) -> Result<TaskId> {
        self.check(&spec)?;
        let mut task = Task::new(tenant, spec.kind, spec.input);
        if let Some(id) = id {
            task.id = id;
        }
        task.required_capabilities = spec.required_capabilities.into_iter().collect();
        task.priority = spec.priority;
        task.routing = spec.routing;
        task.router = spec.router;
        task.max_attempts = spec.max_attempts.unwrap_or(self.config.max_attempts).max(1);
        task.timeout_ms = spec.timeout_ms;
        task.deadline = spec.deadline;
        task.parent = spec.parent;
        task.traceparent = spec.traceparent;
        if let Some(parent) = spec.parent {
            self.add_child(tenant, parent, task.id).await?;
        }
        self.remember_tenant(tenant).await?;
        let id = task.id;
        self.track(task, 0, watcher);
        Ok(id)
    }

    /// Checks a spec against [`TaskSpec`]'s bounds, whatever front end sent it.
    fn check(&self, spec: &TaskSpec) -> Result<()> {
        if spec.kind.trim().is_empty() || spec.kind.len() > TaskSpec::MAX_KIND_LEN {
            return Err(EngineError::InvalidKind);
        }
        let count = spec.required_capabilities.len();
        if count > TaskSpec::MAX_REQUIRED_CAPABILITIES {
            return Err(EngineError::TooManyRequirements { count });
        }
        if let Some(attempts) = spec.max_attempts
            && !(1..=TaskSpec::MAX_ATTEMPTS).contains(&attempts)
        {
            return Err(EngineError::InvalidMaxAttempts(attempts));
        }
        if let Some(ms) = spec.timeout_ms
            && !(1..=TaskSpec::MAX_TIMEOUT_MS).contains(&ms)
        {
            return Err(EngineError::InvalidTimeout(ms));
        }
        if let Some(name) = &spec.router
            && !self.routers.has(name)
        {
            return Err(EngineError::UnknownRouter(name.clone()));
        }
        Ok(())
    }

    /// Records a tenant the engine has seen, so restarts and sweeps find its records.
    pub(super) async fn remember_tenant(&mut self, tenant: TenantId) -> Result<()> {
        if self.tenants.insert(tenant) {
            match self
                .stores
                .tenants()
                .create(SYSTEM_TENANT, &Tenant::seen(tenant))
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

    pub(super) async fn add_child(
        &mut self,
        tenant: TenantId,
        parent: TaskId,
        child: TaskId,
    ) -> Result<()> {
        self.settle_writes_boxed().await;
        if let Some(entry) = self
            .tasks
            .get_mut(&parent)
            .filter(|e| e.task.tenant_id == tenant)
        {
            entry.task.children.push(child);
            if entry.creating {
                return Ok(()); // stored with its creation
            }
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
            return Err(EngineError::ParentNotFound(parent));
        };
        stored.record.children.push(child);
        self.stores
            .tasks()
            .update(&key, &stored.record, stored.version)
            .await?;
        let _ = self.changes.send(Change::Task { tenant, id: parent });
        Ok(())
    }

    /// Writes a task's record through the store (one not stored yet is stored as it
    /// is with the batch).
    pub(super) async fn save_task(&mut self, id: TaskId) -> Result<()> {
        // On top of the batch being written, if that writes the task too.
        self.settle_writes_boxed().await;
        let Some(entry) = self.tasks.get_mut(&id).filter(|e| !e.creating) else {
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

    pub(super) async fn set_status(&mut self, id: TaskId, status: TaskStatus) -> Result<()> {
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
    pub(super) async fn back_to_pending(
        &mut self,
        id: TaskId,
        delay: Option<Duration>,
    ) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        if entry.task.status().is_terminal() {
            return Ok(());
        }
        if let Some(d) = entry.assigned_at.take().and(entry.deadline) {
            self.deadlines.remove(&(d, id));
        }
        entry.end_attempt(TaskStatus::Pending);
        if entry.task.status() != TaskStatus::Pending {
            entry.task.transition(TaskStatus::Pending)?;
            entry.task.agent_id = None;
            entry.task.progress = None;
        }
        entry.not_before = delay.map(|d| Instant::now() + d);
        if let Some(at) = entry.not_before {
            self.wakeups.insert((at, id, Wakeup::Backoff));
        }
        // Restore the absolute deadline, if the task has one.
        entry.deadline = entry
            .task
            .deadline
            .map(|d| Instant::now() + (d - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        if let Some(d) = entry.deadline {
            self.deadlines.insert((d, id));
        }
        let tenant = entry.task.tenant_id;
        self.enqueue(id);
        self.save_task(id).await?;
        let _ = self.events.send(Event::TaskStatus {
            tenant,
            task: id,
            status: TaskStatus::Pending,
        });
        self.dirty = true;
        Ok(())
    }

    /// Ends a task: the end holds in memory at once (the task leaves the queue and its
    /// timers) and is written with the batch; waiters and the delegating agent hear of
    /// it once it is stored, and the task is forgotten then. A task whose end is
    /// being written is left as it is.
    pub(super) fn terminate(&mut self, id: TaskId, status: TaskStatus) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        if entry.task.status().is_terminal() {
            return Ok(());
        }
        finish_status(&mut entry.task, status)?;
        entry.leave_queue(&mut self.pending, &mut self.wakeups);
        if let Some(d) = entry.deadline.take() {
            self.deadlines.remove(&(d, id));
        }
        entry.end_attempt(status);
        let version = entry.version;
        // One whose creation is not dispatched yet is stored ended, by it.
        if version > 0 {
            self.end_later(id, version);
        }
        Ok(())
    }

    /// Writes a task's end (`finished`, read at `version`) to the stores. On a version
    /// conflict — another instance changed the record, say by adding a sub-task — it
    /// re-reads it and applies the end again if the same attempt still holds the task
    /// (a cancellation: if it has not ended); transient errors are retried. True once saved (the entry then holds it);
    /// false if the task ended or moved on elsewhere (the entry is refreshed instead).
    pub(super) async fn save_end(&mut self, mut finished: Task, mut version: u64) -> Result<bool> {
        let (tenant, id) = (finished.tenant_id, finished.id);
        let key = tenant.to_string();
        let mut transient = 0;
        for _ in 0..super::CAS_ATTEMPTS {
            match self.stores.tasks().update(&key, &finished, version).await {
                Ok(saved) => {
                    if let Some(entry) = self.tasks.get_mut(&id) {
                        entry.task = Shared::new(finished);
                        entry.version = saved.version;
                    }
                    let _ = self.changes.send(Change::Task { tenant, id });
                    return Ok(true);
                }
                Err(StoreError::Conflict { .. }) => {
                    let Some(stored) = self.stores.tasks().get(&key, *id.as_uuid()).await? else {
                        return Ok(false);
                    };
                    // A cancellation applies to whatever the task became; a result
                    // only while the same attempt still holds it.
                    let applies = !stored.record.status().is_terminal()
                        && (finished.status() == TaskStatus::Cancelled
                            || (stored.record.attempts == finished.attempts
                                && stored.record.agent_id == finished.agent_id));
                    if !applies {
                        self.refresh_task(tenant, id).await?;
                        return Ok(false);
                    }
                    let mut again = stored.record;
                    finish_status(&mut again, finished.status())?;
                    again.output = finished.output.take();
                    again.error = finished.error.take();
                    again.progress = finished.progress;
                    (finished, version) = (again, stored.version);
                }
                Err(e) if e.is_retryable() && transient < 3 => {
                    transient += 1;
                    tracing::warn!(error = %e, task = %id, "saving a task's end failed; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << transient)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contended(id))
    }

    /// Tells whoever waits on a finished task that it ended. The task is moved, not
    /// copied, to the last who needs it — the last waiter, or the delegating agent's
    /// `task_update` when nobody waits — so its output is not copied on the engine
    /// task nor freed there.
    pub(super) fn announce_end(
        &self,
        mut task: Task,
        waiters: Vec<super::Reply<Task>>,
        watcher: Option<AgentId>,
    ) {
        let _ = self.events.send(Event::TaskStatus {
            tenant: task.tenant_id,
            task: task.id,
            status: task.status(),
        });
        if let Some((_, link)) = watcher
            .and_then(|w| self.agents.get(&w))
            .and_then(|a| a.session.as_ref())
        {
            let mut update = TaskUpdate::new(*task.id.as_uuid(), wire_status(task.status()));
            if waiters.is_empty() {
                update.output = task.output.take();
                update.error = task.error.take();
            } else {
                update.output = task.output.clone();
                update.error = task.error.clone();
            }
            let _ = link.send(Message::TaskUpdate(update));
        }
        let mut waiters = waiters.into_iter().peekable();
        while let Some(waiter) = waiters.next() {
            if waiters.peek().is_none() {
                let _ = waiter.send(Ok(task));
                break;
            }
            let _ = waiter.send(Ok(task.clone()));
        }
    }

    pub(super) async fn get(&mut self, tenant: TenantId, id: TaskId) -> Result<Option<Task>> {
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

    pub(super) async fn wait(&mut self, tenant: TenantId, id: TaskId, reply: Reply<Task>) {
        if let Some(entry) = self
            .tasks
            .get_mut(&id)
            .filter(|e| e.task.tenant_id == tenant)
        {
            entry.add_waiter(reply);
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
                entry.add_waiter(reply);
            }
            return;
        }
        let _ = reply.send(match found {
            Ok(Some(v)) => Ok(v.record),
            Ok(None) => Err(EngineError::TaskNotFound(id)),
            Err(e) => Err(e.into()),
        });
    }

    pub(super) async fn cancel(&mut self, tenant: TenantId, id: TaskId) -> Result<Task> {
        match self.cancel_tracked(tenant, id).await {
            // Another engine moved the task meanwhile: cancel what is stored.
            Err(e) if e.is_conflict() => self.cancel_stored(tenant, id).await,
            other => other,
        }
    }

    pub(super) async fn cancel_tracked(&mut self, tenant: TenantId, id: TaskId) -> Result<Task> {
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
        self.terminate(id, TaskStatus::Cancelled)?;
        self.get(tenant, id)
            .await?
            .ok_or(EngineError::TaskNotFound(id))
    }
}
