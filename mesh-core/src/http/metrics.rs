//! Metrics of the HTTP layer: every request counted and timed by method, route (the
//! route's pattern, never the path: no ids) and status — and, with feature `metrics`,
//! the Prometheus exposition at `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Middleware: runs each request in an `http_request` span (a child of the request's
/// W3C `traceparent` header, if any), counts and times it (`mesh_http_requests_total`,
/// `mesh_http_request_duration_seconds`) and writes its access log line (target
/// `mesh::access`, level info: method, route, status, milliseconds, request id —
/// never the path's ids, the query or a header's value besides the request id).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        "http_request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    if let Some(traceparent) = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        crate::trace::set_parent(&span, traceparent);
    }
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    let status = status.to_string();
    span.in_scope(|| {
        tracing::info!(
            target: "mesh::access",
            method = %method,
            route = %route,
            status = %status,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            request_id = %request_id,
            "request"
        );
    });
    metrics::histogram!("mesh_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("mesh_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

#[cfg(feature = "metrics")]
pub use exporter::{prometheus, render};

#[cfg(feature = "metrics")]
mod exporter {
    use std::sync::OnceLock;

    use axum::extract::{Request, State};
    use axum::http::{HeaderValue, header};
    use axum::response::{IntoResponse, Response};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    use crate::http::AppState;

    /// Bucket bounds of every `_seconds` histogram: 1 ms to 1 minute.
    const SECONDS: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];

    /// The process's Prometheus recorder, installed on first use (metrics recorded
    /// before it go nowhere). `None` if another recorder was installed first.
    pub fn prometheus() -> Option<PrometheusHandle> {
        static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
        HANDLE
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                    .ok()?;
                let handle = builder.install_recorder().ok()?;
                crate::observe::describe();
                Some(handle)
            })
            .clone()
    }

    /// `GET /metrics`: the exposition, with the queue's depth read now — for an admin
    /// of the operator's tenant only (the figures span every tenant): Prometheus sends
    /// the key as a bearer token.
    pub async fn render(State(state): State<AppState>, request: Request) -> Response {
        match state.gate.check(&request).await {
            Ok(who) if state.gate.is_operator(&who) => {}
            Ok(_) => {
                return crate::http::ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "forbidden",
                    "metrics are for the operator's admins",
                )
                .into_response();
            }
            Err(e) => return crate::http::ApiError::from(e).into_response(),
        }
        let Some(handle) = prometheus() else {
            return (
                axum::http::StatusCode::NOT_FOUND,
                "another metrics recorder is installed in this process",
            )
                .into_response();
        };
        let busy = state.services.engine.busy_times();
        metrics::gauge!("mesh_engine_busy_seconds")
            .set(busy.iter().sum::<std::time::Duration>().as_secs_f64());
        // Each engine task's own: the busiest one's rate is the instance's saturation
        // when its tenants' load is uneven (at most `MAX_SHARDS` series).
        for (task, busy) in busy.iter().enumerate() {
            metrics::gauge!("mesh_engine_task_busy_seconds", "task" => task.to_string())
                .set(busy.as_secs_f64());
        }
        if let Some(cpu) = state.services.engine.cpu_time() {
            metrics::gauge!("mesh_engine_cpu_seconds").set(cpu.as_secs_f64());
        }
        if let Ok(depth) = state.services.jobs.depth().await {
            for (name, value) in [
                ("available", depth.available),
                ("in_flight", depth.in_flight),
                ("delayed", depth.delayed),
                ("dead", depth.dead),
            ] {
                metrics::gauge!("mesh_queue_jobs", "state" => name).set(value as f64);
            }
        }
        let mut response = handle.render().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}
