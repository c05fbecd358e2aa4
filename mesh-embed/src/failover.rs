//! A chain of providers with a circuit breaker each.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{BoxFuture, EmbedError, Embedder, Embeddings, ModelInfo, Role};

struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// Tries each provider in order and moves to the next when one throttles or fails;
/// a provider that fails `threshold` times in a row is skipped for `cool_down`.
///
/// The result says which model answered ([`Embeddings::model`]): store vectors in that
/// model's collection — a fallback model's vectors must never be mixed with, or padded
/// to look like, the primary's.
pub struct Failover {
    providers: Vec<Box<dyn Embedder>>,
    breakers: Mutex<Vec<Breaker>>,
    threshold: u32,
    cool_down: Duration,
}

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self
            .providers
            .iter()
            .map(|p| p.model().id.as_str())
            .collect();
        f.debug_struct("Failover").field("providers", &ids).finish()
    }
}

impl Failover {
    /// A chain over `providers` (at least one), in order of preference.
    pub fn new(
        providers: Vec<Box<dyn Embedder>>,
        threshold: u32,
        cool_down: Duration,
    ) -> Option<Self> {
        if providers.is_empty() {
            return None;
        }
        let breakers = providers
            .iter()
            .map(|_| Breaker {
                failures: 0,
                open_until: None,
            })
            .collect();
        Some(Self {
            providers,
            breakers: Mutex::new(breakers),
            threshold: threshold.max(1),
            cool_down,
        })
    }

    fn breakers(&self) -> std::sync::MutexGuard<'_, Vec<Breaker>> {
        self.breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether provider `i`'s breaker is open now.
    pub fn is_open(&self, i: usize) -> bool {
        self.breakers()
            .get(i)
            .is_some_and(|b| b.open_until.is_some_and(|t| Instant::now() < t))
    }

    fn record(&self, i: usize, ok: bool) {
        let mut breakers = self.breakers();
        let Some(b) = breakers.get_mut(i) else { return };
        if ok {
            b.failures = 0;
            b.open_until = None;
        } else {
            b.failures += 1;
            if b.failures >= self.threshold {
                b.open_until = Some(Instant::now() + self.cool_down);
            }
        }
    }
}

impl Embedder for Failover {
    fn model(&self) -> &ModelInfo {
        self.providers[0].model()
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            let mut last = None;
            let mut tried = 0;
            for (i, provider) in self.providers.iter().enumerate() {
                if self.is_open(i) && i + 1 < self.providers.len() {
                    continue;
                }
                tried += 1;
                match provider.embed(texts, role).await {
                    Ok(e) => {
                        self.record(i, true);
                        return Ok(e);
                    }
                    // A request the provider finds invalid will not fare better elsewhere.
                    Err(e @ EmbedError::Invalid { .. }) => return Err(e),
                    Err(e) => {
                        tracing::warn!(provider = %provider.model().id, error = %e, "provider failed; trying the next");
                        self.record(i, false);
                        last = Some(e);
                    }
                }
            }
            let last = last.unwrap_or(EmbedError::Closed);
            Err(EmbedError::AllProvidersFailed {
                providers: tried,
                last: Box::new(last),
            })
        })
    }
}
