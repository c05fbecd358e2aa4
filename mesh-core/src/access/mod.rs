//! Access control's services: the tenants' own [`Roles`] (stored, resolved into a
//! caller's [`Grants`](crate::domain::Grants)) and the hash-chained [`AuditLog`].
//! The credential gate holds one [`Access`]; every surface checks and records
//! through it.

mod audit;
mod error;
mod roles;

pub use audit::{AuditFilter, AuditLog, AuditPage, Verification};
pub use error::AccessError;
pub use roles::Roles;

use crate::engine::Engine;

/// Roles and the audit log of the engine's stores. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Access {
    /// The tenants' own roles.
    pub roles: Roles,
    /// The audit log.
    pub audit: AuditLog,
}

impl Access {
    /// Roles and audit log on `engine`'s stores (the audit writer runs on the current
    /// Tokio runtime).
    pub fn new(engine: &Engine) -> Self {
        let journal = engine.journal();
        Self {
            roles: Roles::new(journal.roles.clone()),
            audit: AuditLog::start(journal.audit.clone(), journal.audit_heads.clone()),
        }
    }
}
