//! A tenant's tool sources, as stored: an external MCP server over Streamable HTTP, or
//! a built-in adapter (GitHub) with the tenant's own credentials. Credentials are kept
//! only sealed (encrypted by the tools service); a source shows their names, never
//! their values.

use chrono::{DateTime, Utc};
use mesh_store::Record;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TenantId;

/// What a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// An external MCP server; its tools join the tenant's.
    Mcp,
    /// The GitHub adapter, with the tenant's token.
    Github,
}

/// When an MCP server's tools are named `<source>__<tool>` rather than `<tool>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Prefix {
    /// Always prefixed.
    Always,
    /// Prefixed only where the plain name is taken (by Mesh, another tool or another
    /// source).
    #[default]
    OnCollision,
    /// Never prefixed: a tool whose name is taken is left out (and reported).
    Never,
}

/// A tenant's registered tool source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolSource {
    /// Derived from the tenant and name (a name is taken once).
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its name: 1–32 of `[a-z0-9_-]`.
    pub name: String,
    /// What it is.
    pub kind: SourceKind,
    /// The MCP endpoint (`mcp`) or the API's base URL (`github`).
    pub url: String,
    /// How its tools are named (`mcp`).
    #[serde(default)]
    pub prefix: Prefix,
    /// Longest a call may take, in milliseconds.
    pub call_timeout_ms: u64,
    /// Names of the credentials it holds (header names, or `token`).
    #[serde(default)]
    pub secret_names: Vec<String>,
    /// The credentials, sealed (nonce and ciphertext, base64); `None` without any.
    #[serde(default)]
    pub sealed: Option<String>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl Record for ToolSource {
    const COLLECTION: &'static str = "tool_sources";
    const INDEXED: &'static [&'static str] = &["name"];
    fn id(&self) -> Uuid {
        self.id
    }
}

impl ToolSource {
    /// The longest name.
    pub const MAX_NAME_LEN: usize = 32;
    /// What separates a prefixed tool's source from its name.
    pub const SEPARATOR: &'static str = "__";

    /// The id of `tenant`'s source `name`.
    pub fn id_of(tenant: TenantId, name: &str) -> Uuid {
        super::ids::derived_id(&format!("tool-source:{tenant}:{name}"))
    }

    /// Whether `name` may name a source: 1–32 of `[a-z0-9_-]`, not containing the
    /// separator.
    pub fn valid_name(name: &str) -> bool {
        (1..=Self::MAX_NAME_LEN).contains(&name.len())
            && !name.contains(Self::SEPARATOR)
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_and_unseparated() {
        assert!(ToolSource::valid_name("weather-1"));
        assert!(!ToolSource::valid_name(""));
        assert!(!ToolSource::valid_name("Weather"));
        assert!(!ToolSource::valid_name("a__b"));
        assert!(!ToolSource::valid_name(&"a".repeat(33)));
    }

    #[test]
    fn a_name_is_one_place_per_tenant() {
        let (a, b) = (TenantId::new(), TenantId::new());
        assert_eq!(ToolSource::id_of(a, "x"), ToolSource::id_of(a, "x"));
        assert_ne!(ToolSource::id_of(a, "x"), ToolSource::id_of(b, "x"));
    }
}
