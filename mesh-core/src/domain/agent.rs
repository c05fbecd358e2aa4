//! Agents and their lifecycle.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AgentId, AgentStatus, Error, TenantId};

/// An agent registered with the mesh.
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Agent {
    /// Stable id, kept across reconnects.
    pub id: AgentId,
    /// The tenant that owns the agent.
    pub tenant_id: TenantId,
    /// Human-readable name from `hello`.
    pub name: String,
    /// What the agent can do; a task's kind and required capabilities must be in here.
    pub capabilities: BTreeSet<String>,
    /// Where the agent is in its lifecycle; change it with [`Agent::transition`].
    status: AgentStatus,
    /// How many tasks the agent runs at once.
    pub max_concurrency: u32,
    /// What an hour of this agent costs, in dollars, if known.
    pub cost_per_hour: Option<f64>,
    /// Free-form labels for selection and display.
    pub labels: BTreeMap<String, String>,
    /// When the agent first registered.
    pub created_at: DateTime<Utc>,
    /// When the agent last showed it was alive.
    pub last_seen_at: DateTime<Utc>,
}

impl Agent {
    /// The default for `max_concurrency` when `hello` does not give one.
    pub const DEFAULT_MAX_CONCURRENCY: u32 = 1;

    /// A new agent, `offline` until it connects.
    pub fn new(
        tenant_id: TenantId,
        name: impl Into<String>,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let now = Utc::now();
        Self {
            id: AgentId::new(),
            tenant_id,
            name: name.into(),
            capabilities: capabilities.into_iter().map(Into::into).collect(),
            status: AgentStatus::Offline,
            max_concurrency: Self::DEFAULT_MAX_CONCURRENCY,
            cost_per_hour: None,
            labels: BTreeMap::new(),
            created_at: now,
            last_seen_at: now,
        }
    }

    /// The agent's current status.
    pub fn status(&self) -> AgentStatus {
        self.status
    }

    /// Moves the agent to `to`, or explains why the lifecycle forbids it.
    pub fn transition(&mut self, to: AgentStatus) -> Result<(), Error> {
        if !self.status.can_transition_to(to) {
            return Err(Error::InvalidAgentTransition {
                from: self.status,
                to,
            });
        }
        self.status = to;
        Ok(())
    }

    /// Whether the agent can take a task of `kind` that needs `required` capabilities.
    pub fn is_eligible<'a>(
        &self,
        kind: &str,
        required: impl IntoIterator<Item = &'a String>,
    ) -> bool {
        self.capabilities.contains(kind)
            && required.into_iter().all(|c| self.capabilities.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::{Agent, AgentStatus, TenantId};
    use crate::Error as CoreError;
    use AgentStatus::*;

    /// The lifecycle as the issue states it, written out independently of `successors`.
    const ALLOWED: &[(AgentStatus, AgentStatus)] = &[
        (Offline, Starting),
        (Starting, Active),
        (Starting, Error),
        (Active, Draining),
        (Active, Maintenance),
        (Active, Error),
        (Active, Stopping),
        (Draining, Inactive),
        (Draining, Error),
        (Inactive, Active),
        (Inactive, Maintenance),
        (Inactive, Stopping),
        (Maintenance, Active),
        (Maintenance, Inactive),
        (Maintenance, Stopping),
        (Error, Stopping),
        (Error, Maintenance),
        (Stopping, Offline),
    ];

    fn agent_in(status: AgentStatus) -> Agent {
        let mut agent = Agent::new(TenantId::new(), "a", ["summarize"]);
        agent.status = status;
        agent
    }

    #[test]
    fn every_pair_of_statuses_is_allowed_or_refused_as_specified() {
        let mut allowed = 0;
        for from in AgentStatus::ALL {
            for to in AgentStatus::ALL {
                let mut agent = agent_in(from);
                let result = agent.transition(to);
                if ALLOWED.contains(&(from, to)) {
                    allowed += 1;
                    assert_eq!(result, Ok(()), "{from} → {to} should be allowed");
                    assert_eq!(agent.status(), to);
                } else {
                    assert_eq!(
                        result,
                        Err(CoreError::InvalidAgentTransition { from, to }),
                        "{from} → {to} should be refused"
                    );
                    assert_eq!(agent.status(), from, "a refused transition changes nothing");
                }
            }
        }
        assert_eq!(allowed, ALLOWED.len());
    }

    #[test]
    fn a_full_lifecycle_walks_through() {
        let mut agent = Agent::new(TenantId::new(), "a", ["x"]);
        for to in [Starting, Active, Draining, Inactive, Stopping, Offline] {
            agent.transition(to).unwrap();
        }
    }

    #[test]
    fn statuses_serialize_as_snake_case() {
        for status in AgentStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<AgentStatus>(json).unwrap(), status);
        }
    }

    #[test]
    fn eligibility_needs_the_kind_and_every_required_capability() {
        let agent = Agent::new(TenantId::new(), "a", ["summarize", "french"]);
        let french = vec!["french".to_string()];
        let german = vec!["german".to_string()];
        assert!(agent.is_eligible("summarize", &french));
        assert!(!agent.is_eligible("summarize", &german));
        assert!(!agent.is_eligible("translate", &french));
    }

    #[test]
    fn only_active_agents_accept_work() {
        for status in AgentStatus::ALL {
            assert_eq!(status.accepts_work(), status == Active);
        }
    }
}
