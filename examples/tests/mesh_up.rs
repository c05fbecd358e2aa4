//! `mesh up --demo` as a user runs it: the banner, demo tasks routed and completed,
//! and a clean exit on Ctrl-C (SIGINT).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn mesh_up_demo_routes_tasks_and_stops_cleanly_on_ctrl_c() {
    let dir = common::fresh_data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "--demo-every-ms",
            "50",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .env("MESH_API_KEY", "test-admin-key-0123456789")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let started = Instant::now();
    let (mut banner, mut routed, mut completed) = (false, 0, 0);
    let mut lines = stdout.lines();
    while completed < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no demo progress"
        );
        let line = lines.next().expect("output").unwrap();
        banner |= line.contains("agent hub   ws://127.0.0.1:");
        routed += usize::from(line.trim_start().starts_with("routed"));
        completed += usize::from(line.trim_start().starts_with("completed"));
        assert!(
            !line.contains("test-admin-key"),
            "the key is never printed when given: {line}"
        );
    }
    assert!(banner && routed >= 5);
    let pid = child.id().to_string();
    assert_ne!(
        huge_pages_allowed(&pid),
        Some(true),
        "the binaries turn transparent huge pages off (examples/src/alloc.rs)"
    );
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
    assert!(dir.join("mesh.db").exists(), "the data was kept");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the kernel may back process `pid`'s memory with transparent huge pages
/// (`THP_enabled` in `/proc/<pid>/status`, Linux 5.0 and later; `None` elsewhere).
fn huge_pages_allowed(pid: &str) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    Some(line.split_whitespace().nth(1)? != "0")
}
