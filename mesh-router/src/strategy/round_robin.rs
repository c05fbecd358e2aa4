use std::collections::HashMap;

use super::Router;
use crate::{CandidateId, CandidateIndex, Capability, Resolved, RouteError};

/// Rotates through the eligible candidates, one cursor per list it walks.
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursors: HashMap<Capability, usize>,
}

impl RoundRobin {
    /// A fresh rotation.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Router for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        let list = index.rarest(request);
        let len = index.list_len(list);
        let cursor = self.cursors.entry(list).or_insert(0);
        for step in 0..len {
            let i = (*cursor + step) % len;
            if let Some(c) = index.list_at(request, i).filter(|c| c.is_eligible(request)) {
                *cursor = (i + 1) % len;
                return Ok(c.id());
            }
        }
        Err(index.explain(request))
    }
}
