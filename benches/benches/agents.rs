//! The agent runtime's own cost per model turn, the model excluded. One task is two
//! turns and one tool call: the model asks to read a file, then answers. Measured:
//!
//! - `tool_direct`: the files tool reading the file, called directly (the work the
//!   task cannot avoid);
//! - `task_instant_model`: the whole task through `LlmAgent::run` with a model that
//!   answers at once in-process — the loop, the toolbox, usage accounting, the tool;
//! - `task_bedrock_loopback`: the same through the Bedrock client (the AWS SDK's
//!   serialisation, SigV4 signing, ConverseStream event frames) against a local
//!   endpoint — what a real model turn adds before the model thinks.
//!
//! Overhead per turn = (task − tool) / 2. `cargo bench -p mesh-benches --bench agents`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use criterion::{Criterion, criterion_group, criterion_main};
use mesh_core::agents::{AgentSpec, LlmAgent};
use mesh_core::embed::{
    BedrockChat, BoxFuture, ChatMessage, ChatModel, ChatModelInfo, ChatRequest, ChatResponse,
    ChatRole, ContentBlock, EmbedError, StopReason, TokenUsage,
};
use mesh_core::services::Services;
use mesh_core::testing::{FakeModel, Seen, Turn};
use mesh_core::tools::{FilesAdapter, ToolAdapter};
use mesh_core::{Engine, TenantId};
use serde_json::json;

/// A model that answers at once: a tool call, then (with the result) the answer.
struct Instant(ChatModelInfo);

impl ChatModel for Instant {
    fn info(&self) -> &ChatModelInfo {
        &self.0
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, EmbedError>> {
        Box::pin(async move {
            let (content, stop) = if request.messages.len() == 1 {
                let call = ContentBlock::ToolUse {
                    id: "t1".into(),
                    name: "code_read".into(),
                    input: json!({"path": "lib.rs"}),
                };
                (vec![call], StopReason::ToolUse)
            } else {
                (vec![ContentBlock::text("It adds.")], StopReason::EndTurn)
            };
            Ok(ChatResponse::new(
                ChatMessage::new(ChatRole::Assistant, content),
                stop,
                TokenUsage::new(500, 20),
            ))
        })
    }
}

fn read_then_answer(seen: &Seen) -> Turn {
    match seen.turn {
        1 => Turn::Call(vec![("code_read".into(), json!({"path": "lib.rs"}))]),
        _ => Turn::Say("It adds.".into()),
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let root = std::env::temp_dir().join(format!("mesh-bench-agents-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 { a + b }\n".repeat(20),
    )
    .unwrap();
    let (services, fake) = runtime.block_on(async {
        (
            Services::in_memory(Engine::in_memory().await),
            FakeModel::start(read_then_answer).await,
        )
    });
    let tenant = TenantId::new();
    let files = FilesAdapter::read_only("code", &root);
    let spec = || AgentSpec::new("bench", "You read code.", ["code-analysis"]);
    let agent = |model: Arc<dyn ChatModel>| {
        LlmAgent::new(
            spec(),
            model,
            services.tools.clone(),
            services.agents.clone(),
        )
        .with_tool(files.clone())
    };
    let instant = agent(Arc::new(Instant(ChatModelInfo::new("instant", 3.0, 15.0))));
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .endpoint_url(&fake.url)
        .retry_config(RetryConfig::disabled())
        .build();
    let bedrock = agent(Arc::new(BedrockChat::new(
        aws_sdk_bedrockruntime::Client::from_conf(config),
        ChatModelInfo::new("anthropic.claude-3-5-haiku-20241022-v1:0", 0.8, 4.0),
    )));
    let input = json!("What does lib.rs do?");

    let mut group = c.benchmark_group("agents");
    group.bench_function("tool_direct", |b| {
        b.iter(|| {
            runtime
                .block_on(files.execute("read", json!({"path": "lib.rs"})))
                .unwrap()
        })
    });
    group.bench_function("task_instant_model", |b| {
        b.iter(|| runtime.block_on(instant.run(tenant, &input, None)).unwrap())
    });
    group.bench_function("task_bedrock_loopback", |b| {
        b.iter(|| runtime.block_on(bedrock.run(tenant, &input, None)).unwrap())
    });
    group.finish();
    let _ = std::fs::remove_dir_all(root);
}

criterion_group!(benches, bench);
criterion_main!(benches);
