//! Retrying throttled and transient failures with exponential backoff and jitter.

use std::time::Duration;

use rand::Rng;

use crate::{BoxFuture, EmbedError, Embedder, Embeddings, ModelInfo, Role};

/// Retries retryable failures (throttling, timeouts, 5xx) up to `attempts` times in
/// all, waiting `initial × 2ⁿ` (capped at `max`, or the provider's `retry_after`) with
/// up to half of it taken off at random.
#[derive(Debug)]
pub struct Retry<E> {
    inner: E,
    attempts: u32,
    initial: Duration,
    max: Duration,
}

impl<E: Embedder> Retry<E> {
    /// Up to `attempts` tries in all (at least 1).
    pub fn new(inner: E, attempts: u32, initial: Duration, max: Duration) -> Self {
        Self {
            inner,
            attempts: attempts.max(1),
            initial,
            max,
        }
    }

    fn delay(&self, attempt: u32, error: &EmbedError) -> Duration {
        if let EmbedError::Throttled {
            retry_after: Some(d),
            ..
        } = error
        {
            return (*d).min(self.max);
        }
        let full = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max);
        full.mul_f64(1.0 - 0.5 * rand::rng().random::<f64>())
    }
}

impl<E: Embedder> Embedder for Retry<E> {
    fn model(&self) -> &ModelInfo {
        self.inner.model()
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                match self.inner.embed(texts, role).await {
                    Err(e) if e.is_retryable() && attempt + 1 < self.attempts => {
                        let delay = self.delay(attempt, &e);
                        tracing::debug!(error = %e, ?delay, "embedding failed; retrying");
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }
}
