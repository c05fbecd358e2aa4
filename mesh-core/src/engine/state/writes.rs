//! Group commit: the task writes the engine decides while serving a batch of commands
//! and routing — new tasks, acceptances, ends, a routing pass's assignments — are made
//! durable together at the end of the loop turn ([`State::flush`]): one
//! `write_tenants` (one transaction on SQLite; on PostgreSQL each tenant's creates and
//! updates side by side, one round trip, the tenants side by side too). Only then are the writes' effects
//! seen outside: a submitter hears its task exists, an agent gets its assignment,
//! waiters hear a task ended. An acceptance has no such effect; it is written with
//! the batch, or not at all when the task's next write comes first (a crash in
//! between leaves `assigned`, which recovery treats as `accepted`).
//!
//! Up to `EngineConfig::writes_in_flight` batches are written at once; a batch leaves
//! out the tasks an earlier one still writes (they wait for the next), so each task's
//! writes reach the stores in the order they were decided.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mesh_protocol::{ErrorMessage, Message, TaskSubmitted};
use mesh_store::{Repository, StoreError, TenantWrites, Versioned};

use super::batch::{Ack, Assignment, Batch, Dispatched, NotifyOnDrop, Update, Writing, Written};
use super::{Result, State};
use crate::domain::{AgentStatus, Task, TaskId, TaskStatus, TenantId};
use crate::engine::{Change, EngineError, Event, Stores};

impl<S: Stores> State<S> {
    /// Stores a new task with the batch; `ack` hears when it is stored, or why not.
    pub(super) fn create_later(&mut self, id: TaskId, ack: Ack) {
        self.batch.created.push(id);
        self.batch.acks.push((id, ack));
    }

    /// Answers `ack` too when the task being created under `id` is stored.
    pub(super) fn ack_later(&mut self, id: TaskId, ack: Ack) {
        self.batch.acks.push((id, ack));
    }

    /// Tells who submitted a task how it went (an agent needs only the id: the task is
    /// copied for a front end only).
    pub(super) fn acknowledge(&self, ack: Ack, result: Result<&Task>) {
        match ack {
            Ack::Reply(reply) => {
                let _ = reply.send(result.cloned());
            }
            Ack::Delegated { agent, request_id } => {
                let Some((_, link)) = self.agents.get(&agent).and_then(|a| a.session.as_ref())
                else {
                    return;
                };
                let message = match result {
                    Ok(task) => {
                        Message::TaskSubmitted(TaskSubmitted::new(request_id, *task.id.as_uuid()))
                    }
                    Err(e) => {
                        let mut error = ErrorMessage::new("submit_refused", e.to_string());
                        error.reference = Some(request_id);
                        Message::Error(error)
                    }
                };
                let _ = link.send(message);
            }
        }
    }

    /// Takes an agent's acceptance: `accepted` at once in memory and in events, written
    /// with the batch, or with the task's next write if that comes first.
    pub(super) fn accept(&mut self, id: TaskId) -> Result<()> {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        entry.task.transition(TaskStatus::Accepted)?;
        let tenant = entry.task.tenant_id;
        self.batch.accepted.push(id);
        let _ = self.events.send(Event::TaskStatus {
            tenant,
            task: id,
            status: TaskStatus::Accepted,
        });
        Ok(())
    }

    /// Stores a task's end with the batch (the entry holds it; decided at `version`).
    pub(super) fn end_later(&mut self, id: TaskId, version: u64) {
        self.batch.ended.push((id, version));
    }

    /// Writes a routing pass's assignment with the batch; the agent gets it after.
    pub(super) fn assign_later(&mut self, assignment: Assignment) {
        self.batch.assigned.push(assignment);
    }

    /// Makes the batch durable and lets its effects out, waiting for it (and for the
    /// batches before it).
    pub(super) async fn flush(&mut self) {
        self.settle_writes().await;
        self.dispatch().await;
        self.settle_writes().await;
    }

    /// Whether another batch may start: fewer than `writes_in_flight` are being
    /// written, and the batch holds more than writes waiting for them.
    pub(super) fn can_dispatch(&self) -> bool {
        !self.stalled && self.writing.len() < self.config.writes_in_flight
    }

