//! The `mesh` command line as a user runs it: the built binary, as a process, against
//! a running server — every client subcommand at least once with its JSON parsed, the
//! exit codes, live progress on a pseudo-terminal and plain lines in a pipe, and a key
//! made and revoked with the CLI refused at once by a second instance on the same
//! PostgreSQL, its agent's session there closed.
//!
//! Long on purpose: one `mesh up` serves the whole client walk-through, which runs its
//! commands in order against the state the earlier ones made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "cli-test-admin-key-0123456789";

/// The CLI pointed at one server, with a profiles file of its own.
struct Cli {
    url: String,
    key: String,
    config: PathBuf,
}

impl Cli {
    fn new(addr: &str, key: &str) -> Self {
        Self {
            url: format!("http://{addr}"),
            key: key.to_owned(),
            config: common::fresh_data_dir().join("config.toml"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesh"));
        command
            .args(args)
            .env("MESH_URL", &self.url)
            .env("MESH_API_KEY", &self.key)
            .env("MESH_CONFIG", &self.config)
            .env_remove("MESH_PROFILE")
            .stdin(Stdio::null());
        command
    }

    /// Runs `mesh args…`; its output, whatever the exit code.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `mesh args…`, expecting success; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "mesh {args:?}: {:?}\n{}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `mesh -o json args…`, expecting success; its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let args: Vec<&str> = ["-o", "json"].iter().chain(args).copied().collect();
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("mesh {args:?}: {e}: {text}"))
    }

