use super::Router;
use crate::{
    CandidateId, CandidateIndex, CandidateView, Capability, Order, Priority, Resolved, RouteError,
};

/// Weights of the performance score: success rate, speed (`1 / (1 + latency s)`) and
/// spare capacity (`1 - load`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct PerformanceWeights {
    /// Weight of the success rate.
    pub success: f64,
    /// Weight of speed.
    pub speed: f64,
    /// Weight of spare capacity.
    pub load: f64,
}

impl PerformanceWeights {
    /// Weights for a priority: `high` and `critical` weigh speed most.
    pub fn for_priority(priority: Priority) -> Self {
        if priority.is_urgent() {
            Self {
                success: 0.3,
                speed: 0.55,
                load: 0.15,
            }
        } else {
            Self {
                success: 0.5,
                speed: 0.3,
                load: 0.2,
            }
        }
    }

    /// The score of `c` for tasks of `kind`; higher is better.
    pub fn score(&self, c: &CandidateView<'_>, kind: Capability) -> f64 {
        let stats = c.stats(kind);
        self.success * stats.success_rate()
            + self.speed / (1.0 + c.expected_latency(kind))
            + self.load * (1.0 - c.load())
    }
}

/// The best weighted score of success, speed and load for the task's kind, speed
/// weighing more for urgent requests.
///
/// It reads the first `shortlist` eligible candidates of the index's performance order
/// (success and speed, without load) and rescores them with load and the request's
/// priority, so it never scans the fleet.
#[derive(Debug, Clone, Copy)]
pub struct Performance {
    shortlist: usize,
}

impl Default for Performance {
    fn default() -> Self {
        Self { shortlist: 8 }
    }
}

impl Performance {
    /// Rescoring the best `shortlist` candidates (at least 1).
    pub fn with_shortlist(shortlist: usize) -> Self {
        Self {
            shortlist: shortlist.max(1),
        }
    }
}

impl Router for Performance {
    fn name(&self) -> &str {
        "performance"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        let weights = PerformanceWeights::for_priority(request.priority());
        index
            .ordered(Order::Performance, request)
            .take(self.shortlist)
            .map(|c| (weights.score(&c, request.kind()), c.id()))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, id)| id)
            .ok_or_else(|| index.explain(request))
    }
}
