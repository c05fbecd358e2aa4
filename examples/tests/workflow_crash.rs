//! Durable workflows across SIGKILLs of real processes: a run of agent steps (a
//! sequence, a parallel fan-out, a join) whose server is killed in the middle of a
//! step, three times, each time right after other steps' checkpoints; restarted on the
//! same SQLite data directory (`mesh up`), on the same PostgreSQL (`rest-api` under its
//! old instance name), or taken over by a second instance once the lease runs out.
//! The run completes, and the agents' side effects show every step ran exactly once,
//! under one task id each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Killed, Rest, eventually};
use mesh_core::testing::{agent_at, client_config};
use serde_json::{Value, json};

const KEY: &str = "workflow-crash-test-key-0123456789";

/// What the agents saw: per step, the task ids they were given and the side effects
/// (completed executions) they made; and the step they hold until told otherwise.
#[derive(Default)]
struct Seen {
    dispatched: BTreeMap<String, BTreeSet<String>>,
    effects: BTreeMap<String, u32>,
    hold: Option<String>,
}

type Shared = Arc<Mutex<Seen>>;

/// An agent on `hub`; dropping the returned guard is the agent process dying: work it
/// holds then never finishes (its task handlers may outlive the aborted connection).
fn agent(hub: &str, seen: Shared) -> Agent {
    let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let living = alive.clone();
    let task = agent_at(
        client_config(&format!("ws://{hub}/ws"), KEY),
        "stepper",
        &["step"],
        8,
        move |task, _| {
            let seen = seen.clone();
            let living = living.clone();
            async move {
                let step = task.input["step"].as_str().unwrap().to_owned();
                seen.lock()
                    .unwrap()
                    .dispatched
                    .entry(step.clone())
                    .or_default()
                    .insert(task.task_id.to_string());
                // Held until the test lets the step go (or the agent is aborted).
                while seen.lock().unwrap().hold.as_deref() == Some(step.as_str()) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if !living.load(std::sync::atomic::Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                *seen
                    .lock()
                    .unwrap()
                    .effects
                    .entry(step.clone())
                    .or_default() += 1;
                Ok(json!(step))
            }
        },
    );
    Agent { task, alive }
}

struct Agent {
    task: tokio::task::JoinHandle<()>,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.alive.store(false, std::sync::atomic::Ordering::SeqCst);
        self.task.abort();
    }
}

fn definition() -> Value {
    let task = |name: &str| json!({"name": name, "task": {"kind": "step"}, "input": {"step": name}, "output": "log"});
    let mut a = task("a");
    a["next"] = json!("b");
    let mut b = task("b");
    b["next"] = json!("fan");
    json!({"name": "crashy", "state": {"log": {"reducer": "append"}}, "steps": [
        a, b,
        {"name": "fan", "parallel": {"branches": [{"steps": [task("c")]}, {"steps": [task("d")]}]}, "next": "e"},
        task("e"),
    ]})
}

