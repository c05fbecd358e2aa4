//! An open document: one task owns the replica, so every update is checked, stored,
//! applied and relayed in one order, and compaction never races an update.

use std::sync::Arc;
use std::time::Instant;

use mesh_crdt::{ReplicaId, VectorClock};
use mesh_router::{RateLimit, TokenBucket};
use mesh_store::{DynRepository, Query, StoreError};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::edit::Edit;
use super::error::DocError;
use super::limits::DocLimits;
use super::replica::{Decoded, Replica};
use crate::domain::{DocEdit, DocKind, SharedDoc, SharedDocId};

/// An update as it is relayed to a document's subscribers.
#[derive(Debug, Clone)]
pub struct Relayed {
    /// Who sent it: the `from` given to [`LiveDoc::apply`] (0 for the mesh's own
    /// edits), so a relay can skip its own connection's updates.
    pub from: u64,
    /// The update's bytes.
    pub update: Arc<Vec<u8>>,
}

/// What a newcomer needs: the operations it lacks and the mesh's version.
#[derive(Debug, Clone)]
pub struct Synced {
    /// What the document holds.
    pub kind: DocKind,
    /// The operations the caller lacks, as an update.
    pub update: Vec<u8>,
    /// The mesh's version vector, encoded.
    pub version: Vec<u8>,
}

type Reply<T> = oneshot::Sender<Result<T, DocError>>;

enum Command {
    Apply {
        from: u64,
        update: Vec<u8>,
        reply: Reply<()>,
    },
    Edit {
        edits: Vec<Edit>,
        reply: Reply<Value>,
    },
    Open {
        since: VectorClock,
        reply: Reply<(broadcast::Receiver<Relayed>, Synced)>,
    },
    Content {
        reply: Reply<Value>,
    },
    Stop,
}

/// A handle to an open document's task; cheap to clone. The task ends when the last
/// handle is dropped or the document is deleted; then its subscriptions end too.
#[derive(Clone)]
pub struct LiveDoc {
    id: SharedDocId,
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for LiveDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveDoc").field("id", &self.id).finish()
    }
}

/// Where a document is stored.
#[derive(Clone)]
pub(crate) struct Storage {
    pub(crate) tenant: String,
    pub(crate) docs: Arc<dyn DynRepository<SharedDoc>>,
    pub(crate) edits: Arc<dyn DynRepository<DocEdit>>,
}

impl LiveDoc {
    /// Loads `id` (its snapshot merged with its stored edits) and starts its task.
    pub(crate) async fn load(
        id: SharedDocId,
        storage: Storage,
        limits: Arc<DocLimits>,
    ) -> Result<Self, DocError> {
        let stored = storage
            .docs
            .get(&storage.tenant, *id.as_uuid())
            .await?
            .ok_or(DocError::NotFound(id))?;
        let replica = Replica::decode(stored.record.kind, &stored.record.snapshot, fresh_replica())
            .map_err(DocError::Corrupt)?;
        let (relay, _) = broadcast::channel(limits.relay_buffer.max(1));
        let (commands, rx) = mpsc::channel(256);
        let mut owner = Owner {
            id,
            replica,
            storage,
            bucket: TokenBucket::new(
                RateLimit::new(limits.updates_per_second, limits.burst),
                Instant::now(),
            ),
            unfolded: 0,
            limits,
            relay,
        };
        owner.unfolded = owner.catch_up().await?.len();
        if owner.unfolded >= owner.limits.compact_every {
            owner.compact().await?;
        }
        tokio::spawn(owner.run(rx));
        Ok(Self { id, commands })
    }

    /// The document's id.
    pub fn id(&self) -> SharedDocId {
        self.id
    }

    /// What a replica at `since` lacks and the mesh's version, with every update
    /// accepted after that: nothing falls between the two. The receiver ends when the
    /// document is deleted; one that lags behind has missed updates and should open
    /// again from its version.
    pub async fn open(
        &self,
        since: VectorClock,
    ) -> Result<(broadcast::Receiver<Relayed>, Synced), DocError> {
        self.ask(|reply| Command::Open { since, reply }).await
    }

    /// Stops the task (the document was deleted).
    pub(crate) async fn stop(&self) {
        let _ = self.commands.send(Command::Stop).await;
    }

    /// Checks, stores, applies and relays an update. `from` is any nonzero id the
    /// caller picks for its connection; it comes back in [`Relayed::from`].
    pub async fn apply(&self, from: u64, update: Vec<u8>) -> Result<(), DocError> {
        self.queue(from, update).await?.await
    }

