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

/// The share of its memory limit (the cgroup's, else the machine's) past which the
/// process is reported unhealthy.
pub const MEMORY_CEILING: f64 = 0.9;

/// Free space below which the disk holding the data is reported unhealthy: 1 GiB, or
/// 5 % of the file system, whichever is less.
pub const DISK_FLOOR_BYTES: u64 = 1 << 30;

/// See [`DISK_FLOOR_BYTES`].
pub const DISK_FLOOR_SHARE: f64 = 0.05;

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
    /// The directory whose file system's free space is checked (none: no disk check).
    disk: Option<Arc<std::path::PathBuf>>,
    worker: Arc<AtomicI64>,
    embedder: Arc<Mutex<Option<Answer>>>,
}

/// A probe's answer, and when it came.
type Answer = (Instant, Result<String, String>);

impl Probes {
    /// Also checks the free space of the file system holding `path` (where the
    /// process keeps data: `mesh up`'s data directory).
    pub fn watch_disk(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.disk = Some(Arc::new(path.into()));
        self
    }

    /// The memory check: this process's resident memory against its limit (the
    /// cgroup's `memory.max`, else the machine's memory), unhealthy past
    /// [`MEMORY_CEILING`]. Linux only; elsewhere it reports nothing to judge.
    pub fn memory(&self) -> Check {
        let started = Instant::now();
        let outcome = match (resident_bytes(), memory_limit()) {
            (Some(rss), Some(limit)) => judge_memory(rss, limit),
            (Some(rss), None) => Ok(format!("{} MiB resident", rss >> 20)),
            _ => Ok("not measured on this platform".to_owned()),
        };
        Check::of("memory", started, outcome)
    }

    /// The disk check, when a directory is watched: its file system's free space,
    /// unhealthy below [`DISK_FLOOR_BYTES`] or [`DISK_FLOOR_SHARE`], whichever is less.
    pub fn disk(&self) -> Option<Check> {
        let path = self.disk.as_ref()?;
        let started = Instant::now();
        let outcome = match free_space(path) {
            Ok((free, total)) => judge_disk(free, total),
            Err(e) => Err(format!("{}: {e}", path.display())),
        };
        Some(Check::of("disk", started, outcome))
    }

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

/// Healthy while `rss` is within [`MEMORY_CEILING`] of `limit`.
fn judge_memory(rss: u64, limit: u64) -> Result<String, String> {
    let share = rss as f64 / limit.max(1) as f64;
    let said = format!(
        "{} MiB of {} MiB ({:.0} %)",
        rss >> 20,
        limit >> 20,
        share * 100.0
    );
    if share > MEMORY_CEILING {
        Err(said)
    } else {
        Ok(said)
    }
}

/// Healthy while `free` is above the smaller of the two floors.
fn judge_disk(free: u64, total: u64) -> Result<String, String> {
    let floor = DISK_FLOOR_BYTES.min((total as f64 * DISK_FLOOR_SHARE) as u64);
    let said = format!("{} MiB free of {} MiB", free >> 20, total >> 20);
    if free < floor { Err(said) } else { Ok(said) }
}

/// This process's resident memory (Linux: `/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

#[cfg(unix)]
fn page_size() -> u64 {
    u64::try_from(rustix::param::page_size()).unwrap_or(4096)
}

#[cfg(not(unix))]
fn page_size() -> u64 {
    4096
}

/// The memory this process may use: its cgroup's limit, else the machine's memory.
fn memory_limit() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    cgroup.or_else(|| {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    })
}

/// Free and total bytes of the file system holding `path`.
#[cfg(unix)]
fn free_space(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    let stats = rustix::fs::statvfs(path)?;
    let block = stats.f_frsize.max(1);
    Ok((stats.f_bavail * block, stats.f_blocks * block))
}

#[cfg(not(unix))]
fn free_space(_path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::other("not measured on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_disk_are_judged_against_their_thresholds() {
        assert!(judge_memory(50 << 20, 100 << 20).is_ok());
        assert!(judge_memory(95 << 20, 100 << 20).is_err());
        // 1 GiB free of 100 GiB: below neither floor's minimum (1 GiB).
        assert!(judge_disk(1 << 30, 100 << 30).is_ok());
        assert!(judge_disk(100 << 20, 100 << 30).is_err());
        // A small disk: 5 % of 10 GiB (512 MiB) is the floor.
        assert!(judge_disk(600 << 20, 10 << 30).is_ok());
        assert!(judge_disk(400 << 20, 10 << 30).is_err());
    }

    #[test]
    fn this_process_and_its_disk_are_measured() {
        let probes = Probes::default().watch_disk(std::env::temp_dir());
        let memory = probes.memory();
        assert!(memory.detail.contains("MiB") || memory.detail.contains("not measured"));
        let disk = probes.disk().unwrap();
        assert!(disk.detail.contains("MiB free"), "{disk:?}");
        assert!(Probes::default().disk().is_none());
    }
}
