//! LLM agents end to end against a local model endpoint speaking Bedrock's Converse /
//! ConverseStream and the OpenAI-compatible chat API (`testing::FakeModel`): a task
//! goes to the agent, the model asks for a tool, the tool runs through Mesh, the result
//! goes back, the task completes with the answer and its usage; throttling is retried,
//! limits stop a runaway loop, cancel stops it; each of the four built-in profiles does
//! its real work (a directory, the test PostgreSQL, the knowledge store, written docs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use mesh_core::agents::{AgentConfig, AgentLimits, Profile};
use mesh_core::app::AppConfig;
use mesh_core::embed::{BedrockChat, ChatModel, ChatModelInfo, OpenAiChat};
use mesh_core::knowledge::SearchRequest;
use mesh_core::services::Services;
use mesh_core::testing::{self, FakeModel, Seen, Turn};
use mesh_core::{Engine, Scope, TaskSpec, TaskStatus, TenantId};
use serde_json::{Value, json};

fn bedrock(model: &FakeModel) -> Arc<dyn ChatModel> {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(&model.url)
        .retry_config(RetryConfig::disabled())
        .build();
    Arc::new(BedrockChat::new(
        aws_sdk_bedrockruntime::Client::from_conf(config),
        ChatModelInfo::new("anthropic.claude-3-5-sonnet-20241022-v2:0", 3.0, 15.0),
    ))
}

fn openai(model: &FakeModel) -> Arc<dyn ChatModel> {
    Arc::new(OpenAiChat::new(
        &format!("{}/v1", model.url),
        None,
        ChatModelInfo::new("llama3.1:8b", 0.0, 0.0),
    ))
}

