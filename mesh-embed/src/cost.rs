//! Token and dollar accounting per tenant and model, for embeddings and chat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{
    BoxFuture, ChatModelInfo, EmbedError, Embedder, Embeddings, ModelInfo, Role, TokenUsage,
};

/// What a tenant spent on one model.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Usage {
    /// Requests made.
    pub requests: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Input tokens billed.
    pub tokens: u64,
    /// Output tokens billed (chat models).
    pub output_tokens: u64,
    /// Dollars, from the price table.
    pub dollars: f64,
}

type Ledger = HashMap<(String, String), Usage>;

/// Counts tokens and dollars per (tenant, model). Prices come from a table of dollars
/// per million tokens by model id, falling back to the model's own
/// [`price_per_million_tokens`](ModelInfo::price_per_million_tokens).
#[derive(Debug, Clone, Default)]
pub struct CostMeter {
    prices: Arc<HashMap<String, f64>>,
    ledger: Arc<Mutex<Ledger>>,
}

impl CostMeter {
    /// A meter with this price table (model id → dollars per million tokens).
    pub fn new(prices: HashMap<String, f64>) -> Self {
        Self {
            prices: Arc::new(prices),
            ledger: Arc::default(),
        }
    }

    /// `inner`, metered for `tenant`.
    pub fn meter<E: Embedder>(&self, tenant: impl Into<String>, inner: E) -> Metered<E> {
        Metered {
            inner,
            tenant: tenant.into(),
            meter: self.clone(),
        }
    }

    /// Usage so far, per (tenant, model).
    pub fn usage(&self) -> Ledger {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A tenant's total dollars across models.
    pub fn dollars(&self, tenant: &str) -> f64 {
        self.usage()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, u)| u.dollars)
            .sum()
    }

    /// Records one chat request of `tenant` on `model` that cost `usage`; its dollars,
    /// at the model's own input and output prices.
    pub fn record_chat(&self, tenant: &str, model: &ChatModelInfo, usage: TokenUsage) -> f64 {
        let dollars = model.dollars(usage);
        let mut ledger = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = ledger
            .entry((tenant.to_owned(), model.id.clone()))
            .or_default();
        entry.requests += 1;
        entry.tokens += usage.input_tokens;
        entry.output_tokens += usage.output_tokens;
        entry.dollars += dollars;
        dollars
    }

    fn record(
        &self,
        tenant: &str,
        model: &ModelInfo,
        answered_by: &str,
        texts: usize,
        tokens: u64,
    ) {
        let price = self
            .prices
            .get(answered_by)
            .copied()
            .unwrap_or(if answered_by == model.id {
                model.price_per_million_tokens
            } else {
                0.0
            });
        let mut ledger = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let usage = ledger
            .entry((tenant.to_owned(), answered_by.to_owned()))
            .or_default();
        usage.requests += 1;
        usage.texts += texts as u64;
        usage.tokens += tokens;
        let dollars = tokens as f64 * price / 1_000_000.0;
        usage.dollars += dollars;
        let model = answered_by.to_owned();
        metrics::counter!("mesh_embedding_tokens_total", "model" => model.clone())
            .increment(tokens);
        // A gauge that only rises: counters count whole units, dollars are fractions.
        metrics::gauge!("mesh_embedding_cost_dollars", "model" => model).increment(dollars);
    }
}

/// An embedder whose usage a [`CostMeter`] records for one tenant.
#[derive(Debug)]
pub struct Metered<E> {
    inner: E,
    tenant: String,
    meter: CostMeter,
}

impl<E: Embedder> Embedder for Metered<E> {
    fn model(&self) -> &ModelInfo {
        self.inner.model()
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            let out = self.inner.embed(texts, role).await?;
            self.meter.record(
                &self.tenant,
                self.inner.model(),
                &out.model,
                texts.len(),
                out.tokens,
            );
            Ok(out)
        })
    }
}
