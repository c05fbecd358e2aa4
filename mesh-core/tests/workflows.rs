//! Durable workflows in one process on memory stores: every step kind, the operations
//! (interrupts, signals, retry, fork, cancel, prune, idempotent start) and events.
//!
//! Long on purpose: every test runs on the one world below (an engine, one agent that
//! does every kind, the runtime), so each stays a few lines.
//! Restarts on SQLite and PostgreSQL are in `workflows_durable.rs`; SIGKILLed processes
//! in the examples' tests.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_core::domain::DocKind;
use mesh_core::protocol::{Hello, TaskError};
use mesh_core::shared_docs::{DocLimits, Edit, SharedDocs};
use mesh_core::testing::fast_config;
use mesh_core::tools::ToolRegistry;
use mesh_core::workflow::{
    Action, Condition, Edge, MapStep, Reducer, RunStatus, StartRequest, StateKey, Step, TaskStep,
    Wait, WorkflowConfig, WorkflowDefinition, WorkflowError, Workflows,
};
use mesh_core::{Engine, Event, MemoryStores, TenantId, WorkflowId};
use serde_json::{Value, json};

/// How many times each task kind ran.
type Counts = Arc<Mutex<HashMap<String, usize>>>;

struct World {
    engine: Engine,
    workflows: Workflows,
    docs: SharedDocs,
    tenant: TenantId,
    counts: Counts,
    _agent: mesh_core::LocalAgent,
}

