//! Pure rules the engine task follows: how domain values map onto the router's and the
//! wire's, retry delays, and the paths through the agent and task lifecycles. No state,
//! no I/O; every conversion is an exhaustive match, so a new variant is a compile error
//! here rather than a silent default.

use std::time::Duration;

use mesh_protocol::TaskStatus as WireStatus;
use mesh_router::{
    CandidateId, CapabilityMatch, CostOptimized, DefaultPolicy, Learning, LeastLoaded, Performance,
    RoundRobin, Router,
};

use crate::domain::{
    Agent, AgentId, AgentStatus, Error as DomainError, Priority, RoutingPreference, Task,
    TaskStatus, TenantId,
};
use crate::engine::EngineConfig;

pub(super) fn candidate(agent: AgentId) -> CandidateId {
    CandidateId(agent.as_uuid().as_u128())
}

pub(super) fn agent_of(candidate: CandidateId) -> AgentId {
    AgentId::from_uuid(uuid::Uuid::from_u128(candidate.0))
}

/// The capability every agent of `tenant` has, so routing never crosses tenants.
pub(super) fn tenant_capability(tenant: TenantId) -> String {
    format!("tenant:{tenant}")
}

/// A fresh instance of the built-in strategy `routing` names.
pub(super) fn builtin_router(routing: RoutingPreference) -> Box<dyn Router> {
    match routing {
        RoutingPreference::Auto => Box::new(DefaultPolicy::default()),
        RoutingPreference::RoundRobin => Box::new(RoundRobin::new()),
        RoutingPreference::LeastLoaded => Box::new(LeastLoaded),
        RoutingPreference::CapabilityMatch => Box::new(CapabilityMatch::default()),
        RoutingPreference::CostOptimized => Box::new(CostOptimized),
        RoutingPreference::Performance => Box::new(Performance::default()),
        RoutingPreference::Learning => Box::new(Learning::default()),
    }
}

pub(super) fn router_priority(p: Priority) -> mesh_router::Priority {
    match p {
        Priority::Low => mesh_router::Priority::Low,
        Priority::Normal => mesh_router::Priority::Normal,
        Priority::High => mesh_router::Priority::High,
        Priority::Critical => mesh_router::Priority::Critical,
    }
}

pub(super) fn wire_status(s: TaskStatus) -> WireStatus {
    match s {
        TaskStatus::Pending => WireStatus::Pending,
        TaskStatus::Assigned => WireStatus::Assigned,
        TaskStatus::Accepted => WireStatus::Accepted,
        TaskStatus::InProgress => WireStatus::InProgress,
        TaskStatus::Completed => WireStatus::Completed,
        TaskStatus::Failed => WireStatus::Failed,
        TaskStatus::Cancelled => WireStatus::Cancelled,
        TaskStatus::TimedOut => WireStatus::TimedOut,
    }
}

/// The delay before retrying after `attempts` attempts: doubling, capped.
pub(super) fn backoff(config: &EngineConfig, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
    config
        .retry_backoff
        .saturating_mul(factor)
        .min(config.max_backoff)
}

/// The statuses an agent passes through to reach `to` from `from`.
fn agent_path(from: AgentStatus, to: AgentStatus) -> &'static [AgentStatus] {
    use AgentStatus::*;
    match (from, to) {
        (Offline, Active) => &[Starting, Active],
        (Starting, Active) | (Inactive, Active) | (Maintenance, Active) => &[Active],
        (Draining, Active) => &[Inactive, Active],
        (Error, Active) => &[Stopping, Offline, Starting, Active],
        (Stopping, Active) => &[Offline, Starting, Active],
        (Active, Offline) | (Inactive, Offline) | (Maintenance, Offline) | (Error, Offline) => {
            &[Stopping, Offline]
        }
        (Draining, Offline) => &[Inactive, Stopping, Offline],
        (Starting, Offline) => &[Error, Stopping, Offline],
        (Stopping, Offline) => &[Offline],
        (Active, Draining) => &[Draining],
        (Draining, Inactive) => &[Inactive],
        _ => &[],
    }
}

/// Moves an agent to `to` through the statuses the lifecycle requires.
pub(super) fn walk(agent: &mut Agent, to: AgentStatus) -> Result<(), DomainError> {
    for &step in agent_path(agent.status(), to) {
        agent.transition(step)?;
    }
    Ok(())
}

/// Moves a task out of flight to a terminal status, through `accepted` where the
/// lifecycle requires it (an agent may complete or fail without accepting first).
pub(super) fn finish_status(task: &mut Task, to: TaskStatus) -> Result<(), DomainError> {
    if task.status() == TaskStatus::Assigned
        && matches!(to, TaskStatus::Completed | TaskStatus::Failed)
    {
        task.transition(TaskStatus::Accepted)?;
    }
    task.transition(to)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_status_reaches_active_and_offline() {
        for from in AgentStatus::ALL {
            for to in [AgentStatus::Active, AgentStatus::Offline] {
                let mut agent = Agent::new(TenantId::new(), "a", ["x"]);
                walk(&mut agent, AgentStatus::Active).unwrap();
                // Reach `from` first where the lifecycle allows it from active.
                if agent.status().can_transition_to(from) {
                    agent.transition(from).unwrap();
                }
                if agent.status() != to {
                    walk(&mut agent, to).unwrap();
                    assert_eq!(agent.status(), to, "{from} → {to}");
                }
            }
        }
    }

    #[test]
    fn backoff_doubles_and_saturates_instead_of_overflowing() {
        let config = EngineConfig::default().retry_backoff(
            Duration::from_millis(100),
            Duration::from_secs(u64::MAX / 4),
        );
        assert_eq!(backoff(&config, 1), Duration::from_millis(100));
        assert_eq!(backoff(&config, 3), Duration::from_millis(400));
        let huge = EngineConfig::default().retry_backoff(Duration::MAX / 2, Duration::MAX);
        assert_eq!(backoff(&huge, 40), Duration::MAX);
    }
}
