//! [`AccessError`]: why a role or audit operation failed, with a stable code.

use mesh_store::StoreError;

use crate::domain::RoleError;

/// Why an access operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A role that cannot be defined as asked.
    #[error(transparent)]
    Role(#[from] RoleError),
    /// A role name neither built in nor the tenant's.
    #[error("no role named {0:?}")]
    UnknownRole(String),
    /// A filter or page that cannot be read.
    #[error("{0}")]
    Invalid(String),
    /// The stores failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The audit log could not be written.
    #[error("audit log: {0}")]
    Unavailable(String),
}

impl AccessError {
    /// A stable code: `invalid_request`, `not_found`, `unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Role(_) | Self::Invalid(_) => "invalid_request",
            Self::UnknownRole(_) => "not_found",
            Self::Store(_) | Self::Unavailable(_) => "unavailable",
        }
    }
}
