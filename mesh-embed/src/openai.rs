//! Chat on an OpenAI-compatible `/chat/completions` endpoint (feature `openai`): what
//! local model servers (llama.cpp, vLLM, Ollama, LM Studio) and many hosted ones speak.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::chat::result_text;
use crate::{
    BoxFuture, ChatMessage, ChatModel, ChatModelInfo, ChatRequest, ChatResponse, ChatRole,
    ContentBlock, EmbedError, StopReason, TextSink, TokenUsage,
};

/// A [`ChatModel`] on an OpenAI-compatible chat completions API: tools as `function`
/// tools, tool calls and `tool` messages, streaming over server-sent events with the
/// usage in the last chunk.
#[derive(Debug, Clone)]
pub struct OpenAiChat {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    info: ChatModelInfo,
}

impl OpenAiChat {
    /// How long a request may take, whole (a model's answer included).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

    /// The model `info.id` at `base_url` (e.g. `http://127.0.0.1:8080/v1`; requests go
    /// to `{base_url}/chat/completions`), sending `api_key` as a bearer token if given.
    pub fn new(base_url: &str, api_key: Option<String>, info: ChatModelInfo) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Self::DEFAULT_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            info,
        }
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        let mut messages: Vec<Value> = request
            .system
            .iter()
            .map(|s| json!({"role": "system", "content": s}))
            .collect();
        for message in &request.messages {
            messages.extend(wire_messages(message));
        }
        let mut body = json!({"model": self.info.id, "messages": messages});
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
                .collect();
        }
        if let Some(max) = request.max_tokens {
            body["max_tokens"] = json!(max);
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    async fn send(&self, body: Value) -> Result<reqwest::Response, EmbedError> {
        let provider = || self.info.id.clone();
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        if status < 300 {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        Err(match status {
            429 => EmbedError::Throttled {
                provider: provider(),
                retry_after,
            },
            400 | 404 | 413 | 422 => EmbedError::Invalid {
                provider: provider(),
                message,
            },
            408 | 504 => EmbedError::Timeout {
                provider: provider(),
            },
            _ => EmbedError::Provider {
                provider: provider(),
                message: format!("HTTP {status}: {message}"),
                retryable: status >= 500,
            },
        })
    }

    fn transport(&self, e: reqwest::Error) -> EmbedError {
        if e.is_timeout() {
            EmbedError::Timeout {
                provider: self.info.id.clone(),
            }
        } else {
            EmbedError::Provider {
                provider: self.info.id.clone(),
                message: e.to_string(),
                retryable: true,
            }
        }
    }

    async fn stream(
        &self,
        request: &ChatRequest,
        text: TextSink<'_>,
    ) -> Result<ChatResponse, EmbedError> {
        let mut response = self.send(self.body(request, true)).await?;
        let mut answer = Streamed::default();
        let mut pending = String::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                let Some(data) = line.trim().strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    return answer
                        .finish()
                        .map_err(|what| EmbedError::malformed(&self.info.id, &what));
                }
                let event: Value = serde_json::from_str(data).map_err(|e| {
                    EmbedError::malformed(&self.info.id, &format!("an event is not JSON: {e}"))
                })?;
                answer.add(&event, text);
            }
        }
        answer
            .finish()
            .map_err(|what| EmbedError::malformed(&self.info.id, &what))
    }
}

/// One of our messages as the API's messages: tool results each become a `tool`
/// message; an assistant's tool uses become its `tool_calls`.
fn wire_messages(message: &ChatMessage) -> Vec<Value> {
    let text = message.text();
    match message.role {
        ChatRole::Assistant => {
            let calls: Vec<Value> = message
                .tool_uses()
                .map(|(id, name, input)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}}))
                .collect();
            let mut wire = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                wire["tool_calls"] = json!(calls);
            }
            vec![wire]
        }
        _ => {
            let mut out: Vec<Value> = message
                .content
                .iter()
                .filter_map(|block| match block {
                    ContentBlock::ToolResult {
                        id,
                        content,
                        is_error,
                    } => {
                        let content = result_text(content);
                        let content = if *is_error {
                            format!("error: {content}")
                        } else {
                            content
                        };
                        Some(json!({"role": "tool", "tool_call_id": id, "content": content}))
                    }
                    _ => None,
                })
                .collect();
            if !text.is_empty() {
                out.push(json!({"role": "user", "content": text}));
            }
            out
        }
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::ContentFiltered,
        other => StopReason::Other(other.to_owned()),
    }
}

fn usage(value: &Value) -> TokenUsage {
    TokenUsage::new(
        value["prompt_tokens"].as_u64().unwrap_or(0),
        value["completion_tokens"].as_u64().unwrap_or(0),
    )
}

/// A tool call as the API sends it: its arguments a JSON string.
fn tool_use(id: &str, name: &str, arguments: &str) -> Result<ContentBlock, String> {
    let input = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments)
            .map_err(|e| format!("tool {name}'s arguments are not JSON: {e}"))?
    };
    Ok(ContentBlock::ToolUse {
        id: id.to_owned(),
        name: name.to_owned(),
        input,
    })
}

/// A streamed answer, as its chunks arrive.
#[derive(Default)]
struct Streamed {
    text: String,
    /// Tool calls by index: id, name, arguments so far.
    calls: BTreeMap<u64, (String, String, String)>,
    stop: Option<StopReason>,
    usage: TokenUsage,
}

impl Streamed {
    fn add(&mut self, event: &Value, text: TextSink<'_>) {
        if event["usage"].is_object() {
            self.usage = usage(&event["usage"]);
        }
        let Some(choice) = event["choices"].get(0) else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(piece) = delta["content"].as_str() {
            text(piece);
            self.text.push_str(piece);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let slot = self
                .calls
                .entry(call["index"].as_u64().unwrap_or(0))
                .or_default();
            if let Some(id) = call["id"].as_str() {
                slot.0 = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                slot.1.push_str(name);
            }
            if let Some(arguments) = call["function"]["arguments"].as_str() {
                slot.2.push_str(arguments);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.stop = Some(stop_reason(reason));
        }
    }

    fn finish(self) -> Result<ChatResponse, String> {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(ContentBlock::Text { text: self.text });
        }
        for (id, name, arguments) in self.calls.values() {
            content.push(tool_use(id, name, arguments)?);
        }
        let stop = self
            .stop
            .ok_or("the stream ended without a finish_reason")?;
        Ok(ChatResponse::new(
            ChatMessage::new(ChatRole::Assistant, content),
            stop,
            self.usage,
        ))
    }
}

impl ChatModel for OpenAiChat {
    fn info(&self) -> &ChatModelInfo {
        &self.info
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>> {
        Box::pin(async move {
            let response = self.send(self.body(request, false)).await?;
            let body: Value = response.json().await.map_err(|e| self.transport(e))?;
            let choice = body["choices"]
                .get(0)
                .ok_or_else(|| EmbedError::malformed(&self.info.id, "no choices"))?;
            let message = &choice["message"];
            let mut content = Vec::new();
            if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
                content.push(ContentBlock::text(text));
            }
            for call in message["tool_calls"].as_array().into_iter().flatten() {
                let block = tool_use(
                    call["id"].as_str().unwrap_or_default(),
                    call["function"]["name"].as_str().unwrap_or_default(),
                    call["function"]["arguments"].as_str().unwrap_or_default(),
                )
                .map_err(|what| EmbedError::malformed(&self.info.id, &what))?;
                content.push(block);
            }
            Ok(ChatResponse::new(
                ChatMessage::new(ChatRole::Assistant, content),
                stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
                usage(&body["usage"]),
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
