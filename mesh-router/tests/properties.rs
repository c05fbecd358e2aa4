//! Property tests: no strategy ever returns an ineligible, saturated or open-breaker
//! candidate, and each finds one whenever one exists; round-robin is fair; least-loaded
//! returns a minimum; cost-optimized the cheapest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mesh_router::{
    BreakerConfig, CandidateIndex, CandidateSpec, CapabilityMatch, CostOptimized, DefaultPolicy,
    IndexConfig, Learning, LeastLoaded, ManualClock, Outcome, Performance, PowerOfTwoChoices,
    Priority, RoundRobin, RouteError, RouteRequest, Router,
};
use proptest::prelude::*;

const CAPS: [&str; 5] = ["a", "b", "c", "d", "e"];

#[derive(Debug, Clone)]
struct Spec {
    caps: Vec<usize>,
    max: u32,
    active: u32,
    cost: f64,
    failures: u32,
    available: bool,
    latency_ms: u64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::collection::vec(0usize..5, 1..4),
        1u32..4,
        0u32..5,
        0.0f64..10.0,
        prop_oneof![3 => Just(0u32), 1 => Just(5u32)],
        prop_oneof![5 => Just(true), 1 => Just(false)],
        1u64..2000,
    )
        .prop_map(
            |(caps, max, active, cost, failures, available, latency_ms)| Spec {
                caps,
                max,
                active,
                cost,
                failures,
                available,
                latency_ms,
            },
        )
}

fn request() -> impl Strategy<Value = RouteRequest> {
    (
        0usize..5,
        proptest::option::of(0usize..5),
        proptest::option::of(0usize..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(kind, req, pref, urgent, cheap)| {
            let mut r = RouteRequest::new(CAPS[kind]).cost_sensitive(cheap);
            if let Some(req) = req {
                r = r.require([CAPS[req]]);
            }
            if let Some(pref) = pref {
                r = r.prefer([CAPS[pref]]);
            }
            if urgent {
                r = r.priority(Priority::High);
            }
            r
        })
}

fn build(specs: &[Spec]) -> CandidateIndex {
    let clock = ManualClock::new();
    let config = IndexConfig::default()
        .clock(Arc::new(clock))
        .breaker(BreakerConfig::default());
    let mut index = CandidateIndex::new(config);
    for (i, s) in specs.iter().enumerate() {
        let id = i as u128;
        let caps: Vec<&str> = s.caps.iter().map(|&c| CAPS[c]).collect();
        index.upsert(
            CandidateSpec::new(id, caps.clone())
                .max_concurrency(s.max)
                .cost_per_hour(s.cost),
        );
        for _ in 0..s.failures {
            index.begin(id.into()).unwrap();
            index
                .finish(
                    id.into(),
                    caps[0],
                    Outcome::failure(Duration::from_millis(s.latency_ms)),
                )
                .unwrap();
        }
        index.begin(id.into()).unwrap();
        index
            .finish(
                id.into(),
                caps[0],
                Outcome::success(Duration::from_millis(s.latency_ms)),
            )
            .unwrap();
        index.set_active(id.into(), s.active).unwrap();
        index.set_available(id.into(), s.available).unwrap();
    }
    index
}

fn routers() -> Vec<Box<dyn Router>> {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn strategies_choose_only_eligible_candidates_and_find_one_if_any(
        specs in proptest::collection::vec(spec(), 0..30),
        request in request(),
    ) {
        let index = build(&specs);
        let resolved = index.resolve(&request);
        for mut router in routers() {
            let Ok(resolved) = &resolved else {
                let no_capable = matches!(resolved, Err(RouteError::NoCapableCandidate { .. }));
                prop_assert!(no_capable);
                continue;
            };
            let any_eligible = index.eligible(resolved).next().is_some();
            match router.route(&index, resolved) {
                Ok(id) => {
                    let c = index.get(id).unwrap();
                    prop_assert!(c.is_eligible(resolved), "{} chose ineligible {:?}", router.name(), c);
                    prop_assert!(c.active() < c.max_concurrency(), "{} chose a saturated candidate", router.name());
                }
                Err(e) => {
                    prop_assert!(!any_eligible, "{} found none but some were eligible: {e}", router.name());
                    prop_assert!(!matches!(e, RouteError::UnknownCandidate(_)));
                }
            }
        }
    }

    #[test]
    fn least_loaded_returns_a_minimum(specs in proptest::collection::vec(spec(), 1..30), request in request()) {
        let index = build(&specs);
        if let Ok(resolved) = index.resolve(&request)
            && let Ok(id) = LeastLoaded.route(&index, &resolved)
        {
            let min = index.eligible(&resolved).map(|c| c.load()).fold(f64::INFINITY, f64::min);
            prop_assert_eq!(index.get(id).unwrap().load(), min);
        }
    }

    #[test]
    fn cost_optimized_returns_the_cheapest_expected_cost(specs in proptest::collection::vec(spec(), 1..30), request in request()) {
        let index = build(&specs);
        if let Ok(resolved) = index.resolve(&request)
            && let Ok(id) = CostOptimized.route(&index, &resolved)
        {
            let cost = |c: &mesh_router::CandidateView<'_>| c.cost_per_hour() * c.expected_latency(resolved.kind());
            let min = index.eligible(&resolved).map(|c| cost(&c)).fold(f64::INFINITY, f64::min);
            let chosen = cost(&index.get(id).unwrap());
            // Keys are f32: equal up to that precision.
            prop_assert!((chosen - min).abs() <= min.abs() * 1e-6 + 1e-9, "{chosen} vs {min}");
        }
    }

    #[test]
    fn round_robin_is_fair_over_n_rounds(n in 1usize..20, rounds in 1usize..5) {
        let mut index = CandidateIndex::default();
        for i in 0..n {
            index.upsert(CandidateSpec::new(i as u128, ["work"]).max_concurrency(10));
        }
        let resolved = index.resolve(&RouteRequest::new("work")).unwrap();
        let mut rr = RoundRobin::new();
        let mut counts = vec![0usize; n];
        for _ in 0..n * rounds {
            counts[rr.route(&index, &resolved).unwrap().0 as usize] += 1;
        }
        prop_assert!(counts.iter().all(|&c| c == rounds), "{counts:?}");
    }
}