/// The steps the run's journal says completed.
async fn completed(rest: &Rest, run: &str) -> BTreeSet<String> {
    let history = rest
        .get(&format!("/workflows/{run}/history?limit=1000"))
        .await;
    history
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["event"]["type"] == "step_completed")
                .map(|e| e["event"]["step"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A server the scenario can kill and start again: its REST and hub addresses.
trait Server {
    fn rest(&self) -> String;
    fn hub(&self) -> String;
    /// SIGKILLs the instance driving the run and brings up the one that goes on.
    fn crash(&mut self);
}

/// The scenario: hold b, c, then e; each time kill once the other steps' checkpoints
/// are written and the held step is with the agent; let the run finish.
async fn run_through_crashes(server: &mut impl Server) {
    let seen: Shared = Arc::default();
    let mut agent_task = agent(&server.hub(), seen.clone());
    let mut rest = Rest::new(&server.rest(), KEY);
    rest.post("/workflow-definitions", definition()).await;
    seen.lock().unwrap().hold = Some("b".into());
    let run = rest.post("/workflows", json!({"workflow": "crashy"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (held, done_before, next_hold) in [
        ("b", &["a"][..], Some("c")),
        ("c", &["a", "b", "d"][..], Some("e")),
        ("e", &["a", "b", "c", "d"][..], None),
    ] {
        eventually(&format!("{held} is with the agent"), || async {
            seen.lock().unwrap().dispatched.contains_key(held)
        })
        .await;
        let want: BTreeSet<String> = done_before.iter().map(|s| (*s).to_owned()).collect();
        eventually(&format!("checkpoints of {done_before:?}"), || async {
            completed(&rest, &run).await.is_superset(&want)
        })
        .await;
        let hub = server.hub();
        server.crash();
        if server.hub() != hub {
            // The hub died with the server: the agent (and its held work) goes too.
            agent_task = agent(&server.hub(), seen.clone());
        }
        // Only now may the held step finish: on a hub that lived on, its task
        // completes there; otherwise it is dispatched again, under the same id.
        seen.lock().unwrap().hold = next_hold.map(str::to_owned);
        rest = Rest::new(&server.rest(), KEY);
    }
    eventually("the run succeeds", || async {
        rest.get(&format!("/workflows/{run}")).await["status"] == "succeeded"
    })
    .await;
    let finished = rest.get(&format!("/workflows/{run}")).await;
    assert_eq!(
        finished["output"]["log"],
        json!(["a", "b", "c", "d", "e"]),
        "{finished}"
    );
    let seen = seen.lock().unwrap();
    for step in ["a", "b", "c", "d", "e"] {
        assert_eq!(
            seen.effects.get(step),
            Some(&1),
            "{step} ran once: {:?}",
            seen.effects
        );
        assert_eq!(
            seen.dispatched[step].len(),
            1,
            "{step} under one task id: {:?}",
            seen.dispatched
        );
    }
    drop(agent_task);
}

struct Up {
    args: Vec<String>,
    process: Killed,
    addr: String,
}

impl Server for Up {
    fn rest(&self) -> String {
        self.addr.clone()
    }
    fn hub(&self) -> String {
        self.addr.clone()
    }
    fn crash(&mut self) {
        self.process.0.kill().unwrap();
        self.process.0.wait().unwrap();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let (process, addr) = common::mesh_up(&args, KEY);
        self.process = process;
        self.addr = addr;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_sigkills_of_mesh_up_on_its_data_directory() {
    let dir = common::fresh_data_dir();
    let args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (process, addr) = common::mesh_up(&refs, KEY);
    let mut server = Up {
        args,
        process,
        addr,
    };
    run_through_crashes(&mut server).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// REST instances on one PostgreSQL with a hub (an `mcp-server`) the agents stay on.
struct Cluster {
    database: String,
    hub: (Killed, String),
    driving: (Killed, String),
    /// The next instance: the same name again (a restart), or another (a takeover).
    next_names: Vec<&'static str>,
    standby: Option<(Killed, String)>,
}

fn rest_api(database: &str, instance: &str) -> (Killed, String) {
    common::service(
        env!("CARGO_BIN_EXE_rest-api"),
        database,
        &["--instance", instance, "--workflow-lease-ms", "1000"],
        KEY,
    )
}

impl Server for Cluster {
    fn rest(&self) -> String {
        self.driving.1.clone()
    }
    fn hub(&self) -> String {
        self.hub.1.clone()
    }
    fn crash(&mut self) {
        self.driving.0.0.kill().unwrap();
        self.driving.0.0.wait().unwrap();
        let name = self.next_names.remove(0);
        self.driving = match self.standby.take() {
            // The other instance takes the run over once the dead one's lease ends.
            Some(standby) if name == "standby" => standby,
            standby => {
                self.standby = standby;
                rest_api(&self.database, name)
            }
        };
    }
}

/// A hub and instance `a` on a fresh database, then the scenario, crashing into
/// `next_names` (with a standby instance `b` when asked); skipped without PostgreSQL.
async fn on_postgres(next_names: Vec<&'static str>, standby: bool) {
    let Some(database) = mesh_core::testing::fresh_database().await else {
        return;
    };
    let hub = common::service(
        env!("CARGO_BIN_EXE_mcp-server"),
        &database,
        &["--instance", "hub"],
        KEY,
    );
    let driving = rest_api(&database, "a");
    let standby = standby.then(|| rest_api(&database, "b"));
    let mut cluster = Cluster {
        database,
        hub,
        driving,
        next_names,
        standby,
    };
    run_through_crashes(&mut cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_sigkills_of_its_instance_on_postgres() {
    on_postgres(vec!["a", "a", "a"], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_takes_over_a_run_whose_instance_died() {
    // First a takeover by b, then b restarts twice under its own name.
    on_postgres(vec!["standby", "b", "b"], true).await;
}
