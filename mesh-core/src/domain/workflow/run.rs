//! What the workflow runtime stores: registered definitions, runs, their checkpoints
//! (the journal) and the messages sent to them.

use chrono::{DateTime, Utc};
use mesh_store::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::definition::WorkflowDefinition;
use super::machine::Position;
use crate::domain::{TenantId, WorkflowId};

/// A registered version of a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct DefinitionRecord {
    /// Derived from the name and version, so two registrations racing for one version
    /// cannot both win.
    pub id: Uuid,
    /// The workflow's name.
    pub name: String,
    /// Its version, from 1.
    pub version: u32,
    /// The definition.
    #[cfg_attr(feature = "rest", schema(value_type = Object))]
    pub definition: WorkflowDefinition,
}

impl DefinitionRecord {
    /// The record of `definition` as `version`.
    pub fn new(definition: WorkflowDefinition, version: u32) -> Self {
        Self {
            id: Self::id_of(&definition.name, version),
            name: definition.name.clone(),
            version,
            definition,
        }
    }
}

impl DefinitionRecord {
    /// The id of version `version` of workflow `name`.
    pub fn id_of(name: &str, version: u32) -> Uuid {
        derived_id(&format!("definition\0{name}\0{version}"))
    }
}

impl Record for DefinitionRecord {
    const COLLECTION: &'static str = "workflow_definitions";
    const INDEXED: &'static [&'static str] = &["name", "version"];
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Steps are running.
    Running,
    /// Every running step waits for something from outside (a signal, a person, a
    /// timer).
    Waiting,
    /// The graph ended; `output` is the final state.
    Succeeded,
    /// A step failed; `retry` takes it up again from the last checkpoint.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl RunStatus {
    /// Whether the run has stopped (nothing more happens unless it is retried).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The snake_case name used in JSON (and as a filter and metric label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An interrupt waiting for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct PendingInterrupt {
    /// What to resume it by.
    pub id: Uuid,
    /// The waiting step.
    pub step: String,
    /// What the step asks.
    #[cfg_attr(feature = "rest", schema(value_type = Object))]
    pub prompt: Value,
}

/// A run of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct WorkflowRun {
    /// The run's id.
    pub id: WorkflowId,
    /// The workflow's name.
    pub workflow: String,
    /// The definition version it runs (for its whole life).
    pub version: u32,
    /// Where it is.
    pub status: RunStatus,
    /// What it started with.
    #[cfg_attr(feature = "rest", schema(value_type = Object))]
    pub input: Value,
    /// The final state, once it succeeded.
    #[serde(default)]
    #[cfg_attr(feature = "rest", schema(value_type = Option<Object>))]
    pub output: Option<Value>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Interrupts waiting to be resumed.
    #[serde(default)]
    pub interrupts: Vec<PendingInterrupt>,
    /// The run whose step started this one.
    #[serde(default)]
    pub parent: Option<ParentStep>,
    /// The run and checkpoint it was forked from.
    #[serde(default)]
    pub forked_from: Option<ForkPoint>,
    /// The instance driving it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Until when `owner` holds it; another instance adopts it after.
    #[serde(default)]
    pub lease_until: Option<DateTime<Utc>>,
    /// When it finished (for retention).
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The W3C trace context it was started in, when traced: its steps' spans, on
    /// whichever instance drives it, join that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The step of another run that started a run (a sub-workflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ParentStep {
    /// The run.
    pub run: WorkflowId,
    /// The step's activation in it.
    pub activation: u64,
}

/// The checkpoint a run was forked from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ForkPoint {
    /// The run.
    pub run: WorkflowId,
    /// The checkpoint's place in its journal.
    pub seq: u64,
}

impl WorkflowRun {
    /// Marks it finished with `status`: no interrupts pending, no owner, no lease.
    pub fn end(&mut self, status: RunStatus) {
        self.status = status;
        self.interrupts.clear();
        self.owner = None;
        self.lease_until = None;
        self.finished_at = Some(chrono::Utc::now());
    }
}

