//! Chat on Amazon Bedrock's Converse and ConverseStream APIs (feature `bedrock`).

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::BuildError;
use aws_sdk_bedrockruntime::types as aws;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_smithy_types::{Document, Number};
use serde_json::Value;

use crate::bedrock::sdk_error;
use crate::chat::result_text;
use crate::{
    BoxFuture, ChatMessage, ChatModel, ChatModelInfo, ChatRequest, ChatResponse, ChatRole,
    ContentBlock, EmbedError, StopReason, TextSink, TokenUsage,
};

/// A [`ChatModel`] on Bedrock's `Converse` (and `ConverseStream` for
/// [`chat_stream`](ChatModel::chat_stream)): any model Converse serves (Claude, Llama,
/// Mistral, Nova…), with system prompts, tool definitions and `toolUse` / `toolResult`
/// blocks. Region, credentials and endpoint come from the client's configuration, so
/// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` points it at a local endpoint.
#[derive(Debug, Clone)]
pub struct BedrockChat {
    client: Client,
    info: ChatModelInfo,
}

impl BedrockChat {
    /// The model `info.id` through `client`, priced at `info`'s prices.
    pub fn new(client: Client, info: ChatModelInfo) -> Self {
        Self { client, info }
    }

    /// The model `info.id` with the usual AWS configuration.
    pub async fn from_env(info: ChatModelInfo) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Self::new(Client::new(&config), info)
    }

    fn parts(&self, request: &ChatRequest) -> Result<Parts, EmbedError> {
        let invalid = |e: BuildError| EmbedError::Invalid {
            provider: self.info.id.clone(),
            message: e.to_string(),
        };
        let messages = request
            .messages
            .iter()
            .map(to_message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let tools = if request.tools.is_empty() {
            None
        } else {
            let mut config = aws::ToolConfiguration::builder();
            for tool in &request.tools {
                let spec = aws::ToolSpecification::builder()
                    .name(&tool.name)
                    .description(&tool.description)
                    .input_schema(aws::ToolInputSchema::Json(to_document(&tool.input_schema)))
                    .build()
                    .map_err(invalid)?;
                config = config.tools(aws::Tool::ToolSpec(spec));
            }
            Some(config.build().map_err(invalid)?)
        };
        let mut inference = aws::InferenceConfiguration::builder();
        if let Some(max) = request.max_tokens {
            inference = inference.max_tokens(i32::try_from(max).unwrap_or(i32::MAX));
        }
        if let Some(temperature) = request.temperature {
            inference = inference.temperature(temperature);
        }
        Ok(Parts {
            messages,
            system: request
                .system
                .iter()
                .map(|s| aws::SystemContentBlock::Text(s.clone()))
                .collect(),
            tools,
            inference: inference.build(),
        })
    }

    async fn stream(
        &self,
        request: &ChatRequest,
        text: TextSink<'_>,
    ) -> Result<ChatResponse, EmbedError> {
        let parts = self.parts(request)?;
        let mut output = self
            .client
            .converse_stream()
            .model_id(&self.info.id)
            .set_messages(Some(parts.messages))
            .set_system((!parts.system.is_empty()).then_some(parts.system))
            .set_tool_config(parts.tools)
            .inference_config(parts.inference)
            .send()
            .await
            .map_err(|e| sdk_error(&self.info.id, e))?;
        let mut blocks: Vec<Building> = Vec::new();
        let mut stop = None;
        let mut usage = TokenUsage::default();
        while let Some(event) = output
            .stream
            .recv()
            .await
            .map_err(|e| stream_error(&self.info.id, e))?
        {
            match event {
                aws::ConverseStreamOutput::ContentBlockStart(start) => {
                    let at = index(start.content_block_index());
                    if let Some(aws::ContentBlockStart::ToolUse(tool)) = start.start() {
                        *slot(&mut blocks, at) = Building::Tool {
                            id: tool.tool_use_id().to_owned(),
                            name: tool.name().to_owned(),
                            input: String::new(),
                        };
                    }
                }
                aws::ConverseStreamOutput::ContentBlockDelta(delta) => {
                    let at = index(delta.content_block_index());
                    match (delta.delta(), slot(&mut blocks, at)) {
                        (Some(aws::ContentBlockDelta::Text(piece)), Building::Text(so_far)) => {
                            text(piece);
                            so_far.push_str(piece);
                        }
                        (
                            Some(aws::ContentBlockDelta::ToolUse(piece)),
                            Building::Tool { input, .. },
                        ) => {
                            input.push_str(piece.input());
                        }
                        _ => {}
                    }
                }
                aws::ConverseStreamOutput::MessageStop(end) => {
                    stop = Some(stop_reason(end.stop_reason()));
                }
                aws::ConverseStreamOutput::Metadata(meta) => {
                    if let Some(u) = meta.usage() {
                        usage = token_usage(u);
                    }
                }
                _ => {}
            }
        }
        let stop = stop.ok_or_else(|| {
            EmbedError::malformed(&self.info.id, "the stream ended without messageStop")
        })?;
        let content = blocks
            .into_iter()
            .map(|block| block.finish())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|what| EmbedError::malformed(&self.info.id, &what))?;
        Ok(ChatResponse::new(
            ChatMessage::new(ChatRole::Assistant, content),
            stop,
            usage,
        ))
    }
}

