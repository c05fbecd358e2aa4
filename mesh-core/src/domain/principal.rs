//! Who is calling: what every surface (agent hub, REST, MCP) knows about a caller once
//! its credentials have been checked.

use super::{ApiKey, Scope, TenantId};

/// An authenticated caller: its tenant, what it may do, and who it is for logs and
/// rate limits. Built by the credential gate from an API key or a JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    /// The tenant every record it touches belongs to.
    pub tenant: TenantId,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Who it is, for rate limiting and logs: `key:<id>` or `jwt:<tenant>:<sub>`.
    /// Never the credential itself.
    pub subject: String,
    /// The API key it authenticated with (`None` for a JWT): revoking that key ends
    /// its open sessions.
    pub key: Option<uuid::Uuid>,
}

impl Principal {
    /// A caller of `tenant` with `scopes`, known as `subject`.
    pub fn new(tenant: TenantId, scopes: Vec<Scope>, subject: impl Into<String>) -> Self {
        Self {
            tenant,
            scopes,
            subject: subject.into(),
            key: None,
        }
    }

    /// The caller an API key stands for.
    pub fn from_key(key: &ApiKey) -> Self {
        Self {
            key: Some(key.id),
            ..Self::new(key.tenant_id, key.scopes.clone(), format!("key:{}", key.id))
        }
    }

    /// Whether it may do what `scope` allows (admin allows everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_and_others_only_their_scopes() {
        let admin = Principal::new(TenantId::new(), vec![Scope::Admin], "a");
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        let reader = Principal::new(TenantId::new(), vec![Scope::Read], "r");
        assert!(reader.allows(Scope::Read));
        assert!(!reader.allows(Scope::Write) && !reader.allows(Scope::Agent));
    }
}
