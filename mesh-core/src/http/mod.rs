//! Layer 3, what every HTTP surface shares (feature `http`): the application state,
//! the one credential [`Gate`], the error type with stable codes ([`ApiError`]) and
//! extractors whose rejections are such errors. The surfaces — `hub`, `rest`, `mcp` —
//! sit above it as siblings; none of them imports another.

mod error;
mod extract;
mod gate;
mod health;
mod jwt;

use std::sync::Arc;

pub use error::{ApiError, ErrorBody};
pub use extract::{Json, Path, Query};
pub use gate::{AuthError, Gate, GateConfig, authenticate, require};
pub use health::{healthz, readyz};
pub use jwt::sign_jwt;

use crate::services::Services;

/// What every handler of every surface gets: the services and the credential gate.
/// Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The shared services.
    pub services: Services,
    /// The credential gate.
    pub gate: Arc<Gate>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("services", &self.services)
            .field("gate", &self.gate)
            .finish()
    }
}

impl AppState {
    /// State for `services`, with a gate configured by `gate`.
    pub fn new(services: Services, gate: GateConfig) -> Self {
        let gate = Arc::new(Gate::new(services.engine.clone(), gate));
        Self { services, gate }
    }
}
