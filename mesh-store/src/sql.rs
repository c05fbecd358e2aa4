//! What the SQL backends (PostgreSQL, SQLite) share: migration errors.

use sqlx::migrate::{MigrateError, Migrator};

use crate::StoreError;

/// A migration failure as a store error: a database a newer build migrated is
/// [`StoreError::NewerSchema`]; a failed statement goes through `backend`'s mapping.
pub(crate) fn migrate_error(
    e: MigrateError,
    name: &'static str,
    migrator: &Migrator,
    backend: impl FnOnce(sqlx::Error) -> StoreError,
) -> StoreError {
    match e {
        MigrateError::VersionMissing(applied) => StoreError::NewerSchema {
            backend: name,
            applied,
            known: migrator.iter().map(|m| m.version).max().unwrap_or(0),
        },
        MigrateError::Execute(e) => backend(e),
        e => StoreError::Backend {
            backend: name,
            retryable: false,
            source: Box::new(e),
        },
    }
}