impl Record for WorkflowRun {
    const COLLECTION: &'static str = "workflow_runs";
    const INDEXED: &'static [&'static str] = &["status", "workflow"];
    fn id(&self) -> Uuid {
        *self.id.as_uuid()
    }
}

/// One entry of a run's journal: the position after a step (or a start, a message, a
/// retry), with the step's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Checkpoint {
    /// Derived from the run and `seq`: two instances writing one run cannot both write
    /// the same entry — the second learns it lost the run.
    pub id: Uuid,
    /// The run.
    pub run: WorkflowId,
    /// Its place in the journal, from 0.
    pub seq: u64,
    /// What happened.
    #[cfg_attr(feature = "rest", schema(value_type = Object))]
    pub event: JournalEvent,
    /// The position after it (state included).
    #[cfg_attr(feature = "rest", schema(value_type = Object))]
    pub position: Position,
    /// When.
    pub at: DateTime<Utc>,
}

impl Checkpoint {
    /// Entry `seq` of `run`'s journal.
    pub fn new(run: WorkflowId, seq: u64, event: JournalEvent, position: Position) -> Self {
        Self {
            id: checkpoint_id(run, seq),
            run,
            seq,
            event,
            position,
            at: Utc::now(),
        }
    }
}

/// The id of entry `seq` of `run`'s journal.
pub fn checkpoint_id(run: WorkflowId, seq: u64) -> Uuid {
    derived_id(&format!("checkpoint\0{run}\0{seq}"))
}

impl Record for Checkpoint {
    const COLLECTION: &'static str = "workflow_checkpoints";
    const INDEXED: &'static [&'static str] = &["run", "seq"];
    fn id(&self) -> Uuid {
        self.id
    }
}

/// What a journal entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalEvent {
    /// The run started (or was forked, or retried).
    Started,
    /// A step finished with `result`.
    StepCompleted {
        /// The step.
        step: String,
        /// Its activation.
        activation: u64,
        /// What it returned.
        result: Value,
    },
    /// A step failed; the run failed with it.
    StepFailed {
        /// The step.
        step: String,
        /// Its activation.
        activation: u64,
        /// Why.
        error: String,
    },
    /// A failed run was taken up again: the failed steps run anew.
    Retried,
}

/// A message to a run: a signal, or the value an interrupt resumes with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunMessage {
    /// The message's id.
    pub id: Uuid,
    /// The run.
    pub run: WorkflowId,
    /// What it is.
    pub kind: MessageKind,
    /// Its value.
    pub value: Value,
}

impl Record for RunMessage {
    const COLLECTION: &'static str = "workflow_messages";
    const INDEXED: &'static [&'static str] = &["run"];
    fn id(&self) -> Uuid {
        self.id
    }
}

/// What a [`RunMessage`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MessageKind {
    /// A signal of this name.
    Signal {
        /// Its name.
        name: String,
    },
    /// The value for this interrupt.
    Resume {
        /// The interrupt.
        interrupt: Uuid,
    },
}

/// The id of the interrupt activation `activation` of `run` raises.
pub fn interrupt_id(run: WorkflowId, activation: u64) -> Uuid {
    derived_id(&format!("interrupt\0{run}\0{activation}"))
}

/// A UUID (version 8) derived from `key`: the same key, the same id, on any instance.
pub fn derived_id(key: &str) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The tenant-scoped key a run's step uses for its engine task: the same activation of
/// the same run always submits the same task id.
pub fn task_key(tenant: TenantId, run: WorkflowId, activation: u64) -> Uuid {
    derived_id(&format!("task\0{tenant}\0{run}\0{activation}"))
}

/// The id of the sub-workflow run activation `activation` of `run` starts.
pub fn child_run_id(run: WorkflowId, activation: u64) -> WorkflowId {
    WorkflowId::from_uuid(derived_id(&format!("child\0{run}\0{activation}")))
}
