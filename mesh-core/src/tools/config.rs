//! How the tools service is set up: limits, the secret key, the operator's sources,
//! and MCP servers' timings.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::limits::ToolLimits;
use super::secrets::SecretKey;
use crate::domain::{Prefix, TenantId};

/// The action a federated MCP tool is run by over REST and in workflows.
pub const CALL: &str = "call";

/// A source the operator configures (in the service's tool sources file): an MCP
/// server started as a command (stdio) or reached over HTTP, for one tenant or all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSource {
    /// Its name: 1–32 of `[a-z0-9_-]`; tenants cannot register a source by it.
    pub name: String,
    /// The tenant it serves; every tenant when absent.
    #[serde(default)]
    pub tenant: Option<TenantId>,
    /// The command (program and arguments) to start, for stdio.
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The Streamable HTTP endpoint, instead of a command.
    #[serde(default)]
    pub url: Option<String>,
    /// Headers for the HTTP endpoint.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How its tools are named.
    #[serde(default)]
    pub prefix: Prefix,
}

/// How the service is set up.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ToolsConfig {
    /// Rate limits and the result cache's TTL.
    pub limits: ToolLimits,
    /// The key credentials are sealed with; without one, sources with credentials
    /// are refused.
    pub secret_key: Option<SecretKey>,
    /// MCP servers the operator configures (stdio or HTTP), for one tenant or all.
    pub operator_sources: Vec<OperatorSource>,
    /// Timeouts and the list TTL of MCP servers.
    #[cfg(feature = "federation")]
    pub timings: super::UpstreamTimings,
}

impl ToolsConfig {
    /// Sets the limits.
    pub fn limits(mut self, limits: ToolLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the secret key.
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.secret_key = Some(key);
        self
    }

    /// Adds an operator's source.
    pub fn source(mut self, source: OperatorSource) -> Self {
        self.operator_sources.push(source);
        self
    }

    /// Sets MCP servers' timeouts and list TTL.
    #[cfg(feature = "federation")]
    pub fn timings(mut self, timings: super::UpstreamTimings) -> Self {
        self.timings = timings;
        self
    }
}

/// A federated tool's one action, as REST and workflows see it.
#[cfg(feature = "federation")]
pub(super) fn call_action(
    description: &str,
    schema: serde_json::Value,
    idempotent: bool,
) -> super::ToolAction {
    let mut action = super::ToolAction::new(CALL, description, schema);
    action.idempotent = idempotent;
    action
}
