//! The lifecycles of agents and tasks: their statuses and which transitions the
//! rules allow. [`Agent`](super::Agent) and [`Task`](super::Task) move only along them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an agent is in its lifecycle.
///
/// ```text
/// offline → starting → active → draining → inactive
///                        ↕ maintenance, error, stopping (see `can_transition_to`)
/// ```
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentStatus {
    /// Not connected.
    Offline,
    /// Connected, handshake in progress.
    Starting,
    /// Ready for work.
    Active,
    /// Finishing its tasks; gets no new ones (it sent `goodbye`).
    Draining,
    /// Registered and idle, not accepting work.
    Inactive,
    /// Taken out of rotation by an operator.
    Maintenance,
    /// Failed; needs an operator or a restart.
    Error,
    /// Shutting down.
    Stopping,
}

impl AgentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [AgentStatus; 8] = [
        Self::Offline,
        Self::Starting,
        Self::Active,
        Self::Draining,
        Self::Inactive,
        Self::Maintenance,
        Self::Error,
        Self::Stopping,
    ];

    /// The statuses this one may move to.
    pub const fn successors(self) -> &'static [AgentStatus] {
        use AgentStatus::*;
        match self {
            Offline => &[Starting],
            Starting => &[Active, Error],
            Active => &[Draining, Maintenance, Error, Stopping],
            Draining => &[Inactive, Error],
            Inactive => &[Active, Maintenance, Stopping],
            Maintenance => &[Active, Inactive, Stopping],
            Error => &[Stopping, Maintenance],
            Stopping => &[Offline],
        }
    }

    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_transition_to(self, to: AgentStatus) -> bool {
        self.successors().contains(&to)
    }

    /// Whether an agent in this status may be given new tasks.
    pub const fn accepts_work(self) -> bool {
        matches!(self, Self::Active)
    }

    /// The snake_case name used on the wire and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Starting => "starting",
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Inactive => "inactive",
            Self::Maintenance => "maintenance",
            Self::Error => "error",
            Self::Stopping => "stopping",
        }
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a task is in its lifecycle. The names are the wire statuses of the protocol.
///
/// ```text
/// pending → assigned → accepted → in_progress → completed | failed
///    ↑_________|___________|___________|   (rejected, agent lost, retry)
/// any non-terminal status → cancelled | timed_out
/// ```
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// Waiting for an agent.
    Pending,
    /// Sent to an agent that has not answered yet.
    Assigned,
    /// The agent took it.
    Accepted,
    /// The agent reported progress.
    InProgress,
    /// Finished with an output.
    Completed,
    /// Finished with an error, retries used up or not retryable.
    Failed,
    /// Cancelled by a client.
    Cancelled,
    /// Its deadline passed, or it timed out on its last attempt.
    TimedOut,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TaskStatus; 8] = [
        Self::Pending,
        Self::Assigned,
        Self::Accepted,
        Self::InProgress,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::TimedOut,
    ];

    /// The statuses this one may move to.
    ///
    /// `pending` is reachable again from every in-flight status: that is how a rejection,
    /// a lost agent or a retryable failure puts a task back for reassignment. An agent may
    /// complete or fail an accepted task without reporting progress first.
    pub const fn successors(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Pending => &[Assigned, Failed, Cancelled, TimedOut],
            Assigned => &[Accepted, Pending, Cancelled, TimedOut],
            Accepted => &[InProgress, Completed, Failed, Pending, Cancelled, TimedOut],
            InProgress => &[Completed, Failed, Pending, Cancelled, TimedOut],
            Completed | Failed | Cancelled | TimedOut => &[],
        }
    }

    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_transition_to(self, to: TaskStatus) -> bool {
        self.successors().contains(&to)
    }

    /// Whether the task is finished for good.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::TimedOut
        )
    }

    /// Whether an agent currently holds the task.
    pub const fn is_in_flight(self) -> bool {
        matches!(self, Self::Assigned | Self::Accepted | Self::InProgress)
    }

    /// The snake_case name used on the wire and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Assigned => "assigned",
            Self::Accepted => "accepted",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
