//! `mesh up --agents-config`: the agents whose model credentials are there start and
//! serve tasks (here a code analyzer on a local OpenAI-compatible endpoint); the others
//! are named with the reason they did not start (a Bedrock agent without AWS
//! credentials). The usage shows through the REST API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Killed, Rest};
use mesh_core::testing::{FakeModel, Seen, Turn};
use serde_json::json;

const KEY: &str = "llm-agents-test-key-0123456789ab";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_up_starts_the_agents_it_has_credentials_for_and_says_why_not_the_others() {
    let model = FakeModel::start(|seen: &Seen| match seen.turn {
        1 => Turn::Call(vec![("code_read".into(), json!({"path": "main.py"}))]),
        _ => Turn::Say(format!("main.py: {}", seen.results[0].0)),
    })
    .await;
    let dir = common::fresh_data_dir();
    let code = dir.join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("main.py"), "print('hello from the checkout')\n").unwrap();
    let file = dir.join("agents.toml");
    std::fs::write(
        &file,
        format!(
            r#"
            [[agents]]
            profile = "code_analyzer"
            root = "{}"
            model = {{ provider = "openai", base_url = "{}/v1", id = "local-coder" }}

            [[agents]]
            profile = "database_analyzer"
            database_url = "postgres://reader@127.0.0.1:1/app"
            model = {{ provider = "bedrock", id = "anthropic.claude-3-5-haiku-20241022-v1:0", region = "us-east-1" }}
            "#,
            code.display(),
            model.url
        ),
    )
    .unwrap();

    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh"));
    command
        .args([
            "up",
            "--in-memory",
            "--listen",
            "127.0.0.1:0",
            "--agents-config",
        ])
        .arg(&file)
        .env("MESH_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        // No AWS credentials anywhere the chain looks.
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped());
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        command.env_remove(var);
    }
    let mut child = Killed(command.spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut agents = Vec::new();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim_start().strip_prefix("LLM agent   ") {
            agents.push(rest.to_owned());
        }
        if let Some(rest) = line.trim_start().strip_prefix("agent hub   ws://") {
            addr = Some(rest.split('/').next().unwrap().to_owned());
            break;
        }
    }
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    assert_eq!(agents.len(), 2, "{agents:?}");
    assert_eq!(
        agents[0],
        format!(
            "code-analyzer: started (code-analysis on local-coder at {}/v1)",
            model.url
        )
    );
    assert!(
        agents[1].starts_with("database-analyzer: not started: no AWS credentials"),
        "{}",
        agents[1]
    );

    let rest_addr = addr.unwrap();
    let rest = Rest::new(&rest_addr, KEY);
    let id = rest
        .submit("code-analysis", json!("What does main.py print?"))
        .await;
    let done = rest.until(&id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        done["output"]["answer"]
            .as_str()
            .unwrap()
            .contains("hello from the checkout"),
        "{done}"
    );
    let usage = rest.get("/agents/usage").await;
    assert_eq!(usage["agents"]["code-analyzer"]["completed"], 1, "{usage}");
    assert_eq!(usage["agents"]["code-analyzer"]["tool_calls"], 1, "{usage}");

    // The same as a table, from the command line.
    let cli = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["--url", &format!("http://{}", rest_addr), "--key", KEY])
        .args(["agents", "usage"])
        .output()
        .unwrap();
    let table = String::from_utf8(cli.stdout).unwrap();
    eprintln!("{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["AGENT", "COMPLETED", "FAILED"], "{table}");
    assert_eq!(
        rows[1][..5],
        ["code-analyzer", "1", "0", "2", "1"],
        "{table}"
    );
    assert_eq!(rows[2][..5], ["(all)", "1", "0", "2", "1"], "{table}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_agent_in_its_own_process_serves_tasks_over_the_protocol() {
    let model = FakeModel::start(|seen: &Seen| match seen.turn {
        1 => Turn::Call(vec![("source_read".into(), json!({"path": "lib.rs"}))]),
        2 => Turn::Call(vec![(
            "docs_write".into(),
            json!({"path": "lib.md", "text": format!("# lib.rs\n\n{}", seen.results[0].0)}),
        )]),
        _ => Turn::Say("Wrote lib.md".into()),
    })
    .await;
    let dir = common::fresh_data_dir();
    let (source, docs) = (dir.join("src"), dir.join("docs"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
    let file = dir.join("agents.toml");
    let openai = format!(
        r#"model = {{ provider = "openai", base_url = "{}/v1", id = "local" }}"#,
        model.url
    );
    std::fs::write(
        &file,
        format!(
            "[[agents]]\nprofile = \"code_analyzer\"\nroot = \"{src}\"\n{openai}\n\n\
             [[agents]]\nprofile = \"documentation_generator\"\nroot = \"{src}\"\noutput = \"{docs}\"\n{openai}\n\n\
             [[agents]]\nprofile = \"knowledge_builder\"\n{openai}\n",
            src = source.display(),
            docs = docs.display(),
        ),
    )
    .unwrap();
    let (_mesh, addr) = common::mesh_up(&["--in-memory", "--listen", "127.0.0.1:0"], KEY);
    let llm_agent = |name: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_llm-agent"));
        command
            .args([
                "--url",
                &format!("ws://{addr}/ws"),
                "--key",
                KEY,
                "--agents-config",
            ])
            .arg(&file)
            .args(["--name", name])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };

    // The knowledge builder writes into Mesh's knowledge store: not from outside.
    let refused = llm_agent("knowledge-builder").output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("runs in Mesh's process"), "{said}");

    let mut agent = Killed(llm_agent("documentation-generator").spawn().unwrap());
    let mut first = String::new();
    BufReader::new(agent.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(
        first.trim(),
        format!(
            "llm-agent documentation-generator: documentation on local at {}/v1, connecting to ws://{addr}/ws",
            model.url
        )
    );
    let rest = Rest::new(&addr, KEY);
    let id = rest.submit("documentation", json!("Document lib.rs")).await;
    let done = rest.until(&id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["answer"], "Wrote lib.md");
    assert_eq!(done["output"]["turns"], 3);
    assert_eq!(done["progress"], 1.0, "the last progress report: answered");
    let written = std::fs::read_to_string(docs.join("lib.md")).unwrap();
    assert!(
        written.contains("pub fn answer() -> u32 { 42 }"),
        "{written}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
