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
