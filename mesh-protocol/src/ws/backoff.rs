//! Exponential backoff with jitter for reconnecting.

use std::time::Duration;

/// Delays between connection attempts: `initial × multiplier^attempt`, capped at `max`,
/// with a random share (`jitter`, 0–1) taken off so many clients do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// Delay before the first retry. Default 100 ms.
    pub initial: Duration,
    /// Largest delay. Default 30 s.
    pub max: Duration,
    /// Growth per attempt. Default 2.
    pub multiplier: f64,
    /// Share of the delay that is random, 0 (none) to 1 (full jitter). Default 0.5.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// A backoff from `initial` up to `max`, doubling, with half jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            ..Self::default()
        }
    }

    /// The delay before retry number `attempt` (0 for the first retry), given a uniform
    /// random number `unit` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let full = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let unit = unit.clamp(0.0, 1.0);
        Duration::from_secs_f64(full * (1.0 - jitter * unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
        };
        let delays: Vec<_> = (0..6).map(|a| b.delay(a, 0.7).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_takes_a_random_share_off() {
        let b = Backoff::new(Duration::from_millis(1000), Duration::from_secs(10));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(1000));
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(750));
        assert!(b.delay(0, 0.999) >= Duration::from_millis(500));
    }
}
