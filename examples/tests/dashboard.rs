//! The dashboard in a real browser: `examples/dashboard/dashboard.test.mjs` drives
//! headless Chromium (Debian's `chromium`, through npm's `playwright-core`) against
//! `mesh up`, with the Python reference agent connecting mid-test. The test command
//! installs both; outside it the test is skipped when they are missing.
//!
//! `MESH_UPDATE_SCREENSHOTS=1` writes the screenshots into `docs/dashboard/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const KEY: &str = "dashboard-test-admin-key-0123456789";

/// What the browser test needs: node with the test's packages, Chromium, the test
/// Python (for the agent). `None` (skip) outside the test command when missing.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let chromium = std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let node_ok = Command::new("node").arg("--version").output().is_ok();
    let ready = node_ok
        && dir.join("node_modules/playwright-core").is_dir()
        && Path::new(&chromium).exists();
    let required = std::env::var_os("MESH_TEST_SERVICES").is_some();
    match (ready, mesh_core::testing::test_python()) {
        (true, Some(python)) => Some((dir, python)),
        _ if required => panic!(
            "the test command installs node's playwright-core (npm ci in {}) and Chromium ({chromium})",
            dir.display()
        ),
        _ => {
            eprintln!(
                "skipped: needs node, npm ci in {}, and {chromium}",
                dir.display()
            );
            None
        }
    }
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let Some((dir, python)) = tools() else { return };
    let files = common::fresh_data_dir();
    let (_up, addr) = common::mesh_up(
        &[
            "--in-memory",
            "--listen",
            "127.0.0.1:0",
            "--files-root",
            files.to_str().unwrap(),
        ],
        KEY,
    );
    let scratch = common::fresh_data_dir();
    std::fs::create_dir_all(&scratch).unwrap();
    let shots = if std::env::var_os("MESH_UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard")
    } else {
        scratch.join("screenshots")
    };
    let results = scratch.join("results.json");
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/agent.py");
    let status = Command::new("node")
        .arg(dir.join("dashboard.test.mjs"))
        .env("MESH_URL", format!("http://{addr}"))
        .env("MESH_KEY", KEY)
        .env("MESH_PYTHON", &python)
        .env("MESH_AGENT", &agent)
        .env("MESH_SHOTS", &shots)
        .env("MESH_RESULTS", &results)
        .status()
        .unwrap();
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
    assert!(
        status.success(),
        "the browser test failed: {}",
        results["error"]
    );
    // Accessibility: no serious or critical axe-core violation on any page.
    for (page, found) in results["axe"].as_object().unwrap() {
        for violation in found["violations"].as_array().unwrap() {
            let impact = violation["impact"].as_str().unwrap_or("");
            assert!(
                !matches!(impact, "serious" | "critical"),
                "{page}: {violation}"
            );
        }
    }
    assert_eq!(results["screenshots"].as_array().unwrap().len() % 2, 0);
    let _ = std::fs::remove_dir_all(&files);
}
