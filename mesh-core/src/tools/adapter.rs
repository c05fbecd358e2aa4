//! The adapter model: a [`ToolAdapter`] declares its actions (a JSON Schema for each
//! input) and the capabilities it provides; the [`ToolRegistry`] holds the operator's
//! by name; every run is [`instrumented`] the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_embed::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

/// One thing a tool can do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ToolAction {
    /// Its name, unique within the tool.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its input.
    pub input_schema: Value,
    /// Whether running it twice with the same input does no more than once (its
    /// result is then cached for the limits' TTL).
    pub idempotent: bool,
}

impl ToolAction {
    /// An action.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            input_schema,
            idempotent: false,
        }
    }

    /// Marks it idempotent: its results may be cached.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

/// A tool as listed to clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ToolInfo {
    /// The tool's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Capabilities it provides (as an agent would advertise them).
    pub capabilities: Vec<String>,
    /// Its actions.
    pub actions: Vec<ToolAction>,
    /// The tenant's source it comes from; `None` for the operator's own tools.
    pub source: Option<String>,
}

/// Why running a tool failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// No tool by that name.
    #[error("no tool named {0}")]
    UnknownTool(String),
    /// The tool has no such action.
    #[error("the tool has no action named {0}")]
    UnknownAction(String),
    /// The input does not fit the action's schema.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The service behind the tool answered with an error.
    #[error("upstream answered {status}: {message}")]
    Upstream {
        /// Its HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The service behind the tool could not be reached.
    #[error("upstream unreachable: {0}")]
    Unavailable(String),
    /// The tool ran and reported an error.
    #[error("the tool failed: {0}")]
    Failed(String),
    /// The call took longer than its timeout (and was cancelled upstream).
    #[error("the tool did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// Over a rate limit: try again after `retry_after`.
    #[error("tool call rate limit reached; retry after {retry_after:?}")]
    RateLimited {
        /// How long until a call would be let through.
        retry_after: std::time::Duration,
    },
}

impl ToolError {
    /// A stable code: `tool_not_found`, `action_not_found`, `invalid_request`,
    /// `rate_limited` or `upstream_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownTool(_) => "tool_not_found",
            Self::UnknownAction(_) => "action_not_found",
            Self::InvalidInput(_) => "invalid_request",
            Self::RateLimited { .. } => "rate_limited",
            Self::Upstream { .. } | Self::Unavailable(_) | Self::Failed(_) | Self::TimedOut(_) => {
                "upstream_failed"
            }
        }
    }

    /// How long to wait before trying again, for a rate-limited call.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A tool: actions over some external system.
pub trait ToolAdapter: Send + Sync {
    /// Its name (what clients call it by).
    fn name(&self) -> &str;
    /// What it is for.
    fn description(&self) -> &str;
    /// Capabilities it provides.
    fn capabilities(&self) -> Vec<String>;
    /// Its actions.
    fn actions(&self) -> Vec<ToolAction>;
    /// Runs `action` with `input`.
    fn execute<'a>(
        &'a self,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>>;
}

/// The registered tools, by name.
#[derive(Default, Clone)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn ToolAdapter>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl ToolRegistry {
    /// No tools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a tool.
    pub fn register(&mut self, tool: impl ToolAdapter + 'static) -> &mut Self {
        self.tools.insert(tool.name().to_owned(), Arc::new(tool));
        self
    }

    /// The tools' names.
    pub fn names(&self) -> Vec<&str> {
        self.tools.keys().map(String::as_str).collect()
    }

    /// Every tool as clients see it.
    pub fn list(&self) -> Vec<ToolInfo> {
        self.tools
            .values()
            .map(|t| info(t.as_ref(), t.name(), None))
            .collect()
    }

    /// The adapters.
    pub(crate) fn adapters(&self) -> impl Iterator<Item = &Arc<dyn ToolAdapter>> {
        self.tools.values()
    }

    /// Runs `tool`'s `action`.
    pub async fn execute(
        &self,
        tool: &str,
        action: &str,
        input: Value,
    ) -> Result<Value, ToolError> {
        let adapter = self
            .tools
            .get(tool)
            .ok_or_else(|| ToolError::UnknownTool(tool.to_owned()))?;
        if !adapter.actions().iter().any(|a| a.name == action) {
            return Err(ToolError::UnknownAction(action.to_owned()));
        }
        instrumented(tool, action, adapter.execute(action, input)).await
    }
}

/// `adapter` as clients see it, under `name`, from `source` (a tenant's).
pub(crate) fn info(adapter: &dyn ToolAdapter, name: &str, source: Option<String>) -> ToolInfo {
    ToolInfo {
        name: name.to_owned(),
        description: adapter.description().to_owned(),
        capabilities: adapter.capabilities(),
        actions: adapter.actions(),
        source,
    }
}

/// Runs `call` of `tool`'s `action` in an `execute_tool` span, timed and counted.
pub(crate) async fn instrumented(
    tool: &str,
    action: &str,
    call: impl std::future::Future<Output = Result<Value, ToolError>>,
) -> Result<Value, ToolError> {
    let span = tracing::info_span!(
        "execute_tool",
        otel.name = format!("execute_tool {tool}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        mesh.tool.action = action,
    );
    let started = std::time::Instant::now();
    let outcome = call.instrument(span.clone()).await;
    if outcome.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    let (tool, action) = (tool.to_owned(), action.to_owned());
    metrics::histogram!("mesh_tool_call_duration_seconds", "tool" => tool.clone(), "action" => action.clone())
        .record(started.elapsed().as_secs_f64());
    let result = if outcome.is_ok() { "ok" } else { "error" };
    metrics::counter!("mesh_tool_calls_total", "tool" => tool, "action" => action, "outcome" => result)
        .increment(1);
    outcome
}
