use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::Router;
use crate::{CandidateId, CandidateIndex, Resolved, RouteError};

/// Power of two choices: draws two eligible candidates at random and takes the less
/// loaded. Constant time; nearly as balanced as least-loaded without its bookkeeping.
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    rng: SmallRng,
}

impl Default for PowerOfTwoChoices {
    fn default() -> Self {
        Self::with_seed(0x2c40)
    }
}

impl PowerOfTwoChoices {
    /// A router whose draws follow `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

/// Draws per pick before falling back to a scan (when few candidates are eligible).
const TRIES: usize = 8;

impl Router for PowerOfTwoChoices {
    fn name(&self) -> &str {
        "power-of-two"
    }

    fn route(
        &mut self,
        index: &CandidateIndex,
        request: &Resolved,
    ) -> Result<CandidateId, RouteError> {
        let first = index.sample(request, &mut self.rng, TRIES);
        let second = index.sample(request, &mut self.rng, TRIES);
        match (first, second) {
            (Some(a), Some(b)) => Ok(if b.load() < a.load() { b.id() } else { a.id() }),
            (Some(one), None) | (None, Some(one)) => Ok(one.id()),
            (None, None) => index
                .eligible(request)
                .next()
                .map(|c| c.id())
                .ok_or_else(|| index.explain(request)),
        }
    }
}
