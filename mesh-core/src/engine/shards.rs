//! The engine tasks an engine splits its tenants over ([`EngineConfig::shards`]):
//! which one serves a tenant, and which one an agent's messages go to.
//!
//! Routing never crosses tenants (every agent has its tenant's capability), so a
//! tenant's agents, tasks, keys and waiters live in one task and no command needs two.
//!
//! [`EngineConfig::shards`]: super::EngineConfig::shards

use std::sync::RwLock;

use foldhash::HashMap;
use tokio::sync::{mpsc, oneshot};

use super::EngineError;
use super::busy::Busy;
use super::command::{Command, Reply};
use crate::domain::{AgentId, SessionId, TenantId};

/// Which of `count` engine tasks serves `tenant`: its id's bits folded, modulo the
/// count (ids are random, so tenants spread evenly).
pub(crate) fn shard_of(tenant: TenantId, count: usize) -> usize {
    let bits = tenant.as_uuid().as_u128();
    let folded = (bits as u64) ^ ((bits >> 64) as u64);
    usize::try_from(folded % count.max(1) as u64).unwrap_or(0)
}

/// One engine task: its command channel and its time at work.
pub(crate) struct Shard {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) busy: Busy,
}

impl Shard {
    /// Sends the task `command`.
    pub(crate) async fn tell(&self, command: Command) -> Result<(), EngineError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| EngineError::Stopped)
    }

    /// Sends the task the command `make` makes, and waits for its answer.
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.tell(make(tx)).await?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }
}

/// Every engine task of an engine, and where each connected agent is served.
pub(crate) struct Shards {
    shards: Box<[Shard]>,
    /// The task serving each connected agent's session (its tenant's); empty, and
    /// never locked, with one task.
    agents: RwLock<HashMap<AgentId, (SessionId, usize)>>,
}

impl Shards {
    pub(crate) fn new(shards: Vec<Shard>) -> Self {
        Self {
            shards: shards.into_boxed_slice(),
            agents: RwLock::default(),
        }
    }

    /// Every engine task, in order.
    pub(crate) fn all(&self) -> &[Shard] {
        &self.shards
    }

    /// Whether every task still takes commands.
    pub(crate) fn all_open(&self) -> bool {
        self.shards.iter().all(|s| !s.commands.is_closed())
    }

    /// Resolves when a task has stopped taking commands.
    pub(crate) async fn one_closed(&self) {
        let closed = self.shards.iter().map(|s| Box::pin(s.commands.closed()));
        futures_util::future::select_all(closed).await;
    }

    /// Asks every task, in order; their answers.
    pub(crate) async fn ask_all<T>(
        &self,
        make: impl Fn(Reply<T>) -> Command,
    ) -> Result<Vec<T>, EngineError> {
        let mut answers = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            answers.push(shard.ask(&make).await?);
        }
        Ok(answers)
    }

    /// Tells every task, in order.
    pub(crate) async fn tell_all(&self, make: impl Fn() -> Command) -> Result<(), EngineError> {
        for shard in self.shards.iter() {
            shard.tell(make()).await?;
        }
        Ok(())
    }

    /// Waits until each task has answered a command `make` makes (the reply itself
    /// carries nothing); a stopped task is not waited for.
    pub(crate) async fn sync_all(&self, make: impl Fn(oneshot::Sender<()>) -> Command) {
        for shard in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            if shard.tell(make(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }

    /// The task serving `tenant`.
    pub(crate) fn of_tenant(&self, tenant: TenantId) -> &Shard {
        &self.shards[shard_of(tenant, self.shards.len())]
    }

    /// The task serving `agent`'s current session; `None` for an agent not connected
    /// here (its messages have nobody to go to).
    pub(crate) fn of_agent(&self, agent: AgentId) -> Option<&Shard> {
        if self.shards.len() == 1 {
            return self.shards.first();
        }
        let agents = self.agents.read().unwrap_or_else(|e| e.into_inner());
        let (_, index) = agents.get(&agent)?;
        self.shards.get(*index)
    }

    /// Records that `agent` connected as `session` to the task serving `tenant`.
    pub(crate) fn joined(&self, agent: AgentId, session: SessionId, tenant: TenantId) {
        if self.shards.len() == 1 {
            return;
        }
        let index = shard_of(tenant, self.shards.len());
        let mut agents = self.agents.write().unwrap_or_else(|e| e.into_inner());
        agents.insert(agent, (session, index));
    }

    /// Forgets `agent`'s `session` (a newer session of the agent stays).
    pub(crate) fn left(&self, agent: AgentId, session: SessionId) {
        if self.shards.len() == 1 {
            return;
        }
        let mut agents = self.agents.write().unwrap_or_else(|e| e.into_inner());
        if agents.get(&agent).is_some_and(|(s, _)| *s == session) {
            agents.remove(&agent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_spread_over_every_shard_and_stay_put() {
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            let tenant = TenantId::new();
            let shard = shard_of(tenant, 4);
            assert_eq!(shard, shard_of(tenant, 4));
            counts[shard] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "{counts:?}");
        }
        assert_eq!(shard_of(TenantId::new(), 1), 0);
    }
}