    /// Runs `mesh args…`, expecting exit code `code`; its standard error.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "mesh {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// Asks again (up to 30 s) until `check` holds for the JSON of `mesh -o json args…`.
    fn until(&self, args: &[&str], check: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let value = self.json(args);
            if check(&value) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{args:?}: {value}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[test]
fn every_client_command_runs_against_mesh_up() {
    let files = common::fresh_data_dir();
    let (_up, addr) = common::mesh_up(
        &[
            "--in-memory",
            "--demo",
            "--demo-every-ms",
            "600000",
            "--listen",
            "127.0.0.1:0",
            "--files-root",
            files.to_str().unwrap(),
        ],
        KEY,
    );
    let cli = Cli::new(&addr, KEY);

    // Agents: the demo's four, as a table for people and JSON for scripts.
    let agents = cli.until(&["agents", "list"], |a| {
        a["items"].as_array().unwrap().len() == 4
    });
    let summarizer = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "summarizer")
        .unwrap()
        .clone();
    let table = cli.ok(&["agents", "list"]);
    assert!(
        table.contains("NAME") && table.contains("summarizer"),
        "{table}"
    );
    let shown = cli.json(&["agents", "show", &id(&summarizer)]);
    assert_eq!(shown["name"], "summarizer");

    // Tasks: submitted, followed to the end in plain lines (stdout is a pipe), listed.
    let task = cli.json(&[
        "tasks",
        "submit",
        "summarize",
        "--input",
        r#"{"text": "hi"}"#,
    ]);
    let watched = cli.ok(&["tasks", "watch", &id(&task)]);
    assert!(watched.contains("completed"), "{watched}");
    assert!(
        !watched.contains('\r') && !watched.contains('\u{1b}'),
        "{watched:?}"
    );
    assert_eq!(
        cli.json(&["tasks", "get", &id(&task)])["status"],
        "completed"
    );
    let listed = cli.json(&["tasks", "list", "--kind", "summarize"]);
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == task["id"])
    );
    // One nobody does waits; cancelled, and `watch` says it did not succeed (7).
    let stuck = cli.json(&["tasks", "submit", "nobody-does-this"]);
    assert_eq!(
        cli.json(&["tasks", "cancel", &id(&stuck)])["status"],
        "cancelled"
    );
    cli.fails(7, &["tasks", "watch", &id(&stuck)]);
    let followed = cli.json(&["tasks", "submit", "summarize", "--watch"]);
    assert_eq!(followed["status"], "completed");

    // Workflows: registered from a file, started, watched to its interrupt, resumed,
    // watched to the end; then described, its history, listed, forked.
    let dir = common::fresh_data_dir();
    let review = write(
        &dir,
        "review.json",
        &json!({"name": "review", "state": {"summary": {}, "approval": {}}, "steps": [
            {"name": "summarize", "task": {"kind": "summarize"}, "input": {"text": "a report"},
             "output": "summary", "next": "approve"},
            {"name": "approve", "wait": {"interrupt": {"prompt": "Publish?"}}, "output": "approval"}
        ]}),
    );
    let registered = cli.json(&["workflows", "definitions", "register", &review]);
    assert_eq!(
        (&registered["name"], &registered["version"]),
        (&json!("review"), &json!(1))
    );
    let definitions = cli.json(&["workflows", "definitions", "list"]);
    assert_eq!(definitions["items"][0]["name"], "review");
    assert_eq!(
        cli.json(&["workflows", "definitions", "show", "review"])["version"],
        1
    );
    let run = cli.json(&["workflows", "start", "review"]);
    let run_id = id(&run);
    let watched = cli.ok(&["workflows", "watch", &run_id]);
    assert!(watched.contains("step summarize completed"), "{watched}");
    assert!(watched.contains("waiting: interrupt"), "{watched}");
    cli.json(&[
        "workflows",
        "resume",
        &run_id,
        "--value",
        r#"{"approved": true}"#,
    ]);
    let done = cli.json(&["workflows", "watch", &run_id]);
    assert_eq!(done["status"], "succeeded");
    let described = cli.json(&["workflows", "describe", &run_id]);
    assert_eq!(described["status"], "succeeded");
    let history = cli.json(&["workflows", "history", &run_id]);
    let events: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"started"), "{history}");
    assert!(events.contains(&"step_completed"), "{history}");
    let succeeded = cli.json(&["workflows", "list", "--status", "succeeded"]);
    assert!(
        succeeded["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run["id"])
    );
    let seq = history[0]["seq"].to_string();
    let patch = r#"{"summary": "patched"}"#;
    let fork = cli.json(&[
        "workflows",
        "fork",
        &run_id,
        "--seq",
        &seq,
        "--patch",
        patch,
    ]);
    assert_eq!(fork["forked_from"]["run"], run["id"]);
    // A run that waits for a signal gets it.
    let waiter = write(
        &dir,
        "waiter.json",
        &json!({"name": "waiter", "state": {"go": {}}, "steps": [
            {"name": "go", "wait": {"signal": {"name": "go"}}, "output": "go"}]}),
    );
    cli.json(&["workflows", "definitions", "register", &waiter]);
    let signalled = id(&cli.json(&["workflows", "start", "waiter"]));
    cli.json(&["workflows", "signal", &signalled, "go", "--value", "42"]);
    assert_eq!(
        cli.json(&["workflows", "watch", &signalled])["status"],
        "succeeded"
    );
    // Batch cancel: every unfinished run of a workflow.
    let waiting: Vec<String> = (0..3)
        .map(|_| id(&cli.json(&["workflows", "start", "waiter"])))
        .collect();
    let cancelled = cli.json(&["workflows", "cancel", "--workflow", "waiter"]);
    let cancelled: Vec<&str> = cancelled["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for run in &waiting {
        assert!(cancelled.contains(&run.as_str()), "{run} in {cancelled:?}");
        assert_eq!(
            cli.json(&["workflows", "describe", run])["status"],
            "cancelled"
        );
    }
    // A failing step: watch exits 7; retry runs it again (and it fails again).
    let broken = write(
        &dir,
        "broken.json",
        &json!({"name": "broken", "state": {"text": {}}, "steps": [
            {"name": "read", "tool": {"name": "files", "action": "read"},
             "input": {"path": "missing.txt"}, "output": "text"}]}),
    );
    cli.json(&["workflows", "definitions", "register", &broken]);
    let failing = id(&cli.json(&["workflows", "start", "broken"]));
    let stderr = cli.fails(7, &["workflows", "watch", &failing]);
    assert!(stderr.contains("failed"), "{stderr}");
    cli.json(&["workflows", "retry", &failing]);
    cli.fails(7, &["workflows", "watch", &failing]);
    let pruned = cli.json(&["workflows", "prune", "--before", "2999-01-01T00:00:00Z"]);
    assert!(pruned["pruned"].as_u64().unwrap() >= 5, "{pruned}");

    // Tools: listed, called.
    let tools = cli.ok(&["tools", "list"]);
    assert!(
        tools.contains("files") && tools.contains("write"),
        "{tools}"
    );
    cli.json(&[
        "tools",
        "call",
        "files",
        "write",
        "--input",
        r#"{"path": "note.txt", "text": "from the CLI"}"#,
    ]);
    let read = cli.json(&[
        "tools",
        "call",
        "files",
        "read",
        "--input",
        r#"{"path": "note.txt"}"#,
    ]);
    assert_eq!(read["text"], "from the CLI");

    // Tool sources: a GitHub adapter with the tenant's token (sealed: never shown),
    // listed with its tool, removed; an MCP server that does not answer is refused.
    let added = cli.json(&[
        "tools",
        "add",
        "gh",
        "--github",
        "--endpoint",
        "http://127.0.0.1:9",
        "--token",
        "t0ken-secret",
    ]);
    assert_eq!(added["secret_names"], json!(["token"]), "{added}");
    assert!(!added.to_string().contains("t0ken-secret"));
    let sources = cli.ok(&["tools", "sources"]);
    assert!(
        sources.contains("gh") && sources.contains("github"),
        "{sources}"
    );
    assert!(!sources.contains("t0ken-secret"));
    assert!(cli.ok(&["tools", "list"]).contains("gh "));
    cli.fails(
        2,
        &["tools", "add", "x", "--github", "--prefix", "sometimes"],
    );
    cli.fails(
        6,
        &[
            "tools",
            "add",
            "dead",
            "--endpoint",
            "http://127.0.0.1:9/mcp",
        ],
    );
    cli.fails(
        2,
        &[
            "tools",
            "add",
            "bad",
            "--endpoint",
            "http://x/mcp",
            "--header",
            "no-colon",
        ],
    );
    cli.json(&["tools", "remove", "gh"]);
    cli.fails(4, &["tools", "remove", "gh"]);

    // Documents: indexed (by the worker), then found.
    cli.json(&[
        "docs",
        "index",
        "notes",
        "cli-doc",
        "--text",
        "The command line talks to the REST API.",
    ]);
    let found = cli.until(&["docs", "search", "notes", "command line"], |v| {
        !v["hits"].as_array().unwrap().is_empty()
    });
    assert_eq!(found["hits"][0]["document_id"], "cli-doc");

    // Keys and tenants: a key made, used, listed without its secret, revoked.
    let made = cli.json(&["keys", "create", "ci", "--scope", "read"]);
    let key = made["key"].as_str().unwrap();
    let reader = Cli::new(&addr, key);
    reader.json(&["tasks", "list"]);
    reader.fails(3, &["keys", "list"]);
    let keys = cli.ok(&["keys", "list"]);
    assert!(keys.contains("ci") && !keys.contains(key), "{keys}");
    cli.json(&["keys", "revoke", &id(&made)]);
    reader.fails(3, &["tasks", "list"]);
    // Roles and the audit log: a role defined and handed out, the trail read and checked.
    cli.json(&[
        "roles",
        "put",
        "runner",
        "--allow",
        "tools:read,execute:files*",
        "--allow",
        "agents:connect",
    ]);
    let roles = cli.json(&["roles", "list"]);
    let names: Vec<&str> = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "admin",
            "operator",
            "developer",
            "viewer",
            "agent",
            "runner"
        ]
    );
    assert_eq!(
        cli.json(&["roles", "show", "runner"])["permissions"][0]["names"],
        "files*"
    );
    let runner = cli.json(&["keys", "create", "runner", "--role", "runner"]);
    assert_eq!(runner["roles"], serde_json::json!(["runner"]));
    let runner = Cli::new(&addr, runner["key"].as_str().unwrap());
    runner.fails(3, &["tasks", "list"]);
    cli.fails(2, &["roles", "put", "bad", "--allow", "tools"]);
    let trail = cli.json(&["audit", "list", "--action", "roles.put"]);
    assert_eq!(trail["records"][0]["resource"], "roles:runner");
    // A refusal is recorded without the request waiting for it.
    cli.until(
        &["audit", "list", "--decision", "refused", "--limit", "1"],
        |page| page["records"][0]["action"] == "tasks.read",
    );
    assert_eq!(cli.json(&["audit", "verify"])["ok"], true);
    assert!(cli.ok(&["audit", "verify"]).contains("head hash"));
    cli.json(&["roles", "delete", "runner"]);

    let acme = cli.json(&["tenants", "create", "acme"]);
    let tenants = cli.json(&["tenants", "list"]);
    assert!(
        tenants["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == acme["id"])
    );

    // Profiles: saved, listed, used by name.
    let profiled = Cli {
        url: String::new(),
        key: String::new(),
        config: cli.config.clone(),
    };
    cli.ok(&["profile", "save", "local", "--default"]);
    let profiles = cli.ok(&["profile", "list"]);
    assert!(
        profiles.contains("local") && !profiles.contains(KEY),
        "{profiles}"
    );
    let mut by_profile = profiled.command(&["-o", "json", "--profile", "local", "agents", "list"]);
    by_profile.env_remove("MESH_URL").env_remove("MESH_API_KEY");
    assert!(by_profile.output().unwrap().status.success());
    profiled.fails(2, &["--profile", "nope", "agents", "list"]);

    // Shell completions, and the OpenAPI document.
    assert!(cli.ok(&["completions", "bash"]).contains("_mesh"));
    assert!(cli.ok(&["openapi"]).contains("/api/v1/keys"));

    // Exit codes: a bad key (3), a missing record (4), bad input here (2) and at the
    // server (2), a server that is not there (6); the server's code on stderr.
    let stranger = Cli::new(&addr, "not-a-key-not-a-key");
    let stderr = stranger.fails(3, &["tasks", "list"]);
    assert!(stderr.contains("unauthorized"), "{stderr}");
    let missing = uuid::Uuid::now_v7().to_string();
    let stderr = cli.fails(4, &["tasks", "get", &missing]);
    assert!(stderr.contains("not_found"), "{stderr}");
    cli.fails(2, &["tasks", "submit", "x", "--input", "{not json"]);
    let stderr = cli.fails(2, &["tasks", "submit", ""]);
    assert!(stderr.contains("invalid_request"), "{stderr}");
    cli.fails(2, &["tasks", "frobnicate"]);
    Cli::new("127.0.0.1:9", KEY).fails(6, &["agents", "list"]);
    let _ = std::fs::remove_dir_all(&files);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `mesh tasks watch` on a pseudo-terminal draws a live status line; in a pipe it
/// writes plain lines.
#[test]
fn watch_shows_progress_on_a_terminal_and_plain_lines_in_a_pipe() {
    let Some(python) = mesh_core::testing::test_python() else {
        return;
    };
    let (_up, addr) = common::mesh_up(&["--in-memory", "--listen", "127.0.0.1:0"], KEY);
    let cli = Cli::new(&addr, KEY);
    for terminal in [true, false] {
        // Nobody does this kind: the task waits until it is cancelled.
        let task = id(&cli.json(&["tasks", "submit", "nobody-does-this"]));
        let mut watch = if terminal {
            // Python's pty module runs the command on a pseudo-terminal and copies
            // what it draws to our pipe.
            let settings = cli.command(&[]);
            let mut wrapped = Command::new(&python);
            wrapped
                .args([
                    "-c",
                    "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
                ])
                .arg(env!("CARGO_BIN_EXE_mesh"))
                .args(["tasks", "watch", &task])
                .envs(settings.get_envs().filter_map(|(k, v)| Some((k, v?))))
                .env("TERM", "xterm")
                .stdin(Stdio::null());
            wrapped
        } else {
            cli.command(&["tasks", "watch", &task])
        };
        let mut child = common::Killed(watch.stdout(Stdio::piped()).spawn().unwrap());
        let mut stdout = child.0.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stdout.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    seen.lock().unwrap().extend_from_slice(&buffer[..n]);
                }
            })
        };
        let shown = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        // Once the display shows the task waiting, the task ends.
        let waiting = if terminal {
            format!("task {task} · pending")
        } else {
            format!("task {task}: pending")
        };
        let started = Instant::now();
        while !shown().contains(&waiting) {
            assert!(started.elapsed() < Duration::from_secs(30), "{:?}", shown());
            std::thread::sleep(Duration::from_millis(20));
        }
        cli.json(&["tasks", "cancel", &task]);
        let status = child.0.wait().unwrap();
        reader.join().unwrap();
        let shown = shown();
        assert_eq!(status.code(), Some(7), "{shown:?}");
        assert!(shown.contains("cancelled"), "{shown:?}");
        if terminal {
            // The status line is redrawn in place: carriage returns and ANSI codes.
            assert!(
                shown.contains('\r') && shown.contains("\u{1b}["),
                "{shown:?}"
            );
        } else {
            assert!(
                !shown.contains('\r') && !shown.contains('\u{1b}'),
                "{shown:?}"
            );
        }
    }
}

