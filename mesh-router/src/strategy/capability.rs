use super::Router;
use crate::{CandidateId, CandidateIndex, Order, Resolved, RouteError};

/// Candidates with every required capability, scored by how many of the request's
/// preferred capabilities they also have; the least loaded among the best.
///
/// Candidates holding every preferred capability are read off the load order of the
/// rarest preferred one; otherwise the first `shortlist` eligible candidates in load
/// order are scored. Without preferred capabilities it is least-loaded.
#[derive(Debug, Clone, Copy)]
pub struct CapabilityMatch {
    shortlist: usize,
}

impl Default for CapabilityMatch {
    fn default() -> Self {
        Self { shortlist: 32 }
    }
}

impl Router for CapabilityMatch {
    fn name(&self) -> &str {
        "capability-match"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        let preferred = request.preferred();
        let Some(&rarest) = preferred.first() else {
            return index
                .ordered(Order::Load, request)
                .next()
                .map(|c| c.id())
                .ok_or_else(|| index.explain(request));
        };
        if let Some(best) = index
            .ordered_with(rarest, request)
            .find(|c| preferred.iter().all(|&p| c.has(p)))
        {
            return Ok(best.id());
        }
        index
            .ordered(Order::Load, request)
            .take(self.shortlist)
            .enumerate()
            .max_by_key(|(rank, c)| {
                (
                    preferred.iter().filter(|&&p| c.has(p)).count(),
                    std::cmp::Reverse(*rank),
                )
            })
            .map(|(_, c)| c.id())
            .ok_or_else(|| index.explain(request))
    }
}
