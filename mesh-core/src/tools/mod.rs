//! Tools agents and clients can run through the mesh: a [`ToolAdapter`] declares its
//! actions (with a JSON Schema for each input) and the capabilities it provides; the
//! [`ToolRegistry`] holds the operator's by name. The [`Tools`] service adds what each
//! tenant registers — adapters with its own credentials, external MCP servers
//! ([`Upstream`], feature `federation`) — and runs every call under rate limits, with
//! idempotent results cached (shared through Redis with feature `redis`).

mod adapter;
mod catalog;
mod config;
mod files;
#[cfg(feature = "github")]
mod github;
mod limits;
#[cfg(feature = "postgres")]
mod schema;
mod secrets;
mod sources;
#[cfg(feature = "federation")]
mod upstream;

pub use adapter::{ToolAction, ToolAdapter, ToolError, ToolInfo, ToolRegistry};
pub(crate) use adapter::{info, instrumented};
pub use catalog::{Caller, RESERVED, Tools};
pub use config::{CALL, OperatorSource, ToolsConfig};
pub use files::{FilesAdapter, MAX_FILE_BYTES, MAX_LIST_ENTRIES};
#[cfg(feature = "github")]
pub use github::GitHubAdapter;
pub use limits::{MAX_CACHED_RESULTS, Rate, ToolLimits};
#[cfg(feature = "postgres")]
pub use schema::{SCHEMA_QUERY_TIMEOUT, SchemaAdapter};
pub use secrets::{SecretError, SecretKey};
pub use sources::{SourceError, SourceInput, SourceView};
#[cfg(feature = "federation")]
pub use upstream::{Transport, Upstream, UpstreamState, UpstreamStatus, UpstreamTimings};