/// A key made with the CLI on one instance works on another on the same PostgreSQL;
/// revoked with the CLI, it is refused there at once and its agent session there
/// is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_with_the_cli_is_refused_at_once_on_a_second_instance() {
    let Some(database) = mesh_core::testing::fresh_database().await else {
        return;
    };
    let (_a, rest_a) = common::service(env!("CARGO_BIN_EXE_rest-api"), &database, &[], KEY);
    let (_b, hub_b) = common::service(env!("CARGO_BIN_EXE_mcp-server"), &database, &[], KEY);
    let admin = Cli::new(&rest_a, KEY);
    let made = admin.json(&[
        "keys",
        "create",
        "agent-key",
        "--scope",
        "agent",
        "--scope",
        "read",
    ]);
    let key = made["key"].as_str().unwrap().to_owned();
    // The key works on the second instance: an agent holds a session there with it.
    let _agent =
        mesh_core::testing::echo_agent_at(&format!("ws://{hub_b}/ws"), &key, "keyed", &["echo"]);
    admin.until(&["agents", "list", "--status", "active"], |a| {
        a["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "keyed")
    });
    let mcp = reqwest::Client::new();
    let initialize = |key: String| {
        let request = mcp
            .post(format!("http://{hub_b}/mcp"))
            .bearer_auth(key)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
            )
            .send();
        async move { request.await.unwrap().status() }
    };
    assert!(initialize(key.clone()).await.is_success());

    admin.json(&["keys", "revoke", &id(&made)]);
    // Well before the gate's 30-second cache would let it lapse: refused on B, and
    // the agent's session there closed (its reconnections refused).
    let revoked_at = Instant::now();
    common::eventually("B refuses the revoked key", || {
        let status = initialize(key.clone());
        async move { status.await == reqwest::StatusCode::UNAUTHORIZED }
    })
    .await;
    let agent = admin.until(&["agents", "list"], |a| {
        a["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "keyed" && a["status"] != "active")
    });
    assert!(
        revoked_at.elapsed() < Duration::from_secs(5),
        "took {:?}: {agent}",
        revoked_at.elapsed()
    );
}
