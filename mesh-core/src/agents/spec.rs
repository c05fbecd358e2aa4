//! What an LLM agent is: its name, prompt, capabilities, the tools it may use, and the
//! limits that stop a runaway loop.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The limits of one task's model ↔ tool loop. Past any of them the task fails
/// (not retried) with the limit named; what was spent is still recorded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentLimits {
    /// Model turns (requests) per task (default 12).
    pub max_turns: u32,
    /// Input plus output tokens per task (default 200,000).
    pub max_tokens: u64,
    /// Wall time per task, in milliseconds (default 300,000: five minutes).
    pub max_wall_ms: u64,
    /// Dollars per task at the model's prices (default 1.0).
    pub max_dollars: f64,
    /// Tokens the model may write per turn (default 4,096).
    pub max_output_tokens: u32,
    /// Bytes of one tool result sent back to the model; the rest is cut and says so
    /// (default 32,768).
    pub max_tool_result_bytes: usize,
}

impl Default for AgentLimits {
    fn default() -> Self {
        Self {
            max_turns: 12,
            max_tokens: 200_000,
            max_wall_ms: 300_000,
            max_dollars: 1.0,
            max_output_tokens: 4096,
            max_tool_result_bytes: 32 * 1024,
        }
    }
}

impl AgentLimits {
    /// The wall-time limit.
    pub fn max_wall(&self) -> Duration {
        Duration::from_millis(self.max_wall_ms)
    }
}

/// An LLM agent: what it is called, told and allowed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentSpec {
    /// Its name (the agent's name in the registry, and the key of its usage).
    pub name: String,
    /// The system prompt.
    pub system: String,
    /// The task kinds it accepts (its capabilities).
    pub capabilities: Vec<String>,
    /// Tools of the tenant's catalog (the tools service) it may use, by name; its own
    /// tools (given with [`LlmAgent::with_tool`](super::LlmAgent::with_tool)) come on top.
    pub tools: Vec<String>,
    /// Its limits.
    pub limits: AgentLimits,
    /// Tasks it runs at once (default 4): each is mostly waiting on the model.
    pub concurrency: u32,
}

impl AgentSpec {
    /// Tasks an agent runs at once unless told otherwise.
    pub const DEFAULT_CONCURRENCY: u32 = 4;

    /// An agent `name` told `system`, accepting tasks of `capabilities`, with no
    /// shared tools and the default limits.
    pub fn new(
        name: impl Into<String>,
        system: impl Into<String>,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            system: system.into(),
            capabilities: capabilities.into_iter().map(Into::into).collect(),
            tools: Vec::new(),
            limits: AgentLimits::default(),
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }
}
