//! [`AppState`]: what every handler of every surface gets.

use std::sync::Arc;

use super::events::EventLog;
use super::gate::{Gate, GateConfig};
use crate::services::Services;

/// What every handler of every surface gets: the services and the credential gate.
/// Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The shared services.
    pub services: Services,
    /// The credential gate.
    pub gate: Arc<Gate>,
    /// The live event feed (for the dashboard).
    pub events: EventLog,
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
        Self {
            services,
            gate,
            events,
        }
    }
}
