//! The REST API's cost per request against the physical baseline in the same run: a
//! bare axum handler answering 201 with a task-sized JSON body, called by the same
//! keep-alive HTTP client on loopback. Mesh's `POST /api/v1/tasks` adds authentication
//! (API key lookup), the rate-limit and request-id layers, validation, and a submit
//! through the engine (memory stores). `GET /api/v1/tasks/{id}` adds a read.
//!
//! `cargo bench -p mesh-benches --bench api`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_core::app::{AppConfig, router};
use mesh_core::services::Services;
use mesh_core::{Engine, Scope, TenantId};
use serde_json::{Value, json};

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mesh, baseline, key, task_path) = runtime.block_on(async {
        let engine = Engine::in_memory().await;
        let (key, _) = engine
            .create_api_key(TenantId::new(), "bench", vec![Scope::Admin], None)
            .await
            .unwrap();
        let mesh = serve(router(
            Services::in_memory(engine),
            AppConfig::default().rate_limit(1e9, 1e9),
        ))
        .await;
        let body = json!({"id": "0190a6f0-0000-7000-8000-000000000000", "kind": "bench", "status": "pending",
            "input": {"n": 1}, "attempts": 0, "created_at": "2026-11-21T00:00:00Z"});
        let bare = axum::Router::new().route(
            "/api/v1/tasks",
            axum::routing::post(move |axum::Json(_): axum::Json<Value>| {
                let body = body.clone();
                async move { (axum::http::StatusCode::CREATED, axum::Json(body)) }
            }),
        );
        let baseline = serve(bare).await;
        let client = reqwest::Client::new();
        let created: Value = client
            .post(format!("http://{mesh}/api/v1/tasks"))
            .bearer_auth(&key)
            .json(&json!({"kind": "bench"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let path = format!("/api/v1/tasks/{}", created["id"].as_str().unwrap());
        (mesh, baseline, key, path)
    });
    let client = reqwest::Client::new();
    let submit = json!({"kind": "bench", "input": {"n": 1}});
    let mut group = c.benchmark_group("api");
    for (name, addr) in [("baseline_axum_post", baseline), ("mesh_post_task", mesh)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = client
                        .post(format!("http://{addr}/api/v1/tasks"))
                        .bearer_auth(&key)
                        .json(&submit)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                    response.bytes().await.unwrap()
                })
            })
        });
    }
    group.bench_function("mesh_get_task", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = client
                    .get(format!("http://{mesh}{task_path}"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
