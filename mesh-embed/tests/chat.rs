//! The chat clients against local endpoints that speak the providers' wire formats:
//! Bedrock's `Converse` (JSON) and `ConverseStream` (AWS event stream frames) with its
//! errors, and an OpenAI-compatible `/chat/completions` (JSON and server-sent events).
//! The bodies are the documented shapes; each test checks what the client sent.

#![cfg(all(feature = "bedrock", feature = "openai"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use mesh_embed::{
    BedrockChat, ChatMessage, ChatModel, ChatModelInfo, ChatRequest, ChatRole, ContentBlock,
    EmbedError, OpenAiChat, StopReason, TokenUsage, ToolSpec,
};
use serde_json::{Value, json};

/// What the endpoint answers next.
enum Reply {
    Json(u16, Vec<(&'static str, &'static str)>, Value),
    /// Bedrock event stream frames: (event type, payload).
    Events(Vec<(&'static str, Value)>),
    /// Event stream bytes as they are.
    Stream(Vec<u8>),
    /// Server-sent events, one `data:` line each.
    Sse(Vec<String>),
}

#[derive(Clone, Default)]
struct Fake {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// (path, body) of each request.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Fake {
    fn then(&self, reply: Reply) -> &Self {
        self.replies.lock().unwrap().push_back(reply);
        self
    }

    fn seen(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

fn frame(event: &'static str, payload: &Value) -> Vec<u8> {
    let message = Message::new(Bytes::from(payload.to_string()))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event.into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
    out
}

async fn answer(fake: Fake, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push((path, body));
    let reply = fake.replies.lock().unwrap().pop_front().expect("a reply");
    let (status, content_type, headers, bytes) = match reply {
        Reply::Json(status, headers, body) => (
            status,
            "application/json",
            headers,
            body.to_string().into_bytes(),
        ),
        Reply::Events(events) => {
            let bytes = events.iter().flat_map(|(e, p)| frame(e, p)).collect();
            (200, "application/vnd.amazon.eventstream", vec![], bytes)
        }
        Reply::Stream(bytes) => (200, "application/vnd.amazon.eventstream", vec![], bytes),
        Reply::Sse(lines) => {
            let text: String = lines.iter().map(|l| format!("data: {l}\n\n")).collect();
            (200, "text/event-stream", vec![], text.into_bytes())
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", content_type);
    for (k, v) in headers {
        response = response.header(k, v);
    }
    response.body(Full::new(Bytes::from(bytes))).unwrap()
}

async fn serve() -> (String, Fake) {
    let fake = Fake::default();
    let url = common::serve(fake.clone(), answer).await;
    (url, fake)
}

fn bedrock(endpoint: &str) -> BedrockChat {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    BedrockChat::new(
        aws_sdk_bedrockruntime::Client::from_conf(config),
        ChatModelInfo::new("anthropic.claude-3-5-haiku-20241022-v1:0", 0.8, 4.0),
    )
}

/// A conversation that has been through one tool call.
fn request() -> ChatRequest {
    let mut request = ChatRequest::new(vec![
        ChatMessage::user("How many files are there?"),
        ChatMessage::new(
            ChatRole::Assistant,
            vec![ContentBlock::ToolUse {
                id: "tooluse_1".into(),
                name: "files_list".into(),
                input: json!({"path": "."}),
            }],
        ),
        ChatMessage::new(
            ChatRole::User,
            vec![ContentBlock::ToolResult {
                id: "tooluse_1".into(),
                content: json!({"entries": ["a.rs", "b.rs"]}),
                is_error: false,
            }],
        ),
    ]);
    request.system = Some("You count files.".into());
    request.tools = vec![ToolSpec::new(
        "files_list",
        "A directory's entries",
        json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    )];
    request.max_tokens = Some(512);
    request
}

#[tokio::test]
async fn converse_sends_the_documented_request_and_reads_tool_use_turns() {
    let (url, fake) = serve().await;
    let model = bedrock(&url);
    fake.then(Reply::Json(
        200,
        vec![],
        json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Let me look deeper."},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "files_list", "input": {"path": "src"}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 120, "outputTokens": 30, "totalTokens": 150},
            "metrics": {"latencyMs": 412}
        }),
    ));
    let response = model.chat(&request()).await.unwrap();
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(response.usage, TokenUsage::new(120, 30));
    assert_eq!(response.message.text(), "Let me look deeper.");
    let uses: Vec<_> = response.message.tool_uses().collect();
    assert_eq!(uses, [("tooluse_2", "files_list", &json!({"path": "src"}))]);
    assert!((model.info().dollars(response.usage) - 0.000216).abs() < 1e-12);

    let (path, body) = fake.seen().remove(0);
    assert_eq!(
        path,
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(body["system"], json!([{"text": "You count files."}]));
    assert_eq!(body["inferenceConfig"], json!({"maxTokens": 512}));
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"],
        json!({"name": "files_list", "description": "A directory's entries",
               "inputSchema": {"json": {"type": "object", "properties": {"path": {"type": "string"}}}}})
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"text": "How many files are there?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "files_list", "input": {"path": "."}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"entries": ["a.rs", "b.rs"]}}], "status": "success"}}]}
        ])
    );
}

#[tokio::test]
async fn converse_errors_are_typed_and_a_max_tokens_stop_is_reported() {
    let (url, fake) = serve().await;
    let model = bedrock(&url);
    fake.then(Reply::Json(
        429,
        vec![("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/")],
        json!({"message": "Too many requests, please wait before trying again."}),
    ))
    .then(Reply::Json(
        400,
        vec![("x-amzn-ErrorType", "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/")],
        json!({"message": "messages.0.content: must not be empty"}),
    ))
    .then(Reply::Json(
        200,
        vec![],
        json!({"output": {"message": {"role": "assistant", "content": [{"text": "The files are a.rs and"}]}},
               "stopReason": "max_tokens", "usage": {"inputTokens": 10, "outputTokens": 512, "totalTokens": 522}}),
    ));
    let throttled = model.chat(&request()).await.unwrap_err();
    assert!(
        throttled.is_throttling() && throttled.is_retryable(),
        "{throttled:?}"
    );
    let invalid = model.chat(&request()).await.unwrap_err();
    assert!(
        matches!(&invalid, EmbedError::Invalid { message, .. } if message.contains("must not be empty")),
        "{invalid:?}"
    );
    assert!(!invalid.is_retryable());
    let cut = model.chat(&request()).await.unwrap();
    assert_eq!(
        (cut.stop, cut.usage.output_tokens),
        (StopReason::MaxTokens, 512)
    );
}

#[tokio::test]
async fn converse_stream_assembles_text_and_tool_input_from_event_frames() {
    let (url, fake) = serve().await;
    let model = bedrock(&url);
    fake.then(Reply::Events(vec![
        ("messageStart", json!({"role": "assistant"})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Two "}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "files; checking."}})),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_3", "name": "files_read"}}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"path\": "}}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"a.rs\"}"}}})),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        ("metadata", json!({"usage": {"inputTokens": 99, "outputTokens": 12, "totalTokens": 111}, "metrics": {"latencyMs": 300}})),
    ]));
    let mut pieces = Vec::new();
    let mut plain = request();
    plain.system = None;
    let response = model
        .chat_stream(&plain, &mut |piece: &str| pieces.push(piece.to_owned()))
        .await
        .unwrap();
    assert_eq!(pieces, ["Two ", "files; checking."]);
    assert_eq!(response.message.text(), "Two files; checking.");
    let uses: Vec<_> = response.message.tool_uses().collect();
    assert_eq!(
        uses,
        [("tooluse_3", "files_read", &json!({"path": "a.rs"}))]
    );
    assert_eq!(
        (response.stop, response.usage),
        (StopReason::ToolUse, TokenUsage::new(99, 12))
    );
    let (path, body) = fake.seen().remove(0);
    assert!(path.ends_with("/converse-stream"));
    assert!(
        body.get("system").is_none(),
        "no system prompt, no `system`: {body}"
    );
}

