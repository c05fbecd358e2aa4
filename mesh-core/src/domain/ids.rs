//! Typed identifiers.
//!
//! Every id is a UUID newtype so an [`AgentId`] can never be passed where a
//! [`TaskId`] is expected. New ids are UUIDv7: time-ordered, so they index well in
//! B-trees and sort by creation time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An id derived from `seed` (its SHA-256, cut to a UUID): for records one place may
/// hold at most once — a tenant's role by name, a place in an audit chain — so a
/// second create of the same place is refused by the store.
pub(crate) fn derived_id(seed: &str) -> Uuid {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// An id string that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {source}")]
pub struct ParseIdError {
    /// Which id type was being parsed, e.g. `"AgentId"`.
    pub kind: &'static str,
    /// Why the text is not a UUID.
    #[source]
    pub source: uuid::Error,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "rest", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        #[cfg_attr(feature = "mcp", derive(schemars::JsonSchema), schemars(transparent))]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|source| ParseIdError {
                    kind: stringify!($name),
                    source,
                })
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

typed_id!(
    /// Identifies an agent across reconnects (sent back in `hello` to resume).
    AgentId
);
typed_id!(
    /// Identifies a task.
    TaskId
);
typed_id!(
    /// Identifies a multi-step workflow (a collaboration job).
    WorkflowId
);
typed_id!(
    /// Identifies a tenant; every record is scoped to one.
    TenantId
);
typed_id!(
    /// Identifies a shared document (a text or state document edited live).
    SharedDocId
);
typed_id!(
    /// Identifies one connection of an agent (new on every `welcome`).
    SessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_display_and_from_str() {
        let id = AgentId::new();
        let parsed: AgentId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn round_trips_through_serde_as_a_plain_string() {
        let id = TaskId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: TaskId = serde_json::from_str(&json).unwrap();
        assert_eq!(id, back);
    }

    #[test]
    fn every_id_type_round_trips() {
        fn check<T>(id: T)
        where
            T: fmt::Display + FromStr<Err = ParseIdError> + Serialize + PartialEq + fmt::Debug,
            T: for<'de> Deserialize<'de>,
        {
            assert_eq!(id.to_string().parse::<T>().unwrap(), id);
            let json = serde_json::to_value(&id).unwrap();
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), id);
        }
        check(AgentId::new());
        check(TaskId::new());
        check(WorkflowId::new());
        check(TenantId::new());
        check(SessionId::new());
    }

    #[test]
    fn rejects_text_that_is_not_a_uuid_with_a_typed_error() {
        let err = "not-a-uuid".parse::<WorkflowId>().unwrap_err();
        assert_eq!(err.kind, "WorkflowId");
        assert!(err.to_string().starts_with("invalid WorkflowId"));
        assert!(serde_json::from_str::<TenantId>("\"nope\"").is_err());
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = SessionId::new();
        let b = SessionId::new();
        assert!(a < b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }
}
