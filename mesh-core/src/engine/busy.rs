//! How much of its time the engine task works: the time spent inside its polls, summed
//! — by the wall clock (its saturation: a rate near one second per second means it is
//! the bottleneck) and by the thread's CPU clock (its cost per task, not counting the
//! time the thread was descheduled mid-poll, which a loaded machine adds to the wall
//! figure). Four clock reads per poll: two of the vDSO's monotonic clock and, on unix,
//! two of the thread CPU clock (a system call, measured at ~0.25 µs here) — small
//! beside a poll's work, which under load serves up to 256 commands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The engine task's busy time so far, shared with the handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Busy(Arc<Counters>);

/// Nanoseconds inside polls: by the wall clock, and by the thread CPU clock.
#[derive(Debug, Default)]
struct Counters {
    wall: AtomicU64,
    cpu: AtomicU64,
}

impl Busy {
    /// The time spent in polls so far, by the wall clock.
    pub(crate) fn total(&self) -> Duration {
        Duration::from_nanos(self.0.wall.load(Ordering::Relaxed))
    }

    /// The CPU time spent in polls so far (`None` where there is no thread CPU clock).
    pub(crate) fn cpu(&self) -> Option<Duration> {
        thread_cpu_now()?;
        Some(Duration::from_nanos(self.0.cpu.load(Ordering::Relaxed)))
    }

    /// `future`, with the time each of its polls takes added here.
    pub(crate) fn timing<F: Future>(&self, future: F) -> Timed<F> {
        Timed {
            future: Box::pin(future),
            busy: self.clone(),
        }
    }
}

/// A future whose polls are timed into [`Busy`].
pub(crate) struct Timed<F> {
    future: Pin<Box<F>>,
    busy: Busy,
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let cpu_started = thread_cpu_now();
        let started = Instant::now();
        let polled = self.future.as_mut().poll(cx);
        let counters = &self.busy.0;
        counters
            .wall
            .fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
        if let (Some(before), Some(after)) = (cpu_started, thread_cpu_now()) {
            let spent = after.saturating_sub(before);
            counters.cpu.fetch_add(nanos(spent), Ordering::Relaxed);
        }
        polled
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The calling thread's CPU time (a poll runs on one thread from start to end).
#[cfg(unix)]
fn thread_cpu_now() -> Option<Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(not(unix))]
fn thread_cpu_now() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_the_time_inside_polls_not_the_time_waiting() {
        let busy = Busy::default();
        busy.timing(async {
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_millis(20) {}
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
        let total = busy.total();
        assert!(total >= Duration::from_millis(20), "{total:?}");
        assert!(
            total < Duration::from_millis(150),
            "the sleep counted: {total:?}"
        );
        #[cfg(unix)]
        {
            let cpu = busy.cpu().expect("unix has a thread CPU clock");
            assert!(cpu >= Duration::from_millis(10), "the spin: {cpu:?}");
            assert!(
                cpu < Duration::from_millis(150),
                "the sleep counted: {cpu:?}"
            );
        }
    }
}
