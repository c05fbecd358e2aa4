//! How the domain types are stored (mesh-store `Record`s).

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

/// A tenant the engine has seen, so that a restarted engine finds every tenant's
/// unfinished tasks. Stored under [`SYSTEM_TENANT`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[doc(hidden)]
pub struct TenantEntry {
    pub id: TenantId,
}

impl Record for TenantEntry {
    const COLLECTION: &'static str = "tenants";
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

/// The tenant under which engine-wide records (tenants, API keys) are kept.
pub(crate) const SYSTEM_TENANT: &str = "_system";