    /// Starts writing the batch on a task of its own, if another may start. The
    /// engine goes on serving commands meanwhile; the records written take their
    /// next versions at once (a store's update bumps the version by one), so what it
    /// decides next about them is written on top — by a later batch: a task being
    /// written stays out of this one (its writes stay in order; an update cannot
    /// overtake its creation). `write_done` is told when the write is over.
    pub(super) async fn dispatch(&mut self) {
        if !self.can_dispatch() || self.batch.is_empty() {
            return;
        }
        let Batch {
            created,
            acks,
            accepted,
            ended,
            assigned,
        } = self.batch.take();
        let tasks = &self.tasks;
        let being_written = |id: &TaskId| tasks.get(id).is_some_and(|e| e.writing);
        let accepted = later_if(accepted, &mut self.batch.accepted, being_written);
        let ended = later_if(ended, &mut self.batch.ended, |(id, _)| being_written(id));
        let assigned = later_if(assigned, &mut self.batch.assigned, |a| being_written(&a.id));
        // A new task routed before it was written is created assigned: one write.
        let (on_create, assigned): (Vec<Assignment>, Vec<Assignment>) = assigned
            .into_iter()
            .partition(|a| self.tasks.get(&a.id).is_some_and(|e| e.version == 0));
        let mut updates: Vec<Update> = accepted
            .into_iter()
            .filter(|id| {
                self.tasks
                    .get(id)
                    .is_some_and(|e| e.task.status() == TaskStatus::Accepted && !e.creating)
            })
            .map(Update::Accepted)
            .chain(ended.into_iter().map(|(id, v)| Update::Ended(id, v)))
            .chain(assigned.into_iter().map(Update::Assigned))
            .collect();
        if created.is_empty() && updates.is_empty() && !self.writing.is_empty() {
            // Nothing to write until a batch comes back (acks wait for their tasks).
            self.batch.acks.extend(acks);
            self.batch.assigned.extend(on_create);
            self.stalled = true;
            return;
        }
        // One statement cannot change a row twice: keep each task's last decision.
        let mut seen = HashSet::new();
        updates.reverse();
        updates.retain(|u| seen.insert(u.id()));
        updates.reverse();
        let write = self.write_batch(&created, &updates);
        let mut expected = Vec::with_capacity(updates.len());
        for update in &updates {
            let entry = self.tasks.get_mut(&update.id());
            let version = match update {
                Update::Ended(_, version) => *version,
                _ => entry.as_ref().map_or(0, |e| e.version),
            };
            if let Some(entry) = entry {
                entry.version = version + 1;
                entry.writing = true;
            }
            expected.push(version);
        }
        let mut created_ended = Vec::new();
        for id in &created {
            if let Some(entry) = self.tasks.get_mut(id) {
                entry.version = 1;
                entry.writing = true;
                if entry.task.status().is_terminal() {
                    created_ended.push(*id);
                }
            }
        }
        let batch = Dispatched {
            created,
            on_create,
            acks,
            updates,
            expected,
            created_ended,
        };
        let done = NotifyOnDrop(self.write_done.clone());
        let task = tokio::spawn(async move {
            let _done = done;
            write.await
        });
        self.writing.push_back(Writing { task, batch });
    }

    /// Waits for the writes in flight, if any, and lets their effects out — boxed,
    /// for the writes its effects make in turn (a lost agent's tasks requeued).
    pub(super) async fn settle_writes_boxed(&mut self) {
        if !self.writing.is_empty() {
            Box::pin(self.settle_writes()).await;
        }
    }

    /// Waits for every write in flight, oldest first, and lets its effects out.
    pub(super) async fn settle_writes(&mut self) {
        while let Some(writing) = self.writing.pop_front() {
            self.settle(writing).await;
        }
    }

    /// Lets out the effects of a write that told it is over (its notice comes as its
    /// future ends, so it may still be moments from finished: waited for), then of
    /// any others already over — without waiting for the rest.
    pub(super) async fn settle_finished(&mut self) {
        if self.writing.is_empty() {
            return;
        }
        let handles = self.writing.iter_mut().map(|w| &mut w.task);
        let (joined, first, _) = futures_util::future::select_all(handles).await;
        if let Some(writing) = self.writing.remove(first) {
            self.settled(writing.batch, joined).await;
        }
        while let Some(i) = self.writing.iter().position(|w| w.task.is_finished()) {
            if let Some(writing) = self.writing.remove(i) {
                self.settle(writing).await;
            }
        }
    }

