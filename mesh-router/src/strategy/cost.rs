use super::Router;
use crate::{CandidateId, CandidateIndex, Order, Resolved, RouteError};

/// The eligible candidate with the lowest expected cost for the task's kind: cost per
/// hour × the duration it has shown for that kind (the index's prior if none yet).
#[derive(Debug, Default, Clone, Copy)]
pub struct CostOptimized;

impl Router for CostOptimized {
    fn name(&self) -> &str {
        "cost-optimized"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        index
            .ordered(Order::Cost, request)
            .next()
            .map(|c| c.id())
            .ok_or_else(|| index.explain(request))
    }
}