#[tokio::test]
async fn an_exception_inside_the_stream_is_typed_and_a_cut_stream_is_malformed() {
    let (url, fake) = serve().await;
    let model = bedrock(&url);
    let string = |s: &'static str| HeaderValue::String(s.into());
    let throttle = Message::new(Bytes::from(
        json!({"message": "Too many tokens"}).to_string(),
    ))
    .add_header(Header::new(
        ":exception-type",
        string("throttlingException"),
    ))
    .add_header(Header::new(":content-type", string("application/json")))
    .add_header(Header::new(":message-type", string("exception")));
    let mut bytes = frame("messageStart", &json!({"role": "assistant"}));
    aws_smithy_eventstream::frame::write_message_to(&throttle, &mut bytes).unwrap();
    fake.then(Reply::Stream(bytes)).then(Reply::Events(vec![
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Two"}}),
        ),
    ]));
    let throttled = model.chat_stream(&request(), &mut |_: &str| {}).await;
    assert!(
        matches!(&throttled, Err(e) if e.is_throttling()),
        "{throttled:?}"
    );
    let cut = model.chat_stream(&request(), &mut |_: &str| {}).await;
    assert!(
        matches!(&cut, Err(EmbedError::Provider { message, retryable: false, .. }) if message.contains("messageStop")),
        "{cut:?}"
    );
}

