//! Behaviour of the index and strategies: errors that say why, breakers, rate limits,
//! the default policy, and the learning router converging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mesh_router::{
    BreakerConfig, BreakerState, CandidateId, CandidateIndex, CandidateSpec, DefaultPolicy,
    IndexConfig, Learning, LeastLoaded, ManualClock, Outcome, Priority, RateLimit, RouteError,
    RouteRequest, Router,
};

fn index_with_clock() -> (CandidateIndex, ManualClock) {
    let clock = ManualClock::new();
    let breaker = BreakerConfig::default().open_for(Duration::from_secs(10));
    let index = CandidateIndex::new(
        IndexConfig::default()
            .clock(Arc::new(clock.clone()))
            .breaker(breaker),
    );
    (index, clock)
}

#[test]
fn says_when_no_candidate_has_the_capabilities() {
    let mut index = CandidateIndex::default();
    index.upsert(CandidateSpec::new(1, ["summarize"]));
    for request in [
        RouteRequest::new("translate"),
        RouteRequest::new("summarize").require(["french"]),
    ] {
        let err = index.dispatch(&mut LeastLoaded, &request).unwrap_err();
        assert!(
            matches!(err, RouteError::NoCapableCandidate { .. }),
            "{err}"
        );
        assert!(!err.is_retryable());
    }
    index.upsert(CandidateSpec::new(2, ["translate"]));
    assert!(index.remove(CandidateId(2)));
    let err = index
        .dispatch(&mut LeastLoaded, &RouteRequest::new("translate"))
        .unwrap_err();
    assert!(
        matches!(err, RouteError::NoCapableCandidate { .. }),
        "{err}"
    );
}

#[test]
fn says_when_all_are_saturated() {
    let mut index = CandidateIndex::default();
    index.upsert(CandidateSpec::new(1, ["x"]).max_concurrency(2));
    index.upsert(CandidateSpec::new(2, ["x"]));
    let r = RouteRequest::new("x");
    for _ in 0..3 {
        index.dispatch(&mut LeastLoaded, &r).unwrap();
    }
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap_err(),
        RouteError::AllSaturated { candidates: 2 }
    );
    index
        .finish(
            CandidateId(2),
            "x",
            Outcome::success(Duration::from_millis(5)),
        )
        .unwrap();
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap(),
        CandidateId(2)
    );
}

#[test]
fn an_open_breaker_gets_no_work_until_it_probes() {
    let (mut index, clock) = index_with_clock();
    index.upsert(CandidateSpec::new(1, ["x"]).max_concurrency(10));
    let r = RouteRequest::new("x");
    for _ in 0..5 {
        let id = index.dispatch(&mut LeastLoaded, &r).unwrap();
        index
            .finish(id, "x", Outcome::failure(Duration::from_millis(5)))
            .unwrap();
    }
    assert!(matches!(
        index.get(CandidateId(1)).unwrap().breaker().state(),
        BreakerState::Open { .. }
    ));
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap_err(),
        RouteError::AllBreakersOpen { candidates: 1 }
    );
    clock.advance(Duration::from_secs(10));
    let probe = index.dispatch(&mut LeastLoaded, &r).unwrap();
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap_err(),
        RouteError::AllBreakersOpen { candidates: 1 },
        "one probe at a time"
    );
    index
        .finish(probe, "x", Outcome::success(Duration::from_millis(5)))
        .unwrap();
    let probe = index.dispatch(&mut LeastLoaded, &r).unwrap();
    index
        .finish(probe, "x", Outcome::success(Duration::from_millis(5)))
        .unwrap();
    assert_eq!(
        index.get(CandidateId(1)).unwrap().breaker().state(),
        BreakerState::Closed
    );
}

#[test]
fn rate_limits_per_candidate_and_per_tenant() {
    let (mut index, clock) = index_with_clock();
    index.upsert(
        CandidateSpec::new(1, ["x"])
            .max_concurrency(100)
            .rate_limit(RateLimit::new(1.0, 2.0)),
    );
    let r = RouteRequest::new("x");
    index.dispatch(&mut LeastLoaded, &r).unwrap();
    index.dispatch(&mut LeastLoaded, &r).unwrap();
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap_err(),
        RouteError::AllRateLimited { candidates: 1 }
    );
    clock.advance(Duration::from_secs(1));
    index.dispatch(&mut LeastLoaded, &r).unwrap();

    index.upsert(CandidateSpec::new(2, ["y"]).max_concurrency(100));
    index.set_tenant_limit("acme", Some(RateLimit::new(0.0, 1.0)));
    let acme = RouteRequest::new("y").tenant("acme");
    index.dispatch(&mut LeastLoaded, &acme).unwrap();
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &acme).unwrap_err(),
        RouteError::TenantRateLimited {
            tenant: "acme".into()
        }
    );
    index
        .dispatch(&mut LeastLoaded, &RouteRequest::new("y").tenant("other"))
        .unwrap();
}

#[test]
fn unavailable_candidates_are_skipped_and_explained() {
    let mut index = CandidateIndex::default();
    index.upsert(CandidateSpec::new(1, ["x"]));
    index.upsert(CandidateSpec::new(2, ["x"]));
    index.set_available(CandidateId(1), false).unwrap();
    let r = RouteRequest::new("x");
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap(),
        CandidateId(2)
    );
    let err = index.dispatch(&mut LeastLoaded, &r).unwrap_err();
    assert_eq!(
        err,
        RouteError::NoneAvailable {
            candidates: 2,
            saturated: 1,
            breaker_open: 0,
            rate_limited: 0,
            unavailable: 1
        }
    );
    assert_eq!(
        index.set_available(CandidateId(9), true).unwrap_err(),
        RouteError::UnknownCandidate(CandidateId(9))
    );
}

