//! What a client asks the engine to run: [`TaskSpec`], the one task input every front
//! end (Rust, REST, MCP, agents delegating, collaboration jobs) uses. The engine checks
//! it once, in `Engine::submit`, against the bounds below.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Priority, RoutingPreference, TaskId};

/// What to run: the input to `Engine::submit`.
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TaskSpec {
    /// The task kind (1 to 128 characters); an eligible agent has it among its
    /// capabilities.
    pub kind: String,
    /// Input handed to the agent as is.
    #[serde(default)]
    pub input: serde_json::Value,
    /// Capabilities the agent needs besides `kind` (at most 64).
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    /// Urgency: `low`, `normal` (default), `high` or `critical`.
    #[serde(default)]
    pub priority: Priority,
    /// Which built-in routing strategy picks the agent.
    #[serde(default)]
    pub routing: RoutingPreference,
    /// A custom router registered with the engine under this name (overrides
    /// `routing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<String>,
    /// Attempts before it fails for good, 1 to 100 (the engine's default if absent).
    #[serde(default)]
    #[cfg_attr(feature = "rest", schema(minimum = 1, maximum = 100))]
    #[cfg_attr(feature = "mcp", schemars(range(min = 1, max = 100)))]
    pub max_attempts: Option<u32>,
    /// Milliseconds one attempt may take, 1 to 86,400,000 (the engine's default if
    /// absent).
    #[serde(default)]
    #[cfg_attr(feature = "rest", schema(minimum = 1, maximum = 86_400_000))]
    #[cfg_attr(feature = "mcp", schemars(range(min = 1, max = 86_400_000)))]
    pub timeout_ms: Option<u64>,
    /// When it must be done by, at the latest.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// The task it is a sub-task of (of the same tenant).
    #[serde(default)]
    pub parent: Option<TaskId>,
    /// The W3C trace context to run it in: the submitter's span (`Engine::submit`), a
    /// delegating agent's `traceparent`. Never read from a client's JSON.
    #[serde(skip)]
    pub(crate) traceparent: Option<String>,
}

impl TaskSpec {
    /// The longest `kind`, in bytes.
    pub const MAX_KIND_LEN: usize = 128;
    /// The most `required_capabilities`.
    pub const MAX_REQUIRED_CAPABILITIES: usize = 64;
    /// The largest `max_attempts`.
    pub const MAX_ATTEMPTS: u32 = 100;
    /// The largest `timeout_ms` (one day).
    pub const MAX_TIMEOUT_MS: u64 = 86_400_000;

    /// A task of `kind` with `input`.
    pub fn new(kind: impl Into<String>, input: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            input,
            ..Self::default()
        }
    }

    /// Adds required capabilities.
    pub fn require(mut self, caps: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.required_capabilities
            .extend(caps.into_iter().map(Into::into));
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the built-in routing strategy.
    pub fn routing(mut self, routing: RoutingPreference) -> Self {
        self.routing = routing;
        self
    }

    /// Routes with the custom router registered under `name`
    /// (`EngineConfig::router`).
    pub fn router(mut self, name: impl Into<String>) -> Self {
        self.router = Some(name.into());
        self
    }

    /// Sets the number of attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Sets the per-attempt timeout (saturating at `u64::MAX` milliseconds; the engine
    /// refuses more than [`Self::MAX_TIMEOUT_MS`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Sets the absolute deadline.
    pub fn deadline(mut self, deadline: DateTime<Utc>) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Makes it a sub-task of `parent`.
    pub fn parent(mut self, parent: TaskId) -> Self {
        self.parent = Some(parent);
        self
    }
}
