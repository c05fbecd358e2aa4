//! `mesh up` on a data directory, killed with SIGKILL in the middle of its work and
//! started again: agents, tasks, keys, documents and vectors are all still there, the
//! tasks in flight at the kill run again, and every task completes exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{Rest, eventually};
use mesh_core::testing::{agent_at, client_config};
use serde_json::{Value, json};

const KEY: &str = "durable-up-test-key-0123456789ab";

/// How many times the agents finished each task (by its input's `n`).
type Finished = Arc<Mutex<HashMap<u64, u32>>>;

/// An agent with `caps` that finishes tasks at once — except, when `hold` is set,
/// tasks marked `hold`, which it keeps in flight for ever.
fn agent(addr: &str, caps: &[&str], hold: bool, finished: Finished) -> tokio::task::JoinHandle<()> {
    agent_at(
        client_config(&format!("ws://{addr}/ws"), KEY),
        "keeper",
        caps,
        8,
        move |task, _| {
            let finished = finished.clone();
            async move {
                if hold && task.input["hold"] == true {
                    std::future::pending::<()>().await;
                }
                let n = task.input["n"].as_u64().unwrap();
                *finished.lock().unwrap().entry(n).or_default() += 1;
                Ok(json!({"n": n}))
            }
        },
    )
}

async fn search(rest: &Rest, text: &str) -> Vec<Value> {
    let found = rest
        .post(
            "/search",
            json!({"collection": "notes", "query": text, "k": 3}),
        )
        .await;
    found["hits"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_mesh_up_restarts_on_its_data_directory_and_loses_nothing() {
    let dir = common::fresh_data_dir();
    let data_dir = dir.to_str().unwrap().to_owned();
    let args = ["--listen", "127.0.0.1:0", "--data-dir", data_dir.as_str()];
    let finished: Finished = Arc::default();

    let (mut first, addr) = common::mesh_up(&args, KEY);
    let rest = Rest::new(&addr, KEY);
    let keeper = agent(&addr, &["work"], true, finished.clone());
    let mut ids = Vec::new();
    // Ten that finish before the kill, two in flight at it, three that wait for an
    // agent with `later` (there is none until the restart).
    for n in 0..15_u64 {
        let (kind, input) = match n {
            0..10 => ("work", json!({"n": n})),
            10..12 => ("work", json!({"n": n, "hold": true})),
            _ => ("later", json!({"n": n})),
        };
        ids.push(rest.submit(kind, input).await);
    }
    for id in &ids[..10] {
        rest.until(id, &["completed"]).await;
    }
    for id in &ids[10..12] {
        rest.until(id, &["accepted", "in_progress"]).await;
    }
    let docs: Vec<String> = (0..6)
        .map(|i| {
            format!(
                "note {i}: the {} lighthouse keeper's log",
                ["first", "second", "third", "fourth", "fifth", "sixth"][i]
            )
        })
        .collect();
    for (i, text) in docs.iter().enumerate() {
        rest.post(
            "/documents",
            json!({"collection": "notes", "document_id": format!("doc-{i}"), "text": text}),
        )
        .await;
    }

    // SIGKILL: no shutdown, no flush, no goodbye.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    keeper.abort();

    let (_second, addr) = common::mesh_up(&args, KEY);
    let rest = Rest::new(&addr, KEY);
    // The key authenticates (it was kept), the agent is known, the tasks are there.
    let agents = rest.get("/agents").await;
    let names: Vec<&str> = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["keeper"], "{agents}");
    for id in &ids[..10] {
        assert_eq!(
            rest.get(&format!("/tasks/{id}")).await["status"],
            "completed"
        );
    }
    for id in &ids[10..] {
        assert_eq!(
            rest.get(&format!("/tasks/{id}")).await["status"],
            "pending",
            "in flight or waiting at the kill: pending again"
        );
    }
    // The agent reconnects (now able to do `later` work too) and everything finishes.
    let _keeper = agent(&addr, &["work", "later"], false, finished.clone());
    for id in &ids {
        rest.until(id, &["completed"]).await;
    }
    let finished = finished.lock().unwrap().clone();
    assert_eq!(finished.len(), 15, "{finished:?}");
    assert!(
        finished.values().all(|&times| times == 1),
        "each task finished exactly once: {finished:?}"
    );
    // Every document is found, including any whose indexing job the kill interrupted.
    for (i, text) in docs.iter().enumerate() {
        let doc = format!("doc-{i}");
        eventually(&format!("search finds {doc}"), || async {
            search(&rest, text)
                .await
                .iter()
                .any(|h| h["document_id"] == doc.as_str())
        })
        .await;
    }
    drop(_second);
    let _ = std::fs::remove_dir_all(&dir);
}
