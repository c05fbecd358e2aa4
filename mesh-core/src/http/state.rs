//! [`AppState`]: what every handler of every surface gets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::events::EventLog;
use super::gate::{Gate, GateConfig};
use crate::services::{Check, Services};

/// Health checks, and when they ran.
type Checked = (Instant, Vec<Check>);

/// How long health checks are reused: a dashboard polling the overview does not run an
/// embedding (a paid call on Bedrock) on every poll.
const CHECKS_FOR: Duration = Duration::from_secs(10);

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
    /// The last health checks, and when they ran.
    checked: Arc<Mutex<Option<Checked>>>,
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
        let events = EventLog::new(services.engine.clone());
        Self {
            services,
            gate,
            events,
            checked: Arc::default(),
        }
    }

    /// Each component's health, checked at most every 10 seconds.
    pub async fn health(&self) -> Vec<Check> {
        {
            let checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, checks)) = checked.as_ref()
                && at.elapsed() < CHECKS_FOR
            {
                return checks.clone();
            }
        }
        let checks = self.services.checks().await;
        *self.checked.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), checks.clone()));
        checks
    }
}