    /// Waits for one write and lets its effects out.
    async fn settle(&mut self, writing: Writing) {
        let joined = writing.task.await;
        self.settled(writing.batch, joined).await;
    }

    /// A write's task ended: its results, or — a panic aside — its failure for each
    /// record.
    async fn settled(
        &mut self,
        batch: Dispatched,
        joined: std::result::Result<(Vec<Written>, Vec<Written>), tokio::task::JoinError>,
    ) {
        let results = match joined {
            Ok(results) => results,
            // A bug in a store is one in the engine task: it stops the engine, seen.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                let failed = Arc::new(StoreError::Invalid(format!("the write task failed: {e}")));
                (
                    batch.created.iter().map(|_| Err(failed.clone())).collect(),
                    batch.updates.iter().map(|_| Err(failed.clone())).collect(),
                )
            }
        };
        self.apply(batch, results).await;
    }

    /// A batch's writes came back: lets their effects out.
    async fn apply(&mut self, batch: Dispatched, results: (Vec<Written>, Vec<Written>)) {
        let Dispatched {
            created,
            on_create,
            acks,
            updates,
            expected,
            created_ended,
        } = batch;
        let (created_results, update_results) = results;
        // Their next writes may go now.
        self.stalled = false;
        for id in created
            .iter()
            .copied()
            .chain(updates.iter().map(Update::id))
        {
            if let Some(entry) = self.tasks.get_mut(&id) {
                entry.writing = false;
            }
        }
        let mut refused = HashMap::new();
        for (id, result) in created.iter().zip(created_results) {
            if let Err(e) = self.created(*id, result) {
                refused.insert(*id, e);
            }
        }
        for (id, ack) in acks {
            let result = match (self.tasks.get(&id), refused.get(&id)) {
                (Some(e), _) if !e.creating => Ok(&*e.task),
                (_, Some(e)) => Err(EngineError::from(owned(e))),
                (Some(_), None) => {
                    // Still to be stored (a creation queued after this batch's).
                    self.batch.acks.push((id, ack));
                    continue;
                }
                (None, None) => Err(EngineError::TaskNotFound(id)),
            };
            self.acknowledge(ack, result);
        }
        let mut outbox = Vec::new();
        for a in on_create {
            let written = self.tasks.get(&a.id).is_some_and(|e| !e.creating);
            self.assignment_written(a, written, &mut outbox).await;
        }
        for ((update, result), version) in updates.into_iter().zip(update_results).zip(expected) {
            if let Some(entry) = self.tasks.get_mut(&update.id()) {
                match &result {
                    Ok(saved) => {
                        entry.version = *saved;
                        let tenant = entry.task.tenant_id;
                        let _ = self.changes.send(Change::Task {
                            tenant,
                            id: update.id(),
                        });
                    }
                    // Not written: the version it was given does not hold.
                    Err(_) if entry.version == version + 1 => entry.version = version,
                    Err(_) => {}
                }
            }
            match update {
                Update::Accepted(id) => self.accept_written(id, result).await,
                Update::Ended(id, version) => self.end_written(id, version, result).await,
                Update::Assigned(a) => {
                    self.assignment_written(a, result.is_ok(), &mut outbox)
                        .await;
                }
            }
        }
        self.send_outbox(outbox).await;
        // New tasks that ended before they were written were created ended.
        for id in created_ended {
            if self.tasks.get(&id).is_some_and(|e| !e.creating) {
                self.end_stored(id).await;
            }
        }
    }

    /// Runs the batch's creates and updates in one `write_tenants` (one transaction on
    /// SQLite; on PostgreSQL each tenant's `create_many` and `update_many` side by
    /// side — they touch different rows — and the tenants side by side). A failed
    /// tenant's share gives its error for each of its records.
    fn write_batch(
        &self,
        created: &[TaskId],
        updates: &[Update],
    ) -> impl Future<Output = (Vec<Written>, Vec<Written>)> + Send + 'static {
        // The engine task hands over its records (an `Arc` each, no copy); the write
        // task copies them for the store and lets go before writing, so the engine's
        // next change to a record does not copy it.
        let mut creates: HashMap<TenantId, PerTenant<Arc<Task>>> = HashMap::new();
        for (i, id) in created.iter().enumerate() {
            if let Some(e) = self.tasks.get(id) {
                let slot = creates
                    .entry(e.task.tenant_id)
                    .or_insert_with(|| per_tenant(created.len()));
                slot.0.push(i);
                slot.1.push(e.task.share());
            }
        }
        let mut changes: HashMap<TenantId, PerTenant<(Arc<Task>, u64)>> = HashMap::new();
        for (i, update) in updates.iter().enumerate() {
            let record = match update {
                Update::Accepted(id) | Update::Assigned(Assignment { id, .. }) => {
                    self.tasks.get(id).map(|e| (e.task.share(), e.version))
                }
                Update::Ended(id, version) => {
                    self.tasks.get(id).map(|e| (e.task.share(), *version))
                }
            };
            if let Some((task, version)) = record {
                let slot = changes
                    .entry(task.tenant_id)
                    .or_insert_with(|| per_tenant(updates.len()));
                slot.0.push(i);
                slot.1.push((task, version));
            }
        }
        let gone = Arc::new(StoreError::Invalid("the task is no longer tracked".into()));
        let mut created_out: Vec<Written> = created.iter().map(|_| Err(gone.clone())).collect();
        let mut updated_out: Vec<Written> = updates.iter().map(|_| Err(gone.clone())).collect();
        let tenants: HashSet<TenantId> = creates.keys().chain(changes.keys()).copied().collect();
        // Only the stores are held across the writes (the state is not shared).
        let stores = self.stores.clone();
        async move {
            let mut shares = Vec::with_capacity(tenants.len());
            for tenant in tenants {
                let (create_at, shared) = creates.remove(&tenant).unwrap_or_default();
                let records: Vec<Task> = shared.into_iter().map(Arc::unwrap_or_clone).collect();
                let (update_at, shared) = changes.remove(&tenant).unwrap_or_default();
                let pairs: Vec<(Task, u64)> = shared
                    .into_iter()
                    .map(|(task, version)| (Arc::unwrap_or_clone(task), version))
                    .collect();
                shares.push((tenant.to_string(), create_at, records, update_at, pairs));
            }
            // Every tenant of the batch in one call: one commit on SQLite.
            let writes: Vec<TenantWrites<'_, Task>> = shares
                .iter()
                .map(|(tenant, _, creates, _, updates)| TenantWrites {
                    tenant,
                    creates,
                    updates,
                })
                .collect();
            let results = stores.tasks().write_tenants(&writes).await;
            for ((_, create_at, records, update_at, pairs), result) in shares.iter().zip(results) {
                let (made, changed) = match result {
                    Ok((made, changed)) => (Ok(made), Ok(changed)),
                    Err(e) => {
                        let e = Arc::new(e);
                        (Err(e.clone()), Err(e))
                    }
                };
                spread(made, create_at, &mut created_out, records.len());
                spread(changed, update_at, &mut updated_out, pairs.len());
            }
            (created_out, updated_out)
        }
    }

    /// A new task's write came back: stored ones join the queue and are announced;
    /// one that could not be stored is forgotten (its waiters hear why; the error is
    /// returned for its acks).
    fn created(&mut self, id: TaskId, result: Written) -> Result<(), Arc<StoreError>> {
        match result {
            Ok(version) => {
                let Some(entry) = self.tasks.get_mut(&id) else {
                    return Ok(());
                };
                entry.version = version;
                entry.creating = false;
                let (tenant, kind) = (entry.task.tenant_id, entry.task.kind.clone());
                let _ = self.changes.send(Change::Task { tenant, id });
                let _ = self.events.send(Event::TaskSubmitted {
                    tenant,
                    task: id,
                    kind,
                });
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, task = %id, "storing a new task failed");
                if let Some(mut entry) = self.tasks.remove(&id) {
                    entry.leave_queue(&mut self.pending, &mut self.wakeups);
                    if let Some(d) = entry.deadline.take() {
                        self.deadlines.remove(&(d, id));
                    }
                    for waiter in entry.waiters {
                        let _ = waiter.send(Err(EngineError::from(owned(&e))));
                    }
                }
                Err(e)
            }
        }
    }

    /// An acceptance's write came back (a written one took its version already).
    async fn accept_written(&mut self, id: TaskId, result: Written) {
        let Some(entry) = self.tasks.get(&id) else {
            return;
        };
        let tenant = entry.task.tenant_id;
        match result {
            Ok(_) => {}
            Err(e) if matches!(*e, StoreError::Conflict { .. }) => {
                // Another engine changed it first: take its version.
                if let Err(e) = self.refresh_task(tenant, id).await {
                    tracing::warn!(error = %e, task = %id, "refreshing a task failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, task = %id, "writing an acceptance failed"),
        }
    }

    /// An end's write came back: stored, the task is finished here; otherwise it is
    /// written the careful way (re-read and re-applied, transient errors retried).
    async fn end_written(&mut self, id: TaskId, version: u64, result: Written) {
        let stored = match result {
            Ok(_) => true,
            Err(_) => {
                let Some(finished) = self.tasks.get(&id).map(|e| e.task.clone()) else {
                    return;
                };
                match self.save_end(finished, version).await {
                    Ok(stored) => stored,
                    Err(e) => {
                        tracing::error!(error = %e, task = %id, "storing a task's end failed");
                        false
                    }
                }
            }
        };
        if stored {
            self.end_stored(id).await;
        }
    }

    /// A stored end: answers waiters and the delegating agent, and forgets the task.
    async fn end_stored(&mut self, id: TaskId) {
        let Some(entry) = self.tasks.remove(&id) else {
            return;
        };
        let agent = entry.task.agent_id;
        self.announce_end(entry.task.into_inner(), entry.waiters, entry.watcher);
        // A draining agent that just finished its last task becomes inactive.
        if let Some(agent_id) = agent
            && let Some(a) = self.agents.get_mut(&agent_id)
            && a.agent.status() == AgentStatus::Draining
            && a.in_flight.is_empty()
            && super::rules::walk(&mut a.agent, AgentStatus::Inactive).is_ok()
            && let Err(e) = self.save_agent(agent_id).await
        {
            tracing::warn!(error = %e, agent = %agent_id, "recording an agent inactive failed");
        }
        self.dirty = true;
    }
}

/// The items `wait` picks, put in `later` (the next batch); the rest, to write now.
fn later_if<T>(items: Vec<T>, later: &mut Vec<T>, wait: impl Fn(&T) -> bool) -> Vec<T> {
    let mut now = Vec::with_capacity(items.len());
    for item in items {
        if wait(&item) {
            later.push(item);
        } else {
            now.push(item);
        }
    }
    now
}

/// A tenant's share of a batch: the records' places in the batch, and the records.
type PerTenant<T> = (Vec<usize>, Vec<T>);

/// Room for a tenant's share of a batch of `len` (most batches have one tenant).
fn per_tenant<T>(len: usize) -> PerTenant<T> {
    (Vec::with_capacity(len), Vec::with_capacity(len))
}

/// Puts a batch call's results at their records' places; a failed call gives each
/// of its records the call's error.
fn spread(
    results: std::result::Result<Vec<mesh_store::Result<Versioned<Task>>>, Arc<StoreError>>,
    at: &[usize],
    out: &mut [Written],
    count: usize,
) {
    let failed = match results {
        Ok(results) if results.len() == count => {
            for (&i, result) in at.iter().zip(results) {
                out[i] = result.map(|saved| saved.version).map_err(Arc::new);
            }
            return;
        }
        Ok(results) => Arc::new(StoreError::Invalid(format!(
            "the store answered {} of {count} records",
            results.len()
        ))),
        Err(e) => e,
    };
    for &i in at {
        out[i] = Err(failed.clone());
    }
}

/// An owned copy of a shared store error, for a caller that takes one: the variants
/// callers match on are rebuilt, the rest wrapped.
fn owned(e: &Arc<StoreError>) -> StoreError {
    match &**e {
        StoreError::NotFound { collection, id } => StoreError::NotFound {
            collection,
            id: *id,
        },
        StoreError::AlreadyExists { collection, id } => StoreError::AlreadyExists {
            collection,
            id: *id,
        },
        StoreError::Conflict { expected, actual } => StoreError::Conflict {
            expected: *expected,
            actual: *actual,
        },
        other => StoreError::Backend {
            backend: "task store",
            retryable: other.is_retryable(),
            source: Box::new(e.clone()),
        },
    }
}
