//! API keys: generated once, stored only as a SHA-256 hash, scoped to a tenant, with
//! the [`Scope`]s they grant.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use mesh_store::Record;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::TenantId;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum Scope {
    /// Read tasks, agents, results.
    Read,
    /// Submit and cancel tasks.
    Write,
    /// Manage keys and everything else.
    Admin,
    /// Connect as an agent.
    Agent,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Admin, Scope::Agent];

    /// The snake_case name used in JSON and JWT claims.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }
}

/// A name that is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: read, write, admin or agent")]
pub struct UnknownScope(pub String);

impl std::str::FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// The longest key or tenant name, in characters.
pub const MAX_NAME_LEN: usize = 100;

/// Whether `name` is fit for a key or a tenant: 1 to [`MAX_NAME_LEN`] characters.
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= MAX_NAME_LEN
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored API key: its hash, never the key itself.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKey {
    /// The key's id.
    pub id: Uuid,
    /// The tenant it acts for.
    pub tenant_id: TenantId,
    /// A label.
    pub name: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Roles it holds besides its scopes (built-in or the tenant's own, by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked: a revoked key is refused, and kept so that listings show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("scopes", &self.scopes)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

impl Record for ApiKey {
    const COLLECTION: &'static str = "api_keys";
    const INDEXED: &'static [&'static str] = &["hash", "tenant_id"];
    fn id(&self) -> Uuid {
        self.id
    }
}

impl ApiKey {
    /// Whether the key is still accepted (not revoked).
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// The hash stored for `key`.
pub fn hash_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// A new random key: `mesh_` and 32 random bytes, URL-safe base64.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("mesh_{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with("mesh_") && a.len() > 40);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_never_shows_the_hash() {
        let key = ApiKey {
            id: Uuid::now_v7(),
            tenant_id: TenantId::new(),
            name: "k".into(),
            hash: hash_key("secret"),
            scopes: vec![Scope::Read],
            roles: Vec::new(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        assert!(!format!("{key:?}").contains(&key.hash));
        assert!(key.is_active());
    }

    #[test]
    fn scopes_parse_from_their_names() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("root".parse::<Scope>().is_err());
    }
}
