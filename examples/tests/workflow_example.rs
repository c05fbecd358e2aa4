//! The example of `docs/workflows.md` (`examples/workflows/code-analysis.json`) run
//! against `mesh up --demo`: its agents analyse and summarise, the `files` tool lists
//! and writes, a person approves through the run's pending interrupt, and the report
//! lands in the files root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Rest;
use serde_json::{Value, json};

const KEY: &str = "workflow-example-test-key-0123456789";

async fn until(rest: &Rest, run: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let current = rest.get(&format!("/workflows/{run}")).await;
        if current["status"] == status {
            return current;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "wanted {status}: {current}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_analysis_example_runs_against_mesh_up_demo() {
    let files = common::fresh_data_dir();
    let root = files.to_str().unwrap();
    let (_up, addr) = common::mesh_up(
        &[
            "--in-memory",
            "--demo",
            "--demo-every-ms",
            "60000",
            "--listen",
            "127.0.0.1:0",
            "--files-root",
            root,
        ],
        KEY,
    );
    std::fs::write(files.join("main.rs"), "fn main() {}").unwrap();
    let rest = Rest::new(&addr, KEY);
    let definition: Value =
        serde_json::from_str(include_str!("../workflows/code-analysis.json")).unwrap();
    let registered = rest.post("/workflow-definitions", definition).await;
    assert_eq!(registered["version"], 1);
    let run = rest
        .post(
            "/workflows",
            json!({"workflow": "code-analysis", "input": {"repo": "mesh"}}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let waiting = until(&rest, &id, "waiting").await;
    let interrupt = &waiting["interrupts"][0];
    assert_eq!(interrupt["prompt"], "Publish the analysis report?");
    rest.post(
        &format!("/workflows/{id}/resume"),
        json!({"interrupt": interrupt["id"], "value": {"approved": true, "by": "reviewer"}}),
    )
    .await;
    let done = until(&rest, &id, "succeeded").await;
    let output = &done["output"];
    assert_eq!(output["findings"].as_array().unwrap().len(), 2, "{output}");
    assert_eq!(output["files"]["entries"][0]["name"], "main.rs");
    assert_eq!(output["report"]["path"], "reports/code-analysis.json");
    let report = std::fs::read_to_string(files.join("reports/code-analysis.json")).unwrap();
    let summary: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(summary["by"], output["summary"]["by"]);
    let _ = std::fs::remove_dir_all(&files);
}
