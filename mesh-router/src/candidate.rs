//! Candidates: what the router chooses between.

use std::fmt;

use crate::RateLimit;

/// Identifies a candidate (an agent, a service instance…); a UUID fits as `u128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CandidateId(pub u128);

impl fmt::Display for CandidateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl From<u128> for CandidateId {
    fn from(id: u128) -> Self {
        Self(id)
    }
}

/// What a candidate is: registered with [`CandidateIndex::upsert`](crate::CandidateIndex::upsert).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CandidateSpec {
    /// Its id.
    pub id: CandidateId,
    /// What it can do.
    pub capabilities: Vec<String>,
    /// Tasks it runs at once. Default 1.
    pub max_concurrency: u32,
    /// What an hour of its work costs. Default 0.
    pub cost_per_hour: f64,
    /// Its own rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Free-form `key = value` labels (a region, a model…) for custom routers to read
    /// through [`CandidateView::label`](crate::CandidateView::label).
    pub labels: Vec<(String, String)>,
}

impl CandidateSpec {
    /// A candidate with these capabilities, concurrency 1 and no cost.
    pub fn new(
        id: impl Into<CandidateId>,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            id: id.into(),
            capabilities: capabilities.into_iter().map(Into::into).collect(),
            max_concurrency: 1,
            cost_per_hour: 0.0,
            rate_limit: None,
            labels: Vec::new(),
        }
    }

    /// Sets the concurrency limit.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = n;
        self
    }

    /// Sets the hourly cost.
    pub fn cost_per_hour(mut self, dollars: f64) -> Self {
        self.cost_per_hour = if dollars.is_finite() {
            dollars.max(0.0)
        } else {
            0.0
        };
        self
    }

    /// Sets a rate limit.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Adds `key = value` labels.
    pub fn labels(
        mut self,
        labels: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        self.labels
            .extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }
}
