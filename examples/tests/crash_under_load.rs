//! The hub killed with SIGKILL while it runs tasks at full rate — `mesh up` on its data
//! directory (SQLite), and the `mcp-server` hub on PostgreSQL: every task a submitter
//! was told completed is completed in the store (the engine's group commit tells only
//! after the write), none of those runs again, and every task it was told was
//! submitted ends completed after a restart — none lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Killed, Rest};
use mesh_core::testing::{agent_at, client_config};
use mesh_protocol::ws::{Incoming, connect};
use mesh_protocol::{Hello, Message, TaskStatus, TaskSubmit};
use serde_json::json;

const KEY: &str = "crash-under-load-key-0123456789ab";

/// Tasks in flight from the submitter, as in the hub load benchmark.
const WINDOW: usize = 64;

/// Completions seen before the kill: enough that it lands in a steady stream.
const BEFORE_KILL: usize = 1_500;

/// The task ids (by input `n`) the agents ran after the restart.
type RanAfter = Arc<Mutex<HashSet<u64>>>;

/// Agents that finish each task at once — every tenth after 200 ms, so some are always
/// in flight —; after the restart they note what they ran.
fn agents(addr: &str, after: Option<RanAfter>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|i| {
            let after = after.clone();
            agent_at(
                client_config(&format!("ws://{addr}/ws"), KEY),
                &format!("worker-{i}"),
                &["work"],
                32,
                move |task, _| {
                    let after = after.clone();
                    async move {
                        let n = task.input["n"].as_u64().unwrap();
                        match after {
                            Some(after) => {
                                after.lock().unwrap().insert(n);
                            }
                            None if n % 10 == 0 => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            None => {}
                        }
                        Ok(json!({"n": n}))
                    }
                },
            )
        })
        .collect()
}

/// Where the killed hub keeps its state.
enum Backing {
    /// `mesh up` on a data directory (SQLite).
    Sqlite(PathBuf),
    /// The `mcp-server` hub on a PostgreSQL database.
    Postgres(String),
}

impl Backing {
    /// The hub, started (again) on this state: its process and address.
    fn hub(&self) -> (Killed, String) {
        match self {
            Backing::Sqlite(dir) => {
                let dir = dir.to_str().unwrap();
                common::mesh_up(&["--listen", "127.0.0.1:0", "--data-dir", dir], KEY)
            }
            Backing::Postgres(url) => {
                common::service(env!("CARGO_BIN_EXE_mcp-server"), url, &[], KEY)
            }
        }
    }

    /// REST on this state after the restart — the hub itself (`mesh up` serves both), or
    /// a REST API instance on the same database — and what else runs there: on
    /// PostgreSQL the worker, whose sweep gives back the tasks a dead instance held
    /// once their attempt has run out (the engine's 60 s task timeout, plus 5 s).
    fn rest(&self, hub: &str) -> (Vec<Killed>, Rest) {
        match self {
            Backing::Sqlite(_) => (Vec::new(), Rest::new(hub, KEY)),
            Backing::Postgres(url) => {
                let (api, addr) = common::service(env!("CARGO_BIN_EXE_rest-api"), url, &[], KEY);
                let worker = Killed(
                    std::process::Command::new(env!("CARGO_BIN_EXE_worker"))
                        .env("DATABASE_URL", url)
                        .env_remove("MESH_SQS_QUEUE")
                        .env("RUST_LOG", "warn")
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .unwrap(),
                );
                (vec![api, worker], Rest::new(&addr, KEY))
            }
        }
    }

    /// How long the tasks in flight at the kill may take to come back.
    fn recovery(&self) -> Duration {
        match self {
            Backing::Sqlite(_) => Duration::from_secs(30),
            Backing::Postgres(_) => Duration::from_secs(150),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_killed_at_full_rate_loses_no_acknowledged_task() {
    let dir = common::fresh_data_dir();
    killed_at_full_rate(Backing::Sqlite(dir.clone())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_postgres_killed_at_full_rate_loses_no_acknowledged_task() {
    let Some(database) = mesh_core::testing::fresh_database().await else {
        return;
    };
    killed_at_full_rate(Backing::Postgres(database)).await;
}

async fn killed_at_full_rate(backing: Backing) {
    let (mut first, addr) = backing.hub();
    let workers = agents(&addr, None);

    // One submitter over the hub keeps WINDOW tasks in flight, as the benchmark does.
    let mut client = connect(&client_config(&format!("ws://{addr}/ws"), KEY))
        .await
        .unwrap();
    client
        .send(Hello::new("submitter", Vec::<String>::new()))
        .await
        .unwrap();
    let sender = client.sender();
    let mut submitted: HashMap<uuid::Uuid, u64> = HashMap::new();
    let mut completed: HashSet<uuid::Uuid> = HashSet::new();
    let (mut sent, mut welcomed) = (0_u64, false);
    let mut killed = false;
    loop {
        while welcomed && !killed && (sent as usize) < completed.len() + WINDOW {
            let submit = TaskSubmit::new(sent.to_string(), "work", json!({"n": sent}));
            if sender.send(submit).await.is_err() {
                break;
            }
            sent += 1;
        }
        if completed.len() >= BEFORE_KILL && !killed {
            killed = true;
            // SIGKILL mid-stream: no shutdown, no flush, no goodbye.
            first.0.kill().unwrap();
            first.0.wait().unwrap();
        }
        match client.recv().await {
            Some(Ok(Incoming::Message(Message::Welcome(_)))) => welcomed = true,
            Some(Ok(Incoming::Message(Message::TaskSubmitted(s)))) => {
                submitted.insert(s.task_id, s.request_id.parse().unwrap());
            }
            Some(Ok(Incoming::Message(Message::TaskUpdate(u)))) => {
                assert_eq!(u.status, TaskStatus::Completed, "{u:?}");
                assert!(submitted.contains_key(&u.task_id), "told submitted first");
                completed.insert(u.task_id);
            }
            Some(Ok(_)) => {}
            // The connection ends with the process.
            _ if killed => break,
            other => panic!("the submitter's connection ended early: {other:?}"),
        }
    }
    workers.iter().for_each(|w| w.abort());
    assert!(completed.len() >= BEFORE_KILL);
    assert!(
        submitted.len() > completed.len(),
        "some were in flight at the kill"
    );

    // Started again on the same database, before any agent is back: every task the
    // submitter was told completed is completed there.
    let (second, addr) = backing.hub();
    let (_beside, rest) = backing.rest(&addr);
    for id in &completed {
        let task = rest.get(&format!("/tasks/{id}")).await;
        assert_eq!(task["status"], "completed", "{task}");
    }
    // Agents come back: every task told submitted ends completed, and none of those
    // told completed runs again.
    let ran_after: RanAfter = Arc::default();
    let _workers = agents(&addr, Some(ran_after.clone()));
    let started = Instant::now();
    for id in submitted.keys() {
        loop {
            let task = rest.get(&format!("/tasks/{id}")).await;
            if task["status"] == "completed" {
                break;
            }
            assert!(started.elapsed() < backing.recovery(), "{task}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ran_after = ran_after.lock().unwrap().clone();
    let again: Vec<u64> = completed
        .iter()
        .map(|id| submitted[id])
        .filter(|n| ran_after.contains(n))
        .collect();
    assert!(
        again.is_empty(),
        "completed before the kill, run again: {again:?}"
    );
    eprintln!(
        "{} submitted, {} completed before the kill, {} run after the restart",
        submitted.len(),
        completed.len(),
        ran_after.len()
    );
    drop(second);
}
