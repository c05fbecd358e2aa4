use std::collections::HashMap;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Beta, Distribution, StandardNormal};

use super::Router;
use crate::{CandidateId, CandidateIndex, CandidateView, Capability, Order, Resolved, RouteError};

/// Settings of the [`Learning`] router.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LearningConfig {
    /// Candidates taken from the front of the performance and cost orders. Default 6.
    pub shortlist: usize,
    /// Random eligible candidates added to explore, at the start. Default 4.
    pub explorers: usize,
    /// After this many routed tasks of a kind, exploration halves. Default 500.
    pub exploration_half_life: f64,
    /// Weight of the failure probability in the reward. Default 2.
    pub failure_weight: f64,
    /// Weight of latency (as `l / (1 + l)`, l in seconds). Default 1.
    pub latency_weight: f64,
    /// Weight of cost (as `c / (c + cost_scale)`, c per hour); tripled for
    /// cost-sensitive requests. Default 0.3.
    pub cost_weight: f64,
    /// Hourly cost at which the cost term is half its weight. Default $2.
    pub cost_scale: f64,
    /// Seeds the sampling.
    pub seed: u64,
}

impl Default for LearningConfig {
    fn default() -> Self {
        Self {
            shortlist: 6,
            explorers: 4,
            exploration_half_life: 500.0,
            failure_weight: 2.0,
            latency_weight: 1.0,
            cost_weight: 0.3,
            cost_scale: 2.0,
            seed: 0x1ea7,
        }
    }
}

impl LearningConfig {
    /// Sets the weights of failure, latency and cost in the reward.
    pub fn weights(mut self, failure: f64, latency: f64, cost: f64) -> Self {
        self.failure_weight = failure;
        self.latency_weight = latency;
        self.cost_weight = cost;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// A contextual bandit: Thompson sampling per task kind over observed success, latency
/// and cost.
///
/// For each request it draws, for every shortlisted candidate, a success probability
/// from its Beta posterior and a latency from a log-normal around its moving average
/// (wide while it has few observations), and picks the largest reward
/// `-(w_f·(1 - success) + w_l·l/(1 + l) + w_c·c/(c + cost_scale))` — a failure weighs
/// most, then latency, then cost (three times as much for cost-sensitive requests). The shortlist is the front of the index's
/// performance and cost orders plus a few random eligible candidates, whose number
/// decays as the kind accumulates experience — so it explores early and settles.
#[derive(Debug)]
pub struct Learning {
    config: LearningConfig,
    rng: SmallRng,
    routed: HashMap<Capability, u64>,
    shortlist: Vec<CandidateId>,
}

impl Default for Learning {
    fn default() -> Self {
        Self::new(LearningConfig::default())
    }
}

impl Learning {
    /// A learning router.
    pub fn new(config: LearningConfig) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            routed: HashMap::new(),
            shortlist: Vec::new(),
        }
    }

    fn sample_reward(&mut self, c: &CandidateView<'_>, request: &Resolved) -> f64 {
        let stats = c.stats(request.kind());
        let failures = stats.count - stats.successes;
        let success = Beta::new(f64::from(stats.successes) + 1.0, f64::from(failures) + 1.0)
            .map_or(0.5, |beta| beta.sample(&mut self.rng));
        let spread = 1.0 / f64::from(stats.count + 1).sqrt();
        let noise: f64 = StandardNormal.sample(&mut self.rng);
        let latency = c.expected_latency(request.kind()) * (spread * noise).exp();
        let cost = c.cost_per_hour() / (c.cost_per_hour() + self.config.cost_scale);
        let cost_weight = self.config.cost_weight
            * if request.is_cost_sensitive() {
                3.0
            } else {
                1.0
            };
        -self.config.failure_weight * (1.0 - success)
            - self.config.latency_weight * latency / (1.0 + latency)
            - cost_weight * cost
    }
}

impl Router for Learning {
    fn name(&self) -> &str {
        "learning"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        let routed = self.routed.entry(request.kind()).or_insert(0);
        *routed += 1;
        let exploration = 0.5f64.powf(*routed as f64 / self.config.exploration_half_life);
        let explorers = (self.config.explorers as f64 * exploration).ceil() as usize;

        let mut shortlist = std::mem::take(&mut self.shortlist);
        shortlist.clear();
        let half = self.config.shortlist.div_ceil(2);
        for order in [Order::Performance, Order::Cost] {
            for c in index.ordered(order, request).take(half) {
                if !shortlist.contains(&c.id()) {
                    shortlist.push(c.id());
                }
            }
        }
        for _ in 0..explorers {
            if let Some(c) = index.sample(request, &mut self.rng, 4)
                && !shortlist.contains(&c.id())
            {
                shortlist.push(c.id());
            }
        }
        let mut best: Option<(f64, CandidateId)> = None;
        for &id in &shortlist {
            let Some(c) = index.get(id) else { continue };
            let reward = self.sample_reward(&c, request);
            if best.is_none_or(|(b, _)| reward > b) {
                best = Some((reward, id));
            }
        }
        self.shortlist = shortlist;
        best.map(|(_, id)| id).ok_or_else(|| index.explain(request))
    }
}
