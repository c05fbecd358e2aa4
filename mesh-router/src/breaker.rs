//! Per-candidate circuit breakers.

use std::time::{Duration, Instant};

/// When a breaker opens and how it recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Open after this many failures in a row. Default 5.
    pub consecutive_failures: u32,
    /// Open when the failure ratio over the recent window reaches this. Default 0.5.
    pub failure_ratio: f64,
    /// …but only once the window holds at least this many results. Default 20.
    pub min_requests: u32,
    /// How many recent results the ratio is taken over (at most 64). Default 50.
    pub window: u32,
    /// How long an open breaker refuses work before probing. Default 30 s.
    pub open_for: Duration,
    /// Probes allowed at once while half-open. Default 1.
    pub half_open_probes: u32,
    /// Successful probes in a row that close it again. Default 2.
    pub successes_to_close: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_ratio: 0.5,
            min_requests: 20,
            window: 50,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
            successes_to_close: 2,
        }
    }
}

impl BreakerConfig {
    /// Sets how many failures in a row open the breaker.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = n.max(1);
        self
    }

    /// Sets the failure ratio that opens it, once `min_requests` results are in a
    /// window of the last `window` results (at most 64).
    pub fn failure_ratio(mut self, ratio: f64, min_requests: u32, window: u32) -> Self {
        self.failure_ratio = ratio;
        self.min_requests = min_requests;
        self.window = window.clamp(1, 64);
        self
    }

    /// Sets how long it stays open before probing.
    pub fn open_for(mut self, duration: Duration) -> Self {
        self.open_for = duration;
        self
    }

    /// Sets the probes allowed at once when half-open, and the successes that close it.
    pub fn half_open(mut self, probes: u32, successes_to_close: u32) -> Self {
        self.half_open_probes = probes;
        self.successes_to_close = successes_to_close.max(1);
        self
    }
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Work flows.
    Closed,
    /// No work until the instant given.
    Open {
        /// When probing may start.
        until: Instant,
    },
    /// A few probes may run; their results decide.
    HalfOpen {
        /// Probes running now.
        in_flight: u32,
        /// Probes that succeeded in a row.
        successes: u32,
    },
}

/// closed → open (consecutive failures, or a failure ratio over a minimum count) →
/// half-open probes → closed (or open again on a failed probe).
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    state: BreakerState,
    consecutive: u32,
    /// Recent results, newest in bit 0; 1 = failure.
    window: u64,
    filled: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed,
            consecutive: 0,
            window: 0,
            filled: 0,
        }
    }
}

impl CircuitBreaker {
    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a new task may be given at `now` (read-only; see [`on_start`](Self::on_start)).
    pub fn allows(&self, config: &BreakerConfig, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } => now >= until && config.half_open_probes > 0,
            BreakerState::HalfOpen { in_flight, .. } => in_flight < config.half_open_probes,
        }
    }

    /// A task was given at `now`: an expired open breaker becomes half-open.
    pub fn on_start(&mut self, now: Instant) {
        match &mut self.state {
            BreakerState::Open { until } if now >= *until => {
                self.state = BreakerState::HalfOpen {
                    in_flight: 1,
                    successes: 0,
                };
            }
            BreakerState::HalfOpen { in_flight, .. } => *in_flight += 1,
            _ => {}
        }
    }

    /// A task finished.
    pub fn on_result(&mut self, config: &BreakerConfig, success: bool, now: Instant) {
        let window = config.window.clamp(1, 64);
        self.window = (self.window << 1) | u64::from(!success);
        if window < 64 {
            self.window &= (1u64 << window) - 1;
        }
        self.filled = (self.filled + 1).min(window);
        self.consecutive = if success { 0 } else { self.consecutive + 1 };
        match &mut self.state {
            BreakerState::HalfOpen {
                in_flight,
                successes,
            } => {
                *in_flight = in_flight.saturating_sub(1);
                if !success {
                    self.trip(config, now);
                } else {
                    *successes += 1;
                    if *successes >= config.successes_to_close {
                        self.reset();
                    }
                }
            }
            BreakerState::Closed => {
                let failures = self.window.count_ones();
                let ratio_trips = self.filled >= config.min_requests
                    && f64::from(failures) / f64::from(self.filled) >= config.failure_ratio;
                if self.consecutive >= config.consecutive_failures || ratio_trips {
                    self.trip(config, now);
                }
            }
            BreakerState::Open { .. } => {}
        }
    }

    fn trip(&mut self, config: &BreakerConfig, now: Instant) {
        self.state = BreakerState::Open {
            until: now + config.open_for,
        };
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            failure_ratio: 0.5,
            min_requests: 10,
            window: 10,
            open_for: Duration::from_secs(10),
            half_open_probes: 1,
            successes_to_close: 2,
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_half_open() {
        let c = config();
        let t0 = Instant::now();
        let mut b = CircuitBreaker::default();
        for _ in 0..3 {
            assert!(b.allows(&c, t0));
            b.on_result(&c, false, t0);
        }
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(!b.allows(&c, t0 + Duration::from_secs(9)));
        let later = t0 + Duration::from_secs(10);
        assert!(b.allows(&c, later));
        b.on_start(later);
        assert!(!b.allows(&c, later), "one probe at a time");
        b.on_result(&c, true, later);
        b.on_start(later);
        b.on_result(&c, true, later);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let c = config();
        let t0 = Instant::now();
        let mut b = CircuitBreaker::default();
        for _ in 0..3 {
            b.on_result(&c, false, t0);
        }
        let later = t0 + Duration::from_secs(10);
        b.on_start(later);
        b.on_result(&c, false, later);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: later + c.open_for
            }
        );
    }

    #[test]
    fn opens_on_the_failure_ratio_once_the_window_is_full_enough() {
        let c = config();
        let t = Instant::now();
        let mut b = CircuitBreaker::default();
        // Alternate: never 3 in a row, but half the results fail.
        for i in 0..9 {
            b.on_result(&c, i % 2 == 0, t);
            assert_eq!(b.state(), BreakerState::Closed, "below min_requests at {i}");
        }
        b.on_result(&c, false, t);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
    }
}
