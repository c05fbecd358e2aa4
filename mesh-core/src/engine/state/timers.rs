//! Time: attempt timeouts and deadlines, silent agents, and the periodic work of a
//! clustered engine.

use std::time::Duration;

use chrono::Utc;
use mesh_protocol::{Message, TaskCancel};
use mesh_router::Outcome;
use tokio::time::Instant;

use super::rules::{backoff, candidate};
use super::{ADOPT_EVERY, Result, State, Wakeup};
use crate::domain::{AgentId, TaskId, TaskStatus};
use crate::engine::Stores;

impl<S: Stores> State<S> {
    pub(super) async fn on_tick(&mut self) {
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
            let limit = self
                .config
                .heartbeat_interval
                .saturating_mul(self.config.missed_heartbeats);
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
            self.forget_long_offline(now).await;
        }
        if self.config.clustered && now.duration_since(self.last_adopt) >= ADOPT_EVERY {
            self.last_adopt = now;
            if let Err(e) = self.adopt_pending().await {
                tracing::warn!(error = %e, "reading pending tasks failed");
            }
        }
        self.review_pending(now).await;
    }

    /// Serves the wake-ups that are due: a backoff or an exclusion that ended may let
    /// a task route now; a task that waited the pending timeout fails as unroutable.
    async fn review_pending(&mut self, now: Instant) {
        let ttl = self.config.exclusion_ttl;
        let mut unroutable = Vec::new();
        while let Some(&(at, id, wakeup)) = self.wakeups.first() {
            if at > now {
                break;
            }
            self.wakeups.pop_first();
            let Some(entry) = self.tasks.get_mut(&id) else {
                continue;
            };
            match wakeup {
                Wakeup::Backoff => self.dirty = true,
                Wakeup::Exclusion => {
                    entry
                        .rejected_by
                        .retain(|(_, since)| now.saturating_duration_since(*since) < ttl);
                    self.dirty = true;
                }
                Wakeup::Unroutable => {
                    if entry.unroutable_at == Some(at) && entry.queue_key.is_some() {
                        entry.unroutable_at = None;
                        let waited = self.config.pending_timeout.unwrap_or_default();
                        entry.task.error = Some(format!(
                            "unroutable: no eligible agent took it within {}s",
                            waited.as_secs()
                        ));
                        unroutable.push(id);
                    }
                }
            }
        }
        for id in unroutable {
            if let Err(e) = self.terminate(id, TaskStatus::Failed) {
                tracing::error!(error = %e, task = %id, "failing an unroutable task failed");
            }
        }
    }

    /// A task's attempt (or its absolute deadline) ran out.
    pub(super) async fn expire(&mut self, id: TaskId) -> Result<()> {
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
            return self.terminate(id, TaskStatus::TimedOut);
        }
        if past_deadline {
            if let Some(entry) = self.tasks.get_mut(&id) {
                entry.task.error = Some("deadline passed before an agent took it".into());
            }
            return self.terminate(id, TaskStatus::TimedOut);
        }
        Ok(())
    }
}
