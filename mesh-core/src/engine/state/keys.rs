//! API keys: created here (a mutation); looked up straight from the stores.

use chrono::Utc;
use mesh_store::Repository;

use super::{Result, State};
use crate::domain::{ApiKey, SYSTEM_TENANT, Scope, TenantId, generate_key, hash_key};
use crate::engine::{EngineError, Stores};

/// The shortest API key a caller may choose.
const MIN_KEY_LEN: usize = 16;

impl<S: Stores> State<S> {
    pub(super) async fn create_key(
        &mut self,
        tenant: TenantId,
        name: String,
        scopes: Vec<Scope>,
        key: Option<String>,
    ) -> Result<(String, ApiKey)> {
        let key = match key {
            Some(k) if k.len() >= MIN_KEY_LEN => k,
            Some(_) => return Err(EngineError::KeyTooShort { min: MIN_KEY_LEN }),
            None => generate_key(),
        };
        let record = ApiKey {
            id: uuid::Uuid::now_v7(),
            tenant_id: tenant,
            name,
            hash: hash_key(&key),
            scopes: if scopes.is_empty() {
                vec![Scope::Read]
            } else {
                scopes
            },
            created_at: Utc::now(),
        };
        self.stores.keys().create(SYSTEM_TENANT, &record).await?;
        Ok((key, record))
    }
}
