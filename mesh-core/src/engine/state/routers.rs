//! The routers an engine routes with: the built-in strategies and the custom routers
//! registered by name.

use std::collections::HashMap;

use mesh_router::Router;

use super::rules::builtin_router;
use crate::domain::RoutingPreference;
use crate::engine::EngineConfig;

/// The engine's routers: one instance per built-in strategy (made when first used)
/// and one per custom router registered in [`EngineConfig::routers`].
pub(super) struct Routers {
    builtin: HashMap<RoutingPreference, Box<dyn Router>>,
    custom: HashMap<String, Box<dyn Router>>,
}

impl Routers {
    pub(super) fn new(config: &EngineConfig) -> Self {
        Self {
            builtin: HashMap::new(),
            custom: config
                .routers
                .iter()
                .map(|(name, make)| (name.clone(), make()))
                .collect(),
        }
    }

    /// Whether a custom router is registered under `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        self.custom.contains_key(name)
    }

    /// The router for a task: its custom router if it names one this engine has (a
    /// task submitted through an engine configured differently falls back), else its
    /// built-in strategy.
    pub(super) fn for_task(
        &mut self,
        custom: Option<&str>,
        routing: RoutingPreference,
    ) -> &mut dyn Router {
        if let Some(name) = custom {
            if self.custom.contains_key(name)
                && let Some(router) = self.custom.get_mut(name)
            {
                return router.as_mut();
            }
            tracing::warn!(
                router = name,
                "no such router here; using the built-in strategy"
            );
        }
        self.builtin
            .entry(routing)
            .or_insert_with(|| builtin_router(routing))
            .as_mut()
    }
}
