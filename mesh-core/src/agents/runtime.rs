//! The agent runtime: a model, a prompt, tools and limits become an agent of the
//! engine that runs each task as a model ↔ tool loop — the model answers or asks for
//! tools, the tools run through Mesh, their results go back — until the model
//! answers, a limit is reached, or the task is cancelled (the loop is dropped at its
//! next step; the model request in flight with it).

use std::sync::Arc;
use std::time::Duration;

use mesh_embed::{
    BoxFuture, ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatRole, ContentBlock,
    EmbedError, StopReason, TokenUsage,
};
use mesh_protocol::{Hello, TaskError};
use serde_json::{Value, json};
use tracing::Instrument;

use super::toolbox::Toolbox;
use super::{AgentSpec, AgentUsage, UsageTotals};
use crate::domain::TenantId;
use crate::engine::{Engine, EngineError, LocalAgent, Progress};
use crate::tools::{ToolAdapter, Tools};

/// Attempts of one model turn when the model throttles or fails transiently.
const MODEL_ATTEMPTS: u32 = 3;
/// The longest wait between those attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// An LLM agent: cheap to clone (one per task runs at once).
#[derive(Clone)]
pub struct LlmAgent {
    spec: Arc<AgentSpec>,
    model: Arc<dyn ChatModel>,
    own: Vec<Arc<dyn ToolAdapter>>,
    /// The tenant's tools; `None` for an agent outside Mesh's process (its own tools
    /// only).
    tools: Option<Tools>,
    usage: AgentUsage,
}

/// Where a task's progress goes: the engine (an in-process agent) or the agent's
/// connection (an agent in its own process).
pub trait Reporter: Send + Sync {
    /// Reports the task `fraction` done, doing `message`.
    fn report(&self, fraction: f64, message: String) -> BoxFuture<'_, ()>;
}

impl Reporter for Progress {
    fn report(&self, fraction: f64, message: String) -> BoxFuture<'_, ()> {
        Box::pin(Progress::report(self, fraction, message))
    }
}

#[cfg(feature = "hub")]
impl Reporter for mesh_protocol::ws::AgentContext {
    fn report(&self, fraction: f64, message: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // A connection that has gone drops the task anyway.
            let _ = self.progress(fraction, Some(message)).await;
        })
    }
}

impl std::fmt::Debug for LlmAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmAgent")
            .field("name", &self.spec.name)
            .field("model", &self.model.info().id)
            .finish()
    }
}

/// Why a task's loop stopped without an answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A limit was reached.
    #[error("stopped at the {limit} limit ({value}) without an answer")]
    Limit {
        /// Which: `max_turns`, `max_tokens`, `max_wall_ms` or `max_dollars`.
        limit: &'static str,
        /// The limit's value.
        value: String,
    },
    /// The model failed (after retries, when retrying could help).
    #[error("the model failed: {0}")]
    Model(#[from] EmbedError),
    /// The model's answer was filtered.
    #[error("the model's answer was filtered ({0:?})")]
    Filtered(StopReason),
    /// The tenant's tools could not be listed.
    #[error("the tools: {0}")]
    Tools(#[from] crate::tools::ToolError),
}

impl AgentError {
    /// Whether the task may succeed on another attempt (a model that throttles or is
    /// down; not a limit).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Model(e) => e.is_retryable(),
            Self::Tools(e) => matches!(
                e,
                crate::tools::ToolError::Unavailable(_) | crate::tools::ToolError::Upstream { .. }
            ),
            _ => false,
        }
    }
}

/// A task's answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Answer {
    /// The model's final text.
    pub text: String,
    /// Why it stopped (`end_turn`, or `max_tokens` for an answer cut short).
    pub stop: StopReason,
    /// What the task spent.
    pub usage: UsageTotals,
}

impl LlmAgent {
    /// An agent `spec` thinking with `model`, using `tools` (the tenant's catalog, for
    /// the names in `spec.tools`), recording what it spends in `usage`.
    pub fn new(
        spec: AgentSpec,
        model: Arc<dyn ChatModel>,
        tools: Tools,
        usage: AgentUsage,
    ) -> Self {
        Self {
            spec: Arc::new(spec),
            model,
            own: Vec::new(),
            tools: Some(tools),
            usage,
        }
    }

    /// An agent without Mesh's tools service — one that runs in its own process and
    /// connects over the protocol: only its own tools ([`with_tool`](Self::with_tool));
    /// names in `spec.tools` fail its tasks.
    pub fn standalone(spec: AgentSpec, model: Arc<dyn ChatModel>, usage: AgentUsage) -> Self {
        Self {
            spec: Arc::new(spec),
            model,
            own: Vec::new(),
            tools: None,
            usage,
        }
    }

    /// Gives the agent a tool of its own (not in any tenant's catalog): a directory it
    /// reads, a database it inspects.
    pub fn with_tool(mut self, adapter: impl ToolAdapter + 'static) -> Self {
        self.own.push(Arc::new(adapter));
        self
    }

