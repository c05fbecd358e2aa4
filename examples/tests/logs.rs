//! `MESH_LOG_FORMAT=json`: a service's log is one JSON object per line, each HTTP
//! request has an access line carrying the request id the client got back — and the
//! API key, the JWT and the JWT secret appear nowhere in it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const KEY: &str = "logs-test-admin-key-0123456789";
const SECRET: &str = "logs-test-jwt-secret-0123456789-abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_no_secrets() {
    let Some(database) = mesh_core::testing::fresh_database().await else {
        return;
    };
    let log = common::fresh_data_dir().with_extension("log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let mut server = common::Killed(
        Command::new(env!("CARGO_BIN_EXE_rest-api"))
            .args(["--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &database)
            .env("MESH_API_KEY", KEY)
            .env("MESH_JWT_SECRET", SECRET)
            .env("MESH_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("MESH_SQS_QUEUE")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let tenant = "00000000-0000-0000-0000-000000000001";
    let later = chrono::Utc::now().timestamp() + 600;
    let jwt = mesh_core::http::sign_jwt(
        &json!({"tenant_id": tenant, "scopes": ["read"], "exp": later}),
        SECRET.as_bytes(),
    );
    let http = reqwest::Client::new();
    let mut request_ids = Vec::new();
    for credential in [KEY, jwt.as_str(), "not-a-key-not-a-key"] {
        let response = http
            .get(format!("http://{addr}/api/v1/tasks"))
            .bearer_auth(credential)
            .send()
            .await
            .unwrap();
        request_ids.push(
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let pid = server.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    server.0.wait().unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string())
    );
    for id in &request_ids {
        let access = lines
            .iter()
            .find(|l| l["target"] == "mesh::access" && l["fields"]["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no access line for {id} in\n{text}"));
        assert_eq!(access["fields"]["route"], "/api/v1/tasks");
    }
    for secret in [KEY, SECRET, jwt.as_str()] {
        assert!(!text.contains(secret), "a credential in the log:\n{text}");
    }
    let _ = std::fs::remove_file(&log);
}
