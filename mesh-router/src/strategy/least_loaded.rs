use super::Router;
use crate::{CandidateId, CandidateIndex, Order, Resolved, RouteError};

/// The eligible candidate with the lowest load (active / max concurrency); ties broken
/// at random. Reads the index's load order, so it does not scan the fleet.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeastLoaded;

impl Router for LeastLoaded {
    fn name(&self) -> &str {
        "least-loaded"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        index
            .ordered(Order::Load, request)
            .next()
            .map(|c| c.id())
            .ok_or_else(|| index.explain(request))
    }
}