/// An engine, a workflow runtime, and one local agent that does every kind below:
/// `add` adds `by` to `n`, `echo` returns its input, `upper` upper-cases a string,
/// `flaky` fails its first try of each input, `slow` never answers.
async fn world() -> World {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("MESH_TEST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
    let engine = Engine::start(fast_config(), MemoryStores::new())
        .await
        .unwrap();
    let tenant = TenantId::new();
    let counts: Counts = Arc::default();
    let seen = counts.clone();
    let failed_once = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let kinds = ["add", "echo", "upper", "flaky", "slow"];
    let agent = engine
        .connect_local(tenant, Hello::new("worker", kinds), move |task| {
            let seen = seen.clone();
            let failed_once = failed_once.clone();
            async move {
                *seen.lock().unwrap().entry(task.kind.clone()).or_default() += 1;
                match task.kind.as_str() {
                    "add" => Ok(json!(
                        task.input["n"].as_i64().unwrap_or(0)
                            + task.input["by"].as_i64().unwrap_or(1)
                    )),
                    "upper" => Ok(json!(
                        task.input.as_str().unwrap_or_default().to_uppercase()
                    )),
                    "flaky" => {
                        if failed_once.lock().unwrap().insert(task.input.to_string()) {
                            Err(TaskError::permanent("first try fails"))
                        } else {
                            Ok(json!("second try"))
                        }
                    }
                    "slow" => {
                        std::future::pending::<()>().await;
                        Ok(Value::Null)
                    }
                    _ => Ok(task.input),
                }
            }
        })
        .await
        .unwrap();
    let docs = SharedDocs::new(&engine, DocLimits::default());
    let workflows = Workflows::with_docs(
        engine.clone(),
        Arc::new(ToolRegistry::new()),
        docs.clone(),
        WorkflowConfig::default().poll_every(Duration::from_millis(50)),
    );
    workflows.recover().await.unwrap();
    World {
        engine,
        workflows,
        docs,
        tenant,
        counts,
        _agent: agent,
    }
}

impl World {
    async fn register(&self, json: Value) {
        let definition: WorkflowDefinition = serde_json::from_value(json).unwrap();
        self.workflows
            .register(self.tenant, definition)
            .await
            .unwrap();
    }

    async fn start(&self, workflow: &str, input: Value) -> WorkflowId {
        self.workflows
            .start_run(self.tenant, StartRequest::new(workflow, input))
            .await
            .unwrap()
            .id
    }

    /// Waits until the run's status is `status` (events, then a re-read).
    async fn until(&self, run: WorkflowId, status: RunStatus) -> mesh_core::workflow::WorkflowRun {
        let mut events = self.engine.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let current = self.workflows.run(self.tenant, run).await.unwrap();
            if current.status == status {
                return current;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run} stayed {:?} ({:?}), wanted {status:?}",
                current.status,
                current.error
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.counts.lock().unwrap().get(kind).copied().unwrap_or(0)
    }
}

fn keys(names: &[(&str, Reducer)]) -> Vec<(String, StateKey)> {
    names
        .iter()
        .map(|(n, r)| ((*n).to_owned(), StateKey::new(*r)))
        .collect()
}

#[tokio::test]
async fn agent_steps_run_in_order_and_each_runs_once() {
    let w = world().await;
    let definition = WorkflowDefinition::new(
        "count",
        keys(&[("n", Reducer::Overwrite)]),
        [
            Step::new("one", Action::Task(TaskStep::new("add")))
                .input(json!({"n": {"$state": "/n"}, "by": 1}))
                .output("n")
                .then("two"),
            Step::new("two", Action::Task(TaskStep::new("add")))
                .input(json!({"n": {"$state": "/n"}, "by": 10}))
                .output("n")
                .then("three"),
            Step::new("three", Action::Task(TaskStep::new("add")))
                .input(json!({"n": {"$state": "/n"}, "by": 100}))
                .output("n"),
        ],
    );
    let registered = w.workflows.register(w.tenant, definition).await.unwrap();
    assert_eq!(registered.version, 1);
    let run = w.start("count", json!({"n": 0})).await;
    let done = w.until(run, RunStatus::Succeeded).await;
    assert_eq!(done.output, Some(json!({"n": 111})));
    assert_eq!(w.count("add"), 3);
    let history = w
        .workflows
        .history(w.tenant, run, None, None)
        .await
        .unwrap();
    // Started, then one entry per step.
    assert_eq!(history.len(), 4);
    assert_eq!(history[3].position.state()["n"], json!(111));
    assert_eq!(history[1].position.state()["n"], json!(1));
}

#[tokio::test]
async fn parallel_branches_and_maps_join_in_order() {
    let w = world().await;
    w.register(json!({
        "name": "fan",
        "state": {"files": {}, "file": {}, "found": {"reducer": "append"}, "meta": {"reducer": "merge"}},
        "steps": [
            {"name": "both", "parallel": {"branches": [
                {"steps": [{"name": "a", "task": {"kind": "echo"}, "input": {"a": 1}, "output": "meta"}]},
                {"steps": [{"name": "b", "task": {"kind": "echo"}, "input": {"b": 2}, "output": "meta"}]}
            ]}, "next": "each"},
            {"name": "each", "map": {"over": "files", "item": "file", "steps": [
                {"name": "shout", "task": {"kind": "upper"}, "input": {"$state": "/file"}, "output": "found"}
            ]}}
        ]
    }))
    .await;
    let run = w
        .start("fan", json!({"files": ["x.rs", "y.rs", "z.rs"]}))
        .await;
    let done = w.until(run, RunStatus::Succeeded).await;
    let output = done.output.unwrap();
    assert_eq!(output["found"], json!(["X.RS", "Y.RS", "Z.RS"]));
    assert_eq!(output["meta"], json!({"a": 1, "b": 2}));
    assert_eq!(w.count("upper"), 3);
}

#[tokio::test]
async fn conditional_edges_loop_until_the_state_says_stop() {
    let w = world().await;
    let definition = WorkflowDefinition::new(
        "loop",
        keys(&[("n", Reducer::Overwrite)]),
        [Step::new("inc", Action::Task(TaskStep::new("add")))
            .input(json!({"n": {"$state": "/n"}, "by": 1}))
            .output("n")
            .branch([
                Edge::when(
                    Condition::compare("/n", mesh_core::workflow::Compare::Lt, 5),
                    "inc",
                ),
                Edge::otherwise("end"),
            ])],
    );
    w.workflows.register(w.tenant, definition).await.unwrap();
    let run = w.start("loop", json!({"n": 0})).await;
    assert_eq!(
        w.until(run, RunStatus::Succeeded).await.output,
        Some(json!({"n": 5}))
    );
    assert_eq!(w.count("add"), 5);
}

#[tokio::test]
async fn each_pending_interrupt_is_resumed_with_its_own_value() {
    let w = world().await;
    w.register(json!({
        "name": "approve",
        "state": {"legal": {}, "tech": {}},
        "steps": [{"name": "ask", "parallel": {"branches": [
            {"steps": [{"name": "legal", "wait": {"interrupt": {"prompt": "legal ok?"}}, "output": "legal"}]},
            {"steps": [{"name": "tech", "wait": {"interrupt": {"prompt": "tech ok?"}}, "output": "tech"}]}
        ]}}]
    }))
    .await;
    let run = w.start("approve", json!({})).await;
    let waiting = w.until(run, RunStatus::Waiting).await;
    assert_eq!(waiting.interrupts.len(), 2);
    let legal = waiting
        .interrupts
        .iter()
        .find(|i| i.step == "legal")
        .unwrap();
    let tech = waiting
        .interrupts
        .iter()
        .find(|i| i.step == "tech")
        .unwrap();
    assert_eq!(legal.prompt, json!("legal ok?"));
    // An id that is not pending is refused.
    let wrong = w
        .workflows
        .resume(w.tenant, run, uuid::Uuid::new_v4(), json!(true))
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, WorkflowError::NoSuchInterrupt { .. }),
        "{wrong}"
    );
    w.workflows
        .resume(w.tenant, run, legal.id, json!("yes"))
        .await
        .unwrap();
    w.workflows
        .resume(w.tenant, run, tech.id, json!("no"))
        .await
        .unwrap();
    let done = w.until(run, RunStatus::Succeeded).await;
    assert_eq!(done.output, Some(json!({"legal": "yes", "tech": "no"})));
}

