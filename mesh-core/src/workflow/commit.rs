//! Group commit of journal entries: drivers hand their checkpoints to one writer task,
//! which writes whatever has queued up while the previous batch committed in one
//! `create_many` per tenant (one round trip and one commit on PostgreSQL). Each driver
//! still waits for its own entry to be durable before it goes on; a taken entry id
//! comes back to it as `AlreadyExists`, as a single create would.

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_store::{DynRepository, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::Checkpoint;

/// The most entries written in one batch.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// A handle to the writer task.
#[derive(Clone)]
pub(super) struct Committer {
    queue: mpsc::UnboundedSender<(String, Checkpoint, Reply)>,
}

impl Committer {
    /// Starts the writer over `checkpoints`; it ends when every handle is dropped.
    pub(super) fn start(checkpoints: Arc<dyn DynRepository<Checkpoint>>) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(write(checkpoints, pending));
        Self { queue }
    }

    /// Writes `entry` for `tenant`; done once it is durable.
    pub(super) async fn append(&self, tenant: &str, entry: Checkpoint) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send((tenant.to_owned(), entry, reply))
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

async fn write(
    checkpoints: Arc<dyn DynRepository<Checkpoint>>,
    mut pending: mpsc::UnboundedReceiver<(String, Checkpoint, Reply)>,
) {
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut by_tenant: BTreeMap<String, (Vec<Checkpoint>, Vec<Reply>)> = BTreeMap::new();
        for (tenant, entry, reply) in batch {
            let slot = by_tenant.entry(tenant).or_default();
            slot.0.push(entry);
            slot.1.push(reply);
        }
        for (tenant, (entries, replies)) in by_tenant {
            match checkpoints.create_many(&tenant, &entries).await {
                Ok(results) => {
                    for (result, reply) in results.into_iter().zip(replies) {
                        let _ = reply.send(result.map(drop));
                    }
                }
                Err(e) => {
                    let (retryable, message) = (e.is_retryable(), e.to_string());
                    for reply in replies {
                        let _ = reply.send(Err(StoreError::Backend {
                            backend: "journal",
                            retryable,
                            source: message.clone().into(),
                        }));
                    }
                }
            }
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Backend {
        backend: "journal",
        retryable: true,
        source: "the journal writer stopped".into(),
    }
}
