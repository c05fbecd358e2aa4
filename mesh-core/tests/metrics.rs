//! Prometheus metrics at `/metrics`: after a known workload over REST with a real
//! agent, the counters say exactly what happened (tasks completed equals tasks run,
//! requests by route, tool calls, agents), no label carries an id, only the operator's
//! admins may read them, and the exposition passes `promtool check metrics`. Its own
//! test binary: the recorder is one per process.

#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::testing as common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mesh_core::app::AppConfig;
use mesh_core::services::Services;
use mesh_core::tools::{FilesAdapter, ToolRegistry};
use mesh_core::{Engine, Scope, TenantId};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Samples by name and labels (`name{a="1",b="2"}`, labels sorted).
fn parse(exposition: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_owned(),
        };
        samples.insert(key, value.parse().unwrap());
    }
    samples
}

#[tokio::test]
async fn metrics_count_a_known_workload_exactly() {
    let engine = Engine::start(common::fast_config(), mesh_core::MemoryStores::new())
        .await
        .unwrap();
    let tenant = TenantId::new();
    let (admin, _) = engine
        .create_api_key(tenant, "admin", vec![Scope::Admin], None)
        .await
        .unwrap();
    let (reader, _) = engine
        .create_api_key(tenant, "reader", vec![Scope::Read], None)
        .await
        .unwrap();
    let root = std::env::temp_dir().join(format!("mesh-metrics-{}", uuid::Uuid::now_v7().simple()));
    let mut tools = ToolRegistry::new();
    tools.register(FilesAdapter::new(&root));
    let mut services = Services::in_memory(engine.clone());
    services.tools = tools.into();
    let (addr, _server) =
        common::serve_app(services, AppConfig::default().operator_tenant(tenant)).await;
    let _agent = common::echo_agent_at(&format!("ws://{addr}/ws"), &admin, "echo", &["echo"]);
    common::wait_for_agents(&engine, tenant, 1).await;
    let http = reqwest::Client::new();
    let post = |path: &'static str, body: Value| {
        http.post(format!("http://{addr}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };

    const RUN: usize = 7;
    let mut ids = Vec::new();
    for n in 0..RUN {
        let task: Value = post("/api/v1/tasks", json!({"kind": "echo", "input": n}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(task["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let id = id.parse().unwrap();
        engine.wait(tenant, id).await.unwrap();
    }
    let stuck: Value = post("/api/v1/tasks", json!({"kind": "nobody"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cancel = format!(
        "http://{addr}/api/v1/tasks/{}/cancel",
        stuck["id"].as_str().unwrap()
    );
    http.post(cancel).bearer_auth(&admin).send().await.unwrap();
    let ok = post(
        "/api/v1/tools/files/execute",
        json!({"action": "write", "input": {"path": "a.txt", "text": "x"}}),
    );
    assert_eq!(ok.await.unwrap().status(), StatusCode::OK);
    let missing = post(
        "/api/v1/tools/files/execute",
        json!({"action": "read", "input": {"path": "nope.txt"}}),
    );
    assert!(missing.await.unwrap().status().is_client_error());

    let scrape = |key: String| {
        let request = http
            .get(format!("http://{addr}/metrics"))
            .bearer_auth(key)
            .send();
        async move {
            let response = request.await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    assert_eq!(scrape(reader.clone()).await.0, StatusCode::FORBIDDEN);
    let anonymous = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // The engine's events are recorded as they come: wait for the last one.
    let cancelled = "mesh_tasks_finished_total{kind=\"nobody\",status=\"cancelled\"}";
    let started = Instant::now();
    let (exposition, samples) = loop {
        let (status, text) = scrape(admin.clone()).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let samples = parse(&text);
        if samples.get(cancelled) == Some(&1.0) {
            break (text, samples);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let n = RUN as f64;
    for (series, want) in [
        ("mesh_tasks_submitted_total{kind=\"echo\"}", n),
        ("mesh_tasks_assigned_total{kind=\"echo\"}", n),
        (
            "mesh_tasks_finished_total{kind=\"echo\",status=\"completed\"}",
            n,
        ),
        (
            "mesh_task_start_to_close_seconds_count{kind=\"echo\",status=\"completed\"}",
            n,
        ),
        (
            "mesh_task_schedule_to_start_seconds_count{kind=\"echo\"}",
            n,
        ),
        ("mesh_tasks_submitted_total{kind=\"nobody\"}", 1.0),
        ("mesh_agents_connected", 1.0),
        (
            "mesh_http_requests_total{method=\"POST\",route=\"/api/v1/tasks\",status=\"201\"}",
            n + 1.0,
        ),
        (
            "mesh_http_requests_total{method=\"POST\",route=\"/api/v1/tasks/{id}/cancel\",status=\"200\"}",
            1.0,
        ),
        (
            "mesh_tool_calls_total{action=\"write\",outcome=\"ok\",tool=\"files\"}",
            1.0,
        ),
        (
            "mesh_tool_calls_total{action=\"read\",outcome=\"error\",tool=\"files\"}",
            1.0,
        ),
        ("mesh_queue_jobs{state=\"available\"}", 0.0),
        ("mesh_connections{surface=\"hub\"}", 1.0),
    ] {
        assert_eq!(
            samples.get(series),
            Some(&want),
            "{series} in\n{exposition}"
        );
    }
    assert!(exposition.contains("# HELP mesh_tasks_finished_total"));
    // The agent's WebSocket traffic: its hello and results in, assignments out.
    for series in [
        "mesh_ws_messages_total{direction=\"in\"}",
        "mesh_ws_messages_total{direction=\"out\"}",
        "mesh_ws_bytes_total{direction=\"in\"}",
        "mesh_protocol_frames_received_total",
    ] {
        assert!(
            samples.get(series).is_some_and(|v| *v >= n),
            "{series} in\n{exposition}"
        );
    }
    // The engine task worked, and says for how long.
    for series in [
        "mesh_engine_busy_seconds",
        "mesh_engine_task_busy_seconds{task=\"0\"}",
        "mesh_engine_cpu_seconds",
    ] {
        assert!(
            samples.get(series).is_some_and(|v| *v > 0.0),
            "{series} in\n{exposition}"
        );
    }
    // No id as a label value: routes are patterns, kinds are kinds.
    assert!(!exposition.contains(&ids[0]) && !exposition.contains(&tenant.to_string()));

    // Prometheus's own checker, where the test command installed it.
    let promtool = std::path::Path::new("/usr/bin/promtool");
    if promtool.exists() || std::env::var_os("MESH_TEST_SERVICES").is_some() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut check = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the test command installs promtool (Debian's prometheus)");
        check
            .stdin
            .take()
            .unwrap()
            .write_all(exposition.as_bytes())
            .unwrap();
        let output = check.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Every query of the Grafana dashboard in `docs/grafana/mesh.json` is valid PromQL
/// over metrics Mesh exports (`promtool check rules` on them as recording rules).
#[test]
fn the_grafana_dashboard_queries_are_valid_promql_over_mesh_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana/mesh.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    let known: Vec<&str> = mesh_core::observe::METRICS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    for query in &queries {
        assert!(
            known.iter().any(|name| query.contains(name)),
            "{query} reads no metric Mesh exports"
        );
    }
    let promtool = std::path::Path::new("/usr/bin/promtool");
    if !promtool.exists() && std::env::var_os("MESH_TEST_SERVICES").is_none() {
        return;
    }
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| json!({"record": format!("mesh:dashboard_{i}"), "expr": q}))
        .collect();
    // JSON is YAML: promtool reads it as a rules file.
    let file =
        std::env::temp_dir().join(format!("mesh-rules-{}.yml", uuid::Uuid::now_v7().simple()));
    let groups = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, groups.to_string()).unwrap();
    let output = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("the test command installs promtool (Debian's prometheus)");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
