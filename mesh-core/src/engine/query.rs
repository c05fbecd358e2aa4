//! What a list asks for ([`TaskFilter`], [`AgentFilter`]) and what it gets
//! ([`Page`]).

use serde::Serialize;

use crate::domain::{AgentStatus, TaskStatus};

/// Which of a tenant's tasks to list ([`Engine::tasks`](crate::Engine::tasks)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskFilter {
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this kind.
    pub kind: Option<String>,
    /// Only tasks held (or last held) by this agent.
    pub agent: Option<crate::domain::AgentId>,
    /// Newest first (default oldest first).
    pub newest_first: bool,
    /// At most this many (1 to 1,000; default 100).
    pub limit: Option<usize>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// Which of a tenant's agents to list ([`Engine::list_agents`](crate::Engine::list_agents)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentFilter {
    /// Only agents with this status.
    pub status: Option<AgentStatus>,
    /// Only agents that have this capability (checked page by page: a page may then
    /// hold fewer than `limit`; follow `next`).
    pub capability: Option<String>,
    /// At most this many (1 to 1,000; default 100).
    pub limit: Option<usize>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// Pass back as the cursor for the next page; `None` on the last.
    pub next: Option<String>,
}
