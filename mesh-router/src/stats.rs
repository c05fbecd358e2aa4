//! What the index has observed of a candidate running one kind of task.

use std::time::Duration;

/// Observed behaviour of one candidate for one task kind.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KindStats {
    /// Tasks finished.
    pub count: u32,
    /// Of those, how many succeeded.
    pub successes: u32,
    /// Exponentially weighted moving average of the task latency, in seconds
    /// (`None` before the first observation).
    pub ewma_latency: Option<f64>,
}

impl KindStats {
    /// Weight of the newest observation in the moving average.
    pub const EWMA_ALPHA: f64 = 0.2;

    /// Records one finished task.
    pub fn record(&mut self, success: bool, latency: Duration) {
        self.count = self.count.saturating_add(1);
        if success {
            self.successes = self.successes.saturating_add(1);
        }
        let x = latency.as_secs_f64();
        self.ewma_latency = Some(match self.ewma_latency {
            None => x,
            Some(avg) => avg + Self::EWMA_ALPHA * (x - avg),
        });
    }

    /// Success rate with a uniform prior (Laplace): 0.5 before any observation.
    pub fn success_rate(&self) -> f64 {
        (f64::from(self.successes) + 1.0) / (f64::from(self.count) + 2.0)
    }

    /// The moving-average latency, or `prior` before the first observation.
    pub fn latency_or(&self, prior: f64) -> f64 {
        self.ewma_latency.unwrap_or(prior)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_move_towards_new_observations() {
        let mut s = KindStats::default();
        assert_eq!(s.success_rate(), 0.5);
        s.record(true, Duration::from_secs(1));
        assert_eq!(s.ewma_latency, Some(1.0));
        s.record(false, Duration::from_secs(2));
        assert!((s.ewma_latency.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!((s.count, s.successes), (2, 1));
        assert_eq!(s.success_rate(), 0.5);
    }
}