#[test]
fn upsert_updates_capabilities_and_keeps_statistics() {
    let mut index = CandidateIndex::default();
    index.upsert(CandidateSpec::new(1, ["x"]).max_concurrency(4));
    let id = index
        .dispatch(&mut LeastLoaded, &RouteRequest::new("x"))
        .unwrap();
    index
        .finish(id, "x", Outcome::success(Duration::from_millis(100)))
        .unwrap();
    index.upsert(CandidateSpec::new(1, ["x", "y"]).max_concurrency(4));
    assert_eq!(index.len(), 1);
    let kind = index.capability("x").unwrap();
    assert_eq!(index.get(id).unwrap().stats(kind).count, 1);
    assert_eq!(
        index
            .dispatch(&mut LeastLoaded, &RouteRequest::new("y"))
            .unwrap(),
        id
    );
}

#[test]
fn the_default_policy_picks_by_priority_and_cost() {
    let mut index = CandidateIndex::default();
    // Fast and dear vs slow and cheap.
    index.upsert(
        CandidateSpec::new(1, ["x"])
            .max_concurrency(100)
            .cost_per_hour(10.0),
    );
    index.upsert(
        CandidateSpec::new(2, ["x"])
            .max_concurrency(100)
            .cost_per_hour(0.01),
    );
    for _ in 0..20 {
        index.begin(CandidateId(1)).unwrap();
        index
            .finish(
                CandidateId(1),
                "x",
                Outcome::success(Duration::from_millis(50)),
            )
            .unwrap();
        index.begin(CandidateId(2)).unwrap();
        index
            .finish(
                CandidateId(2),
                "x",
                Outcome::success(Duration::from_secs(5)),
            )
            .unwrap();
    }
    let mut policy = DefaultPolicy::default();
    let urgent = index
        .resolve(&RouteRequest::new("x").priority(Priority::Critical))
        .unwrap();
    assert_eq!(policy.route(&index, &urgent).unwrap(), CandidateId(1));
    let cheap = index
        .resolve(&RouteRequest::new("x").cost_sensitive(true))
        .unwrap();
    assert_eq!(policy.route(&index, &cheap).unwrap(), CandidateId(2));
}

#[test]
fn the_learning_router_settles_on_the_best_candidate() {
    let mut index = CandidateIndex::default();
    // Candidate 7 is fast and reliable; the others are slow or flaky.
    for i in 0..20u128 {
        index.upsert(
            CandidateSpec::new(i, ["x"])
                .max_concurrency(1000)
                .cost_per_hour(1.0),
        );
    }
    let mut router = Learning::default();
    let request = RouteRequest::new("x");
    let mut picks_of_best = 0;
    for round in 0..3000 {
        let id = index.dispatch(&mut router, &request).unwrap();
        let (success, ms) = match id.0 {
            7 => (true, 50),
            i if i % 2 == 0 => (round % 3 != 0, 300),
            _ => (true, 900),
        };
        let outcome = if success {
            Outcome::success(Duration::from_millis(ms))
        } else {
            Outcome::failure(Duration::from_millis(ms))
        };
        index.finish(id, "x", outcome).unwrap();
        if round >= 2000 && id.0 == 7 {
            picks_of_best += 1;
        }
    }
    assert!(
        picks_of_best > 900,
        "the best candidate got {picks_of_best} of the last 1000 tasks"
    );
}

#[test]
fn excluded_candidates_are_skipped_and_release_frees_a_slot() {
    let mut index = CandidateIndex::default();
    index.upsert(CandidateSpec::new(1, ["x"]));
    index.upsert(CandidateSpec::new(2, ["x"]));
    let r = RouteRequest::new("x").exclude([CandidateId(1)]);
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap(),
        CandidateId(2)
    );
    assert!(matches!(
        index.dispatch(&mut LeastLoaded, &r).unwrap_err(),
        RouteError::NoneAvailable {
            unavailable: 1,
            saturated: 1,
            ..
        }
    ));
    index.release(CandidateId(2)).unwrap();
    assert_eq!(
        index.dispatch(&mut LeastLoaded, &r).unwrap(),
        CandidateId(2)
    );
    assert_eq!(
        index
            .get(CandidateId(2))
            .unwrap()
            .stats(index.capability("x").unwrap())
            .count,
        0,
        "release records no outcome"
    );
}

/// A custom router reads labels: this one only ever picks candidates in `region=eu`.
struct EuOnly;

impl Router for EuOnly {
    fn name(&self) -> &str {
        "eu-only"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &mesh_router::Resolved,
    ) -> Result<CandidateId, RouteError> {
        index
            .eligible(request)
            .find(|c| c.label("region") == Some("eu"))
            .map(|c| c.id())
            .ok_or_else(|| index.explain(request))
    }
}

#[test]
fn labels_reach_custom_routers() {
    let mut index = CandidateIndex::default();
    index.upsert(
        CandidateSpec::new(1u128, ["x"])
            .max_concurrency(100)
            .labels([("region", "us")]),
    );
    index.upsert(
        CandidateSpec::new(2u128, ["x"])
            .max_concurrency(100)
            .labels([("tier", "gold"), ("region", "eu")]),
    );
    let view = index.get(CandidateId(2)).unwrap();
    assert_eq!(view.label("region"), Some("eu"));
    assert_eq!(view.label("tier"), Some("gold"));
    assert_eq!(view.label("zone"), None);
    let mut router = EuOnly;
    for _ in 0..10 {
        let chosen = index
            .dispatch(&mut router, &RouteRequest::new("x"))
            .unwrap();
        assert_eq!(chosen, CandidateId(2));
    }
}
