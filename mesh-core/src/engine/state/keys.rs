//! API keys and tenants: created and revoked here (mutations); looked up straight from
//! the stores.

use chrono::Utc;
use mesh_store::Repository;
use uuid::Uuid;

use super::{Result, State};
use crate::domain::{
    ApiKey, SYSTEM_TENANT, Scope, Tenant, TenantId, generate_key, hash_key, valid_name,
};
use crate::engine::{Change, EngineError, Stores};

/// The shortest API key a caller may choose.
const MIN_KEY_LEN: usize = 16;

impl<S: Stores> State<S> {
    pub(super) async fn create_key(
        &mut self,
        tenant: TenantId,
        name: String,
        scopes: Vec<Scope>,
        roles: Vec<String>,
        key: Option<String>,
    ) -> Result<(String, ApiKey)> {
        if !valid_name(&name) {
            return Err(EngineError::InvalidName);
        }
        let key = match key {
            Some(k) if k.len() >= MIN_KEY_LEN => k,
            Some(_) => return Err(EngineError::KeyTooShort { min: MIN_KEY_LEN }),
            None => generate_key(),
        };
        let record = ApiKey {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            name,
            hash: hash_key(&key),
            scopes: if scopes.is_empty() && roles.is_empty() {
                vec![Scope::Read]
            } else {
                scopes
            },
            roles,
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.stores.keys().create(SYSTEM_TENANT, &record).await?;
        Ok((key, record))
    }

    /// Marks `tenant`'s key `id` revoked and tells the other engines; revoking a
    /// revoked key changes nothing.
    pub(super) async fn revoke_key(&mut self, tenant: TenantId, id: Uuid) -> Result<ApiKey> {
        let stored = self.stores.keys().get(SYSTEM_TENANT, id).await?;
        let Some(mut stored) = stored.filter(|k| k.record.tenant_id == tenant) else {
            return Err(EngineError::KeyNotFound(id));
        };
        if stored.record.revoked_at.is_none() {
            stored.record.revoked_at = Some(Utc::now());
            stored = self
                .stores
                .keys()
                .update(SYSTEM_TENANT, &stored.record, stored.version)
                .await?;
        }
        let _ = self.changes.send(Change::KeyRevoked { id });
        Ok(stored.record)
    }

    /// A new tenant called `name`, remembered like every tenant the engine has seen.
    pub(super) async fn create_tenant(&mut self, name: String) -> Result<Tenant> {
        if !valid_name(&name) {
            return Err(EngineError::InvalidName);
        }
        let tenant = Tenant::named(name);
        self.stores.tenants().create(SYSTEM_TENANT, &tenant).await?;
        self.tenants.insert(tenant.id);
        Ok(tenant)
    }
}
