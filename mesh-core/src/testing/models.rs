//! A local model endpoint for tests and benches: it speaks Bedrock's `Converse` and
//! `ConverseStream` (AWS event stream frames) and the OpenAI-compatible chat API, with
//! the documented request and response shapes; what the model "says" each turn is
//! scripted from what it was sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the model does this turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// Answers with this text (stop `end_turn`).
    Say(String),
    /// Asks for these tools: (name, input).
    Call(Vec<(String, Value)>),
    /// Answers with this text, cut at the token limit (stop `max_tokens`).
    Cut(String),
    /// Answers HTTP 429 (Bedrock's `ThrottlingException`, OpenAI's rate limit).
    Throttle,
    /// Never answers.
    Hang,
}

/// What the model was sent, as the script sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The system prompt.
    pub system: String,
    /// The first user message's text (the task).
    pub request: String,
    /// The tools it was offered, by name.
    pub tools: Vec<String>,
    /// Which turn this is (1 for the first request of a task).
    pub turn: usize,
    /// The tool results of the last message: (content as text, whether an error).
    pub results: Vec<(String, bool)>,
}

/// The running endpoint; stops when dropped.
#[derive(Debug)]
pub struct FakeModel {
    /// Its base URL: Bedrock's endpoint, and `{url}/v1` for the OpenAI API.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: JoinHandle<()>,
}

type Script = Arc<dyn Fn(&Seen) -> Turn + Send + Sync>;

impl FakeModel {
    /// Serves on loopback, answering each request as `script` says.
    pub async fn start(script: impl Fn(&Seen) -> Turn + Send + Sync + 'static) -> Self {
        let script: Script = Arc::new(script);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, body: Bytes| {
            let (script, log) = (script.clone(), log.clone());
            async move { answer(&uri, &body, &script, &log).await }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, seen, server }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(uri: &Uri, body: &[u8], script: &Script, log: &Mutex<Vec<Seen>>) -> Response {
    let path = uri.path();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let openai = path.ends_with("/chat/completions");
    let seen = if openai {
        seen_openai(&body)
    } else {
        seen_bedrock(&body)
    };
    log.lock().unwrap().push(seen.clone());
    let turn = script(&seen);
    let input_tokens = body.to_string().len() as u64 / 4;
    let (content, stop) = match turn {
        Turn::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Turn::Throttle if openai => {
            let body = json!({"error": {"message": "Rate limit reached", "type": "requests"}});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                body.to_string(),
            )
                .into_response();
        }
        Turn::Throttle => {
            let body = json!({"message": "Too many requests, please wait before trying again."});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    (
                        "x-amzn-ErrorType",
                        "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                    ),
                    ("content-type", "application/json"),
                ],
                body.to_string(),
            )
                .into_response();
        }
        Turn::Say(text) => (Content::Text(text), ("end_turn", "stop")),
        Turn::Cut(text) => (Content::Text(text), ("max_tokens", "length")),
        Turn::Call(calls) => (Content::Calls(calls), ("tool_use", "tool_calls")),
    };
    let output_tokens = 10 + content.len() as u64 / 4;
    let reply = Reply {
        turn: seen.turn,
        content,
        usage: (input_tokens, output_tokens),
    };
    match (openai, body["stream"] == json!(true)) {
        (true, true) => reply.openai_stream(stop.1),
        (true, false) => reply.openai(stop.1),
        (false, _) if path.ends_with("/converse-stream") => reply.bedrock_stream(stop.0),
        (false, _) => reply.bedrock(stop.0),
    }
}

enum Content {
    Text(String),
    Calls(Vec<(String, Value)>),
}

impl Content {
    fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Calls(calls) => calls
                .iter()
                .map(|(n, i)| n.len() + i.to_string().len())
                .sum(),
        }
    }
}

struct Reply {
    turn: usize,
    content: Content,
    usage: (u64, u64),
}

impl Reply {
    fn id(&self, n: usize) -> String {
        format!("tooluse_{}_{n}", self.turn)
    }

