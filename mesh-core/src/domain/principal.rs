//! Who is calling: what every surface (agent hub, REST, MCP) knows about a caller once
//! its credentials have been checked.

use std::sync::Arc;

use super::{Action, ApiKey, Grants, Resource, Scope, TenantId};

/// An authenticated caller: its tenant, what it may do, and who it is for logs and
/// rate limits. Built by the credential gate from an API key or a JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    /// The tenant every record it touches belongs to.
    pub tenant: TenantId,
    /// The scopes its credential carries (shorthands for roles).
    pub scopes: Vec<Scope>,
    /// The roles its credential carries (built-in or the tenant's own).
    pub roles: Vec<String>,
    /// What its scopes and roles allow, resolved by the credential gate.
    pub grants: Arc<Grants>,
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
            grants: Arc::new(Grants::of_scopes(&scopes)),
            scopes,
            roles: Vec::new(),
            subject: subject.into(),
            key: None,
        }
    }

    /// The same caller, also holding `roles` whose permissions are `grants` (on top
    /// of its scopes').
    pub fn with_roles(mut self, roles: Vec<String>, grants: Grants) -> Self {
        let mut all = Grants::of_scopes(&self.scopes);
        all.extend(grants.permissions().iter().cloned());
        self.roles = roles;
        self.grants = Arc::new(all);
        self
    }

    /// The caller an API key stands for.
    pub fn from_key(key: &ApiKey) -> Self {
        Self {
            key: Some(key.id),
            roles: key.roles.clone(),
            ..Self::new(key.tenant_id, key.scopes.clone(), format!("key:{}", key.id))
        }
    }

    /// Whether it may do `action` on `resource` — on the one called `name` when given
    /// (tools), on some of them otherwise.
    pub fn may(&self, action: Action, resource: Resource, name: Option<&str>) -> bool {
        self.grants.allows(action, resource, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_and_others_only_their_scopes() {
        let admin = Principal::new(TenantId::new(), vec![Scope::Admin], "a");
        assert!(admin.grants.is_everything());
        let reader = Principal::new(TenantId::new(), vec![Scope::Read], "r");
        assert!(reader.may(Action::Read, Resource::Tasks, None));
        assert!(!reader.may(Action::Create, Resource::Tasks, None));
        assert!(!reader.may(Action::Connect, Resource::Agents, None));
        let runner = reader.with_roles(
            vec!["files".into()],
            Grants::new([crate::domain::Permission::tools(
                "files",
                &[Action::Execute],
            )]),
        );
        assert!(runner.may(Action::Read, Resource::Tasks, None));
        assert!(runner.may(Action::Execute, Resource::Tools, Some("files")));
        assert!(!runner.may(Action::Execute, Resource::Tools, Some("github")));
    }
}
