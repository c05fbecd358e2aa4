//! Roles and permissions: what a caller may do, as data. A [`Role`] grants
//! [`Permission`]s — [`Action`]s on a [`Resource`] (tools by name or pattern) — and a
//! caller's [`Grants`] are the union of its roles'. Checking is a pure, synchronous
//! look-up; the credential gate resolves a caller's roles once per credential.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use mesh_store::Record;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Scope, TenantId};

/// Something a caller does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub enum Action {
    /// Look at it: get, list, search, follow.
    Read,
    /// Make a new one: submit a task, start a run, register a definition, index a document.
    Create,
    /// Change one: cancel, signal, resume, retry, fork.
    Update,
    /// Remove one: deregister an agent, prune runs, revoke a key.
    Delete,
    /// Run a tool.
    Execute,
    /// Connect to the agent hub as an agent.
    Connect,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 6] = [
        Self::Read,
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Execute,
        Self::Connect,
    ];

    /// Its snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Execute => "execute",
            Self::Connect => "connect",
        }
    }
}

/// What an action is done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub enum Resource {
    /// Agents (and the hub they connect to).
    Agents,
    /// Tasks, collaboration jobs, the live feed.
    Tasks,
    /// Workflow runs.
    Workflows,
    /// Workflow definitions.
    Definitions,
    /// Registered tools, each by name.
    Tools,
    /// Indexed documents, search and embeddings.
    Documents,
    /// API keys.
    Keys,
    /// Roles.
    Roles,
    /// The audit log.
    Audit,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 9] = [
        Self::Agents,
        Self::Tasks,
        Self::Workflows,
        Self::Definitions,
        Self::Tools,
        Self::Documents,
        Self::Keys,
        Self::Roles,
        Self::Audit,
    ];

    /// Its snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Agents => "agents",
            Self::Tasks => "tasks",
            Self::Workflows => "workflows",
            Self::Definitions => "definitions",
            Self::Tools => "tools",
            Self::Documents => "documents",
            Self::Keys => "keys",
            Self::Roles => "roles",
            Self::Audit => "audit",
        }
    }

    /// Whether a permission on it may name some of them by pattern (only tools: a
    /// pattern elsewhere would let a listing show what a get refuses).
    pub const fn takes_patterns(self) -> bool {
        matches!(self, Self::Tools)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Actions on a resource, for the resources a pattern matches (`*`: any sequence of
/// characters; only tools take patterns other than `*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Permission {
    /// What it is on.
    pub resource: Resource,
    /// What it allows.
    pub actions: Vec<Action>,
    /// Which of them, by name: `*` (the default) for all.
    #[serde(default = "any_name")]
    pub names: String,
}

fn any_name() -> String {
    "*".to_owned()
}

impl Permission {
    /// `actions` on every `resource`.
    pub fn new(resource: Resource, actions: &[Action]) -> Self {
        Self {
            resource,
            actions: actions.to_vec(),
            names: any_name(),
        }
    }

    /// `actions` on the tools whose names match `pattern`.
    pub fn tools(pattern: impl Into<String>, actions: &[Action]) -> Self {
        Self {
            names: pattern.into(),
            ..Self::new(Resource::Tools, actions)
        }
    }

    fn allows(&self, action: Action, resource: Resource, name: Option<&str>) -> bool {
        self.resource == resource
            && self.actions.contains(&action)
            && name.is_none_or(|name| glob(&self.names, name))
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
pub fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The roles every tenant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinRole {
    /// Everything, keys and roles included.
    Admin,
    /// Runs the tenant's work: everything but keys and roles; reads the audit log.
    Operator,
    /// Reads, submits and changes work, runs tools; deletes nothing.
    Developer,
    /// Reads work, agents, tools and documents.
    Viewer,
    /// Connects to the hub as an agent.
    Agent,
}

/// The resources of everyday work (not keys, roles or the audit log).
const WORK: [Resource; 6] = [
    Resource::Agents,
    Resource::Tasks,
    Resource::Workflows,
    Resource::Definitions,
    Resource::Tools,
    Resource::Documents,
];

impl BuiltinRole {
    /// Every built-in role.
    pub const ALL: [BuiltinRole; 5] = [
        Self::Admin,
        Self::Operator,
        Self::Developer,
        Self::Viewer,
        Self::Agent,
    ];

    /// Its name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Developer => "developer",
            Self::Viewer => "viewer",
            Self::Agent => "agent",
        }
    }

    /// The built-in role called `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// What it grants.
    pub fn permissions(self) -> Vec<Permission> {
        match self {
            Self::Admin => Resource::ALL
                .iter()
                .map(|r| Permission::new(*r, &Action::ALL))
                .collect(),
            Self::Operator => WORK
                .iter()
                .map(|r| Permission::new(*r, &Action::ALL))
                .chain([Permission::new(Resource::Audit, &[Action::Read])])
                .collect(),
            Self::Developer => {
                let mut all = Self::Viewer.permissions();
                all.extend(write_permissions());
                all
            }
            Self::Viewer => WORK
                .iter()
                .map(|r| Permission::new(*r, &[Action::Read]))
                .collect(),
            Self::Agent => vec![Permission::new(Resource::Agents, &[Action::Connect])],
        }
    }
}

/// What the `write` scope grants: what a developer may do beyond reading.
fn write_permissions() -> Vec<Permission> {
    let change = [Action::Create, Action::Update];
    vec![
        Permission::new(Resource::Tasks, &change),
        Permission::new(Resource::Workflows, &change),
        Permission::new(Resource::Definitions, &change),
        Permission::new(Resource::Documents, &change),
        Permission::new(Resource::Tools, &[Action::Execute]),
    ]
}

impl Scope {
    /// What the scope grants: `read` is the viewer role, `write` what a developer may
    /// do beyond reading, `admin` the admin role, `agent` the agent role.
    pub fn permissions(self) -> Vec<Permission> {
        match self {
            Self::Read => BuiltinRole::Viewer.permissions(),
            Self::Write => write_permissions(),
            Self::Admin => BuiltinRole::Admin.permissions(),
            Self::Agent => BuiltinRole::Agent.permissions(),
        }
    }
}

/// A role a tenant defined: a name and what it grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Role {
    /// Its id (derived from the tenant and name, so a name is taken once).
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its name: 1–64 of `[a-z0-9_-]`, not a built-in role's.
    pub name: String,
    /// What it grants.
    pub permissions: Vec<Permission>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl Record for Role {
    const COLLECTION: &'static str = "roles";
    const INDEXED: &'static [&'static str] = &["name"];
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Why a role cannot be defined as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoleError {
    /// A name that is not 1–64 of `[a-z0-9_-]`.
    #[error("a role's name is 1 to 64 of a-z, 0-9, _ and -: {0:?}")]
    BadName(String),
    /// A built-in role's name.
    #[error("{0} is a built-in role")]
    Builtin(String),
    /// A name pattern on a resource that takes none.
    #[error("only tools are named by pattern; {0} takes \"*\"")]
    PatternNotAllowed(Resource),
    /// A permission with no actions, or more than the limit.
    #[error("a role has 1 to {max} permissions, each with at least one action", max = Role::MAX_PERMISSIONS)]
    Shape,
}

impl Role {
    /// The most permissions one role holds.
    pub const MAX_PERMISSIONS: usize = 100;
    /// The most roles a key or token carries.
    pub const MAX_PER_CALLER: usize = 16;

    /// A role of `tenant` called `name` granting `permissions`, checked.
    pub fn new(
        tenant: TenantId,
        name: &str,
        permissions: Vec<Permission>,
    ) -> Result<Self, RoleError> {
        Self::check_name(name)?;
        if BuiltinRole::named(name).is_some() {
            return Err(RoleError::Builtin(name.to_owned()));
        }
        if permissions.is_empty()
            || permissions.len() > Self::MAX_PERMISSIONS
            || permissions.iter().any(|p| p.actions.is_empty())
        {
            return Err(RoleError::Shape);
        }
        if let Some(p) = permissions
            .iter()
            .find(|p| p.names != "*" && !p.resource.takes_patterns())
        {
            return Err(RoleError::PatternNotAllowed(p.resource));
        }
        Ok(Self {
            id: Self::id_of(tenant, name),
            tenant_id: tenant,
            name: name.to_owned(),
            permissions,
            updated_at: Utc::now(),
        })
    }

    /// Checks a role's name (built-in or custom).
    pub fn check_name(name: &str) -> Result<(), RoleError> {
        let fits = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if fits {
            Ok(())
        } else {
            Err(RoleError::BadName(name.to_owned()))
        }
    }

    /// The id of `tenant`'s role `name`.
    pub fn id_of(tenant: TenantId, name: &str) -> Uuid {
        super::ids::derived_id(&format!("role:{tenant}:{name}"))
    }
}

/// What a caller may do: the union of its scopes' and roles' permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    permissions: Vec<Permission>,
}