fn openai(url: &str) -> OpenAiChat {
    OpenAiChat::new(
        &format!("{url}/v1"),
        Some("sk-local".into()),
        ChatModelInfo::new("qwen2.5-7b-instruct", 0.0, 0.0),
    )
}

#[tokio::test]
async fn openai_compatible_chat_maps_tools_calls_and_tool_messages() {
    let (url, fake) = serve().await;
    let model = openai(&url);
    fake.then(Reply::Json(
        200,
        vec![],
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "qwen2.5-7b-instruct",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                 "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "files_read", "arguments": "{\"path\":\"a.rs\"}"}}]}}],
               "usage": {"prompt_tokens": 80, "completion_tokens": 9, "total_tokens": 89}}),
    ))
    .then(Reply::Json(
        429,
        vec![("retry-after", "2")],
        json!({"error": {"message": "rate limited", "type": "rate_limit"}}),
    ));
    let response = model.chat(&request()).await.unwrap();
    assert_eq!(
        (response.stop.clone(), response.usage),
        (StopReason::ToolUse, TokenUsage::new(80, 9))
    );
    let uses: Vec<_> = response.message.tool_uses().collect();
    assert_eq!(uses, [("call_9", "files_read", &json!({"path": "a.rs"}))]);
    let throttled = model.chat(&request()).await.unwrap_err();
    assert!(
        matches!(throttled, EmbedError::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(2))
    );

    let (path, body) = fake.seen().remove(0);
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You count files."},
            {"role": "user", "content": "How many files are there?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "tooluse_1", "type": "function", "function": {"name": "files_list", "arguments": "{\"path\":\".\"}"}}]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "{\"entries\":[\"a.rs\",\"b.rs\"]}"}
        ])
    );
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "files_list");
    assert_eq!(body["max_tokens"], 512);
}

#[tokio::test]
async fn openai_compatible_streaming_assembles_deltas_and_usage() {
    let (url, fake) = serve().await;
    let model = openai(&url);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
    };
    fake.then(Reply::Sse(vec![
        chunk(json!({"role": "assistant", "content": "Re"}), Value::Null),
        chunk(json!({"content": "ading."}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "files_read", "arguments": "{\"pa"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "th\":\"b.rs\"}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        json!({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}}).to_string(),
        "[DONE]".into(),
    ]));
    let mut pieces = String::new();
    let response = model
        .chat_stream(&request(), &mut |piece: &str| pieces.push_str(piece))
        .await
        .unwrap();
    assert_eq!(pieces, "Reading.");
    let uses: Vec<_> = response.message.tool_uses().collect();
    assert_eq!(uses, [("call_1", "files_read", &json!({"path": "b.rs"}))]);
    assert_eq!(
        (response.stop, response.usage),
        (StopReason::ToolUse, TokenUsage::new(50, 7))
    );
    let body = &fake.seen()[0].1;
    assert_eq!(
        (&body["stream"], &body["stream_options"]),
        (&json!(true), &json!({"include_usage": true}))
    );
}
