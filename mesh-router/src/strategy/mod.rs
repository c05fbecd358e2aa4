//! The `Router` trait and the strategies that implement it.

mod capability;
mod cost;
mod learning;
mod least_loaded;
mod performance;
mod policy;
mod power_of_two;
mod round_robin;

pub use capability::CapabilityMatch;
pub use cost::CostOptimized;
pub use learning::{Learning, LearningConfig};
pub use least_loaded::LeastLoaded;
pub use performance::{Performance, PerformanceWeights};
pub use policy::DefaultPolicy;
pub use power_of_two::PowerOfTwoChoices;
pub use round_robin::RoundRobin;

use crate::{CandidateId, CandidateIndex, Resolved, RouteError};

/// Picks one candidate for a request. Every strategy implements it, and so do custom
/// routers.
///
/// A router only chooses: the index has already interned the request, and
/// [`CandidateIndex::dispatch`] records the assignment. A router must return an
/// eligible candidate ([`CandidateView::is_eligible`](crate::CandidateView::is_eligible)),
/// or [`CandidateIndex::explain`] when there is none.
pub trait Router: Send {
    /// A short name for logs and reports.
    fn name(&self) -> &str;

    /// Chooses a candidate for `request`.
    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError>;
}

impl<R: Router + ?Sized> Router for Box<R> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        (**self).route(index, request)
    }
}
