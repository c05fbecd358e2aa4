//! The Python reference agent (`examples/python/agent.py`: the standard library and
//! `websockets`) against `mesh up` as a separate process: it receives a batch of
//! assignments (tasks waiting when it connects), a gzipped one (a large input), a
//! cancel, delegates a sub-task, and appends to a shared document it follows over the
//! hub — speaking docs/protocol.md byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, Rest};
use serde_json::json;

const KEY: &str = "python-agent-test-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_reference_agent_speaks_the_protocol() {
    let Some(python) = mesh_core::testing::test_python() else {
        return;
    };
    let (_mesh, addr) = common::mesh_up(&["--listen", "127.0.0.1:0", "--in-memory"], KEY);
    let rest = Rest::new(&addr, KEY);
    // Waiting before the agent connects, these are assigned together: a batch.
    let mut waiting = Vec::new();
    for i in 0..6 {
        waiting.push(rest.submit("py.echo", json!({"n": i})).await);
    }
    let agent = Killed(
        Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/python/agent.py"))
            .arg(format!("ws://{addr}/ws"))
            .arg(KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    for id in &waiting {
        let done = rest.until(id, &["completed"]).await;
        assert_eq!(done["output"]["by"], "python");
    }
    // A large input: the mesh gzips the assignment.
    let large = "mesh ".repeat(2000);
    let id = rest.submit("py.echo", json!({"text": large})).await;
    let done = rest.until(&id, &["completed"]).await;
    assert_eq!(done["output"]["input"]["text"], large);
    // A task the agent works on until it is cancelled.
    let slow = rest.submit("py.slow", json!({})).await;
    rest.until(&slow, &["accepted", "in_progress"]).await;
    let cancel = rest
        .http
        .post(format!("{}/tasks/{slow}/cancel", rest.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert!(cancel.status().is_success());
    // A delegation: the agent submits a sub-task and answers with its output.
    let parent = rest.submit("py.delegate", json!({"ask": "sub"})).await;
    let done = rest.until(&parent, &["completed"]).await;
    assert_eq!(done["output"]["delegated"]["input"], json!({"ask": "sub"}));
    assert_eq!(done["children"].as_array().unwrap().len(), 1);
    // A shared document: the agent follows it over the hub and appends through REST.
    let doc: serde_json::Value = rest
        .http
        .post(format!("{}/shared-docs", rest.base))
        .bearer_auth(KEY)
        .json(&json!({"name": "log", "kind": "text"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let doc = doc["id"].as_str().unwrap().to_owned();
    for line in ["first", "second"] {
        let note = rest
            .submit("py.note", json!({"doc": doc, "line": line}))
            .await;
        rest.until(&note, &["completed"]).await;
    }
    let read: serde_json::Value = rest
        .http
        .get(format!("{}/shared-docs/{doc}", rest.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["content"], "first\nsecond\n");
    // What the agent saw on the wire.
    let report = rest.submit("py.report", json!({})).await;
    let seen = rest.until(&report, &["completed"]).await["output"].clone();
    assert!(seen["batches"].as_u64().unwrap() >= 1, "{seen}");
    assert!(seen["gzipped"].as_u64().unwrap() >= 1, "{seen}");
    assert_eq!(seen["cancelled"], json!([slow]), "{seen}");
    assert_eq!(seen["delegated"], 1, "{seen}");
    assert!(seen["largest_input"].as_u64().unwrap() > 10_000, "{seen}");
    assert_eq!(seen["doc_syncs"], 1, "{seen}");
    // Its appends come back over the hub (the mesh relays its own edits to everyone
    // following); the first one's relay has long arrived by now.
    assert!(seen["doc_updates"].as_u64().unwrap() >= 1, "{seen}");
    // It says goodbye and exits cleanly.
    let mut agent = agent;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the agent did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(agent.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
}