/// A request in the SDK's types.
struct Parts {
    messages: Vec<aws::Message>,
    system: Vec<aws::SystemContentBlock>,
    tools: Option<aws::ToolConfiguration>,
    inference: aws::InferenceConfiguration,
}

/// A content block of a streamed answer, as its deltas arrive.
enum Building {
    Text(String),
    Tool {
        id: String,
        name: String,
        input: String,
    },
}

impl Building {
    fn finish(self) -> Result<ContentBlock, String> {
        Ok(match self {
            Self::Text(text) => ContentBlock::Text { text },
            Self::Tool { id, name, input } => {
                let input = if input.trim().is_empty() {
                    Value::Object(Default::default())
                } else {
                    serde_json::from_str(&input)
                        .map_err(|e| format!("tool {name}'s input is not JSON: {e}"))?
                };
                ContentBlock::ToolUse { id, name, input }
            }
        })
    }
}

fn index(i: i32) -> usize {
    usize::try_from(i).unwrap_or(0)
}

/// The block at `at`, made (as text) if the stream had not started it.
fn slot(blocks: &mut Vec<Building>, at: usize) -> &mut Building {
    while blocks.len() <= at {
        blocks.push(Building::Text(String::new()));
    }
    &mut blocks[at]
}

impl ChatModel for BedrockChat {
    fn info(&self) -> &ChatModelInfo {
        &self.info
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>> {
        Box::pin(async move {
            let parts = self.parts(request)?;
            let out = self
                .client
                .converse()
                .model_id(&self.info.id)
                .set_messages(Some(parts.messages))
                .set_system((!parts.system.is_empty()).then_some(parts.system))
                .set_tool_config(parts.tools)
                .inference_config(parts.inference)
                .send()
                .await
                .map_err(|e| sdk_error(&self.info.id, e))?;
            let Some(aws::ConverseOutput::Message(message)) = out.output() else {
                return Err(EmbedError::malformed(&self.info.id, "no output message"));
            };
            Ok(ChatResponse::new(
                from_message(message),
                stop_reason(out.stop_reason()),
                out.usage().map(token_usage).unwrap_or_default(),
            ))
        })
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
        text: TextSink<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>> {
        Box::pin(self.stream(request, text))
    }
}

/// An exception inside the event stream: typed by its variant (its error metadata
/// carries no code), else as any Bedrock error.
fn stream_error<R>(
    provider: &str,
    e: aws_sdk_bedrockruntime::error::SdkError<ConverseStreamOutputError, R>,
) -> EmbedError {
    use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
    if let SdkError::ServiceError(service) = &e {
        let provider = provider.to_owned();
        let err = service.err();
        let message = err.message().unwrap_or("the stream failed").to_owned();
        match err {
            ConverseStreamOutputError::ThrottlingException(_) => {
                return EmbedError::Throttled {
                    provider,
                    retry_after: None,
                };
            }
            ConverseStreamOutputError::ValidationException(_) => {
                return EmbedError::Invalid { provider, message };
            }
            ConverseStreamOutputError::ServiceUnavailableException(_)
            | ConverseStreamOutputError::InternalServerException(_)
            | ConverseStreamOutputError::ModelStreamErrorException(_) => {
                return EmbedError::Provider {
                    provider,
                    message,
                    retryable: true,
                };
            }
            _ => {}
        }
    }
    sdk_error(provider, e)
}

fn token_usage(usage: &aws::TokenUsage) -> TokenUsage {
    let count = |n: i32| u64::try_from(n).unwrap_or(0);
    TokenUsage::new(count(usage.input_tokens()), count(usage.output_tokens()))
}

fn stop_reason(reason: &aws::StopReason) -> StopReason {
    match reason {
        aws::StopReason::EndTurn => StopReason::EndTurn,
        aws::StopReason::ToolUse => StopReason::ToolUse,
        aws::StopReason::MaxTokens => StopReason::MaxTokens,
        aws::StopReason::StopSequence => StopReason::StopSequence,
        aws::StopReason::ContentFiltered | aws::StopReason::GuardrailIntervened => {
            StopReason::ContentFiltered
        }
        other => StopReason::Other(other.as_str().to_owned()),
    }
}

fn to_message(message: &ChatMessage) -> Result<aws::Message, BuildError> {
    let role = match message.role {
        ChatRole::User => aws::ConversationRole::User,
        ChatRole::Assistant => aws::ConversationRole::Assistant,
    };
    let content = message
        .content
        .iter()
        .map(|block| {
            Ok(match block {
                ContentBlock::Text { text } => aws::ContentBlock::Text(text.clone()),
                ContentBlock::ToolUse { id, name, input } => aws::ContentBlock::ToolUse(
                    aws::ToolUseBlock::builder()
                        .tool_use_id(id)
                        .name(name)
                        .input(to_document(input))
                        .build()?,
                ),
                ContentBlock::ToolResult {
                    id,
                    content,
                    is_error,
                } => {
                    // Bedrock's `json` result must be an object; anything else goes as text.
                    let content = match content {
                        Value::Object(_) => aws::ToolResultContentBlock::Json(to_document(content)),
                        other => aws::ToolResultContentBlock::Text(result_text(other)),
                    };
                    let status = if *is_error {
                        aws::ToolResultStatus::Error
                    } else {
                        aws::ToolResultStatus::Success
                    };
                    aws::ContentBlock::ToolResult(
                        aws::ToolResultBlock::builder()
                            .tool_use_id(id)
                            .content(content)
                            .status(status)
                            .build()?,
                    )
                }
            })
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    aws::Message::builder()
        .role(role)
        .set_content(Some(content))
        .build()
}

fn from_message(message: &aws::Message) -> ChatMessage {
    let content = message
        .content()
        .iter()
        .filter_map(|block| match block {
            aws::ContentBlock::Text(text) => Some(ContentBlock::text(text)),
            aws::ContentBlock::ToolUse(tool) => Some(ContentBlock::ToolUse {
                id: tool.tool_use_id().to_owned(),
                name: tool.name().to_owned(),
                input: from_document(tool.input()),
            }),
            // Reasoning, citations, images: not part of what an agent acts on.
            _ => None,
        })
        .collect();
    ChatMessage::new(ChatRole::Assistant, content)
}

/// JSON as the SDK's document type.
pub(crate) fn to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(to_document).collect()),
        Value::Object(map) => Document::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_document(v)))
                .collect(),
        ),
    }
}

/// The SDK's document type as JSON.
pub(crate) fn from_document(document: &Document) -> Value {
    match document {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => Value::from(*f),
        Document::String(s) => Value::String(s.clone()),
        Document::Array(items) => Value::Array(items.iter().map(from_document).collect()),
        Document::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_document(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_survives_the_document_type() {
        let value = json!({"a": [1, -2, 2.5, "x", null, true], "b": {"c": {}}});
        assert_eq!(from_document(&to_document(&value)), value);
    }
}
