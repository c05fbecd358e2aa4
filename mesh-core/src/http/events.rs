//! The live event feed a dashboard follows: the engine's events, numbered and kept in
//! a ring so that a client that reconnects with `Last-Event-ID` gets exactly what it
//! missed — or, when that has left the ring, a `reset` telling it to read everything
//! again. The same ring gives the recent throughput and latency series.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::stream;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::domain::{TaskStatus, TenantId};
use crate::engine::{Engine, Event};

/// Events kept for reconnecting clients and for the series (a few minutes at
/// hundreds of tasks per second).
pub const EVENT_RING: usize = 20_000;

/// One event as the feed numbers it.
#[derive(Debug, Clone)]
struct Logged {
    seq: u64,
    at: DateTime<Utc>,
    /// `None`: events were lost here (the feed fell behind the engine).
    event: Option<Event>,
}

/// The feed: started on first use, then following the engine for the process's life.
#[derive(Clone)]
pub struct EventLog {
    engine: Engine,
    started: Arc<OnceLock<Arc<Ring>>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").finish_non_exhaustive()
    }
}

struct Ring {
    /// This process's feed: ids from another (before a restart) mean nothing here.
    epoch: u32,
    entries: Mutex<VecDeque<Logged>>,
    live: broadcast::Sender<Logged>,
}

