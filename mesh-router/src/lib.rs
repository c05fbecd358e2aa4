//! # mesh-router
//!
//! Routing for [Mesh](https://github.com/mesh-agents/mesh): which candidate (agent,
//! service instance) gets the next task. Useful on its own: it depends on no other Mesh
//! crate, and [`RoutedService`] (feature `tower`) routes between `tower::Service`s.
//!
//! - [`CandidateIndex`]: the live fleet — capabilities interned with a posting list per
//!   capability, load, per-kind statistics (EWMA latency, success rate), cost, a
//!   [`CircuitBreaker`] and an optional [`TokenBucket`] per candidate, tenant rate
//!   limits. Candidates are also kept sorted by load, expected cost and performance per
//!   capability ([`Order`]), so strategies read the best off the front instead of
//!   scanning the fleet.
//! - [`Router`]: the one trait every strategy implements, and custom routers too:
//!   [`RoundRobin`], [`LeastLoaded`], [`CapabilityMatch`], [`CostOptimized`],
//!   [`Performance`], [`PowerOfTwoChoices`], the Thompson-sampling [`Learning`] router,
//!   and [`DefaultPolicy`], which picks one from the request.
//! - [`RouteError`]: why nothing was chosen — no capable candidate, all saturated, all
//!   breakers open, rate limited.
//!
//! | feature | adds |
//! |---|---|
//! | `tower` | [`RoutedService`]: a `tower::Service` that routes each request to one of many inner services |
//!
//! ## Quick start
//!
//! ```
//! use std::time::Duration;
//! use mesh_router::{CandidateIndex, CandidateSpec, LeastLoaded, Outcome, RouteRequest};
//!
//! let mut index = CandidateIndex::default();
//! index.upsert(CandidateSpec::new(1, ["summarize", "english"]).max_concurrency(2));
//! index.upsert(CandidateSpec::new(2, ["summarize", "french"]).max_concurrency(2));
//!
//! let request = RouteRequest::new("summarize").require(["french"]);
//! let chosen = index.dispatch(&mut LeastLoaded, &request)?;
//! assert_eq!(chosen.0, 2);
//! index.finish(chosen, "summarize", Outcome::success(Duration::from_millis(120)))?;
//! # Ok::<(), mesh_router::RouteError>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod breaker;
mod candidate;
mod clock;
mod error;
mod index;
mod interner;
mod rate_limit;
mod request;
mod stats;
mod strategy;
#[cfg(feature = "tower")]
mod tower_service;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use candidate::{CandidateId, CandidateSpec};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::RouteError;
pub use index::{CandidateIndex, CandidateView, IndexConfig, Order};
pub use interner::Capability;
pub use rate_limit::{RateLimit, TokenBucket};
pub use request::{Outcome, Priority, Resolved, RouteRequest};
pub use stats::KindStats;
pub use strategy::{
    CapabilityMatch, CostOptimized, DefaultPolicy, Learning, LearningConfig, LeastLoaded,
    Performance, PerformanceWeights, PowerOfTwoChoices, RoundRobin, Router,
};
#[cfg(feature = "tower")]
pub use tower_service::{Discovered, RoutedService};
