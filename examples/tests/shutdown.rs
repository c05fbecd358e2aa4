//! A stop is bounded: SIGTERM to `mesh up` or `rest-api` with a live event stream (and,
//! on `mesh up`, an agent session) open — connections that would never close on their
//! own — ends the process cleanly within `--shutdown-timeout-ms`, the stream cut.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

const KEY: &str = "shutdown-test-admin-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_mesh_up_within_the_bound_despite_open_streams() {
    let args = [
        "--in-memory",
        "--listen",
        "127.0.0.1:0",
        "--shutdown-timeout-ms",
        "500",
    ];
    let (up, addr) = common::mesh_up(&args, KEY);
    stops_within_the_bound(up, &addr, true).await;
}

/// The same for a service binary on PostgreSQL (`rest-api`: no agent hub there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_rest_api_within_the_bound_despite_open_streams() {
    let Some(database) = mesh_core::testing::fresh_database().await else {
        return;
    };
    let binary = env!("CARGO_BIN_EXE_rest-api");
    let (api, addr) = common::service(binary, &database, &["--shutdown-timeout-ms", "500"], KEY);
    stops_within_the_bound(api, &addr, false).await;
}

async fn stops_within_the_bound(mut server: common::Killed, addr: &str, hub: bool) {
    let http = reqwest::Client::new();
    let mut stream = http
        .get(format!("http://{addr}/api/v1/events"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert!(stream.status().is_success());
    let _agent = hub.then(|| {
        mesh_core::testing::echo_agent_at(&format!("ws://{addr}/ws"), KEY, "a", &["echo"])
    });
    if hub {
        let rest = common::Rest::new(addr, KEY);
        common::eventually("the agent connects", || async {
            rest.get("/agents").await["items"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .await;
    }

    let pid = server.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(status.success(), "{status}");
    // The stream was cut, not left hanging.
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(drained.is_ok(), "the event stream never ended");
}
