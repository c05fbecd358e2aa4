//! Group commit: callers hand their writes to one writer task per repository, which
//! writes whatever queued up while earlier batches committed — creates with one
//! `create_many`, updates with one `update_many`, per tenant (one round trip and one
//! commit each on PostgreSQL, one transaction on SQLite). Each caller still waits for
//! its own write to be durable before it goes on, and gets what a single `create` or
//! `update` would have given it (`AlreadyExists`, `Conflict`, `NotFound`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use mesh_store::{DynRepository, Record, StoreError, Versioned};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

/// The most writes taken into one batch.
const MAX_BATCH: usize = 512;

/// Batches committing at once. Batches are independent — a caller's next write of a
/// record waits for its previous one — so several can be in flight, each on its own
/// connection; a caller then waits behind at most a short queue, not every batch.
const IN_FLIGHT: usize = 2;

type Reply<T> = oneshot::Sender<Result<Versioned<T>, StoreError>>;

enum Write<T> {
    Create(T),
    Update(T, u64),
}

impl<T: Record> Write<T> {
    fn id(&self) -> Uuid {
        match self {
            Write::Create(r) | Write::Update(r, _) => r.id(),
        }
    }

    fn is_create(&self) -> bool {
        matches!(self, Write::Create(_))
    }
}

struct Op<T> {
    tenant: String,
    write: Write<T>,
    reply: Reply<T>,
}

/// A handle to the writer task of one repository.
pub(super) struct Committer<T> {
    queue: mpsc::UnboundedSender<Op<T>>,
}

impl<T> Clone for Committer<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Record> Committer<T> {
    /// Starts the writer over `repository`; it ends when every handle is dropped.
    pub(super) fn start(repository: Arc<dyn DynRepository<T>>) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(write(repository, pending));
        Self { queue }
    }

    /// Stores `record` for `tenant` at version 1; done once it is durable.
    pub(super) async fn create(&self, tenant: &str, record: T) -> Result<Versioned<T>, StoreError> {
        self.submit(tenant, Write::Create(record)).await
    }

    /// Replaces `record` if its stored version is `expected`; done once it is durable.
    pub(super) async fn update(
        &self,
        tenant: &str,
        record: T,
        expected: u64,
    ) -> Result<Versioned<T>, StoreError> {
        self.submit(tenant, Write::Update(record, expected)).await
    }

    async fn submit(&self, tenant: &str, write: Write<T>) -> Result<Versioned<T>, StoreError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send(Op {
                tenant: tenant.to_owned(),
                write,
                reply,
            })
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

async fn write<T: Record>(
    repository: Arc<dyn DynRepository<T>>,
    mut pending: mpsc::UnboundedReceiver<Op<T>>,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // While every slot is busy, writes queue up into the next batch.
    while let Ok(slot) = slots.clone().acquire_owned().await {
        let Some(first) = pending.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let repository = repository.clone();
        tokio::spawn(async move {
            let mut by_tenant: BTreeMap<String, Vec<Op<T>>> = BTreeMap::new();
            for op in batch {
                by_tenant.entry(op.tenant.clone()).or_default().push(op);
            }
            for (tenant, ops) in by_tenant {
                for segment in segments(ops) {
                    commit(repository.as_ref(), &tenant, segment).await;
                }
            }
            drop(slot);
        });
    }
}

/// Splits one tenant's writes, in order, into runs one statement can apply: all
/// creates or all updates, no record twice.
fn segments<T: Record>(ops: Vec<Op<T>>) -> Vec<Vec<Op<T>>> {
    let mut out: Vec<Vec<Op<T>>> = Vec::new();
    let mut ids = HashSet::new();
    for op in ops {
        let fits = out.last().is_some_and(|segment| {
            segment[0].write.is_create() == op.write.is_create() && !ids.contains(&op.write.id())
        });
        if !fits {
            out.push(Vec::new());
            ids.clear();
        }
        ids.insert(op.write.id());
        if let Some(segment) = out.last_mut() {
            segment.push(op);
        }
    }
    out
}

