//! The `ChatModel` trait: what an LLM agent needs from a model — a conversation with
//! tool definitions in, the model's turn (text and tool calls), why it stopped and the
//! tokens it cost out. Providers map it onto their wire formats (Bedrock's Converse,
//! OpenAI-compatible chat completions).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{BoxFuture, EmbedError};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChatRole {
    /// The caller: the task, and tool results.
    User,
    /// The model.
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to be run.
    ToolUse {
        /// Its id; the result names it.
        id: String,
        /// The tool, as named in the request's [`ToolSpec`]s.
        name: String,
        /// Its input (a JSON object).
        input: Value,
    },
    /// A tool's answer, sent back to the model.
    ToolResult {
        /// The [`ContentBlock::ToolUse`] it answers.
        id: String,
        /// What the tool returned (a string as text, anything else as JSON).
        content: Value,
        /// Whether the tool failed (`content` says why).
        is_error: bool,
    },
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatMessage {
    /// Who said it.
    pub role: ChatRole,
    /// What was said.
    pub content: Vec<ContentBlock>,
}

impl ChatMessage {
    /// A message of `role` with `content`.
    pub fn new(role: ChatRole, content: Vec<ContentBlock>) -> Self {
        Self { role, content }
    }

    /// A user message of one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(ChatRole::User, vec![ContentBlock::text(text)])
    }

    /// Its text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The tools it asks for: (id, name, input).
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|block| match block {
            ContentBlock::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }
}

/// A tool the model may ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolSpec {
    /// Its name (`[A-Za-z0-9_-]`, at most 64 characters: what Bedrock accepts).
    pub name: String,
    /// What it does (the model reads this).
    pub description: String,
    /// A JSON Schema of its input.
    pub input_schema: Value,
}

impl ToolSpec {
    /// A tool `name` described by `description`, taking `input_schema`.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            input_schema,
        }
    }
}

/// What to ask the model.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The system prompt.
    pub system: Option<String>,
    /// The conversation so far (starts with a user message).
    pub messages: Vec<ChatMessage>,
    /// Tools the model may ask for.
    pub tools: Vec<ToolSpec>,
    /// The most tokens the model may answer with.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A request of `messages` with no system prompt or tools.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants tools run (the message holds [`ContentBlock::ToolUse`]s).
    ToolUse,
    /// It hit the request's `max_tokens`.
    MaxTokens,
    /// It produced a stop sequence.
    StopSequence,
    /// Content filters or guardrails stopped it.
    ContentFiltered,
    /// Anything else the provider said (kept as it said it).
    Other(String),
}

/// Tokens one request cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenUsage {
    /// Tokens read (prompt, conversation, tool definitions).
    pub input_tokens: u64,
    /// Tokens written.
    pub output_tokens: u64,
}

impl TokenUsage {
    /// `input` tokens read and `output` written.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
        }
    }
}

/// The model's turn.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChatResponse {
    /// What it said (role assistant).
    pub message: ChatMessage,
    /// Why it stopped.
    pub stop: StopReason,
    /// What it cost.
    pub usage: TokenUsage,
}

impl ChatResponse {
    /// A turn saying `message`, stopped for `stop`, costing `usage`.
    pub fn new(message: ChatMessage, stop: StopReason, usage: TokenUsage) -> Self {
        Self {
            message,
            stop,
            usage,
        }
    }
}

/// A chat model's identity and list prices.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChatModelInfo {
    /// The model id, as the provider names it.
    pub id: String,
    /// Dollars per million input tokens.
    pub input_price_per_million: f64,
    /// Dollars per million output tokens.
    pub output_price_per_million: f64,
}

impl ChatModelInfo {
    /// Model `id` at these prices (dollars per million input and output tokens).
    pub fn new(id: impl Into<String>, input_price: f64, output_price: f64) -> Self {
        Self {
            id: id.into(),
            input_price_per_million: input_price,
            output_price_per_million: output_price,
        }
    }

    /// What `usage` costs, in dollars.
    pub fn dollars(&self, usage: TokenUsage) -> f64 {
        (usage.input_tokens as f64 * self.input_price_per_million
            + usage.output_tokens as f64 * self.output_price_per_million)
            / 1_000_000.0
    }
}

/// Text as the model writes it, piece by piece (for streaming to a person).
pub type TextSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// A chat model. Errors are [`EmbedError`]s: throttling, validation and timeouts
/// typed, [`is_retryable`](EmbedError::is_retryable) where trying again may help.
pub trait ChatModel: Send + Sync {
    /// Its identity and prices.
    fn info(&self) -> &ChatModelInfo;

    /// The model's next turn.
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>>;

    /// The model's next turn, its text passed to `text` as it is written. Providers
    /// without streaming pass the whole text once.
    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
        text: TextSink<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>> {
        Box::pin(async move {
            let response = self.chat(request).await?;
            text(&response.message.text());
            Ok(response)
        })
    }
}

impl<M: ChatModel + ?Sized> ChatModel for std::sync::Arc<M> {
    fn info(&self) -> &ChatModelInfo {
        (**self).info()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>> {
        (**self).chat(request)
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
        text: TextSink<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>> {
        (**self).chat_stream(request, text)
    }
}

/// A tool result's content as text (a string as it is, anything else as JSON).
#[cfg(any(feature = "bedrock", feature = "openai"))]
pub(crate) fn result_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_from_both_prices() {
        let info = ChatModelInfo::new("m", 3.0, 15.0);
        let cost = info.dollars(TokenUsage::new(1_000_000, 100_000));
        assert!((cost - 4.5).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn a_message_s_text_and_tool_uses() {
        let message = ChatMessage::new(
            ChatRole::Assistant,
            vec![
                ContentBlock::text("a"),
                ContentBlock::ToolUse {
                    id: "t".into(),
                    name: "files".into(),
                    input: serde_json::json!({}),
                },
                ContentBlock::text("b"),
            ],
        );
        assert_eq!(message.text(), "ab");
        assert_eq!(
            message.tool_uses().map(|t| t.1).collect::<Vec<_>>(),
            ["files"]
        );
    }
}
