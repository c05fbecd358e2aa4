//! Health checks: each component's state as a [`Check`], what `/readyz`, the overview
//! and the dashboard report. Probes that cost something are bounded: every answer is
//! awaited for at most [`CHECK_TIMEOUT`], and the embedder (a paid call on Bedrock) is
//! asked at most once per [`EMBEDDER_EVERY`].

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesh_embed::{Embedder, Role};

/// How long a check waits for an answer before it reports the component unhealthy.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the embedder's last answer stands for it.
pub const EMBEDDER_EVERY: Duration = Duration::from_secs(60);

/// A worker silent for longer than this is reported unhealthy.
pub const WORKER_SILENCE: Duration = Duration::from_secs(60);

/// One component's health.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Check {
    /// The component: `engine`, `cluster`, `store`, `queue`, `worker` or `embedder`.
    pub name: &'static str,
    /// Whether it is healthy.
    pub ok: bool,
    /// What it said, or why it failed.
    pub detail: String,
    /// How long the check took, in milliseconds.
    pub millis: f64,
}

impl Check {
    /// The check of `name` from `outcome`, which took since `started`.
    pub fn of(name: &'static str, started: Instant, outcome: Result<String, String>) -> Self {
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        let (ok, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        Self {
            name,
            ok,
            detail,
            millis,
        }
    }

    /// The check of `name`: `probe`'s answer, or a failure after [`CHECK_TIMEOUT`].
    pub async fn within(
        name: &'static str,
        probe: impl Future<Output = Result<String, String>>,
    ) -> Self {
        let started = Instant::now();
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, probe)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {CHECK_TIMEOUT:?}")));
        Self::of(name, started, outcome)
    }
}

/// What this process's checks remember: when its worker last heard from the job queue,
/// and the embedder's last answer.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    worker: Arc<AtomicI64>,
    embedder: Arc<Mutex<Option<Answer>>>,
}

/// A probe's answer, and when it came.
type Answer = (Instant, Result<String, String>);

impl Probes {
    /// A worker in this process heard from the queue now (each receive, at least once
    /// per poll wait).
    pub fn worker_beat(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        self.worker.store(now, Ordering::Relaxed);
    }

    /// The worker's check: none here is no fault (workers may run apart), silence past
    /// [`WORKER_SILENCE`] is.
    pub fn worker(&self) -> Check {
        let started = Instant::now();
        let outcome = match self.worker.load(Ordering::Relaxed) {
            0 => Ok("none in this process (workers may run apart: see the queue)".to_owned()),
            ms => {
                let silent = chrono::Utc::now().timestamp_millis().saturating_sub(ms);
                let seconds = silent as f64 / 1000.0;
                if silent > i64::try_from(WORKER_SILENCE.as_millis()).unwrap_or(i64::MAX) {
                    Err(format!("silent for {seconds:.0} s"))
                } else {
                    Ok(format!("polled the queue {seconds:.1} s ago"))
                }
            }
        };
        Check::of("worker", started, outcome)
    }

    /// The embedder's check: its answer of the last [`EMBEDDER_EVERY`], else a fresh
    /// one (one embedding).
    pub async fn embedder(&self, embedder: &dyn Embedder) -> Check {
        let started = Instant::now();
        let remembered = {
            let last = self.embedder.lock().unwrap_or_else(|e| e.into_inner());
            last.as_ref()
                .filter(|(at, _)| at.elapsed() < EMBEDDER_EVERY)
                .map(|(_, outcome)| outcome.clone())
        };
        if let Some(outcome) = remembered {
            return Check::of("embedder", started, outcome);
        }
        let check = Check::within("embedder", async {
            embedder
                .embed(&["ready".to_owned()], Role::Query)
                .await
                .map(|_| embedder.model().id.clone())
                .map_err(|e| e.to_string())
        })
        .await;
        let outcome = if check.ok {
            Ok(check.detail.clone())
        } else {
            Err(check.detail.clone())
        };
        *self.embedder.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), outcome));
        check
    }
}
