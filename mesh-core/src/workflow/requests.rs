//! What callers pass: [`StartRequest`], [`RunFilter`].

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RunStatus;
use crate::domain::WorkflowId;

/// What to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StartRequest {
    /// The workflow's name.
    pub workflow: String,
    /// Its version (default: the newest — as this instance last read it, at most a
    /// second ago; one registered through this instance is seen at once).
    #[serde(default)]
    pub version: Option<u32>,
    /// The initial state: an object of declared keys.
    #[serde(default)]
    pub input: Value,
    /// The run's id: starting a run with an id that exists returns that run.
    #[serde(default)]
    #[cfg_attr(feature = "rest", schema(value_type = Option<String>, format = "uuid"))]
    #[cfg_attr(feature = "mcp", schemars(with = "Option<String>"))]
    pub id: Option<WorkflowId>,
}

impl StartRequest {
    /// A run of the newest version of `workflow` from `input`.
    pub fn new(workflow: impl Into<String>, input: Value) -> Self {
        Self {
            workflow: workflow.into(),
            version: None,
            input,
            id: None,
        }
    }

    /// Starts it under `id` (idempotently).
    pub fn id(mut self, id: WorkflowId) -> Self {
        self.id = Some(id);
        self
    }

    /// Runs version `version`.
    pub fn version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self
    }
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only runs in this status.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Only runs of this workflow.
    #[serde(default)]
    pub workflow: Option<String>,
    /// Only runs created at or after this time.
    #[serde(default)]
    pub since: Option<chrono::DateTime<Utc>>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Where the previous page ended.
    #[serde(default)]
    pub cursor: Option<String>,
}