#[tokio::test]
async fn a_signal_sent_before_the_run_waits_is_kept_and_timers_end() {
    let w = world().await;
    w.register(json!({
        "name": "signals",
        "state": {"go": {}, "later": {}},
        "steps": [
            {"name": "nap", "wait": {"timer": {"ms": 200}}, "next": "gate"},
            {"name": "gate", "wait": {"signal": {"name": "go"}}, "output": "go"}
        ]
    }))
    .await;
    let run = w.start("signals", json!({})).await;
    // Sent while the run still sleeps on its timer.
    w.workflows
        .signal(w.tenant, run, "go", json!({"by": "ops"}))
        .await
        .unwrap();
    let done = w.until(run, RunStatus::Succeeded).await;
    assert_eq!(done.output.unwrap()["go"], json!({"by": "ops"}));
}

#[tokio::test]
async fn a_sub_workflow_returns_its_final_state() {
    let w = world().await;
    w.register(json!({
        "name": "child", "state": {"s": {}},
        "steps": [{"name": "shout", "task": {"kind": "upper"}, "input": {"$state": "/s"}, "output": "s"}]
    }))
    .await;
    w.register(json!({
        "name": "parent", "state": {"word": {}, "result": {}},
        "steps": [{"name": "call", "workflow": {"name": "child"}, "input": {"s": {"$state": "/word"}}, "output": "result"}]
    }))
    .await;
    let run = w.start("parent", json!({"word": "mesh"})).await;
    let done = w.until(run, RunStatus::Succeeded).await;
    assert_eq!(done.output.unwrap()["result"], json!({"s": "MESH"}));
}

#[tokio::test]
async fn a_failed_run_is_retried_from_its_last_checkpoint() {
    let w = world().await;
    w.register(json!({
        "name": "retry", "state": {"a": {}, "b": {}},
        "steps": [
            {"name": "first", "task": {"kind": "echo"}, "input": "one", "output": "a", "next": "second"},
            {"name": "second", "task": {"kind": "flaky", "max_attempts": 1}, "input": "two", "output": "b"}
        ]
    }))
    .await;
    let run = w.start("retry", json!({})).await;
    let failed = w.until(run, RunStatus::Failed).await;
    assert!(failed.error.unwrap().contains("second"));
    let again = w.workflows.retry(w.tenant, run).await.unwrap();
    assert_eq!(again.status, RunStatus::Running);
    let done = w.until(run, RunStatus::Succeeded).await;
    assert_eq!(done.output, Some(json!({"a": "one", "b": "second try"})));
    // The completed first step was not run again.
    assert_eq!(w.count("echo"), 1);
    assert_eq!(w.count("flaky"), 2);
    let refused = w.workflows.retry(w.tenant, run).await.unwrap_err();
    assert_eq!(refused.code(), "conflict");
}

