//! `RoutedService` routes between real `tower::Service`s and learns from their results.

#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mesh_router::{
    BreakerConfig, CandidateId, CandidateIndex, CandidateSpec, IndexConfig, LeastLoaded,
    RouteError, RouteRequest, RoutedService,
};
use tower::util::{BoxCloneService, ServiceExt};
use tower::{BoxError, Service};

type Svc = BoxCloneService<String, String, BoxError>;

fn named(name: &'static str) -> Svc {
    BoxCloneService::new(tower::service_fn(move |req: String| async move {
        Ok::<_, BoxError>(format!("{name}:{req}"))
    }))
}

fn failing() -> Svc {
    BoxCloneService::new(tower::service_fn(|_req: String| async move {
        Err::<String, BoxError>("boom".into())
    }))
}

#[allow(clippy::ptr_arg)] // the request type is String
fn classify(req: &String) -> RouteRequest {
    let (kind, _) = req.split_once(' ').unwrap_or((req, ""));
    RouteRequest::new(kind)
}

#[tokio::test]
async fn routes_each_request_to_a_capable_service() {
    let services = vec![
        (
            CandidateSpec::new(1, ["translate"]).max_concurrency(4),
            named("t"),
        ),
        (
            CandidateSpec::new(2, ["summarize"]).max_concurrency(4),
            named("s"),
        ),
    ];
    let mut svc = RoutedService::new(CandidateIndex::default(), LeastLoaded, services, classify);
    assert_eq!(
        svc.ready()
            .await
            .unwrap()
            .call("translate hi".into())
            .await
            .unwrap(),
        "t:translate hi"
    );
    assert_eq!(
        svc.ready()
            .await
            .unwrap()
            .call("summarize x".into())
            .await
            .unwrap(),
        "s:summarize x"
    );
    let err = svc
        .ready()
        .await
        .unwrap()
        .call("paint x".into())
        .await
        .unwrap_err();
    assert!(matches!(
        err.downcast_ref::<RouteError>(),
        Some(RouteError::NoCapableCandidate { .. })
    ));
}

#[tokio::test]
async fn failures_trip_the_breaker_and_traffic_moves_away() {
    let index = CandidateIndex::new(
        IndexConfig::default().breaker(
            BreakerConfig::default()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(60)),
        ),
    );
    let services = vec![
        (CandidateSpec::new(1, ["x"]).max_concurrency(8), failing()),
        (CandidateSpec::new(2, ["x"]).max_concurrency(8), named("ok")),
    ];
    let mut svc = RoutedService::new(index, LeastLoaded, services, classify);
    let mut failures = 0;
    for _ in 0..20 {
        if svc.ready().await.unwrap().call("x".into()).await.is_err() {
            failures += 1;
        }
    }
    assert_eq!(
        failures, 2,
        "two failures open the breaker; then everything goes to the healthy one"
    );
    svc.with_index(|index| {
        assert!(
            index.get(CandidateId(1)).unwrap().breaker().state()
                != mesh_router::BreakerState::Closed
        )
    });
}

/// A service that answers only when told to.
fn gated(gate: std::sync::Arc<tokio::sync::Notify>) -> Svc {
    BoxCloneService::new(tower::service_fn(move |req: String| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            Ok::<_, BoxError>(format!("late:{req}"))
        }
    }))
}

/// Hardening issue, item 18: a dropped call future never gave its candidate's slot
/// back, and `poll_ready` was always ready, with no back-pressure.
#[tokio::test]
async fn hardening_18_dropped_calls_give_their_slot_back_and_saturation_is_pending() {
    use futures_util::FutureExt;
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let services = vec![(
        CandidateSpec::new(1, ["x"]).max_concurrency(1),
        gated(gate.clone()),
    )];
    let mut svc = RoutedService::new(CandidateIndex::default(), LeastLoaded, services, classify);
    let held = svc.ready().await.unwrap().call("x one".into());
    // The only slot is taken: not ready.
    assert!(svc.ready().now_or_never().is_none(), "saturated is pending");
    drop(held);
    svc.with_index(|index| assert_eq!(index.get(CandidateId(1)).unwrap().active(), 0));
    // Ready again, and a call that completes also gives its slot back.
    let call = svc.ready().await.unwrap().call("x two".into());
    let answer = tokio::spawn(call);
    assert!(svc.ready().now_or_never().is_none());
    // A waiter is woken when the slot frees.
    let mut waiter = svc.clone();
    let woken = tokio::spawn(async move { waiter.ready().await.map(|_| ()) });
    gate.notify_one();
    assert_eq!(answer.await.unwrap().unwrap(), "late:x two");
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("woken")
        .unwrap()
        .unwrap();
}

/// Hardening issue, item 18: the set of services was fixed; now a tower `Discover`
/// stream adds and removes them.
#[tokio::test]
async fn hardening_18_services_come_and_go_through_discover() {
    use mesh_router::Discovered;
    use tower::discover::Change;
    let svc = RoutedService::new(
        CandidateIndex::default(),
        LeastLoaded,
        Vec::<(CandidateSpec, Svc)>::new(),
        classify,
    );
    type Found = Change<CandidateId, Discovered<Svc>>;
    let changes = |list: Vec<Found>| {
        futures_util::stream::iter(list.into_iter().map(Ok::<_, std::convert::Infallible>))
    };
    // No service yet: not ready.
    let mut probe = svc.clone();
    assert!(futures_util::FutureExt::now_or_never(probe.ready()).is_none());
    let spec = CandidateSpec::new(7, ["x"]).max_concurrency(4);
    let insert = Change::Insert(CandidateId(7), Discovered::new(spec, named("found")));
    svc.follow(changes(vec![insert])).await.unwrap();
    let mut svc2 = svc.clone();
    let answer = svc2
        .ready()
        .await
        .unwrap()
        .call("x hi".into())
        .await
        .unwrap();
    assert_eq!(answer, "found:x hi");
    svc.follow(changes(vec![Change::Remove(CandidateId(7))]))
        .await
        .unwrap();
    assert!(svc.with_index(|index| index.get(CandidateId(7)).is_none()));
}
