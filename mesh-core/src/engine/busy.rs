//! How much of its time the engine task works: the time spent inside its polls, summed.
//! The engine serialises every change, so this is its saturation — a rate near one
//! second per second means it is the bottleneck — and, on the memory stores, its CPU
//! time per task. Two clock reads per poll (the vDSO's monotonic clock), nothing more.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The engine task's busy time so far, shared with the handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Busy(Arc<AtomicU64>);

impl Busy {
    /// The time spent in polls so far.
    pub(crate) fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
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
        let started = Instant::now();
        let polled = self.future.as_mut().poll(cx);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy.0.fetch_add(nanos, Ordering::Relaxed);
        polled
    }
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
    }
}
