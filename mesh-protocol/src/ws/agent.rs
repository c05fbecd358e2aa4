//! A small agent runtime: connect, register, run tasks through a handler, delegate,
//! edit shared documents.
//! It is what `examples/agent.rs` builds on, and what an agent author copies.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use uuid::Uuid;

use super::docs::{OpenDoc, OpenDocs};
use super::{ClientConfig, Incoming, Sender, connect};
pub use crate::TaskError;
use crate::{
    Error, Heartbeat, Hello, Message, TaskAccept, TaskAssign, TaskComplete, TaskFail, TaskProgress,
    TaskReject, TaskStatus, TaskSubmit, TaskUpdate,
};

/// A boxed task future, as handlers return it.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + Send>>;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<TaskUpdate>>>>;

/// What a running task can do besides returning: report progress, delegate sub-tasks,
/// open shared documents.
#[derive(Clone, Debug)]
pub struct AgentContext {
    sender: Sender,
    task_id: Uuid,
    traceparent: Option<String>,
    waiters: Waiters,
    docs: OpenDocs,
}

impl AgentContext {
    /// The task being run.
    pub fn task_id(&self) -> Uuid {
        self.task_id
    }

    /// The trace context sub-tasks are delegated in: the task's `traceparent` from
    /// `task_assign`, unless replaced with [`AgentContext::with_traceparent`].
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// Delegates in `traceparent` from now on: an agent that opens a span for the task
    /// passes that span's context, so sub-tasks become its children.
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// Reports progress (0 to 1).
    pub async fn progress(&self, fraction: f64, message: Option<String>) -> Result<(), Error> {
        let mut p = TaskProgress::new(self.task_id, fraction.clamp(0.0, 1.0));
        p.message = message;
        self.sender.send(p).await
    }

    /// Delegates a sub-task of `kind` to the mesh (as a child of this task) and waits
    /// for it to finish; returns its final `task_update`.
    pub async fn delegate(
        &self,
        kind: &str,
        input: Value,
        required: Vec<String>,
    ) -> Result<TaskUpdate, Error> {
        let request_id = Uuid::now_v7().to_string();
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id.clone(), tx);
        let mut submit = TaskSubmit::new(request_id, kind, input);
        submit.parent = Some(self.task_id);
        submit.traceparent = self.traceparent.clone();
        submit.required_capabilities = required;
        self.sender.send(submit).await?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Opens shared document `doc_id` on the agent's connection, from `version` (the
    /// agent's replica's vector clock, encoded; empty for the whole document). The first
    /// event is its [`DocEvent::Sync`](super::DocEvent::Sync); then everyone else's
    /// updates as they happen. The document stays open until the handle is dropped or
    /// the connection ends.
    pub async fn open_doc(&self, doc_id: Uuid, version: Vec<u8>) -> Result<OpenDoc, Error> {
        OpenDoc::open(self.sender.clone(), self.docs.clone(), doc_id, version).await
    }
}

/// Runs an agent until `shutdown` resolves: connects (retrying with backoff), sends
/// `hello` (resuming its registration after a reconnect), heartbeats, and runs each
/// assigned task through `handler` — up to `hello.max_concurrency` at once, rejecting
/// the rest — answering `task_complete` or `task_fail`. `task_cancel` aborts the task.
pub async fn run_agent<H>(
    config: ClientConfig,
    mut hello: Hello,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error>
where
    H: Fn(TaskAssign, AgentContext) -> TaskFuture + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    tokio::pin!(shutdown);
    loop {
        let session = async {
            let mut connection = connect(&config).await?;
            connection.send(hello.clone()).await?;
            let welcome = match connection.recv().await {
                Some(Ok(Incoming::Message(Message::Welcome(w)))) => w,
                Some(Ok(Incoming::Message(Message::Error(e)))) => {
                    return Err(Error::WebSocket(
                        format!("registration refused: {} ({})", e.message, e.code).into(),
                    ));
                }
                Some(Err(e)) => return Err(e),
                _ => return Err(Error::Closed),
            };
            hello.agent_id = Some(welcome.agent_id);
            tracing::info!(agent_id = %welcome.agent_id, "registered");
            serve(
                &mut connection,
                &handler,
                &hello,
                Duration::from_millis(welcome.heartbeat_ms.max(100)),
            )
            .await
        };
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            result = session => match result {
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "connection lost; reconnecting"),
                Ok(()) => tracing::info!("connection closed; reconnecting"),
            },
        }
        tokio::time::sleep(config.backoff.initial).await;
    }
}