impl Grants {
    /// Grants holding `permissions`.
    pub fn new(permissions: impl IntoIterator<Item = Permission>) -> Self {
        Self {
            permissions: permissions.into_iter().collect(),
        }
    }

    /// What `scopes` grant.
    pub fn of_scopes(scopes: &[Scope]) -> Self {
        Self::new(scopes.iter().flat_map(|s| s.permissions()))
    }

    /// Adds `permissions`.
    pub fn extend(&mut self, permissions: impl IntoIterator<Item = Permission>) {
        self.permissions.extend(permissions);
    }

    /// Whether `action` on `resource` is allowed — on the one called `name` when
    /// given; without a name, on at least some of them (a listing, then filtered).
    pub fn allows(&self, action: Action, resource: Resource, name: Option<&str>) -> bool {
        self.permissions
            .iter()
            .any(|p| p.allows(action, resource, name))
    }

    /// Whether every action on every resource is allowed (the admin role).
    pub fn is_everything(&self) -> bool {
        Resource::ALL.iter().all(|r| {
            Action::ALL.iter().all(|a| {
                self.permissions
                    .iter()
                    .any(|p| p.resource == *r && p.names == "*" && p.actions.contains(a))
            })
        })
    }

    /// Whether everything `permissions` grant is granted here too — what a caller must
    /// hold to hand it on (a key's roles, a role's definition): nobody gives more than
    /// they have.
    pub fn covers(&self, permissions: &[Permission]) -> bool {
        permissions.iter().all(|p| {
            p.actions.iter().all(|a| {
                self.permissions.iter().any(|q| {
                    q.resource == p.resource
                        && q.actions.contains(a)
                        && (q.names == "*" || q.names == p.names)
                })
            })
        })
    }