impl EventLog {
    /// A feed of `engine`'s events (it starts following them when first asked).
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            started: Arc::new(OnceLock::new()),
        }
    }

    fn ring(&self) -> Arc<Ring> {
        self.started
            .get_or_init(|| {
                let (live, _) = broadcast::channel(4096);
                let ring = Arc::new(Ring {
                    epoch: rand::random(),
                    entries: Mutex::new(VecDeque::with_capacity(1024)),
                    live,
                });
                tokio::spawn(collect(self.engine.subscribe(), Arc::downgrade(&ring)));
                ring
            })
            .clone()
    }

    /// `tenant`'s events after `last_event_id` (a client's `Last-Event-ID`) as
    /// Server-Sent Events — `id` this feed's epoch and the event's number, `event` its
    /// type, `data` its JSON — then live until `stop` resolves. An id this feed cannot
    /// continue from (another process's, or older than the ring) gets `reset` first.
    pub fn stream(
        &self,
        tenant: TenantId,
        last_event_id: Option<&str>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Response {
        let ring = self.ring();
        let live = ring.live.subscribe();
        let resumed = last_event_id.map(|id| {
            id.split_once('-')
                .and_then(|(epoch, seq)| {
                    Some((epoch.parse::<u32>().ok()?, seq.parse::<u64>().ok()?))
                })
                .filter(|(epoch, _)| *epoch == ring.epoch)
                .map(|(_, seq)| seq)
        });
        let (after, (backlog, reset)) = match resumed {
            None => (None, (Vec::new(), false)),
            Some(None) => (None, (Vec::new(), true)),
            Some(Some(seq)) => (Some(seq), ring.since(Some(seq))),
        };
        let mut ready: VecDeque<SseEvent> = VecDeque::new();
        if reset {
            ready.push_back(reset_event());
        }
        let epoch = ring.epoch;
        let mut last = after.unwrap_or(0);
        for logged in backlog {
            last = logged.seq;
            ready.extend(sse(&logged, tenant, epoch));
        }
        let events = stream::unfold(
            (ready, live, last),
            move |(mut ready, mut live, mut last)| async move {
                loop {
                    if let Some(event) = ready.pop_front() {
                        return Some((Ok::<_, Infallible>(event), (ready, live, last)));
                    }
                    match live.recv().await {
                        Ok(logged) if logged.seq > last => {
                            last = logged.seq;
                            ready.extend(sse(&logged, tenant, epoch));
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            ready.push_back(reset_event());
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        Sse::new(futures_util::StreamExt::take_until(events, Box::pin(stop)))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response()
    }

    /// `tenant`'s task throughput and latency over the last `buckets` × `width`, oldest
    /// bucket first, from the events in the ring (a task's latency: submitted to
    /// finished, when both are there).
    pub fn series(&self, tenant: TenantId, buckets: usize, width: Duration) -> Vec<Bucket> {
        let now = Utc::now();
        let width = chrono::Duration::from_std(width).unwrap_or(chrono::Duration::seconds(5));
        let start = now - width * i32::try_from(buckets).unwrap_or(60);
        let mut series: Vec<(Bucket, Vec<f64>)> = (0..buckets)
            .map(|i| {
                let at = start + width * i32::try_from(i).unwrap_or(0);
                (Bucket::empty(at), Vec::new())
            })
            .collect();
        let ring = self.ring();
        let entries = ring.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut submitted = HashMap::new();
        for logged in entries.iter() {
            let Some(event) = &logged.event else { continue };
            if event.tenant() != tenant {
                continue;
            }
            match event {
                Event::TaskSubmitted { task, .. } => {
                    submitted.insert(*task, logged.at);
                }
                Event::TaskStatus { task, status, .. } if status.is_terminal() => {
                    let Ok(slot) = usize::try_from((logged.at - start).num_milliseconds()) else {
                        continue;
                    };
                    let width_ms = usize::try_from(width.num_milliseconds()).unwrap_or(5000);
                    let Some((bucket, latencies)) = series.get_mut(slot / width_ms.max(1)) else {
                        continue;
                    };
                    if *status == TaskStatus::Completed {
                        bucket.completed += 1;
                    } else {
                        bucket.failed += 1;
                    }
                    if let Some(at) = submitted.remove(task) {
                        latencies
                            .push((logged.at - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                    }
                }
                _ => {}
            }
        }
        series
            .into_iter()
            .map(|(mut bucket, mut latencies)| {
                latencies.sort_by(f64::total_cmp);
                bucket.p50_ms = quantile(&latencies, 0.50);
                bucket.p99_ms = quantile(&latencies, 0.99);
                bucket
            })
            .collect()
    }
}

/// One slice of time in [`EventLog::series`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub struct Bucket {
    /// Its start.
    pub at: DateTime<Utc>,
    /// Tasks completed in it.
    pub completed: u64,
    /// Tasks that ended otherwise (failed, cancelled, timed out).
    pub failed: u64,
    /// Median latency of the tasks that ended in it, submitted to finished.
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub p99_ms: Option<f64>,
}

impl Bucket {
    fn empty(at: DateTime<Utc>) -> Self {
        Self {
            at,
            completed: 0,
            failed: 0,
            p50_ms: None,
            p99_ms: None,
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

impl Ring {
    /// The entries after `after` (all of them when `None`), and whether some the
    /// caller needs have left the ring (or were lost): then it must read afresh.
    fn since(&self, after: Option<u64>) -> (Vec<Logged>, bool) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(after) = after else {
            return (Vec::new(), false);
        };
        let first = entries.front().map_or(after + 1, |e| e.seq);
        let newer: Vec<Logged> = entries.iter().filter(|e| e.seq > after).cloned().collect();
        let lost = newer.iter().any(|e| e.event.is_none());
        (newer, first > after + 1 || lost)
    }
}

/// Follows the engine's events into the ring until the engine or the feed stops.
async fn collect(mut events: broadcast::Receiver<Event>, ring: std::sync::Weak<Ring>) {
    let mut seq = 0u64;
    loop {
        let event = match events.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(ring) = ring.upgrade() else { return };
        seq += 1;
        let logged = Logged {
            seq,
            at: Utc::now(),
            event,
        };
        {
            let mut entries = ring.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() == EVENT_RING {
                entries.pop_front();
            }
            entries.push_back(logged.clone());
        }
        let _ = ring.live.send(logged);
    }
}

/// The SSE event for `logged`, if it is `tenant`'s (a gap is everyone's: `reset`).
fn sse(logged: &Logged, tenant: TenantId, epoch: u32) -> Option<SseEvent> {
    match &logged.event {
        None => Some(reset_event()),
        Some(event) if event.tenant() == tenant => {
            let data = serde_json::to_value(event).ok()?;
            let kind = data.get("type")?.as_str()?.to_owned();
            Some(
                SseEvent::default()
                    .id(format!("{epoch}-{}", logged.seq))
                    .event(kind)
                    .data(data.to_string()),
            )
        }
        Some(_) => None,
    }
}

/// Tells the client it missed events: read everything again.
fn reset_event() -> SseEvent {
    SseEvent::default().event("reset").data("{}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        let many: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&many, 0.99), Some(99.0));
    }
}