/// Writes one segment and answers each of its callers.
async fn commit<T: Record>(repository: &dyn DynRepository<T>, tenant: &str, segment: Vec<Op<T>>) {
    let mut records = Vec::with_capacity(segment.len());
    let mut updates = Vec::with_capacity(segment.len());
    let mut replies = Vec::with_capacity(segment.len());
    for op in segment {
        match op.write {
            Write::Create(record) => records.push(record),
            Write::Update(record, expected) => updates.push((record, expected)),
        }
        replies.push(op.reply);
    }
    // One write alone goes as a single statement (cheaper than a batch of one).
    let results = match (records.as_slice(), updates.as_slice()) {
        ([record], []) => Ok(vec![repository.create(tenant, record).await]),
        ([], [(record, expected)]) => Ok(vec![repository.update(tenant, record, *expected).await]),
        (_, []) => repository.create_many(tenant, &records).await,
        _ => repository.update_many(tenant, &updates).await,
    };
    match results {
        Ok(results) => {
            for (result, reply) in results.into_iter().zip(replies) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let (retryable, message) = (e.is_retryable(), e.to_string());
            for reply in replies {
                let _ = reply.send(Err(StoreError::Backend {
                    backend: "group commit",
                    retryable,
                    source: message.clone().into(),
                }));
            }
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Backend {
        backend: "group commit",
        retryable: true,
        source: "the writer task stopped".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_store::{MemoryRepository, Repository};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Note {
        id: Uuid,
        text: String,
    }

    impl Record for Note {
        const COLLECTION: &'static str = "notes";
        fn id(&self) -> Uuid {
            self.id
        }
    }

    fn note(text: &str) -> Note {
        Note {
            id: Uuid::now_v7(),
            text: text.into(),
        }
    }

    /// Many writers at once: each gets what a single write would give, in order per
    /// record, and everything lands.
    #[tokio::test]
    async fn grouped_writes_answer_like_single_ones() {
        let repository = Arc::new(MemoryRepository::<Note>::new());
        let committer = Committer::start(repository.clone());
        let writers: Vec<_> = (0..64)
            .map(|i| {
                let committer = committer.clone();
                tokio::spawn(async move {
                    let tenant = format!("t{}", i % 3);
                    let mut n = note("first");
                    let created = committer.create(&tenant, n.clone()).await.unwrap();
                    assert_eq!(created.version, 1);
                    let again = committer.create(&tenant, n.clone()).await;
                    assert!(matches!(again, Err(StoreError::AlreadyExists { .. })));
                    n.text = "second".into();
                    let updated = committer.update(&tenant, n.clone(), 1).await.unwrap();
                    assert_eq!(updated.version, 2);
                    let stale = committer.update(&tenant, n.clone(), 1).await;
                    assert!(matches!(stale, Err(StoreError::Conflict { .. })));
                    (tenant, n)
                })
            })
            .collect();
        for writer in writers {
            let (tenant, n) = writer.await.unwrap();
            let stored = Repository::get(repository.as_ref(), &tenant, n.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((stored.version, stored.record), (2, n));
        }
    }

    #[test]
    fn segments_keep_order_and_never_repeat_a_record() {
        let (a, b) = (note("a"), note("b"));
        let op = |write| Op {
            tenant: "t".into(),
            write,
            reply: oneshot::channel().0,
        };
        let ops = vec![
            op(Write::Create(a.clone())),
            op(Write::Create(b.clone())),
            op(Write::Update(a.clone(), 1)),
            op(Write::Update(b.clone(), 1)),
            op(Write::Update(a.clone(), 2)),
        ];
        let shape: Vec<Vec<(bool, Uuid)>> = segments(ops)
            .iter()
            .map(|s| {
                s.iter()
                    .map(|o| (o.write.is_create(), o.write.id()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            [
                vec![(true, a.id), (true, b.id)],
                vec![(false, a.id), (false, b.id)],
                vec![(false, a.id)],
            ]
        );
    }
}
