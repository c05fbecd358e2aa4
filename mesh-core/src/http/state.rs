//! [`AppState`]: what every handler of every surface gets.

use std::sync::Arc;

use super::events::EventLog;
use super::gate::{Gate, GateConfig};
use crate::services::Services;

/// What every handler of every surface gets: the services and the credential gate.
/// One pointer: every middleware layer and handler takes a clone per request, so a
/// clone is one reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

/// What [`AppState`] points to.
pub struct AppShared {
    /// The shared services.
    pub services: Services,
    /// The credential gate.
    pub gate: Arc<Gate>,
    /// The live event feed (for the dashboard).
    pub events: EventLog,
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
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
        let gate = Arc::new(Gate::with_access(
            services.engine.clone(),
            services.access.clone(),
            gate,
        ));
        let events = EventLog::new(services.engine.clone());
        Self(Arc::new(AppShared {
            services,
            gate,
            events,
        }))
    }
}
