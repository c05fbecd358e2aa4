//! A stop is bounded: SIGTERM to `mesh up` or `rest-api` with a live event stream (and,
//! on `mesh up`, an agent session and MCP sessions over Streamable HTTP and WebSocket)
//! open — connections that would never close on their own — ends the process cleanly
//! within `--shutdown-timeout-ms`, the stream cut; the spans it still held are
//! exported before it exits.

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
    // Spans wait in the batch for ten minutes: only the stop's flush exports them.
    let (collector, spans) = common::otlp::receiver().await;
    let endpoint = format!("http://{collector}");
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ];
    let (up, addr) = common::mesh_up_with(&args, KEY, &envs);
    let traced = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/agents"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert!(traced.status().is_success());
    let _mcp_http = mcp_session(&addr).await;
    let mcp_ws = mesh_core::protocol::ws::connect(
        &mesh_core::protocol::ws::ClientConfig::new(format!("ws://{addr}/ws"))
            .api_key(KEY)
            .subprotocols([mesh_core::protocol::ws::Subprotocol::Mcp]),
    )
    .await
    .unwrap();
    assert!(spans.lock().unwrap().is_empty(), "exported before the stop");
    stops_within_the_bound(up, &addr, true).await;
    drop(mcp_ws);
    let exported = spans.lock().unwrap().clone();
    assert!(
        exported
            .iter()
            .any(|s| s.trace == TRACE && s.name == "GET /api/v1/agents"),
        "the traced request's span was not flushed at the stop: {exported:#?}"
    );
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// An MCP session over Streamable HTTP, initialised and left open.
async fn mcp_session(
    addr: &str,
) -> rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig> {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
        .auth_header(KEY);
    rmcp::model::ClientConfig::new(
        rmcp::model::ClientCapabilities::default(),
        rmcp::model::Implementation::new("shutdown", "0.1.0"),
    )
    .serve(StreamableHttpClientTransport::from_config(config))
    .await
    .unwrap()
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
