//! The task writes of one loop turn (a [`Batch`]), on their way to the stores
//! ([`Writing`]), and what waits on them — the types `writes` and `routing` share.
//! A leaf: it imports nothing from the engine task's concern files.

use std::sync::Arc;

use mesh_protocol::{Message, TaskAssign};
use mesh_store::StoreError;

use crate::domain::{AgentId, Task, TaskId, TenantId};
use crate::engine::AgentLink;
use crate::engine::command::Reply;

/// Who hears that a submitted task was stored (or why it was not).
pub(super) enum Ack {
    /// A front end's [`Command::Submit`](crate::engine::command::Command::Submit).
    Reply(Reply<Task>),
    /// An agent's `task_submit`: `task_submitted` (or an `error`) with its request id.
    Delegated { agent: AgentId, request_id: String },
}

/// The writes decided since the last flush, with what waits on them.
#[derive(Default)]
pub(super) struct Batch {
    /// Tasks tracked in memory at version 0, not stored yet.
    pub(super) created: Vec<TaskId>,
    pub(super) acks: Vec<(TaskId, Ack)>,
    /// Tasks accepted in memory (written if still `accepted` at the flush).
    pub(super) accepted: Vec<TaskId>,
    /// Ends (the entry holds the finished task), with the version they were decided on.
    pub(super) ended: Vec<(TaskId, u64)>,
    pub(super) assigned: Vec<Assignment>,
}

impl Batch {
    /// Takes the batch, leaving an empty one with as much room: the next turn's is
    /// about as big, and its vectors need not grow step by step on the engine task.
    pub(super) fn take(&mut self) -> Self {
        let room = Self {
            created: Vec::with_capacity(self.created.len()),
            acks: Vec::with_capacity(self.acks.len()),
            accepted: Vec::with_capacity(self.accepted.len()),
            ended: Vec::with_capacity(self.ended.len()),
            assigned: Vec::with_capacity(self.assigned.len()),
        };
        std::mem::replace(self, room)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.acks.is_empty()
            && self.accepted.is_empty()
            && self.ended.is_empty()
            && self.assigned.is_empty()
    }
}

/// A batch being written on a task of its own.
pub(super) struct Writing {
    pub(super) task: tokio::task::JoinHandle<(Vec<Written>, Vec<Written>)>,
    pub(super) batch: Dispatched,
}

/// A batch on its way to the stores, and what waits on it.
pub(super) struct Dispatched {
    pub(super) created: Vec<TaskId>,
    /// Assignments of new tasks, written by their creation.
    pub(super) on_create: Vec<Assignment>,
    pub(super) acks: Vec<(TaskId, Ack)>,
    pub(super) updates: Vec<Update>,
    /// Each update's version before it.
    pub(super) expected: Vec<u64>,
    /// New tasks that ended before they were written (so are created ended).
    pub(super) created_ended: Vec<TaskId>,
}

/// Tells the engine task a write is over, however it ended (a panic too).
pub(super) struct NotifyOnDrop(pub(super) Arc<tokio::sync::Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// One update of a batch, and what follows from it.
pub(super) enum Update {
    Accepted(TaskId),
    /// An end, decided at this version (the entry holds the finished task).
    Ended(TaskId, u64),
    Assigned(Assignment),
}

impl Update {
    pub(super) fn id(&self) -> TaskId {
        match self {
            Self::Accepted(id) => *id,
            Self::Ended(id, _) => *id,
            Self::Assigned(a) => a.id,
        }
    }
}

/// A record's write: its new version, or the error (shared: a failed batch call
/// gives each of its records the same one). The record the store hands back is
/// dropped on the write task: the engine task already holds it.
pub(super) type Written = std::result::Result<u64, Arc<StoreError>>;

/// Messages for agents, each agent's together.
pub(super) type Outbox = Vec<(AgentId, Arc<dyn AgentLink>, Vec<Message>)>;

/// An assignment decided in a routing pass, not yet written.
pub(super) struct Assignment {
    pub(super) id: TaskId,
    pub(super) tenant: TenantId,
    pub(super) agent: AgentId,
    pub(super) chosen: mesh_router::CandidateId,
    pub(super) link: Arc<dyn AgentLink>,
    pub(super) assign: TaskAssign,
}
