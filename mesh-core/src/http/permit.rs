//! The one permission check every surface makes ([`permit`]), and why the gate
//! refuses a caller ([`AuthError`]).

use crate::domain::{Action, Principal, Resource};
use crate::engine::EngineError;

/// Why the gate refused a caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential was presented.
    #[error("credentials required: Authorization: Bearer <key or JWT>, or X-API-Key")]
    Missing,
    /// A JWT that does not verify.
    #[error("{0}")]
    InvalidJwt(&'static str),
    /// An API key nobody has.
    #[error("unknown API key")]
    UnknownKey,
    /// The caller's roles do not allow it.
    #[error("{action} on {resource}{} is not allowed to this caller", .name.as_deref().map(|n| format!(" {n}")).unwrap_or_default())]
    Forbidden {
        /// What was asked.
        action: Action,
        /// On what.
        resource: Resource,
        /// Which one, when named (a tool).
        name: Option<String>,
    },
    /// The caller is over its rate limit.
    #[error("slow down")]
    RateLimited,
    /// Keys could not be looked up.
    #[error(transparent)]
    Unavailable(#[from] EngineError),
    /// Roles could not be looked up.
    #[error(transparent)]
    Roles(#[from] crate::access::AccessError),
}

impl AuthError {
    /// A stable code: `unauthorized`, `forbidden`, `rate_limited`, or the engine's.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing | Self::InvalidJwt(_) | Self::UnknownKey => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Unavailable(e) => e.code(),
            Self::Roles(e) => e.code(),
        }
    }
}

/// Checks that `who` may do `action` on `resource` — on the one called `name` when
/// given (a tool). Every surface's permission check is this one.
pub fn permit(
    who: &Principal,
    action: Action,
    resource: Resource,
    name: Option<&str>,
) -> Result<(), AuthError> {
    if who.may(action, resource, name) {
        Ok(())
    } else {
        Err(AuthError::Forbidden {
            action,
            resource,
            name: name.map(str::to_owned),
        })
    }
}