#[tokio::test]
async fn a_fork_changes_the_state_and_leaves_the_original_history_as_it_was() {
    let w = world().await;
    w.register(json!({
        "name": "forkable", "state": {"word": {}, "loud": {}},
        "steps": [
            {"name": "wait", "wait": {"interrupt": {}}, "output": "word", "next": "shout"},
            {"name": "shout", "task": {"kind": "upper"}, "input": {"$state": "/word"}, "output": "loud"}
        ]
    }))
    .await;
    let run = w.start("forkable", json!({})).await;
    let waiting = w.until(run, RunStatus::Waiting).await;
    w.workflows
        .resume(w.tenant, run, waiting.interrupts[0].id, json!("first"))
        .await
        .unwrap();
    w.until(run, RunStatus::Succeeded).await;
    let before = serde_json::to_string(
        &w.workflows
            .history(w.tenant, run, None, None)
            .await
            .unwrap(),
    )
    .unwrap();
    // Entry 1: the wait took "first"; fork there with another word.
    let fork = w
        .workflows
        .fork(w.tenant, run, 1, json!({"word": "second"}))
        .await
        .unwrap();
    let origin = fork.forked_from.unwrap();
    assert_eq!((origin.run, origin.seq), (run, 1));
    let done = w.until(fork.id, RunStatus::Succeeded).await;
    assert_eq!(done.output.unwrap()["loud"], json!("SECOND"));
    let after = serde_json::to_string(
        &w.workflows
            .history(w.tenant, run, None, None)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(before, after);
    assert_eq!(w.count("upper"), 2);
}

#[tokio::test]
async fn cancel_stops_the_run_and_its_tasks() {
    let w = world().await;
    w.register(json!({
        "name": "stuck", "state": {},
        "steps": [{"name": "forever", "task": {"kind": "slow"}}]
    }))
    .await;
    let run = w.start("stuck", json!({})).await;
    let mut events = w.engine.subscribe();
    // Wait until the task is with the agent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.count("slow") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task never reached the agent"
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), events.recv()).await;
    }
    let cancelled = w.workflows.cancel(w.tenant, run).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    let tasks = w
        .engine
        .tasks(w.tenant, mesh_core::TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(tasks.items.len(), 1);
    assert_eq!(tasks.items[0].status(), mesh_core::TaskStatus::Cancelled);
    let again = w.workflows.cancel(w.tenant, run).await.unwrap_err();
    assert_eq!(again.code(), "conflict");
}

#[tokio::test]
async fn starting_with_an_existing_id_returns_that_run() {
    let w = world().await;
    w.register(json!({"name": "once", "state": {"x": {}},
        "steps": [{"name": "e", "task": {"kind": "echo"}, "output": "x"}]}))
        .await;
    let id = WorkflowId::new();
    let request = StartRequest::new("once", json!({"x": 1})).id(id);
    let first = w
        .workflows
        .start_run(w.tenant, request.clone())
        .await
        .unwrap();
    let second = w.workflows.start_run(w.tenant, request).await.unwrap();
    assert_eq!(first.id, id);
    assert_eq!(second.id, id);
    w.until(id, RunStatus::Succeeded).await;
    assert_eq!(w.count("echo"), 1);
    // Another tenant does not see it.
    let other = w.workflows.run(TenantId::new(), id).await.unwrap_err();
    assert_eq!(other.code(), "not_found");
}

#[tokio::test]
async fn prune_deletes_expired_runs_and_their_journals() {
    let w = world().await;
    w.register(json!({"name": "short", "state": {}, "retention_secs": 0,
        "steps": [{"name": "e", "task": {"kind": "echo"}}]}))
        .await;
    let run = w.start("short", json!({})).await;
    w.until(run, RunStatus::Succeeded).await;
    tokio::time::sleep(Duration::from_millis(5)).await; // finished_at strictly before now
    assert_eq!(w.workflows.prune(w.tenant, None).await.unwrap(), 1);
    assert_eq!(
        w.workflows.run(w.tenant, run).await.unwrap_err().code(),
        "not_found"
    );
    let journal = w.workflows.history(w.tenant, run, None, None).await;
    assert!(journal.is_err());
    assert_eq!(w.workflows.prune(w.tenant, None).await.unwrap(), 0);
}