    /// The permissions, as granted.
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }
}

impl FromStr for BuiltinRole {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::named(s).ok_or_else(|| RoleError::BadName(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names() {
        for (pattern, name, matches) in [
            ("*", "files", true),
            ("files", "files", true),
            ("files", "files2", false),
            ("git*", "github", true),
            ("git*", "gitlab", true),
            ("git*", "agit", false),
            ("*hub", "github", true),
            ("g*b", "github", true),
            ("g*b", "gib", true),
            ("g*t*b", "github", true),
            ("ab*ba", "aba", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob(pattern, name), matches, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn built_in_roles_nest_and_scopes_are_shorthands() {
        let grants = |r: BuiltinRole| Grants::new(r.permissions());
        let all = |g: &Grants| -> Vec<(Action, Resource)> {
            Resource::ALL
                .iter()
                .flat_map(|r| Action::ALL.iter().map(move |a| (*a, *r)))
                .filter(|(a, r)| g.allows(*a, *r, None))
                .collect()
        };
        let subset = |a: &Grants, b: &Grants| all(a).iter().all(|x| all(b).contains(x));
        let [admin, operator, developer, viewer, agent] = BuiltinRole::ALL.map(grants);
        assert!(admin.is_everything() && !operator.is_everything());
        assert!(subset(&viewer, &developer) && subset(&developer, &operator));
        assert!(subset(&operator, &admin) && subset(&agent, &admin));
        assert!(!operator.allows(Action::Create, Resource::Keys, None));
        assert!(operator.allows(Action::Read, Resource::Audit, None));
        assert!(!developer.allows(Action::Delete, Resource::Agents, None));
        assert!(developer.allows(Action::Execute, Resource::Tools, Some("files")));
        assert!(!viewer.allows(Action::Execute, Resource::Tools, Some("files")));
        assert_eq!(
            all(&agent),
            vec![(Action::Connect, Resource::Agents)],
            "the agent role only connects"
        );
        // read + write is a developer; each scope alone is its role.
        assert_eq!(
            all(&Grants::of_scopes(&[Scope::Read, Scope::Write])),
            all(&developer)
        );
        assert_eq!(all(&Grants::of_scopes(&[Scope::Read])), all(&viewer));
        assert!(Grants::of_scopes(&[Scope::Admin]).is_everything());
    }

    #[test]
    fn custom_roles_are_checked() {
        let t = TenantId::new();
        let run_git = vec![Permission::tools("git*", &[Action::Execute])];
        let role = Role::new(t, "git-runner", run_git.clone()).unwrap();
        assert_eq!(role.id, Role::id_of(t, "git-runner"));
        let grants = Grants::new(role.permissions);
        assert!(grants.allows(Action::Execute, Resource::Tools, Some("github")));
        assert!(!grants.allows(Action::Execute, Resource::Tools, Some("files")));
        assert!(grants.allows(Action::Execute, Resource::Tools, None));
        assert_eq!(
            Role::new(t, "admin", run_git.clone()),
            Err(RoleError::Builtin("admin".into()))
        );
        assert!(matches!(
            Role::new(t, "Bad Name", run_git),
            Err(RoleError::BadName(_))
        ));
        let pattern_on_tasks = Permission {
            names: "x*".into(),
            ..Permission::new(Resource::Tasks, &[Action::Read])
        };
        assert_eq!(
            Role::new(t, "r", vec![pattern_on_tasks]),
            Err(RoleError::PatternNotAllowed(Resource::Tasks))
        );
        assert_eq!(Role::new(t, "r", vec![]), Err(RoleError::Shape));
        // Nobody hands on more than they hold.
        let developer = Grants::new(BuiltinRole::Developer.permissions());
        assert!(developer.covers(&BuiltinRole::Viewer.permissions()));
        assert!(!developer.covers(&BuiltinRole::Operator.permissions()));
        assert!(developer.covers(&[Permission::tools("git*", &[Action::Execute])]));
        assert!(!grants.covers(&[Permission::tools("*", &[Action::Execute])]));
    }
}
