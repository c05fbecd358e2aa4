//! The tenants' own roles: stored through the engine's stores, resolved into grants
//! with a short-lived cache (a change made here is seen here at once, on other
//! instances within [`Roles::TTL`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesh_store::{DynRepository, Query};

use super::error::AccessError;
use crate::domain::{BuiltinRole, Grants, Permission, Role, TenantId};

/// A tenant's roles by name.
type ByName = Arc<HashMap<String, Role>>;
/// Each tenant's roles, and when they were read.
type Cache = HashMap<TenantId, (ByName, Instant)>;

/// The tenants' own roles. Cheap to clone.
#[derive(Clone)]
pub struct Roles {
    store: Arc<dyn DynRepository<Role>>,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles").finish_non_exhaustive()
    }
}

impl Roles {
    /// How long a tenant's roles are trusted without reading them again.
    pub const TTL: Duration = Duration::from_secs(30);
    /// The most roles one tenant defines.
    pub const MAX_PER_TENANT: usize = 1_000;

    pub(super) fn new(store: Arc<dyn DynRepository<Role>>) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    /// Defines (or redefines) `tenant`'s role `name`; returns it and whether it is new.
    pub async fn put(
        &self,
        tenant: TenantId,
        name: &str,
        permissions: Vec<Permission>,
    ) -> Result<(Role, bool), AccessError> {
        let role = Role::new(tenant, name, permissions)?;
        let key = tenant.to_string();
        let created = match self.store.get(&key, role.id).await? {
            Some(stored) => {
                self.store.update(&key, &role, stored.version).await?;
                false
            }
            None => {
                if self.of(tenant).await?.len() >= Self::MAX_PER_TENANT {
                    return Err(AccessError::Invalid(format!(
                        "a tenant defines at most {} roles",
                        Self::MAX_PER_TENANT
                    )));
                }
                self.store.create(&key, &role).await?;
                true
            }
        };
        self.forget(tenant);
        Ok((role, created))
    }

    /// Deletes `tenant`'s role `name`; whether it existed. Keys holding it lose what
    /// it granted.
    pub async fn delete(&self, tenant: TenantId, name: &str) -> Result<bool, AccessError> {
        Role::check_name(name)?;
        let existed = self
            .store
            .delete(&tenant.to_string(), Role::id_of(tenant, name))
            .await?;
        self.forget(tenant);
        Ok(existed)
    }

    /// `tenant`'s own role `name`, if it has one (read from the stores).
    pub async fn get(&self, tenant: TenantId, name: &str) -> Result<Option<Role>, AccessError> {
        Role::check_name(name)?;
        let id = Role::id_of(tenant, name);
        let stored = self.store.get(&tenant.to_string(), id).await?;
        Ok(stored.map(|v| v.record))
    }

    /// `tenant`'s own roles, by name (read from the stores).
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<Role>, AccessError> {
        let mut roles: Vec<Role> = self.read(tenant).await?.values().cloned().collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roles)
    }

    /// What `roles` grant a caller of `tenant`: built-in names and the tenant's own;
    /// a name that is neither grants nothing (a deleted role).
    pub async fn grants(&self, tenant: TenantId, roles: &[String]) -> Result<Grants, AccessError> {
        let mut grants = Grants::default();
        let mut own = None;
        for name in roles {
            if let Some(builtin) = BuiltinRole::named(name) {
                grants.extend(builtin.permissions());
                continue;
            }
            if own.is_none() {
                own = Some(self.of(tenant).await?);
            }
            if let Some(role) = own.as_ref().and_then(|own| own.get(name)) {
                grants.extend(role.permissions.iter().cloned());
            }
        }
        Ok(grants)
    }

    /// Checks that every name is a role of `tenant` (built in or its own).
    pub async fn check_exist(&self, tenant: TenantId, roles: &[String]) -> Result<(), AccessError> {
        if roles.len() > Role::MAX_PER_CALLER {
            return Err(AccessError::Invalid(format!(
                "a key holds at most {} roles",
                Role::MAX_PER_CALLER
            )));
        }
        let mut custom = roles.iter().filter(|n| BuiltinRole::named(n).is_none());
        let Some(first) = custom.next() else {
            return Ok(());
        };
        // One read of the tenant's roles, fresh: a role just defined elsewhere counts.
        let own = self.read(tenant).await?;
        match std::iter::once(first)
            .chain(custom)
            .find(|n| !own.contains_key(*n))
        {
            Some(unknown) => Err(AccessError::UnknownRole(unknown.clone())),
            None => Ok(()),
        }
    }

    /// `tenant`'s roles, from the cache while fresh.
    async fn of(&self, tenant: TenantId) -> Result<ByName, AccessError> {
        if let Some((roles, at)) = self.lock().get(&tenant)
            && at.elapsed() < Self::TTL
        {
            return Ok(roles.clone());
        }
        self.read(tenant).await
    }

    /// `tenant`'s roles, read from the stores (and cached).
    async fn read(&self, tenant: TenantId) -> Result<ByName, AccessError> {
        let key = tenant.to_string();
        let mut roles = HashMap::new();
        let mut query = Query::new().limit(Query::MAX_LIMIT);
        loop {
            let page = self.store.list(&key, &query).await?;
            roles.extend(
                page.items
                    .into_iter()
                    .map(|v| (v.record.name.clone(), v.record)),
            );
            match page.next {
                Some(next) => query = query.after(next),
                None => break,
            }
        }
        let roles = Arc::new(roles);
        let mut cache = self.lock();
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(tenant, (roles.clone(), Instant::now()));
        Ok(roles)
    }

    fn forget(&self, tenant: TenantId) {
        self.lock().remove(&tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
