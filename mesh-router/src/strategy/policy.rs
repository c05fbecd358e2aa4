use super::{CapabilityMatch, CostOptimized, Performance, Router};
use crate::{CandidateId, CandidateIndex, Resolved, RouteError};

/// Picks a strategy from the request: urgent (high, critical) → `urgent`, cost-sensitive
/// → `cost`, otherwise `default`. Each slot takes any router.
pub struct DefaultPolicy {
    urgent: Box<dyn Router>,
    cost: Box<dyn Router>,
    default: Box<dyn Router>,
}

impl std::fmt::Debug for DefaultPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultPolicy")
            .field("urgent", &self.urgent.name())
            .field("cost", &self.cost.name())
            .field("default", &self.default.name())
            .finish()
    }
}

impl Default for DefaultPolicy {
    /// Performance for urgent requests, cost-optimized for cost-sensitive ones,
    /// capability-match otherwise.
    fn default() -> Self {
        Self::new(
            Box::new(Performance::default()),
            Box::new(CostOptimized),
            Box::new(CapabilityMatch::default()),
        )
    }
}

impl DefaultPolicy {
    /// A policy with these three routers.
    pub fn new(urgent: Box<dyn Router>, cost: Box<dyn Router>, default: Box<dyn Router>) -> Self {
        Self {
            urgent,
            cost,
            default,
        }
    }

    fn pick(&mut self, request: &Resolved) -> &mut Box<dyn Router> {
        if request.priority().is_urgent() {
            &mut self.urgent
        } else if request.is_cost_sensitive() {
            &mut self.cost
        } else {
            &mut self.default
        }
    }
}

impl Router for DefaultPolicy {
    fn name(&self) -> &str {
        "default-policy"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        self.pick(request).route(index, request)
    }
}
