//! One routing decision at 100, 10k and 100k candidates, for every strategy.
//!
//! `cargo bench -p mesh-benches --bench router`
//!
//! The fleet: every candidate can do `work` and 3 of 20 other capabilities, runs 0–3 of
//! its 4 slots, and has a history of 5 tasks. A request needs `work` plus one other
//! capability (held by about 15% of the fleet), so strategies filter as well as choose.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_router::{
    CandidateId, CandidateIndex, CandidateSpec, CapabilityMatch, CostOptimized, DefaultPolicy,
    Learning, LeastLoaded, Outcome, Performance, PowerOfTwoChoices, RoundRobin, RouteRequest,
    Router,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn fleet(n: usize) -> CandidateIndex {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut index = CandidateIndex::default();
    for i in 0..n {
        let mut caps = vec!["work".to_string()];
        for _ in 0..3 {
            caps.push(format!("cap{}", rng.random_range(0..20)));
        }
        let id = CandidateId(i as u128);
        index.upsert(
            CandidateSpec::new(id, caps)
                .max_concurrency(4)
                .cost_per_hour(rng.random_range(0.1..5.0)),
        );
        for _ in 0..5 {
            index.begin(id).unwrap();
            let latency = Duration::from_millis(rng.random_range(20..2000));
            let outcome = if rng.random_bool(0.9) {
                Outcome::success(latency)
            } else {
                Outcome::failure(latency)
            };
            index.finish(id, "work", outcome).unwrap();
        }
        index.set_active(id, rng.random_range(0..4)).unwrap();
    }
    index
}

fn strategies() -> Vec<Box<dyn Router>> {
    vec![
        Box::new(RoundRobin::new()),
        Box::new(LeastLoaded),
        Box::new(CapabilityMatch::default()),
        Box::new(CostOptimized),
        Box::new(Performance::default()),
        Box::new(PowerOfTwoChoices::default()),
        Box::new(Learning::default()),
        Box::new(DefaultPolicy::default()),
    ]
}

fn decisions(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    for n in [100usize, 10_000, 100_000] {
        let index = fleet(n);
        let request = index
            .resolve(&RouteRequest::new("work").require(["cap7"]).prefer(["cap3"]))
            .unwrap();
        for mut router in strategies() {
            let name = router.name().to_owned();
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| black_box(router.route(&index, black_box(&request)).unwrap()))
            });
        }
    }
    group.finish();

    // The full cycle the engine runs per task: resolve, route, record start and end.
    let mut group = c.benchmark_group("dispatch_and_finish");
    for n in [100usize, 10_000, 100_000] {
        let mut index = fleet(n);
        let request = RouteRequest::new("work").require(["cap7"]);
        let outcome = Outcome::success(Duration::from_millis(300));
        group.bench_function(BenchmarkId::new("least-loaded", n), |b| {
            b.iter(|| {
                let id = index.dispatch(&mut LeastLoaded, &request).unwrap();
                index.finish(id, "work", outcome).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