    fn bedrock(&self, stop: &str) -> Response {
        let content: Vec<Value> = match &self.content {
            Content::Text(text) => vec![json!({"text": text})],
            Content::Calls(calls) => calls
                .iter()
                .enumerate()
                .map(|(n, (name, input))| json!({"toolUse": {"toolUseId": self.id(n), "name": name, "input": input}}))
                .collect(),
        };
        let (input, output) = self.usage;
        axum::Json(json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
            "metrics": {"latencyMs": 1}
        }))
        .into_response()
    }

    fn bedrock_stream(&self, stop: &str) -> Response {
        let mut frames = frame("messageStart", &json!({"role": "assistant"}));
        match &self.content {
            Content::Text(text) => {
                let half = (0..=text.len() / 2)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                for piece in [&text[..half], &text[half..]] {
                    frames.extend(frame(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
                    ));
                }
                frames.extend(frame("contentBlockStop", &json!({"contentBlockIndex": 0})));
            }
            Content::Calls(calls) => {
                for (n, (name, input)) in calls.iter().enumerate() {
                    let start = json!({"contentBlockIndex": n, "start": {"toolUse": {"toolUseId": self.id(n), "name": name}}});
                    frames.extend(frame("contentBlockStart", &start));
                    let delta = json!({"contentBlockIndex": n, "delta": {"toolUse": {"input": input.to_string()}}});
                    frames.extend(frame("contentBlockDelta", &delta));
                    frames.extend(frame("contentBlockStop", &json!({"contentBlockIndex": n})));
                }
            }
        }
        frames.extend(frame("messageStop", &json!({"stopReason": stop})));
        let (input, output) = self.usage;
        frames.extend(frame(
            "metadata",
            &json!({"usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output}, "metrics": {"latencyMs": 1}}),
        ));
        (
            [("content-type", "application/vnd.amazon.eventstream")],
            frames,
        )
            .into_response()
    }

    fn tool_calls(&self) -> Vec<Value> {
        match &self.content {
            Content::Calls(calls) => calls
                .iter()
                .enumerate()
                .map(|(n, (name, input))| json!({"index": n, "id": self.id(n), "type": "function", "function": {"name": name, "arguments": input.to_string()}}))
                .collect(),
            Content::Text(_) => Vec::new(),
        }
    }

    fn usage_json(&self) -> Value {
        let (input, output) = self.usage;
        json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output})
    }

    fn openai(&self, stop: &str) -> Response {
        let text = match &self.content {
            Content::Text(text) => json!(text),
            Content::Calls(_) => Value::Null,
        };
        let mut message = json!({"role": "assistant", "content": text});
        let calls = self.tool_calls();
        if !calls.is_empty() {
            message["tool_calls"] = json!(calls);
        }
        axum::Json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "message": message, "finish_reason": stop}],
            "usage": self.usage_json()
        }))
        .into_response()
    }

    fn openai_stream(&self, stop: &str) -> Response {
        let chunk = |delta: Value, finish: Value| json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        let mut events = vec![chunk(json!({"role": "assistant"}), Value::Null)];
        match &self.content {
            Content::Text(text) => events.push(chunk(json!({"content": text}), Value::Null)),
            Content::Calls(_) => {
                events.push(chunk(json!({"tool_calls": self.tool_calls()}), Value::Null));
            }
        }
        events.push(chunk(json!({}), json!(stop)));
        events.push(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": self.usage_json()}));
        let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        body.push_str("data: [DONE]\n\n");
        ([("content-type", "text/event-stream")], body).into_response()
    }
}

/// One AWS event stream frame: an `event` of `event_type` with a JSON payload
/// (prelude and message CRC32s, string headers).
fn frame(event_type: &str, payload: &Value) -> Vec<u8> {
    let payload = payload.to_string().into_bytes();
    let mut headers = Vec::new();
    for (name, value) in [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ] {
        headers.push(name.len() as u8);
        headers.extend(name.as_bytes());
        headers.push(7); // string
        headers.extend((value.len() as u16).to_be_bytes());
        headers.extend(value.as_bytes());
    }
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend((total as u32).to_be_bytes());
    out.extend((headers.len() as u32).to_be_bytes());
    out.extend(crc32fast::hash(&out).to_be_bytes());
    out.extend(headers);
    out.extend(payload);
    out.extend(crc32fast::hash(&out).to_be_bytes());
    out
}

fn text_of(blocks: &Value) -> String {
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| match (&b["text"], &b["json"]) {
            (Value::String(t), _) => t.clone(),
            (_, json) if !json.is_null() => json.to_string(),
            _ => String::new(),
        })
        .collect()
}

fn seen_bedrock(body: &Value) -> Seen {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let results = messages
        .last()
        .filter(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("toolResult"))
        .map(|r| (text_of(&r["content"]), r["status"] == "error"))
        .collect();
    Seen {
        system: text_of(&body["system"]),
        request: messages
            .first()
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default(),
        tools: body["toolConfig"]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["toolSpec"]["name"].as_str().map(str::to_owned))
            .collect(),
        turn: 1 + messages.iter().filter(|m| m["role"] == "assistant").count(),
        results,
    }
}

fn seen_openai(body: &Value) -> Seen {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let text = |m: &Value| m["content"].as_str().unwrap_or_default().to_owned();
    let results = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| {
            let content = text(m);
            (content.clone(), content.starts_with("error: "))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Seen {
        system: messages
            .iter()
            .find(|m| m["role"] == "system")
            .map(text)
            .unwrap_or_default(),
        request: messages
            .iter()
            .find(|m| m["role"] == "user")
            .map(text)
            .unwrap_or_default(),
        tools: body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect(),
        turn: 1 + messages.iter().filter(|m| m["role"] == "assistant").count(),
        results,
    }
}
