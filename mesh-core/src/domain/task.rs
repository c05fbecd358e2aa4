//! Tasks and their lifecycle.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AgentId, Error, TaskId, TaskStatus, TenantId};

/// How urgent a task is; routing favours speed for `high` and `critical`.
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Priority {
    /// Background work.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Should run soon.
    High,
    /// Should run now.
    Critical,
}

/// Which routing strategy picks the agent for a task.
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoutingPreference {
    /// Let the default policy choose from the task's priority and cost sensitivity.
    #[default]
    Auto,
    /// Rotate through eligible agents.
    RoundRobin,
    /// The eligible agent with the most spare capacity.
    LeastLoaded,
    /// The agent whose capabilities fit the task best.
    CapabilityMatch,
    /// The cheapest expected cost.
    CostOptimized,
    /// The best observed success and speed.
    Performance,
    /// A bandit that learns per task kind.
    Learning,
}

/// A unit of work routed to one agent.
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Task {
    /// The task's id.
    pub id: TaskId,
    /// The tenant that owns the task.
    pub tenant_id: TenantId,
    /// The task's type; an eligible agent has it among its capabilities.
    pub kind: String,
    /// Input handed to the agent as is.
    pub input: serde_json::Value,
    /// How urgent it is.
    pub priority: Priority,
    /// Capabilities the agent needs besides `kind`.
    pub required_capabilities: BTreeSet<String>,
    /// Which routing strategy to use.
    pub routing: RoutingPreference,
    /// A custom router registered with the engine under this name; overrides
    /// `routing` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<String>,
    /// Where the task is; change it with [`Task::transition`].
    status: TaskStatus,
    /// The agent holding the task, if any.
    pub agent_id: Option<AgentId>,
    /// How many times it has been assigned.
    pub attempts: u32,
    /// How many assignments it gets before it fails for good.
    pub max_attempts: u32,
    /// When it must be finished by, if ever.
    pub deadline: Option<DateTime<Utc>>,
    /// The task that delegated this one, if any.
    pub parent: Option<TaskId>,
    /// Tasks this one delegated.
    pub children: Vec<TaskId>,
    /// The agent's output, once completed.
    pub output: Option<serde_json::Value>,
    /// Why it failed, once failed.
    pub error: Option<String>,
    /// The last progress the agent reported, 0 to 1.
    #[serde(default)]
    pub progress: Option<f64>,
    /// How long one attempt may take, in milliseconds (the engine's default if `None`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The W3C trace context it was submitted in, when traced: agents' work on it
    /// joins that trace, on any instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

impl Task {
    /// The default for `max_attempts`.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

    /// A new pending task of `kind` with `input`, normal priority and default routing.
    pub fn new(tenant_id: TenantId, kind: impl Into<String>, input: serde_json::Value) -> Self {
        let now = Utc::now();
        Self {
            id: TaskId::new(),
            tenant_id,
            kind: kind.into(),
            input,
            priority: Priority::default(),
            required_capabilities: BTreeSet::new(),
            routing: RoutingPreference::default(),
            router: None,
            status: TaskStatus::Pending,
            agent_id: None,
            attempts: 0,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            deadline: None,
            parent: None,
            children: Vec::new(),
            output: None,
            error: None,
            progress: None,
            timeout_ms: None,
            traceparent: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The task's current status.
    pub fn status(&self) -> TaskStatus {
        self.status
    }

    /// Moves the task to `to`, or explains why the lifecycle forbids it.
    ///
    /// This checks and records the status only; the engine sets `agent_id`, `output`
    /// and `error` alongside.
    pub fn transition(&mut self, to: TaskStatus) -> Result<(), Error> {
        if !self.status.can_transition_to(to) {
            return Err(Error::InvalidTaskTransition {
                from: self.status,
                to,
            });
        }
        self.status = to;
        self.updated_at = Utc::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    /// The lifecycle written out independently of `successors`.
    const ALLOWED: &[(TaskStatus, TaskStatus)] = &[
        (Pending, Assigned),
        (Pending, Failed),
        (Pending, Cancelled),
        (Pending, TimedOut),
        (Assigned, Accepted),
        (Assigned, Pending),
        (Assigned, Cancelled),
        (Assigned, TimedOut),
        (Accepted, InProgress),
        (Accepted, Completed),
        (Accepted, Failed),
        (Accepted, Pending),
        (Accepted, Cancelled),
        (Accepted, TimedOut),
        (InProgress, Completed),
        (InProgress, Failed),
        (InProgress, Pending),
        (InProgress, Cancelled),
        (InProgress, TimedOut),
    ];

    fn task_in(status: TaskStatus) -> Task {
        let mut task = Task::new(TenantId::new(), "summarize", serde_json::json!({}));
        task.status = status;
        task
    }

    #[test]
    fn every_pair_of_statuses_is_allowed_or_refused_as_specified() {
        let mut allowed = 0;
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let mut task = task_in(from);
                let result = task.transition(to);
                if ALLOWED.contains(&(from, to)) {
                    allowed += 1;
                    assert_eq!(result, Ok(()), "{from} → {to} should be allowed");
                    assert_eq!(task.status(), to);
                } else {
                    assert_eq!(
                        result,
                        Err(Error::InvalidTaskTransition { from, to }),
                        "{from} → {to} should be refused"
                    );
                    assert_eq!(task.status(), from, "a refused transition changes nothing");
                }
            }
        }
        assert_eq!(allowed, ALLOWED.len());
    }

    #[test]
    fn cancellation_is_possible_from_every_non_terminal_status() {
        for from in TaskStatus::ALL {
            assert_eq!(from.can_transition_to(Cancelled), !from.is_terminal());
        }
    }

    #[test]
    fn a_rejected_task_goes_back_to_pending_and_can_be_reassigned() {
        let mut task = task_in(Pending);
        for to in [Assigned, Pending, Assigned, Accepted, InProgress, Completed] {
            task.transition(to).unwrap();
        }
        assert!(task.status().is_terminal());
    }

    #[test]
    fn statuses_serialize_as_the_wire_names() {
        let names: Vec<_> = TaskStatus::ALL
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "pending",
                "assigned",
                "accepted",
                "in_progress",
                "completed",
                "failed",
                "cancelled",
                "timed_out"
            ]
        );
        for status in TaskStatus::ALL {
            assert_eq!(status.to_string(), status.as_str());
        }
    }

    #[test]
    fn a_task_round_trips_through_json() {
        let mut task = Task::new(
            TenantId::new(),
            "translate",
            serde_json::json!({"text": "hi"}),
        );
        task.priority = Priority::Critical;
        task.required_capabilities.insert("french".into());
        task.transition(Assigned).unwrap();
        let json = serde_json::to_string(&task).unwrap();
        let back: Task = serde_json::from_str(&json).unwrap();
        assert_eq!(back, task);
        assert_eq!(back.status(), Assigned);
    }
}
