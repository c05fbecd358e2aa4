//! What LLM agents spent: tokens and dollars per tenant and agent, and per tenant and
//! model, since this process started. Each task's own usage is durable in its output.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mesh_embed::{ChatModelInfo, CostMeter, TokenUsage};
use serde::Serialize;

use crate::domain::TenantId;

/// One agent's totals.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct UsageTotals {
    /// Tasks it completed.
    pub completed: u64,
    /// Tasks it failed (limits, model errors, content filters).
    pub failed: u64,
    /// Model turns.
    pub turns: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Tokens the model read.
    pub input_tokens: u64,
    /// Tokens the model wrote.
    pub output_tokens: u64,
    /// Dollars, at the model's prices.
    pub dollars: f64,
}

impl UsageTotals {
    fn add(&mut self, other: &UsageTotals) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.turns += other.turns;
        self.tool_calls += other.tool_calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.dollars += other.dollars;
    }
}

/// What a tenant's agents spent on one model.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ModelTotals {
    /// Requests (model turns).
    pub requests: u64,
    /// Tokens read.
    pub input_tokens: u64,
    /// Tokens written.
    pub output_tokens: u64,
    /// Dollars, at the model's prices.
    pub dollars: f64,
}

/// Usage per (tenant, agent), and per (tenant, model) through mesh-embed's
/// [`CostMeter`]; shared by every agent of the process and read by the API.
#[derive(Debug, Clone, Default)]
pub struct AgentUsage {
    ledger: Arc<Mutex<BTreeMap<(TenantId, String), UsageTotals>>>,
    meter: CostMeter,
}

impl AgentUsage {
    /// Records one model turn of `tenant` on `model` in the cost meter; its dollars.
    pub fn record_turn(&self, tenant: TenantId, model: &ChatModelInfo, usage: TokenUsage) -> f64 {
        self.meter.record_chat(&tenant.to_string(), model, usage)
    }

    /// `tenant`'s spending per model, by model id.
    pub fn models(&self, tenant: TenantId) -> BTreeMap<String, ModelTotals> {
        let tenant = tenant.to_string();
        self.meter
            .usage()
            .into_iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|((_, model), u)| {
                let totals = ModelTotals {
                    requests: u.requests,
                    input_tokens: u.tokens,
                    output_tokens: u.output_tokens,
                    dollars: u.dollars,
                };
                (model, totals)
            })
            .collect()
    }

    /// Adds one task's `usage` to `agent` of `tenant`.
    pub fn record(&self, tenant: TenantId, agent: &str, usage: &UsageTotals) {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((tenant, agent.to_owned()))
            .or_default()
            .add(usage);
    }

    /// `tenant`'s agents and their totals, by name.
    pub fn of(&self, tenant: TenantId) -> BTreeMap<String, UsageTotals> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|((_, agent), totals)| (agent.clone(), *totals))
            .collect()
    }

    /// `tenant`'s totals across its agents.
    pub fn total(&self, tenant: TenantId) -> UsageTotals {
        let mut total = UsageTotals::default();
        for totals in self.of(tenant).values() {
            total.add(totals);
        }
        total
    }
}
