//! How the domain types are stored (mesh-store `Record`s).

use chrono::{DateTime, Utc};
use mesh_store::Record;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Agent, Task, TenantId};

impl Record for Task {
    const COLLECTION: &'static str = "tasks";
    const INDEXED: &'static [&'static str] = &["status", "kind", "parent"];
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

impl Record for Agent {
    const COLLECTION: &'static str = "agents";
    const INDEXED: &'static [&'static str] = &["status"];
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

/// A tenant: created by an operator (with a name), or first seen on a record (a task,
/// a workflow run) and remembered so that a restarted engine finds every tenant's
/// unfinished work. Kept in an engine-wide registry, outside every tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its name, when an operator created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When an operator created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl Tenant {
    /// A tenant first seen on a record: no name.
    pub fn seen(id: TenantId) -> Self {
        Self {
            id,
            name: None,
            created_at: None,
        }
    }

    /// A new tenant called `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            id: TenantId::new(),
            name: Some(name.into()),
            created_at: Some(Utc::now()),
        }
    }
}

impl Record for Tenant {
    const COLLECTION: &'static str = "tenants";
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

/// The tenant under which engine-wide records (tenants, API keys) are kept.
pub(crate) const SYSTEM_TENANT: &str = "_system";