async fn services() -> Services {
    let engine = Engine::start(testing::fast_config(), mesh_core::MemoryStores::new())
        .await
        .unwrap();
    Services::in_memory(engine)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mesh-agents-{name}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A code analyzer over a directory with one file.
fn code_analyzer(root: &std::path::Path) -> AgentConfig {
    std::fs::write(root.join("notes.txt"), "remember the milk").unwrap();
    let mut config = AgentConfig::new(Profile::CodeAnalyzer);
    config.root = Some(root.to_owned());
    config
}

/// Reads `notes.txt`, then says what it read.
fn read_then_answer(seen: &Seen) -> Turn {
    match seen.turn {
        1 => Turn::Call(vec![("code_read".into(), json!({"path": "notes.txt"}))]),
        _ => Turn::Say(format!("The notes say: {}", seen.results[0].0)),
    }
}

async fn run(services: &Services, tenant: TenantId, kind: &str, input: Value) -> mesh_core::Task {
    let engine = &services.engine;
    let task = engine
        .submit(tenant, TaskSpec::new(kind, input))
        .await
        .unwrap();
    engine.wait(tenant, task.id).await.unwrap()
}

async fn tool_round_trip(model: Arc<dyn ChatModel>, fake: &FakeModel) -> Value {
    let services = services().await;
    let tenant = TenantId::new();
    let root = scratch("round-trip");
    let agent = code_analyzer(&root)
        .build(model, &services, tenant)
        .unwrap();
    let _running = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(
        &services,
        tenant,
        "code-analysis",
        json!("What do the notes say?"),
    )
    .await;
    assert_eq!(done.status(), TaskStatus::Completed, "{:?}", done.error);
    let output = done.output.unwrap();
    assert!(
        output["answer"]
            .as_str()
            .unwrap()
            .contains("remember the milk"),
        "{output}"
    );
    assert_eq!(
        (output["turns"].as_u64(), output["tool_calls"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(output["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].request, "What do the notes say?");
    assert_eq!(seen[0].system, Profile::CodeAnalyzer.prompt());
    assert_eq!(seen[0].tools, ["code_list", "code_read"]);
    assert_eq!(seen[1].results.len(), 1);
    assert!(!seen[1].results[0].1, "the tool succeeded");

    let usage = services.agents.of(tenant);
    let totals = usage["code-analyzer"];
    assert_eq!(
        (totals.completed, totals.turns, totals.tool_calls),
        (1, 2, 1)
    );
    assert_eq!(
        totals.input_tokens,
        output["usage"]["input_tokens"].as_u64().unwrap()
    );
    let _ = std::fs::remove_dir_all(root);
    output
}

#[tokio::test]
async fn over_bedrock_converse_stream_the_model_uses_a_tool_and_answers() {
    let fake = FakeModel::start(read_then_answer).await;
    let output = tool_round_trip(bedrock(&fake), &fake).await;
    assert_eq!(output["model"], "anthropic.claude-3-5-sonnet-20241022-v2:0");
    assert_eq!(output["stop"], "end_turn");
    let usage = &output["usage"];
    let expected = (usage["input_tokens"].as_f64().unwrap() * 3.0
        + usage["output_tokens"].as_f64().unwrap() * 15.0)
        / 1e6;
    assert!((usage["dollars"].as_f64().unwrap() - expected).abs() < 1e-12);
}

#[tokio::test]
async fn over_an_openai_compatible_endpoint_the_model_uses_a_tool_and_answers() {
    let fake = FakeModel::start(read_then_answer).await;
    let output = tool_round_trip(openai(&fake), &fake).await;
    assert_eq!(output["model"], "llama3.1:8b");
    assert_eq!(output["usage"]["dollars"], 0.0);
}

#[tokio::test]
async fn throttling_is_retried_a_failing_tool_goes_back_to_the_model_and_max_tokens_is_reported() {
    let throttled = std::sync::atomic::AtomicBool::new(false);
    let fake = FakeModel::start(move |seen: &Seen| match seen.turn {
        // The first request is throttled, its retry is not.
        1 if !throttled.swap(true, std::sync::atomic::Ordering::SeqCst) => Turn::Throttle,
        1 => Turn::Call(vec![("code_read".into(), json!({"path": "../etc/passwd"}))]),
        _ => {
            let (text, failed) = &seen.results[0];
            assert!(*failed, "the escape attempt failed: {text}");
            Turn::Cut(format!("The tool refused: {text}"))
        }
    })
    .await;
    let services = services().await;
    let tenant = TenantId::new();
    let root = scratch("throttle");
    let agent = code_analyzer(&root)
        .build(bedrock(&fake), &services, tenant)
        .unwrap();
    let _running = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(&services, tenant, "code-analysis", json!("go")).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{:?}", done.error);
    let output = done.output.unwrap();
    assert_eq!(output["stop"], "max_tokens");
    assert!(
        output["answer"]
            .as_str()
            .unwrap()
            .contains("paths are relative"),
        "{output}"
    );
    assert_eq!(fake.seen().len(), 3, "throttled, retried, then the answer");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn limits_stop_a_runaway_loop_with_a_clear_failure() {
    // A model that never stops asking for tools.
    let fake = FakeModel::start(|_: &Seen| Turn::Call(vec![("code_list".into(), json!({}))])).await;
    let services = services().await;
    let tenant = TenantId::new();
    let root = scratch("runaway");
    let mut config = code_analyzer(&root);
    config.limits.max_turns = 3;
    let agent = config.build(bedrock(&fake), &services, tenant).unwrap();
    let _running = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(&services, tenant, "code-analysis", json!("loop")).await;
    assert_eq!(done.status(), TaskStatus::Failed);
    let error = done.error.unwrap();
    assert!(error.contains("max_turns limit (3)"), "{error}");
    assert_eq!(fake.seen().len(), 3);

    // A dollar limit: each turn costs more than the whole budget.
    let mut config = code_analyzer(&root);
    config.name = Some("frugal".into());
    config.capabilities = vec!["frugal".into()];
    config.limits.max_dollars = 1e-9;
    let agent = config.build(bedrock(&fake), &services, tenant).unwrap();
    let _frugal = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(&services, tenant, "frugal", json!("loop")).await;
    assert!(done.error.unwrap().contains("max_dollars"));

    // A wall-time limit: a model that never answers is cut off.
    let silent = FakeModel::start(|_: &Seen| Turn::Hang).await;
    let mut config = code_analyzer(&root);
    config.name = Some("patient".into());
    config.capabilities = vec!["patient".into()];
    config.limits.max_wall_ms = 300;
    let agent = config.build(bedrock(&silent), &services, tenant).unwrap();
    let _patient = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(&services, tenant, "patient", json!("wait")).await;
    let error = done.error.unwrap();
    assert!(error.contains("max_wall_ms limit (300)"), "{error}");

    let usage = services.agents.of(tenant);
    assert_eq!((usage["frugal"].failed, usage["frugal"].turns), (1, 1));
    assert_eq!((usage["patient"].failed, usage["patient"].turns), (1, 0));
    assert_eq!(usage["code-analyzer"].turns, 3);
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn cancel_stops_the_loop_and_the_agent_serves_the_next_task() {
    let fake = FakeModel::start(|seen: &Seen| match (seen.request.as_str(), seen.turn) {
        ("hang", 1) => Turn::Call(vec![("code_list".into(), json!({}))]),
        ("hang", _) => Turn::Hang,
        _ => Turn::Say("quick".into()),
    })
    .await;
    let services = services().await;
    let engine = services.engine.clone();
    let tenant = TenantId::new();
    let root = scratch("cancel");
    let agent = code_analyzer(&root)
        .build(bedrock(&fake), &services, tenant)
        .unwrap();
    let _running = agent.start(&engine, tenant).await.unwrap();
    let task = engine
        .submit(tenant, TaskSpec::new("code-analysis", json!("hang")))
        .await
        .unwrap();
    // Turn 2 reported its progress, then the model hangs.
    let limits = AgentLimits::default();
    let mut progress = None;
    for _ in 0..500 {
        let now = engine.task(tenant, task.id).await.unwrap();
        progress = now.and_then(|t| t.progress);
        if fake.seen().len() == 2 && progress == Some(1.0 / f64::from(limits.max_turns)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(progress, Some(1.0 / f64::from(limits.max_turns)));
    engine.cancel(tenant, task.id).await.unwrap();
    let done = engine.wait(tenant, task.id).await.unwrap();
    assert_eq!(done.status(), TaskStatus::Cancelled);
    let next = run(&services, tenant, "code-analysis", json!("next")).await;
    assert_eq!(next.output.unwrap()["answer"], "quick");
    assert_eq!(
        fake.seen().len(),
        3,
        "nothing more was asked for the cancelled task"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn the_database_analyzer_reads_the_test_postgres_schema() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for sql in [
        "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE)",
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), total numeric)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let fake = FakeModel::start(|seen: &Seen| match seen.turn {
        1 => Turn::Call(vec![("schema_tables".into(), json!({}))]),
        2 => Turn::Call(vec![
            ("schema_describe".into(), json!({"table": "orders"})),
            // Not a way in: the input is a bound parameter of a catalog query.
            (
                "schema_describe".into(),
                json!({"table": "orders; DROP TABLE orders"}),
            ),
        ]),
        _ => Turn::Say(format!("Found: {}", seen.results[0].0)),
    })
    .await;
    let services = services().await;
    let tenant = TenantId::new();
    let mut config = AgentConfig::new(Profile::DatabaseAnalyzer);
    config.database_url = Some(url.clone());
    let shown = format!("{config:?}");
    assert!(
        shown.contains("<redacted>") && !shown.contains(&url),
        "{shown}"
    );
    let agent = config.build(bedrock(&fake), &services, tenant).unwrap();
    let _running = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(
        &services,
        tenant,
        "database-analysis",
        json!("Review the schema"),
    )
    .await;
    assert_eq!(done.status(), TaskStatus::Completed, "{:?}", done.error);
    let seen = fake.seen();
    assert!(
        seen[1].results[0].0.contains("\"customers\""),
        "{:?}",
        seen[1]
    );
    let described = &seen[2].results[0].0;
    assert!(
        described.contains("FOREIGN KEY (customer_id) REFERENCES customers(id)"),
        "{described}"
    );
    assert!(described.contains("orders_pkey"), "{described}");
    assert!(
        seen[2].results[1].1,
        "the odd table name is simply not found"
    );
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "orders is still there");
}

#[tokio::test]
async fn the_knowledge_builder_indexes_documents_with_their_entities() {
    let fake = FakeModel::start(|seen: &Seen| match seen.turn {
        1 => Turn::Call(vec![("source_read".into(), json!({"path": "runbook.md"}))]),
        2 => Turn::Call(vec![(
            "knowledge_index".into(),
            json!({"document_id": "runbook", "title": "Runbook",
                   "text": "When PostgreSQL fails over, Alice restarts the billing service.",
                   "entities": ["PostgreSQL", "Alice", "billing service"]}),
        )]),
        _ => Turn::Say("Indexed runbook (PostgreSQL, Alice, billing service).".into()),
    })
    .await;
    let services = services().await;
    let tenant = TenantId::new();
    let root = scratch("knowledge");
    std::fs::write(
        root.join("runbook.md"),
        "When PostgreSQL fails over, Alice restarts the billing service.",
    )
    .unwrap();
    let mut config = AgentConfig::new(Profile::KnowledgeBuilder);
    config.root = Some(root.clone());
    let agent = config.build(openai(&fake), &services, tenant).unwrap();
    let _running = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(
        &services,
        tenant,
        "knowledge-building",
        json!("Index runbook.md"),
    )
    .await;
    assert_eq!(done.status(), TaskStatus::Completed, "{:?}", done.error);
    let hits = services
        .search(
            tenant,
            &SearchRequest {
                collection: "knowledge".into(),
                query: "who restarts billing".into(),
                k: Some(1),
                filter: Some(
                    serde_json::from_value(
                        json!({"entities": ["PostgreSQL", "Alice", "billing service"]}),
                    )
                    .unwrap(),
                ),
            },
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].document_id, "runbook");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn the_documentation_generator_writes_docs_and_usage_shows_in_the_api() {
    let fake = FakeModel::start(|seen: &Seen| match seen.turn {
        1 => Turn::Call(vec![("source_read".into(), json!({"path": "lib.rs"}))]),
        2 => {
            let source = &seen.results[0].0;
            assert!(source.contains("pub fn add"), "{source}");
            Turn::Call(vec![(
                "docs_write".into(),
                json!({"path": "api/add.md", "text": "# add\n\n`add(a, b)` returns the sum of `a` and `b`.\n"}),
            )])
        }
        _ => Turn::Say("Wrote api/add.md".into()),
    })
    .await;
    let services = services().await;
    let tenant = TenantId::new();
    let (root, output) = (scratch("source"), scratch("docs"));
    std::fs::write(
        root.join("lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 { a + b }\n",
    )
    .unwrap();
    let mut config = AgentConfig::new(Profile::DocumentationGenerator);
    config.root = Some(root.clone());
    config.output = Some(output.clone());
    let agent = config.build(bedrock(&fake), &services, tenant).unwrap();
    assert_eq!(fake.seen().len(), 0, "nothing is asked before a task");
    let _running = agent.start(&services.engine, tenant).await.unwrap();
    let done = run(&services, tenant, "documentation", json!("Document lib.rs")).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{:?}", done.error);
    let written = std::fs::read_to_string(output.join("api/add.md")).unwrap();
    assert!(written.contains("returns the sum"));
    assert_eq!(
        fake.seen()[0].tools,
        [
            "source_list",
            "source_read",
            "docs_list",
            "docs_read",
            "docs_write"
        ]
    );
    assert!(
        !fake.seen()[0].tools.contains(&"source_write".to_owned()),
        "the source is read-only"
    );

    // The usage, through the REST API.
    let key = services
        .engine
        .create_api_key(tenant, "k", vec![Scope::Read], None)
        .await
        .unwrap()
        .0;
    let (addr, _server) = testing::serve_app(services.clone(), AppConfig::default()).await;
    let report: Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/agents/usage"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = &report["agents"]["documentation-generator"];
    assert_eq!(
        (
            agent["completed"].as_u64(),
            agent["turns"].as_u64(),
            agent["tool_calls"].as_u64()
        ),
        (Some(1), Some(3), Some(2))
    );
    assert!(report["total"]["dollars"].as_f64().unwrap() > 0.0);
    let by_model = &report["models"]["anthropic.claude-3-5-sonnet-20241022-v2:0"];
    assert_eq!(by_model["requests"], 3, "{report}");
    assert_eq!(by_model["dollars"], report["total"]["dollars"], "{report}");
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(output);
}

#[test]
fn a_profile_without_what_it_needs_says_so() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let services = services().await;
        let fake = FakeModel::start(|_: &Seen| Turn::Say(String::new())).await;
        for (profile, setting) in [
            (Profile::CodeAnalyzer, "root"),
            (Profile::DatabaseAnalyzer, "database_url"),
            (Profile::DocumentationGenerator, "root"),
        ] {
            let error = AgentConfig::new(profile)
                .build(bedrock(&fake), &services, TenantId::new())
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("agent {} needs `{setting}`", profile.name())
            );
        }
    });
}
