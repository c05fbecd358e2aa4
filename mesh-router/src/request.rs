//! What is being routed, and what came of it.

use std::time::{Duration, Instant};

use crate::Capability;

/// How urgent a request is; `high` and `critical` favour speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

impl Priority {
    /// Whether speed should weigh more than usual.
    pub fn is_urgent(self) -> bool {
        self >= Priority::High
    }
}

/// A request to route: the task kind, the capabilities it needs and prefers, and how to
/// weigh speed against cost.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RouteRequest {
    /// The task kind; an eligible candidate has it among its capabilities.
    pub kind: String,
    /// Capabilities a candidate must also have.
    pub required: Vec<String>,
    /// Capabilities that make a candidate a better match (capability-match scores them).
    pub preferred: Vec<String>,
    /// How urgent the task is.
    pub priority: Priority,
    /// Whether cost matters more than speed.
    pub cost_sensitive: bool,
    /// The tenant (or API key) whose rate limit applies.
    pub tenant: Option<String>,
    /// Candidates not to choose (for example, ones that already rejected the task).
    pub exclude: Vec<crate::CandidateId>,
}

impl RouteRequest {
    /// A request for a task of `kind`.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            ..Self::default()
        }
    }

    /// Adds required capabilities.
    pub fn require(mut self, caps: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.required.extend(caps.into_iter().map(Into::into));
        self
    }

    /// Adds preferred capabilities.
    pub fn prefer(mut self, caps: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.preferred.extend(caps.into_iter().map(Into::into));
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Marks the request as cost-sensitive.
    pub fn cost_sensitive(mut self, yes: bool) -> Self {
        self.cost_sensitive = yes;
        self
    }

    /// Excludes candidates from the choice.
    pub fn exclude(mut self, ids: impl IntoIterator<Item = crate::CandidateId>) -> Self {
        self.exclude.extend(ids);
        self
    }

    /// Sets the tenant key for rate limiting.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
}

/// A request with its capabilities interned, ready for a strategy.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub(crate) kind: Capability,
    /// `kind` and every required capability, sorted, without duplicates.
    pub(crate) all: Vec<Capability>,
    /// Preferred capabilities some candidate has, rarest first.
    pub(crate) preferred: Vec<Capability>,
    /// The capability of `all` with the fewest candidates: the list scans start from.
    pub(crate) rarest: Capability,
    pub(crate) priority: Priority,
    pub(crate) cost_sensitive: bool,
    pub(crate) exclude: Vec<crate::CandidateId>,
    pub(crate) now: Instant,
}

impl Resolved {
    /// The task kind.
    pub fn kind(&self) -> Capability {
        self.kind
    }

    /// The request's priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Whether the request is cost-sensitive.
    pub fn is_cost_sensitive(&self) -> bool {
        self.cost_sensitive
    }

    /// Preferred capabilities that exist in the index.
    pub fn preferred(&self) -> &[Capability] {
        &self.preferred
    }

    /// The time the request was resolved at (the index's clock).
    pub fn now(&self) -> Instant {
        self.now
    }
}

/// How a routed task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Whether it succeeded.
    pub success: bool,
    /// How long it took.
    pub latency: Duration,
}

impl Outcome {
    /// A success after `latency`.
    pub fn success(latency: Duration) -> Self {
        Self {
            success: true,
            latency,
        }
    }

    /// A failure after `latency`.
    pub fn failure(latency: Duration) -> Self {
        Self {
            success: false,
            latency,
        }
    }
}
