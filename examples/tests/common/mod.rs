//! What the process-level tests share: `mesh up` as a child process, and a REST client.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod otlp;

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mesh up` with `args` and the admin key `key`; its address, once it listens. Set
/// `MESH_TEST_LOG` to a tracing filter (`debug`) to see its log.
pub fn mesh_up(args: &[&str], key: &str) -> (Killed, String) {
    mesh_up_with(args, key, &[])
}

/// `mesh up` as [`mesh_up`] starts it, with `envs` set besides.
pub fn mesh_up_with(args: &[&str], key: &str, envs: &[(&str, &str)]) -> (Killed, String) {
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_mesh"))
            .arg("up")
            .args(args)
            .envs(envs.iter().copied())
            .env("MESH_API_KEY", key)
            .env(
                "RUST_LOG",
                std::env::var("MESH_TEST_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim_start().strip_prefix("agent hub   ws://") {
            let addr = rest.split('/').next().unwrap().to_owned();
            // Keep reading, so the process never writes to a closed pipe.
            // With MESH_TEST_LOG set (a tracing filter), show what it logs.
            let echo = std::env::var_os("MESH_TEST_LOG").is_some();
            let pid = child.0.id();
            std::thread::spawn(move || {
                lines
                    .map_while(Result::ok)
                    .filter(|_| echo)
                    .for_each(|l| eprintln!("mesh up {pid}: {l}"))
            });
            return (child, addr);
        }
    }
    panic!("mesh up printed no banner");
}

/// A service binary on PostgreSQL with the admin key `key`; its address once it
/// listens.
pub fn service(binary: &str, database: &str, args: &[&str], key: &str) -> (Killed, String) {
    let mut child = Killed(
        Command::new(binary)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("DATABASE_URL", database)
            .env("MESH_API_KEY", key)
            .env(
                "RUST_LOG",
                std::env::var("MESH_TEST_LOG").unwrap_or("warn".into()),
            )
            .env_remove("MESH_SQS_QUEUE")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{binary}: {line:?}"))
        .to_owned();
    (child, addr)
}

/// The test command's PostgreSQL URL and SQS endpoint; `None` (skip) outside the test
/// command.
pub fn test_services() -> Option<(String, String)> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (get("MESH_TEST_DATABASE_URL"), get("MESH_TEST_SQS_ENDPOINT")) {
        (Some(db), Some(sqs)) => Some((db, sqs)),
        _ if std::env::var_os("MESH_TEST_SERVICES").is_some() => {
            panic!("MESH_TEST_DATABASE_URL and MESH_TEST_SQS_ENDPOINT are required")
        }
        _ => {
            eprintln!("skipped: the test services are not up (scripts/test.sh starts them)");
            None
        }
    }
}

/// A data directory no other test uses, under cargo's scratch directory for tests.
pub fn fresh_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mesh-data-{}", uuid::Uuid::now_v7().simple()))
}

/// The REST API of one `mesh up`.
pub struct Rest {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Rest {
    pub fn new(addr: &str, key: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}/api/v1"),
            key: key.to_owned(),
        }
    }

    /// POSTs `body` to `path`; the JSON answer (a success is asserted).
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// GETs `path`; the JSON answer.
    pub async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// Submits a task; its id.
    pub async fn submit(&self, kind: &str, input: Value) -> String {
        let task = self
            .post("/tasks", json!({"kind": kind, "input": input}))
            .await;
        task["id"].as_str().unwrap().to_owned()
    }

    /// Waits (up to 30 s) until the task's status is one of `statuses`.
    pub async fn until(&self, id: &str, statuses: &[&str]) -> Value {
        let started = Instant::now();
        loop {
            let task = self.get(&format!("/tasks/{id}")).await;
            if statuses.iter().any(|s| task["status"] == *s) {
                return task;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{task}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits (up to 30 s) until `check` holds, looking every 25 ms.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(30), "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