    /// What it is.
    pub fn spec(&self) -> &AgentSpec {
        &self.spec
    }

    /// Registers it with `engine` as an in-process agent of `tenant`, accepting tasks
    /// of its capabilities. Each task's output is `{answer, stop, model, turns,
    /// tool_calls, usage: {input_tokens, output_tokens, dollars}}`; each model turn and
    /// tool call is a progress update.
    pub async fn start(
        &self,
        engine: &Engine,
        tenant: TenantId,
    ) -> Result<LocalAgent, EngineError> {
        let mut hello = Hello::new(self.spec.name.clone(), self.spec.capabilities.clone());
        hello.max_concurrency = Some(self.spec.concurrency.max(1));
        let agent = self.clone();
        engine
            .connect_local_reporting(tenant, hello, move |task, progress| {
                let agent = agent.clone();
                async move { agent.handle(tenant, &task.input, &progress).await }
            })
            .await
    }

    /// Runs one task and words its outcome as a task's: the output
    /// [`start`](Self::start) documents, or a [`TaskError`] (retryable when
    /// [`AgentError::is_retryable`]).
    pub async fn handle(
        &self,
        tenant: TenantId,
        input: &Value,
        progress: &dyn Reporter,
    ) -> Result<Value, TaskError> {
        match self.run(tenant, input, Some(progress)).await {
            Ok(answer) => Ok(self.output(&answer)),
            Err(e) => Err(TaskError {
                retryable: e.is_retryable(),
                message: e.to_string(),
            }),
        }
    }

    fn output(&self, answer: &Answer) -> Value {
        let u = &answer.usage;
        json!({
            "answer": answer.text,
            "stop": answer.stop,
            "model": self.model.info().id,
            "turns": u.turns,
            "tool_calls": u.tool_calls,
            "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "dollars": u.dollars},
        })
    }