    /// [`apply`](Self::apply) without waiting for the outcome: queues the update
    /// (after those queued before it) and returns what tells how it went. A
    /// connection that keeps sending while its earlier updates are stored has them
    /// written together.
    pub async fn queue(
        &self,
        from: u64,
        update: Vec<u8>,
    ) -> Result<impl Future<Output = Result<(), DocError>> + Send + 'static, DocError> {
        let (reply, outcome) = oneshot::channel();
        let id = self.id;
        self.commands
            .send(Command::Apply {
                from,
                update,
                reply,
            })
            .await
            .map_err(|_| DocError::NotFound(id))?;
        Ok(async move { outcome.await.map_err(|_| DocError::NotFound(id))? })
    }

    /// Applies edits made through the mesh (all or none); returns the new content.
    pub async fn edit(&self, edits: Vec<Edit>) -> Result<Value, DocError> {
        self.ask(|reply| Command::Edit { edits, reply }).await
    }

    /// The content as people read it: the text, or the state's paths and values.
    pub async fn content(&self) -> Result<Value, DocError> {
        self.ask(|reply| Command::Content { reply }).await
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, DocError> {
        let (tx, rx) = oneshot::channel();
        let gone = || DocError::NotFound(self.id);
        self.commands.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

/// Updates written together at most (those that queued while the last write ran).
const MAX_BATCH: usize = 256;

/// One store failure, for each of the updates of a batch it failed.
fn shared(e: &StoreError) -> StoreError {
    StoreError::Backend {
        backend: "shared documents",
        retryable: e.is_retryable(),
        source: e.to_string().into(),
    }
}

/// A replica id no other replica has: random, 64 bits.
fn fresh_replica() -> ReplicaId {
    ReplicaId(rand::random::<u64>() | 1)
}

/// The task that owns an open document.
struct Owner {
    id: SharedDocId,
    replica: Replica,
    storage: Storage,
    bucket: TokenBucket,
    /// Edits stored since the snapshot was last written by this task.
    unfolded: usize,
    limits: Arc<DocLimits>,
    relay: broadcast::Sender<Relayed>,
}

impl Owner {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut held = None;
        loop {
            let command = match held.take() {
                Some(command) => command,
                None => match rx.recv().await {
                    Some(command) => command,
                    None => return,
                },
            };
            match command {
                Command::Apply {
                    from,
                    update,
                    reply,
                } => {
                    // Updates that queued up meanwhile go with it: one write for all.
                    let mut batch = vec![(from, update, reply)];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Command::Apply {
                                from,
                                update,
                                reply,
                            }) => batch.push((from, update, reply)),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.accept_all(batch).await;
                }
                Command::Edit { edits, reply } => {
                    let _ = reply.send(self.edit(edits).await);
                }
                Command::Open { since, reply } => {
                    let synced = Synced {
                        kind: self.replica.kind(),
                        update: self.replica.update_since(&since),
                        version: self.replica.version().encode(),
                    };
                    let _ = reply.send(Ok((self.relay.subscribe(), synced)));
                }
                Command::Content { reply } => {
                    let _ = reply.send(Ok(self.replica.content()));
                }
                Command::Stop => return,
            }
            if self.unfolded >= self.limits.compact_every
                && let Err(e) = self.compact().await
            {
                tracing::warn!(doc = %self.id, error = %e, "compaction failed; will retry");
            }
        }
    }

    /// Updates from subscribers: each checked (limits, decode), those accepted stored
    /// together — one round trip, one commit — then applied and relayed in order. What
    /// is relayed is stored; what is refused changes nothing.
    async fn accept_all(&mut self, batch: Vec<(u64, Vec<u8>, Reply<()>)>) {
        let mut accepted = Vec::with_capacity(batch.len());
        let mut edits = Vec::with_capacity(batch.len());
        let mut growth = 0;
        // The version the replica will have after the updates accepted so far.
        let mut version = self.replica.version();
        for (from, update, reply) in batch {
            match self.check(&update, growth, &version) {
                Ok((decoded, after)) => {
                    growth += decoded.growth();
                    version = after;
                    accepted.push((from, decoded, reply));
                    edits.push(DocEdit::new(self.id, update));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        if edits.is_empty() {
            return;
        }
        let stored = self
            .storage
            .edits
            .create_many(&self.storage.tenant, &edits)
            .await;
        let stored = match stored {
            Ok(each) => each,
            Err(e) => {
                for (_, _, reply) in accepted {
                    let _ = reply.send(Err(DocError::Store(shared(&e))));
                }
                return;
            }
        };
        for (((from, decoded, reply), edit), stored) in accepted.into_iter().zip(edits).zip(stored)
        {
            let _ = reply.send(match stored {
                Ok(_) => {
                    self.unfolded += 1;
                    self.replica.apply(decoded);
                    self.publish(from, edit.update);
                    Ok(())
                }
                Err(e) => Err(e.into()),
            });
        }
    }

    /// Whether an update may be taken, `pending` units of growth after those taken
    /// with it, at `version`: its size, the document's rate, that it decodes, that it
    /// applies whole (nothing of it would wait: the snapshot could not carry what
    /// waits), the document's size. Returns the version after it.
    fn check(
        &mut self,
        update: &[u8],
        pending: usize,
        version: &VectorClock,
    ) -> Result<(Decoded, VectorClock), DocError> {
        let max = self.limits.max_update_bytes;
        if update.len() > max {
            return Err(DocError::UpdateTooLarge {
                len: update.len(),
                max,
            });
        }
        if !self.bucket.try_take(Instant::now()) {
            return Err(DocError::RateLimited);
        }
        let decoded = self
            .replica
            .decode_update(update)
            .map_err(DocError::BadUpdate)?;
        let mut after = version.clone();
        if !Replica::applies_at(&decoded, &mut after) {
            return Err(DocError::OutOfSync);
        }
        self.check_growth(pending.saturating_add(decoded.growth()))?;
        Ok((decoded, after))
    }

    /// Edits made through the mesh, on its own replica.
    async fn edit(&mut self, edits: Vec<Edit>) -> Result<Value, DocError> {
        if !self.bucket.try_take(Instant::now()) {
            return Err(DocError::RateLimited);
        }
        let growth = edits.iter().map(Edit::growth).sum();
        self.check_growth(growth)?;
        let update = super::edit::apply_all(&mut self.replica, &edits)?;
        if !update.is_empty() {
            if let Err(e) = self.store(&update).await {
                // The edit is in this replica already: the compaction that follows
                // this command writes it (or the next one, should that fail too).
                self.unfolded = self.limits.compact_every;
                return Err(e);
            }
            self.publish(0, update);
        }
        Ok(self.replica.content())
    }

    fn check_growth(&self, growth: usize) -> Result<(), DocError> {
        let kind = self.replica.kind();
        let max = match kind {
            DocKind::State => self.limits.max_state_paths,
            _ => self.limits.max_text_chars,
        };
        if self.replica.size().saturating_add(growth) > max {
            return Err(DocError::DocTooLarge { kind, max });
        }
        Ok(())
    }

    async fn store(&mut self, update: &[u8]) -> Result<(), DocError> {
        let edit = DocEdit::new(self.id, update.to_vec());
        self.storage
            .edits
            .create(&self.storage.tenant, &edit)
            .await?;
        self.unfolded += 1;
        Ok(())
    }

    fn publish(&self, from: u64, update: Vec<u8>) {
        let _ = self.relay.send(Relayed {
            from,
            update: Arc::new(update),
        });
    }

    /// Applies every stored edit (this instance's and any other's); returns them.
    async fn catch_up(&mut self) -> Result<Vec<DocEdit>, DocError> {
        let edits = self.stored_edits().await?;
        for edit in &edits {
            // An edit was checked when it was accepted; one that no longer decodes
            // (written by a newer version?) is skipped rather than blocking the
            // document.
            match self.replica.decode_update(&edit.update) {
                Ok(decoded) => self.replica.apply(decoded),
                Err(e) => tracing::warn!(doc = %self.id, error = %e, "skipping a stored edit"),
            }
        }
        Ok(edits)
    }

    async fn stored_edits(&self) -> Result<Vec<DocEdit>, StoreError> {
        let filter = self.id.to_string();
        let mut query = Query::new()
            .filter("doc_id", filter.as_str())
            .limit(Query::MAX_LIMIT);
        let mut all = Vec::new();
        loop {
            let page = self
                .storage
                .edits
                .list(&self.storage.tenant, &query)
                .await?;
            all.extend(page.items.into_iter().map(|v| v.record));
            match page.next {
                Some(next) => query = query.after(next),
                None => return Ok(all),
            }
        }
    }

    /// Folds the stored edits into the snapshot: applies them all (another instance's
    /// too), merges the stored snapshot (another instance may have written one), writes
    /// the merged state, then deletes the folded edits. A crash between the write and
    /// the deletes leaves edits that apply again as no-ops.
    async fn compact(&mut self) -> Result<(), DocError> {
        let edits = self.catch_up().await?;
        let tenant = self.storage.tenant.clone();
        let mut attempts = 0;
        loop {
            let Some(stored) = self.storage.docs.get(&tenant, *self.id.as_uuid()).await? else {
                return Err(DocError::NotFound(self.id));
            };
            if !stored.record.snapshot.is_empty() {
                let theirs =
                    Replica::decode(stored.record.kind, &stored.record.snapshot, ReplicaId(0))
                        .map_err(DocError::Corrupt)?;
                self.replica.merge(&theirs);
            }
            let mut record = stored.record;
            record.snapshot = self.replica.encode();
            match self
                .storage
                .docs
                .update(&tenant, &record, stored.version)
                .await
            {
                Ok(_) => break,
                Err(StoreError::Conflict { .. }) if attempts < 5 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
        let folded: Vec<_> = edits.iter().map(|edit| edit.id).collect();
        self.storage.edits.delete_many(&tenant, &folded).await?;
        self.unfolded = 0;
        Ok(())
    }
}