async fn serve<H>(
    connection: &mut super::Connection,
    handler: &Arc<H>,
    hello: &Hello,
    heartbeat: Duration,
) -> Result<(), Error>
where
    H: Fn(TaskAssign, AgentContext) -> TaskFuture + Send + Sync + 'static,
{
    let sender = connection.sender();
    let waiters: Waiters = Arc::default();
    let docs = ClosedAtEnd(OpenDocs::default());
    let running: Arc<Mutex<HashMap<Uuid, AbortHandle>>> = Arc::default();
    let submitted: Arc<Mutex<HashMap<Uuid, String>>> = Arc::default();
    let limit = hello.max_concurrency.unwrap_or(1) as usize;
    let mut ticker = tokio::time::interval(heartbeat);
    loop {
        let incoming = tokio::select! {
            incoming = connection.recv() => incoming,
            _ = ticker.tick() => {
                let active = running.lock().unwrap_or_else(PoisonError::into_inner).len() as u32;
                let load = f64::from(active) / limit.max(1) as f64;
                sender.try_send(Heartbeat::new(Some(active), Some(load)))?;
                continue;
            }
        };
        let message = match incoming {
            None => return Ok(()),
            Some(Ok(Incoming::Message(m))) => match docs.0.route(m, &sender) {
                Some(m) => m,
                None => continue,
            },
            Some(Ok(_)) => continue,
            Some(Err(e)) if e.close_code().is_some() || e.is_retryable() => return Err(e),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "bad message from the mesh");
                continue;
            }
        };
        match message {
            Message::TaskAssign(task) => {
                let task_id = task.task_id;
                let busy = running.lock().unwrap_or_else(PoisonError::into_inner).len() >= limit;
                if busy {
                    sender.send(TaskReject::new(task_id, "at capacity")).await?;
                    continue;
                }
                sender.send(TaskAccept::new(task_id)).await?;
                let context = AgentContext {
                    sender: sender.clone(),
                    task_id,
                    traceparent: task.traceparent.clone(),
                    waiters: waiters.clone(),
                    docs: docs.0.clone(),
                };
                let future = handler(task, context);
                let (sender, done) = (sender.clone(), running.clone());
                // The task starts once its abort handle is registered, so it cannot
                // finish (and unregister) first.
                let (go, registered) = oneshot::channel::<()>();
                let handle = tokio::spawn(async move {
                    let _ = registered.await;
                    let result = future.await;
                    done.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&task_id);
                    let _ = match result {
                        Ok(output) => sender.send(TaskComplete::new(task_id, output)).await,
                        Err(e) => {
                            sender
                                .send(TaskFail::new(task_id, e.message, e.retryable))
                                .await
                        }
                    };
                });
                running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(task_id, handle.abort_handle());
                let _ = go.send(());
            }
            Message::TaskCancel(cancel) => {
                if let Some(handle) = running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&cancel.task_id)
                {
                    handle.abort();
                }
            }
            Message::TaskSubmitted(s) => {
                submitted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(s.task_id, s.request_id);
            }
            Message::TaskUpdate(update) if is_final(update.status) => {
                let request = submitted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&update.task_id);
                if let Some(tx) = request.and_then(|r| {
                    waiters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&r)
                }) {
                    let _ = tx.send(update);
                }
            }
            Message::Error(e) => {
                tracing::warn!(code = %e.code, message = %e.message, "error from the mesh")
            }
            Message::Goodbye(_) => return Ok(()),
            _ => {}
        }
    }
}

/// A connection's open documents, whose events end with it however `serve` returns.
struct ClosedAtEnd(OpenDocs);

impl Drop for ClosedAtEnd {
    fn drop(&mut self) {
        self.0.clear();
    }
}

fn is_final(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::TimedOut
    )
}
