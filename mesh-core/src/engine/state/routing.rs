//! Routing: which pending tasks to look at, and handing one to the agent a router
//! picks.

use std::collections::HashSet;
use std::time::Duration;

use std::sync::Arc;

use mesh_protocol::{Message, TaskAssign};
use mesh_router::RouteRequest;
use tokio::time::Instant;

use super::batch::{Assignment, Outbox};
use super::rules::{agent_of, candidate, router_priority, tenant_capability};
use super::{QueueKey, Result, State};
use crate::domain::{AgentId, RoutingPreference, Task, TaskId, TaskStatus};
use crate::engine::{Event, Stores};

impl<S: Stores> State<S> {
    /// Plans a routing pass: which pending tasks go to which agents, in memory; the
    /// assignments are written with the batch and sent after.
    pub(super) fn route_pending(&mut self) {
        let room = Vec::with_capacity(self.fresh.len());
        let mut fresh = std::mem::replace(&mut self.fresh, room);
        let queue: Vec<QueueKey> = if std::mem::take(&mut self.dirty) {
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
            match self.plan(id) {
                Ok(Some(assignment)) => self.assign_later(assignment),
                Ok(None) => {
                    blocked.insert(signature);
                }
                Err(e) => tracing::error!(error = %e, task = %id, "assigning a task failed"),
            }
        }
    }

    /// Routes one pending task: picks the agent and moves the task to `assigned` in
    /// memory; `None` if no agent can take it now. Written with the batch and sent
    /// after ([`assignment_written`](Self::assignment_written)).
    fn plan(&mut self, id: TaskId) -> Result<Option<Assignment>> {
        let Some(entry) = self.tasks.get(&id) else {
            return Ok(None);
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
            .exclude(entry.rejected_by.iter().map(|(a, _)| candidate(*a)));
        let router = self.routers.for_task(task.router.as_deref(), task.routing);
        let chosen = match self.index.dispatch(router, &request) {
            Ok(chosen) => chosen,
            Err(why) => {
                metrics::counter!("mesh_routing_failures_total", "reason" => failure_reason(&why))
                    .increment(1);
                return Ok(None);
            }
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
            return Ok(None);
        };
        let timeout = entry
            .task
            .timeout_ms
            .map_or(self.config.task_timeout, Duration::from_millis);
        let Some(entry) = self.tasks.get_mut(&id) else {
            return Ok(None);
        };
        entry.task.transition(TaskStatus::Assigned)?;
        entry.task.agent_id = Some(agent_id);
        entry.task.attempts += 1;
        let now = Instant::now();
        entry.assigned_at = Some(now);
        entry.not_before = None;
        entry.leave_queue(&mut self.pending, &mut self.wakeups);
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
        // What this attempt has: its timeout, or less when the task's deadline is nearer.
        let left = deadline.saturating_duration_since(now);
        assign.deadline_ms = Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        Ok(Some(Assignment {
            id,
            tenant: entry.task.tenant_id,
            agent: agent_id,
            chosen,
            link,
            assign,
        }))
    }

    /// An assignment's write came back: written, its message joins the agent's in
    /// `outbox` (each agent gets its new tasks at once, in batch frames); not written
    /// (another engine changed the task first, or the batch failed), the agent's slot
    /// is released and the attempt's deadline puts the task back in the queue. One
    /// written for a connection that closed meanwhile goes back to the queue at once.
    pub(super) async fn assignment_written(
        &mut self,
        assignment: Assignment,
        written: bool,
        outbox: &mut Outbox,
    ) {
        // Ended or moved on meanwhile: whatever did that released the slot.
        let held = self.tasks.get(&assignment.id).is_some_and(|e| {
            e.task.status() == TaskStatus::Assigned && e.task.agent_id == Some(assignment.agent)
        });
        if !held {
            return;
        }
        let connected = self
            .agents
            .get(&assignment.agent)
            .and_then(|a| a.session.as_ref())
            .is_some_and(|(_, link)| Arc::ptr_eq(link, &assignment.link));
        if written && connected {
            self.assigned(assignment, outbox);
            return;
        }
        let _ = self.index.release(assignment.chosen);
        if written && let Err(e) = self.back_to_pending(assignment.id, None).await {
            tracing::warn!(error = %e, task = %assignment.id, "requeueing a task failed");
        }
    }

    /// Sends each agent its messages of the batch together.
    pub(super) async fn send_outbox(&mut self, outbox: Outbox) {
        for (agent, link, messages) in outbox {
            if let Err(e) = link.send_all(messages) {
                tracing::warn!(error = %e, %agent, "agent cannot take messages; dropping it");
                if let Err(e) = self.agent_lost(agent).await {
                    tracing::error!(error = %e, %agent, "handling a lost agent failed");
                }
            }
        }
    }

    /// A written assignment: the agent holds the task; its message joins the agent's
    /// in `outbox`.
    fn assigned(&mut self, assignment: Assignment, outbox: &mut Outbox) {
        let Assignment {
            id,
            tenant,
            agent,
            link,
            mut assign,
            ..
        } = assignment;
        let agent_name = match self.agents.get_mut(&agent) {
            Some(a) => {
                a.in_flight.insert(id);
                a.agent.name.clone()
            }
            None => String::new(),
        };
        if let Some(entry) = self.tasks.get_mut(&id) {
            let (span, traceparent) = attempt_trace(&entry.task, agent, &agent_name);
            entry.attempt_span = span;
            assign.traceparent = traceparent;
        }
        let _ = self.events.send(Event::TaskAssigned {
            tenant,
            task: id,
            agent,
            agent_name,
            attempt: assign.attempt,
        });
        let message = Message::TaskAssign(assign);
        match outbox.iter_mut().find(|(a, _, _)| *a == agent) {
            Some((_, _, messages)) => messages.push(message),
            None => outbox.push((agent, link, vec![message])),
        }
    }
}

/// An attempt's `invoke_agent` span, when the task's trace is sampled, and the
/// `traceparent` to send the agent: the span's context, else the task's as it came.
/// An untraced task costs nothing here.
fn attempt_trace(
    task: &Task,
    agent: AgentId,
    agent_name: &str,
) -> (Option<tracing::Span>, Option<String>) {
    let Some(parent) = task.traceparent.as_deref() else {
        return (None, None);
    };
    if !crate::trace::is_sampled(parent) {
        return (None, Some(parent.to_owned()));
    }
    let span = tracing::info_span!(
        parent: None,
        "invoke_agent",
        otel.name = format!("invoke_agent {agent_name}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = agent_name,
        gen_ai.agent.id = %agent,
        mesh.task.id = %task.id,
        mesh.task.kind = %task.kind,
        mesh.task.attempt = task.attempts,
        mesh.routing.strategy = ?task.routing,
        mesh.task.outcome = tracing::field::Empty,
    );
    crate::trace::set_parent(&span, parent);
    let traceparent = crate::trace::of(&span).unwrap_or_else(|| parent.to_owned());
    (Some(span), Some(traceparent))
}

/// Why routing found no agent, as a metric label.
fn failure_reason(error: &mesh_router::RouteError) -> &'static str {
    use mesh_router::RouteError;
    match error {
        RouteError::NoCapableCandidate { .. } => "no_capable_agent",
        RouteError::AllSaturated { .. } => "all_saturated",
        RouteError::AllBreakersOpen { .. } => "all_breakers_open",
        RouteError::TenantRateLimited { .. } => "tenant_rate_limited",
        RouteError::AllRateLimited { .. } => "all_rate_limited",
        RouteError::NoneAvailable { .. } => "none_available",
        _ => "other",
    }
}