    /// Runs one task for `tenant`: `input` (a string as the request, anything else as
    /// JSON) to an answer.
    pub async fn run(
        &self,
        tenant: TenantId,
        input: &Value,
        progress: Option<&dyn Reporter>,
    ) -> Result<Answer, AgentError> {
        let span = tracing::info_span!(
            "invoke_agent",
            otel.name = format!("invoke_agent {}", self.spec.name),
            gen_ai.agent.name = %self.spec.name,
            gen_ai.request.model = %self.model.info().id,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        let mut spent = UsageTotals::default();
        let max_wall = self.spec.limits.max_wall();
        let turns = self.turns(tenant, input, progress, &mut spent);
        let result = tokio::time::timeout(max_wall, turns.instrument(span.clone()))
            .await
            .unwrap_or_else(|_| {
                Err(AgentError::Limit {
                    limit: "max_wall_ms",
                    value: self.spec.limits.max_wall_ms.to_string(),
                })
            });
        span.record("gen_ai.usage.input_tokens", spent.input_tokens);
        span.record("gen_ai.usage.output_tokens", spent.output_tokens);
        let outcome = UsageTotals {
            completed: u64::from(result.is_ok()),
            failed: u64::from(result.is_err()),
            ..UsageTotals::default()
        };
        self.usage.record(tenant, &self.spec.name, &outcome);
        result.map(|(text, stop)| Answer {
            text,
            stop,
            usage: spent,
        })
    }

    async fn turns(
        &self,
        tenant: TenantId,
        input: &Value,
        progress: Option<&dyn Reporter>,
        spent: &mut UsageTotals,
    ) -> Result<(String, StopReason), AgentError> {
        let limits = self.spec.limits;
        let toolbox =
            Toolbox::assemble(&self.own, &self.spec.tools, self.tools.as_ref(), tenant).await?;
        let mut request = ChatRequest::new(vec![ChatMessage::user(request_text(input))]);
        request.system = Some(self.spec.system.clone());
        request.tools = toolbox.specs().to_vec();
        request.max_tokens = Some(limits.max_output_tokens);
        let report = |fraction: f64, message: String| async move {
            if let Some(progress) = progress {
                progress.report(fraction, message).await;
            }
        };
        for turn in 1..=limits.max_turns {
            let fraction = f64::from(turn - 1) / f64::from(limits.max_turns);
            report(
                fraction,
                format!("turn {turn}: asking {}", self.model.info().id),
            )
            .await;
            let response = self.ask(&request).await?;
            self.charge(tenant, spent, response.usage);
            let text = response.message.text();
            let calls: Vec<(String, String, Value)> = response
                .message
                .tool_uses()
                .map(|(id, name, input)| (id.to_owned(), name.to_owned(), input.clone()))
                .collect();
            request.messages.push(response.message);
            match response.stop {
                StopReason::ToolUse if !calls.is_empty() => {}
                StopReason::ContentFiltered => return Err(AgentError::Filtered(response.stop)),
                stop => {
                    report(1.0, "answered".into()).await;
                    return Ok((text, stop));
                }
            }
            self.within(limits, spent)?;
            let mut results = Vec::with_capacity(calls.len());
            for (id, name, input) in calls {
                report(fraction, format!("turn {turn}: calling {name}")).await;
                spent.tool_calls += 1;
                self.usage.record(
                    tenant,
                    &self.spec.name,
                    &UsageTotals {
                        tool_calls: 1,
                        ..UsageTotals::default()
                    },
                );
                let outcome = toolbox
                    .call(self.tools.as_ref(), tenant, &name, input)
                    .await;
                let (content, is_error) = match outcome {
                    Ok(output) => (output, false),
                    Err(e) => (Value::String(e.to_string()), true),
                };
                results.push(ContentBlock::ToolResult {
                    id,
                    content: cut(content, limits.max_tool_result_bytes),
                    is_error,
                });
            }
            request
                .messages
                .push(ChatMessage::new(ChatRole::User, results));
        }
        Err(AgentError::Limit {
            limit: "max_turns",
            value: limits.max_turns.to_string(),
        })
    }

    /// One model turn, tried again (with backoff, as long as the model asks) when it
    /// throttles or fails transiently.
    async fn ask(&self, request: &ChatRequest) -> Result<ChatResponse, AgentError> {
        let mut attempt = 1;
        loop {
            match self.model.chat_stream(request, &mut |_: &str| {}).await {
                Ok(response) => return Ok(response),
                Err(e) if e.is_retryable() && attempt < MODEL_ATTEMPTS => {
                    let asked = match &e {
                        EmbedError::Throttled { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let wait = asked
                        .unwrap_or(Duration::from_millis(200 * 2u64.pow(attempt)))
                        .min(MAX_BACKOFF);
                    tracing::warn!(agent = %self.spec.name, error = %e, ?wait, "the model failed; trying again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn charge(&self, tenant: TenantId, spent: &mut UsageTotals, usage: TokenUsage) {
        let info = self.model.info();
        let turn = UsageTotals {
            turns: 1,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            dollars: self.usage.record_turn(tenant, info, usage),
            ..UsageTotals::default()
        };
        spent.turns += 1;
        spent.input_tokens += turn.input_tokens;
        spent.output_tokens += turn.output_tokens;
        spent.dollars += turn.dollars;
        self.usage.record(tenant, &self.spec.name, &turn);
        let agent = self.spec.name.clone();
        let model = info.id.clone();
        metrics::counter!("mesh_agent_turns_total", "agent" => agent.clone()).increment(1);
        metrics::counter!("mesh_agent_tokens_total", "agent" => agent.clone(), "model" => model.clone(), "direction" => "input")
            .increment(usage.input_tokens);
        metrics::counter!("mesh_agent_tokens_total", "agent" => agent.clone(), "model" => model, "direction" => "output")
            .increment(usage.output_tokens);
        // A gauge that only rises: counters count whole units, dollars are fractions.
        metrics::gauge!("mesh_agent_cost_dollars", "agent" => agent).increment(turn.dollars);
    }

    /// Fails when the task has spent its tokens or dollars (its time is bounded
    /// around the whole loop).
    fn within(&self, limits: super::AgentLimits, spent: &UsageTotals) -> Result<(), AgentError> {
        if spent.input_tokens + spent.output_tokens > limits.max_tokens {
            return Err(AgentError::Limit {
                limit: "max_tokens",
                value: limits.max_tokens.to_string(),
            });
        }
        if spent.dollars > limits.max_dollars {
            return Err(AgentError::Limit {
                limit: "max_dollars",
                value: limits.max_dollars.to_string(),
            });
        }
        Ok(())
    }
}

/// A task's input as the model's first message: a string as it is, else JSON.
fn request_text(input: &Value) -> String {
    match input {
        Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// A tool result of at most `max` bytes of JSON: a longer one is cut (as text) and
/// says so.
fn cut(content: Value, max: usize) -> Value {
    let text = match &content {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.len() <= max {
        return content;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(format!(
        "{}\n[cut: {} of {} bytes shown]",
        &text[..end],
        end,
        text.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tool_results_are_cut_and_say_so() {
        let short = json!({"a": 1});
        assert_eq!(cut(short.clone(), 100), short);
        let long = Value::String("é".repeat(100));
        let cut = cut(long, 51);
        let text = cut.as_str().unwrap();
        assert!(text.starts_with(&"é".repeat(25)), "{text}");
        assert!(text.ends_with("[cut: 50 of 200 bytes shown]"), "{text}");
    }

    #[test]
    fn a_string_input_is_the_request_and_json_is_shown_as_json() {
        assert_eq!(request_text(&json!("why?")), "why?");
        assert!(request_text(&json!({"path": "src"})).contains("\"path\": \"src\""));
    }
}
