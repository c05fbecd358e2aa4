//! Routing between `tower::Service`s with any strategy.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tower::discover::{Change, Discover};
use tower::util::ServiceExt;
use tower::{BoxError, Service};

use crate::{CandidateId, CandidateIndex, CandidateSpec, Outcome, RouteRequest, Router};

/// What a [`RoutedService`] shares between its clones and its calls in flight.
struct Inner<S, R> {
    index: CandidateIndex,
    router: R,
    services: HashMap<CandidateId, S>,
    /// Tasks waiting in `poll_ready` for a candidate with room.
    waiting: Vec<Waker>,
}

impl<S, R> Inner<S, R> {
    /// Whether some service can take one more call.
    fn has_room(&self) -> bool {
        self.services.keys().any(|id| {
            self.index
                .get(*id)
                .is_some_and(|c| c.active() < c.max_concurrency())
        })
    }

    fn wake(&mut self) {
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
    }
}

type Shared<S, R> = Arc<Mutex<Inner<S, R>>>;

fn lock<S, R>(shared: &Shared<S, R>) -> MutexGuard<'_, Inner<S, R>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A service found by discovery, with the spec the index learns it by (its key is the
/// spec's id).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discovered<S> {
    /// How the index knows it.
    pub spec: CandidateSpec,
    /// The service.
    pub service: S,
}

impl<S> Discovered<S> {
    /// A discovered service.
    pub fn new(spec: CandidateSpec, service: S) -> Self {
        Self { spec, service }
    }
}

/// A `tower::Service` that sends each request to one of many inner services, chosen by
/// a [`Router`] over a [`CandidateIndex`]; each call's latency and success feed back
/// into the index (load, statistics, breakers).
///
/// It keeps tower's contract: `poll_ready` is pending while every service is at its
/// concurrency limit (and wakes when one frees up); a call's slot is given back when
/// its future completes *or is dropped*; and services come and go at run time
/// ([`insert`](Self::insert), [`remove`](Self::remove), or a tower
/// [`Discover`] stream through [`follow`](Self::follow)).
///
/// `classify` turns a request into the [`RouteRequest`] the router sees. Inner services
/// must be `Clone` (each call drives its own clone to readiness); errors, including
/// [`RouteError`](crate::RouteError) when nothing can be chosen, come out as
/// [`BoxError`].
pub struct RoutedService<S, R, F> {
    shared: Shared<S, R>,
    classify: Arc<F>,
}

impl<S, R, F> Clone for RoutedService<S, R, F> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S, R, F> std::fmt::Debug for RoutedService<S, R, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedService")
            .field("services", &lock(&self.shared).services.len())
            .finish()
    }
}

impl<S, R: Router, F> RoutedService<S, R, F> {
    /// Routes with `router` over `index`, between `services` (each with the spec the
    /// index learns it by).
    pub fn new(
        index: CandidateIndex,
        router: R,
        services: impl IntoIterator<Item = (CandidateSpec, S)>,
        classify: F,
    ) -> Self {
        let routed = Self {
            shared: Arc::new(Mutex::new(Inner {
                index,
                router,
                services: HashMap::new(),
                waiting: Vec::new(),
            })),
            classify: Arc::new(classify),
        };
        for (spec, service) in services {
            routed.insert(spec, service);
        }
        routed
    }

    /// Reads the index (for metrics, or to mark a service unavailable).
    pub fn with_index<T>(&self, f: impl FnOnce(&mut CandidateIndex) -> T) -> T {
        f(&mut lock(&self.shared).index)
    }

    /// Adds a service, or replaces the one with the same id (its statistics stay).
    pub fn insert(&self, spec: CandidateSpec, service: S) {
        let mut inner = lock(&self.shared);
        inner.services.insert(spec.id, service);
        inner.index.upsert(spec);
        inner.wake();
    }

    /// Removes a service; calls in flight on it finish. False if there was none.
    pub fn remove(&self, id: CandidateId) -> bool {
        let mut inner = lock(&self.shared);
        let existed = inner.services.remove(&id).is_some();
        inner.index.remove(id);
        existed
    }

    /// Applies the changes a tower [`Discover`] stream announces until it ends (or
    /// fails): `Insert(id, Discovered { spec, service })` adds or replaces a service,
    /// `Remove(id)` removes it. Run it beside the service (it is a future to spawn).
    pub async fn follow<D>(&self, discover: D) -> Result<(), BoxError>
    where
        D: Discover<Key = CandidateId, Service = Discovered<S>>,
        D::Error: Into<BoxError>,
    {
        let mut discover = Box::pin(discover);
        loop {
            let change = std::future::poll_fn(|cx| discover.as_mut().poll_discover(cx)).await;
            match change {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Change::Insert(_, found))) => self.insert(found.spec, found.service),
                Some(Ok(Change::Remove(id))) => {
                    self.remove(id);
                }
            }
        }
    }
}

/// A call's hold on its candidate: given back with an outcome when the call ends,
/// without one when its future is dropped first.
struct Lease<S, R> {
    shared: Shared<S, R>,
    id: CandidateId,
    kind: String,
    started: Instant,
    ended: bool,
}

impl<S, R> Lease<S, R> {
    fn end(mut self, ok: bool) {
        let latency = self.started.elapsed();
        let outcome = if ok {
            Outcome::success(latency)
        } else {
            Outcome::failure(latency)
        };
        let mut inner = lock(&self.shared);
        // The candidate may have been removed meanwhile; nothing to record then.
        let _ = inner.index.finish(self.id, &self.kind, outcome);
        inner.wake();
        self.ended = true;
    }
}

impl<S, R> Drop for Lease<S, R> {
    fn drop(&mut self) {
        if !self.ended {
            let mut inner = lock(&self.shared);
            let _ = inner.index.release(self.id);
            inner.wake();
        }
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

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Ready while some service has room; the chosen one is driven to readiness per
        // call. Pending (until a call ends or a service comes) when none has.
        let mut inner = lock(&self.shared);
        if inner.has_room() {
            Poll::Ready(Ok(()))
        } else {
            inner.waiting.push(cx.waker().clone());
            Poll::Pending
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let route = (self.classify)(&request);
        let (id, service) = {
            let mut guard = lock(&self.shared);
            let inner = &mut *guard;
            let id = match inner.index.dispatch(&mut inner.router, &route) {
                Ok(id) => id,
                Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
            };
            match inner.services.get(&id).cloned() {
                Some(service) => (id, service),
                None => {
                    let _ = inner.index.release(id);
                    return Box::pin(std::future::ready(Err(
                        crate::RouteError::UnknownCandidate(id).into(),
                    )));
                }
            }
        };
        let lease = Lease {
            shared: self.shared.clone(),
            id,
            kind: route.kind.clone(),
            started: Instant::now(),
            ended: false,
        };
        Box::pin(async move {
            let result = service.oneshot(request).await;
            lease.end(result.is_ok());
            result.map_err(Into::into)
        })
    }
}
