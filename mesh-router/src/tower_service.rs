//! Routing between `tower::Service`s with any strategy.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tower::util::ServiceExt;
use tower::{BoxError, Service};

use crate::{CandidateId, CandidateIndex, CandidateSpec, Outcome, RouteRequest, Router};

type Shared<R> = Arc<Mutex<(CandidateIndex, R)>>;

/// A `tower::Service` that sends each request to one of many inner services, chosen by
/// a [`Router`] over a [`CandidateIndex`]; each call's latency and success feed back
/// into the index (load, statistics, breakers).
///
/// `classify` turns a request into the [`RouteRequest`] the router sees. Inner services
/// must be `Clone` (each call drives its own clone to readiness); errors, including
/// [`RouteError`](crate::RouteError) when nothing can be chosen, come out as
/// [`BoxError`].
pub struct RoutedService<S, R, F> {
    services: Arc<HashMap<CandidateId, S>>,
    state: Shared<R>,
    classify: Arc<F>,
}

impl<S, R, F> Clone for RoutedService<S, R, F> {
    fn clone(&self) -> Self {
        Self {
            services: self.services.clone(),
            state: self.state.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S, R, F> std::fmt::Debug for RoutedService<S, R, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedService")
            .field("services", &self.services.len())
            .finish()
    }
}

impl<S, R: Router, F> RoutedService<S, R, F> {
    /// Routes with `router` over `index`, between `services` (each with the spec the
    /// index learns it by).
    pub fn new(
        mut index: CandidateIndex,
        router: R,
        services: impl IntoIterator<Item = (CandidateSpec, S)>,
        classify: F,
    ) -> Self {
        let mut map = HashMap::new();
        for (spec, service) in services {
            map.insert(spec.id, service);
            index.upsert(spec);
        }
        Self {
            services: Arc::new(map),
            state: Arc::new(Mutex::new((index, router))),
            classify: Arc::new(classify),
        }
    }

    /// Reads the index (for metrics, or to mark a service unavailable).
    pub fn with_index<T>(&self, f: impl FnOnce(&mut CandidateIndex) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard.0)
    }
}

impl<S, R, F, Req> Service<Req> for RoutedService<S, R, F>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Into<BoxError>,
    R: Router + 'static,
    F: Fn(&Req) -> RouteRequest,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is per inner service and checked per call, once it is chosen.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let route = (self.classify)(&request);
        let chosen = {
            let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let (index, router) = &mut *guard;
            index.dispatch(router, &route)
        };
        let id = match chosen {
            Ok(id) => id,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let Some(service) = self.services.get(&id).cloned() else {
            return Box::pin(std::future::ready(Err(
                crate::RouteError::UnknownCandidate(id).into(),
            )));
        };
        let state = self.state.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = service.oneshot(request).await;
            let latency = started.elapsed();
            let outcome = if result.is_ok() {
                Outcome::success(latency)
            } else {
                Outcome::failure(latency)
            };
            let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
            // The candidate may have been removed meanwhile; nothing to record then.
            let _ = guard.0.finish(id, &route.kind, outcome);
            drop(guard);
            result.map_err(Into::into)
        })
    }
}
