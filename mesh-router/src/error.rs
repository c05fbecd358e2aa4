//! Why nothing was chosen.

use crate::CandidateId;

/// Why a request could not be routed, or an update not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// No registered candidate has every capability the request needs.
    #[error("no candidate has the capabilities {needed:?}")]
    NoCapableCandidate {
        /// The kind and required capabilities.
        needed: Vec<String>,
    },
    /// Capable candidates exist, but every one is at its concurrency limit.
    #[error("all {candidates} capable candidates are saturated")]
    AllSaturated {
        /// How many candidates were capable.
        candidates: usize,
    },
    /// Capable candidates exist, but every one's circuit breaker is open.
    #[error("all {candidates} capable candidates have open circuit breakers")]
    AllBreakersOpen {
        /// How many candidates were capable.
        candidates: usize,
    },
    /// The tenant's rate limit is used up.
    #[error("tenant {tenant} is rate limited")]
    TenantRateLimited {
        /// The tenant key.
        tenant: String,
    },
    /// Capable candidates exist, but every one is at its own rate limit.
    #[error("all {candidates} capable candidates are rate limited")]
    AllRateLimited {
        /// How many candidates were capable.
        candidates: usize,
    },
    /// Capable candidates exist but none can take work, for a mix of reasons.
    #[error(
        "none of {candidates} capable candidates is available ({saturated} saturated, \
         {breaker_open} breaker open, {rate_limited} rate limited, {unavailable} unavailable)"
    )]
    NoneAvailable {
        /// How many candidates were capable.
        candidates: usize,
        /// At their concurrency limit.
        saturated: usize,
        /// With an open breaker.
        breaker_open: usize,
        /// At their rate limit.
        rate_limited: usize,
        /// Marked unavailable (draining, unhealthy) or excluded by the request.
        unavailable: usize,
    },
    /// The candidate is not registered.
    #[error("unknown candidate {0}")]
    UnknownCandidate(CandidateId),
}

impl RouteError {
    /// Whether the same request may succeed later without any change to the fleet.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            Self::NoCapableCandidate { .. } | Self::UnknownCandidate(_)
        )
    }
}
