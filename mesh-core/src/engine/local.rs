//! In-process agents: a handler function registered with the engine, no socket. The
//! engine treats it as any other agent (routing, timeouts, retries, cancellation); a
//! small driver task turns the engine's messages into handler calls and the handler's
//! results into `task_complete` / `task_fail`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mesh_protocol::{
    Heartbeat, Hello, Message, TaskAssign, TaskComplete, TaskError, TaskFail, TaskProgress,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use uuid::Uuid;

use super::{AgentLink, Engine, EngineError};
use crate::domain::{AgentId, SessionId, TenantId};

/// Messages the engine may queue for one in-process agent before it counts as stuck.
const QUEUE: usize = 1024;

/// The engine's side of an in-process agent.
struct LocalLink {
    messages: mpsc::Sender<Message>,
    closed: watch::Sender<bool>,
}

impl AgentLink for LocalLink {
    fn send(&self, message: Message) -> Result<(), mesh_protocol::Error> {
        self.messages
            .try_send(message)
            .map_err(|_| mesh_protocol::Error::Closed)
    }

    fn close(&self, _code: u16, _reason: &str) {
        let _ = self.closed.send(true);
    }
}

/// A running in-process agent; dropping it (or [`stop`](Self::stop)) disconnects it
/// and its tasks go back to pending.
#[derive(Debug)]
pub struct LocalAgent {
    id: AgentId,
    driver: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl LocalAgent {
    /// The agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    /// Disconnects the agent (its running handlers are dropped) and waits until the
    /// engine knows.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.driver).await;
    }
}

impl Drop for LocalAgent {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Engine {
    /// Runs an agent inside this process: `handler` is called with each task routed to
    /// it and returns the task's output or a [`TaskError`]. `hello` says what the agent
    /// can do, exactly as a connected agent's would.
    ///
    /// ```
    /// # async fn run() -> Result<(), mesh_core::EngineError> {
    /// use mesh_core::{Engine, TaskSpec, TenantId};
    /// use mesh_core::protocol::Hello;
    ///
    /// let engine = Engine::in_memory().await;
    /// let tenant = TenantId::new();
    /// let _agent = engine
    ///     .connect_local(tenant, Hello::new("upper", ["upper"]), |task| async move {
    ///         Ok(serde_json::json!(task.input.as_str().unwrap_or("").to_uppercase()))
    ///     })
    ///     .await?;
    /// let task = engine.submit(tenant, TaskSpec::new("upper", "hi".into())).await?;
    /// assert_eq!(engine.wait(tenant, task.id).await?.output, Some("HI".into()));
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
    /// ```
    pub async fn connect_local<F, Fut>(
        &self,
        tenant: TenantId,
        hello: Hello,
        handler: F,
    ) -> Result<LocalAgent, EngineError>
    where
        F: Fn(TaskAssign) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.connect_local_reporting(tenant, hello, move |task, _| handler(task))
            .await
    }

    /// As [`connect_local`](Self::connect_local), the handler also given a
    /// [`Progress`] to report how far the task has got (`task_progress`, as a
    /// connected agent sends it).
    pub async fn connect_local_reporting<F, Fut>(
        &self,
        tenant: TenantId,
        hello: Hello,
        handler: F,
    ) -> Result<LocalAgent, EngineError>
    where
        F: Fn(TaskAssign, Progress) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        let (messages, inbox) = mpsc::channel(QUEUE);
        let (closed, closed_rx) = watch::channel(false);
        let link = Arc::new(LocalLink { messages, closed });
        let (welcome, session) = self.connect_agent(tenant, hello, link).await?;
        let id = AgentId::from_uuid(welcome.agent_id);
        let heartbeat = Duration::from_millis(welcome.heartbeat_ms.max(1)) / 2;
        let (stop, stop_rx) = watch::channel(false);
        let driver = Driver {
            engine: self.clone(),
            agent: id,
            session,
            handler: Arc::new(handler),
        };
        let driver = tokio::spawn(driver.run(inbox, closed_rx, stop_rx, heartbeat));
        Ok(LocalAgent { id, driver, stop })
    }
}

/// Reports one task's progress to the engine, as its `task_progress` messages.
#[derive(Debug, Clone)]
pub struct Progress {
    engine: Engine,
    agent: AgentId,
    session: SessionId,
    task: Uuid,
}

impl Progress {
    /// Reports the task `fraction` (0 to 1) done, doing `message`. A task that has
    /// moved on (cancelled, reassigned) ignores it.
    pub async fn report(&self, fraction: f64, message: impl Into<String>) {
        let mut progress = TaskProgress::new(self.task, fraction.clamp(0.0, 1.0));
        progress.message = Some(message.into());
        let _ = self
            .engine
            .agent_message(self.agent, self.session, Message::TaskProgress(progress))
            .await;
    }
}

struct Driver<F> {
    engine: Engine,
    agent: AgentId,
    session: SessionId,
    handler: Arc<F>,
}

impl<F, Fut> Driver<F>
where
    F: Fn(TaskAssign, Progress) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    async fn run(
        self,
        mut inbox: mpsc::Receiver<Message>,
        mut closed: watch::Receiver<bool>,
        mut stop: watch::Receiver<bool>,
        heartbeat: Duration,
    ) {
        let mut running: JoinSet<(Uuid, Result<Value, TaskError>)> = JoinSet::new();
        let mut handles: HashMap<Uuid, AbortHandle> = HashMap::new();
        let mut ids: HashMap<tokio::task::Id, Uuid> = HashMap::new();
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = inbox.recv() => match message {
                    Some(Message::TaskAssign(task)) => {
                        let id = task.task_id;
                        let progress = Progress {
                            engine: self.engine.clone(),
                            agent: self.agent,
                            session: self.session,
                            task: id,
                        };
                        let work = (self.handler)(task, progress);
                        let handle = running.spawn(async move { (id, work.await) });
                        ids.insert(handle.id(), id);
                        handles.insert(id, handle);
                    }
                    Some(Message::TaskCancel(cancel)) => {
                        if let Some(handle) = handles.remove(&cancel.task_id) {
                            handle.abort();
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let reply = match done {
                        Ok((task_id, (id, result))) => {
                            ids.remove(&task_id);
                            handles.remove(&id);
                            Some(match result {
                                Ok(output) => Message::TaskComplete(TaskComplete::new(id, output)),
                                Err(e) => Message::TaskFail(TaskFail::new(id, e.message, e.retryable)),
                            })
                        }
                        Err(e) => {
                            let id = ids.remove(&e.id());
                            if let Some(id) = id {
                                handles.remove(&id);
                            }
                            // A cancelled handler has nothing to say; a panicked one failed.
                            id.filter(|_| e.is_panic()).map(|id| {
                                Message::TaskFail(TaskFail::new(id, "the handler panicked", false))
                            })
                        }
                    };
                    if let Some(reply) = reply
                        && self.engine.agent_message(self.agent, self.session, reply).await.is_err()
                    {
                        break;
                    }
                }
                _ = beat.tick() => {
                    let load = Heartbeat::new(Some(u32::try_from(running.len()).unwrap_or(u32::MAX)), None);
                    if self.engine.agent_message(self.agent, self.session, Message::Heartbeat(load)).await.is_err() {
                        break;
                    }
                }
                _ = closed.changed() => break,
                _ = stop.changed() => break,
            }
        }
        running.abort_all();
        self.engine.disconnect_agent(self.agent, self.session).await;
        self.engine.settle().await;
    }
}
