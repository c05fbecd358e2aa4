//! A seeded discrete-event simulation of a heterogeneous fleet under Poisson arrivals,
//! shared by the `simulate` example and the test suite.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use mesh_router::{
    BreakerConfig, CandidateId, CandidateIndex, CandidateSpec, IndexConfig, ManualClock, Outcome,
    RouteRequest, Router,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};

/// One simulated agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub mean_latency: f64,
    pub cost_per_hour: f64,
    pub failure_rate: f64,
    pub max_concurrency: u32,
}

/// The fleet: four families, with spread inside each.
pub fn fleet(seed: u64, size: usize) -> Vec<Agent> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..size)
        .map(|i| {
            let jitter = rng.random_range(0.8..1.25);
            let (latency, cost, failure) = match i % 4 {
                0 => (0.25, 4.0, 0.01), // fast, dear, reliable
                1 => (0.9, 1.0, 0.02),  // middling
                2 => (3.0, 0.2, 0.03),  // slow and cheap
                _ => (0.35, 0.5, 0.30), // fast and cheap, but flaky
            };
            Agent {
                mean_latency: latency * jitter,
                cost_per_hour: cost * jitter,
                failure_rate: failure,
                max_concurrency: 4,
            }
        })
        .collect()
}

/// What one strategy achieved.
#[derive(Debug, Clone)]
pub struct Report {
    pub strategy: String,
    pub tasks: usize,
    pub mean_latency: f64,
    pub p99_latency: f64,
    pub total_cost: f64,
    pub failure_rate: f64,
}

#[derive(PartialEq)]
struct Completion {
    at: f64,
    agent: usize,
    arrived: f64,
    duration: f64,
    failed: bool,
}

impl Eq for Completion {}
impl PartialOrd for Completion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Completion {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at) // min-heap on time
    }
}

/// Runs `tasks` Poisson arrivals at `load` × fleet capacity through `router`.
pub fn run(
    router: &mut dyn Router,
    agents: &[Agent],
    tasks: usize,
    load: f64,
    seed: u64,
) -> Report {
    let clock = ManualClock::new();
    let config = IndexConfig::default()
        .clock(Arc::new(clock.clone()))
        .breaker(BreakerConfig::default().open_for(Duration::from_secs(20)))
        .seed(seed);
    let mut index = CandidateIndex::new(config);
    for (i, a) in agents.iter().enumerate() {
        index.upsert(
            CandidateSpec::new(i as u128, ["work"])
                .max_concurrency(a.max_concurrency)
                .cost_per_hour(a.cost_per_hour),
        );
    }
    // Capacity if every agent ran full: tasks per second.
    let capacity: f64 = agents
        .iter()
        .map(|a| f64::from(a.max_concurrency) / a.mean_latency)
        .sum();
    let arrivals = Exp::new(capacity * load).unwrap_or_else(|_| unreachable!("positive rate"));
    let mut arrival_rng = SmallRng::seed_from_u64(seed);
    let mut work_rng = SmallRng::seed_from_u64(seed ^ 0x9e37_79b9);
    let request = RouteRequest::new("work");

    let mut now = 0.0f64;
    let mut next_arrival = arrivals.sample(&mut arrival_rng);
    let mut arrived = 0usize;
    let mut queue: VecDeque<f64> = VecDeque::new();
    let mut running: BinaryHeap<Completion> = BinaryHeap::new();
    let mut latencies = Vec::with_capacity(tasks);
    let (mut cost, mut failed) = (0.0, 0usize);

    while latencies.len() < tasks {
        let next_done = running.peek().map(|c| c.at);
        let take_arrival = arrived < tasks && next_done.is_none_or(|d| next_arrival <= d);
        let t = if take_arrival {
            next_arrival
        } else {
            next_done.unwrap_or(now)
        };
        clock.advance(Duration::from_secs_f64((t - now).max(0.0)));
        now = t;
        if take_arrival {
            queue.push_back(now);
            arrived += 1;
            next_arrival = now + arrivals.sample(&mut arrival_rng);
        } else if let Some(done) = running.pop() {
            let outcome = if done.failed {
                Outcome::failure(Duration::from_secs_f64(done.duration))
            } else {
                Outcome::success(Duration::from_secs_f64(done.duration))
            };
            let _ = index.finish(CandidateId(done.agent as u128), "work", outcome);
            latencies.push(now - done.arrived);
            cost += agents[done.agent].cost_per_hour * done.duration / 3600.0;
            failed += usize::from(done.failed);
        }
        // Start whatever can start now, in arrival order.
        while let Some(&arrived_at) = queue.front() {
            let Ok(id) = index.dispatch(router, &request) else {
                break;
            };
            queue.pop_front();
            let agent = &agents[id.0 as usize];
            let sigma = 0.5f64;
            let duration = LogNormal::new(agent.mean_latency.ln() - sigma * sigma / 2.0, sigma)
                .map_or(agent.mean_latency, |d| d.sample(&mut work_rng));
            let failed = work_rng.random_bool(agent.failure_rate);
            running.push(Completion {
                at: now + duration,
                agent: id.0 as usize,
                arrived: arrived_at,
                duration,
                failed,
            });
        }
    }
    latencies.sort_by(f64::total_cmp);
    let n = latencies.len();
    Report {
        strategy: router.name().to_owned(),
        tasks: n,
        mean_latency: latencies.iter().sum::<f64>() / n as f64,
        p99_latency: latencies[((n as f64 * 0.99) as usize).min(n - 1)],
        total_cost: cost,
        failure_rate: failed as f64 / n as f64,
    }
}

/// Every strategy of the crate, fresh.
pub fn strategies(learning: mesh_router::LearningConfig) -> Vec<Box<dyn Router>> {
    use mesh_router::*;
    vec![
        Box::new(RoundRobin::new()),
        Box::new(LeastLoaded),
        Box::new(CapabilityMatch::default()),
        Box::new(CostOptimized),
        Box::new(Performance::default()),
        Box::new(PowerOfTwoChoices::default()),
        Box::new(Learning::new(learning)),
    ]
}

/// Whether `learning` beats `other` on latency or cost without a worse failure rate.
pub fn beats(learning: &Report, other: &Report) -> bool {
    let better =
        learning.mean_latency < other.mean_latency || learning.total_cost < other.total_cost;
    better && learning.failure_rate <= other.failure_rate + 0.002
}