#[tokio::test]
async fn runs_emit_updates_through_the_engine() {
    let w = world().await;
    w.register(json!({"name": "events", "state": {"x": {}},
        "steps": [{"name": "e", "task": {"kind": "echo"}, "output": "x"}]}))
        .await;
    let mut events = w.engine.subscribe();
    let run = w.start("events", json!({})).await;
    let mut seen = Vec::new();
    while !seen.iter().any(|k: &String| k == "finished") {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let Event::WorkflowUpdate { run: r, update, .. } = event
            && r == run
        {
            seen.push(
                serde_json::to_value(&update).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert_eq!(
        seen,
        ["started", "step_started", "step_completed", "finished"]
    );
}

#[tokio::test]
async fn bad_definitions_and_inputs_are_refused_with_the_step_named() {
    let w = world().await;
    let bad = json!({"name": "bad", "state": {},
        "steps": [{"name": "a", "task": {"kind": "echo"}, "next": "nowhere"}]});
    let definition: WorkflowDefinition = serde_json::from_value(bad).unwrap();
    let e = w
        .workflows
        .register(w.tenant, definition)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(e.to_string().contains("\"a\" goes to \"nowhere\""), "{e}");
    w.register(json!({"name": "ok", "state": {"x": {}},
        "steps": [{"name": "e", "task": {"kind": "echo"}}]}))
        .await;
    let e = w
        .workflows
        .start_run(w.tenant, StartRequest::new("ok", json!({"y": 1})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("\"y\" is not a state key"), "{e}");
    let e = w
        .workflows
        .start_run(w.tenant, StartRequest::new("missing", json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
}

#[tokio::test]
async fn a_run_stays_on_the_version_it_started_on() {
    let w = world().await;
    let v1 = json!({"name": "versioned", "state": {"x": {}},
        "steps": [{"name": "w", "wait": {"signal": {"name": "go"}}, "next": "e"},
                  {"name": "e", "task": {"kind": "echo"}, "input": "v1", "output": "x"}]});
    w.register(v1).await;
    let run = w.start("versioned", json!({})).await;
    w.until(run, RunStatus::Waiting).await;
    let v2 = json!({"name": "versioned", "state": {"x": {}},
        "steps": [{"name": "w", "wait": {"signal": {"name": "go"}}, "next": "e"},
                  {"name": "e", "task": {"kind": "echo"}, "input": "v2", "output": "x"}]});
    let definition: WorkflowDefinition = serde_json::from_value(v2).unwrap();
    assert_eq!(
        w.workflows
            .register(w.tenant, definition)
            .await
            .unwrap()
            .version,
        2
    );
    w.workflows
        .signal(w.tenant, run, "go", json!(null))
        .await
        .unwrap();
    let done = w.until(run, RunStatus::Succeeded).await;
    assert_eq!(done.version, 1);
    assert_eq!(done.output.unwrap()["x"], json!("v1"));
}

#[test]
fn map_steps_build_in_rust_too() {
    let map = MapStep::new(
        "files",
        "file",
        mesh_core::workflow::Graph::new([Step::new("lint", Action::Task(TaskStep::new("lint")))]),
    );
    let definition = WorkflowDefinition::new(
        "rust",
        keys(&[("files", Reducer::Overwrite), ("file", Reducer::Overwrite)]),
        [
            Step::new("each", Action::Map(map)),
            Step::new("w", Action::Wait(Wait::Timer { ms: 1 })),
        ],
    );
    // "w" is never reached: refused.
    let e = definition.validate().unwrap_err();
    assert!(e.to_string().contains("\"w\" can never run"), "{e}");
    let json = serde_json::to_value(&definition).unwrap();
    let back: WorkflowDefinition = serde_json::from_value(json).unwrap();
    assert_eq!(back, definition);
}

#[tokio::test]
async fn collaboration_patterns_are_steps() {
    let w = world().await;
    w.register(json!({
        "name": "collab", "state": {"word": {}, "piped": {}, "votes": {}},
        "steps": [
            {"name": "pipe", "collab": {"pattern": "pipeline", "stages": ["upper", "echo"]},
             "input": {"$state": "/word"}, "output": "piped", "next": "vote"},
            {"name": "vote", "collab": {"pattern": "consensus", "task": {"kind": "upper"}, "voters": 3},
             "input": {"$state": "/word"}, "output": "votes"}
        ]
    }))
    .await;
    let run = w.start("collab", json!({"word": "mesh"})).await;
    let output = w.until(run, RunStatus::Succeeded).await.output.unwrap();
    assert_eq!(output["piped"][1]["output"], json!("MESH"), "{output}");
    assert_eq!(output["votes"]["outcome"], "agreed", "{output}");
    assert_eq!(output["votes"]["value"], json!("MESH"), "{output}");
    assert_eq!(w.count("upper"), 4);
    // A job the patterns refuse is refused at registration, naming the step.
    let bad: WorkflowDefinition = serde_json::from_value(json!({
        "name": "bad-collab", "state": {},
        "steps": [{"name": "huge", "collab": {"pattern": "consensus", "task": {"kind": "x"}, "voters": 1000}}]
    }))
    .unwrap();
    let e = w.workflows.register(w.tenant, bad).await.unwrap_err();
    assert!(e.to_string().contains("step \"huge\""), "{e}");
}

#[tokio::test]
async fn json_schemas_check_inputs_and_outputs() {
    let w = world().await;
    w.register(json!({
        "name": "typed", "state": {"n": {}, "ok": {}, "echoed": {}},
        "input_schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
        "steps": [
            {"name": "ask", "wait": {"interrupt": {}}, "output": "ok",
             "output_schema": {"type": "boolean"}, "next": "echo"},
            {"name": "echo", "task": {"kind": "echo"}, "input": {"$state": "/n"},
             "input_schema": {"type": "integer"}, "output_schema": {"type": "string"}, "output": "echoed"}
        ]
    }))
    .await;
    let e = w
        .workflows
        .start_run(w.tenant, StartRequest::new("typed", json!({"n": "one"})))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("input_schema") && e.to_string().contains("/n"),
        "{e}"
    );
    let run = w.start("typed", json!({"n": 7})).await;
    let waiting = w.until(run, RunStatus::Waiting).await;
    let interrupt = waiting.interrupts[0].id;
    // The person's value must fit the step's output_schema.
    let e = w
        .workflows
        .resume(w.tenant, run, interrupt, json!("yes"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_request", "{e}");
    w.workflows
        .resume(w.tenant, run, interrupt, json!(true))
        .await
        .unwrap();
    // The echo agent returns 7, not a string: the step, and the run, fail, saying why.
    let failed = w.until(run, RunStatus::Failed).await;
    let error = failed.error.unwrap();
    assert!(error.contains("output_schema"), "{error}");
    // A schema that is not one is refused at registration, naming the step.
    let bad: WorkflowDefinition = serde_json::from_value(json!({
        "name": "bad-schema", "state": {},
        "steps": [{"name": "e", "task": {"kind": "echo"}, "input_schema": {"type": 5}}]
    }))
    .unwrap();
    let e = w.workflows.register(w.tenant, bad).await.unwrap_err();
    assert!(
        e.to_string().contains("step \"e\"") && e.to_string().contains("input_schema"),
        "{e}"
    );
}

#[tokio::test]
async fn doc_steps_read_and_edit_a_shared_state_document_live() {
    let w = world().await;
    let board = w
        .docs
        .create(w.tenant, "board", DocKind::State)
        .await
        .unwrap()
        .id;
    // A person marks the build red; someone follows the document live.
    let red = Edit::Set {
        path: "build/status".into(),
        value: json!("red"),
    };
    w.docs.edit(w.tenant, board, vec![red]).await.unwrap();
    let (mut follower, _) = w
        .docs
        .live(w.tenant, board)
        .await
        .unwrap()
        .open(Default::default())
        .await
        .unwrap();
    w.register(json!({"name": "triage",
        "state": {"board": {}, "seen": {}, "status": {}},
        "steps": [
            {"name": "look", "doc": "read", "input": {"id": {"$state": "/board"}},
             "output": "seen", "next": "shout"},
            {"name": "shout", "task": {"kind": "upper"},
             "input": {"$state": "/seen/build~1status"}, "output": "status", "next": "record"},
            {"name": "record", "doc": "edit", "output": "seen",
             "input": {"id": {"$state": "/board"}, "edits": [
                {"op": "set", "path": "build/status", "value": {"$state": "/status"}},
                {"op": "add", "path": "runs", "delta": 1}]}}]}))
        .await;
    let run = w.start("triage", json!({"board": board})).await;
    let done = w.until(run, RunStatus::Succeeded).await;
    let want = json!({"build/status": "RED", "runs": 1});
    assert_eq!(done.output.unwrap()["seen"], want);
    assert_eq!(w.docs.read(w.tenant, board).await.unwrap().content, want);
    // The step's edit reached the follower as one update.
    assert!(follower.recv().await.is_ok());

    // A document that is not there, and an edit of the wrong kind, fail the run with
    // the reason; the document is as it was.
    w.register(json!({"name": "scribble", "state": {"board": {}},
        "steps": [{"name": "type", "doc": "edit", "input": {"id": {"$state": "/board"},
            "edits": [{"op": "splice", "pos": 0, "insert": "hi"}]}}]}))
        .await;
    let run = w.start("scribble", json!({"board": board})).await;
    let failed = w.until(run, RunStatus::Failed).await;
    assert!(failed.error.unwrap().contains("splice"));
    let gone = mesh_core::domain::SharedDocId::new();
    let run = w.start("scribble", json!({"board": gone})).await;
    let failed = w.until(run, RunStatus::Failed).await;
    assert!(failed.error.unwrap().contains(&gone.to_string()));
    assert_eq!(w.docs.read(w.tenant, board).await.unwrap().content, want);
}
