//! The audit log: entries queued by the surfaces, chained and written in batches by
//! one writer task — per tenant, one head update (which reserves the places) and one
//! `create_many` per batch, however many requests wait on it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mesh_store::{Direction, DynRepository, Query, StoreError};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::error::AccessError;
use crate::domain::{
    AuditEntry, AuditHead, AuditRecord, Break, BrokenLink, Chain, Decision, GENESIS,
};

/// Entries waiting for the writer; past it, [`AuditLog::record_later`] drops (and
/// logs) and [`AuditLog::record`] waits.
const QUEUE: usize = 65_536;
/// The most entries one batch writes.
const MAX_BATCH: usize = 1_000;
/// Records one listing reads to fill a page filtered by time.
const MAX_SCAN: usize = 10_000;

type Done = oneshot::Sender<Result<(), String>>;

/// What the writer is sent: an entry (told when stored, if someone waits), or a flush
/// (told once everything sent before it is stored).
enum Queued {
    Entry {
        tenant: String,
        entry: AuditEntry,
        done: Option<Done>,
    },
    Flush(Done),
}

/// The audit log. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Queued>,
    records: Arc<dyn DynRepository<AuditRecord>>,
    heads: Arc<dyn DynRepository<AuditHead>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

/// Which records to list: each set field must match; newest first.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "rest", into_params(parameter_in = Query))]
#[non_exhaustive]
pub struct AuditFilter {
    /// The actor (`key:<id>`, `jwt:<tenant>:<sub>`, `anonymous`).
    pub actor: Option<String>,
    /// The action (`task.submit`, …).
    pub action: Option<String>,
    /// The resource (`task:<id>`, …).
    pub resource: Option<String>,
    /// `allowed` or `refused`.
    pub decision: Option<Decision>,
    /// Written at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Written before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1–1,000 (default 100).
    pub limit: Option<usize>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// A page of records, newest first.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What checking a tenant's chain found.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub struct Verification {
    /// Whether the chain is whole.
    pub ok: bool,
    /// Records read.
    pub records: u64,
    /// Where the chain ends: the head's `seq`.
    pub head_seq: u64,
    /// The last record's hash (keep it elsewhere to prove the log later).
    pub head_hash: String,
    /// The first broken link, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_break: Option<BrokenLink>,
    /// Every broken link found (at most 100), first first.
    pub breaks: Vec<BrokenLink>,
}

impl AuditLog {
    /// A log on these repositories, its writer spawned on the current runtime.
    pub(super) fn start(
        records: Arc<dyn DynRepository<AuditRecord>>,
        heads: Arc<dyn DynRepository<AuditHead>>,
    ) -> Self {
        let (queue, incoming) = mpsc::channel(QUEUE);
        tokio::spawn(write(incoming, records.clone(), heads.clone()));
        Self {
            queue,
            records,
            heads,
        }
    }

    /// Appends `entry` to `tenant`'s chain; resolves once it is stored (with the other
    /// entries of its batch).
    pub async fn record(&self, tenant: &str, entry: AuditEntry) -> Result<(), AccessError> {
        let (done, stored) = oneshot::channel();
        let pending = Queued::Entry {
            tenant: tenant.to_owned(),
            entry,
            done: Some(done),
        };
        let gone = || AccessError::Unavailable("the audit writer has stopped".into());
        self.queue.send(pending).await.map_err(|_| gone())?;
        match stored.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AccessError::Unavailable(e)),
            Err(_) => Err(gone()),
        }
    }

    /// Appends `entry` without waiting: what the surfaces do, so a request never waits
    /// for a store write and a flood of refusals cannot hold the request path. The
    /// writer stores it with its batch (within a store write's time); past
    /// 65,536 queued entries it is dropped, with a warning.
    pub fn record_later(&self, tenant: &str, entry: AuditEntry) {
        let pending = Queued::Entry {
            tenant: tenant.to_owned(),
            entry,
            done: None,
        };
        if let Err(
            mpsc::error::TrySendError::Full(Queued::Entry { entry, .. })
            | mpsc::error::TrySendError::Closed(Queued::Entry { entry, .. }),
        ) = self.queue.try_send(pending)
        {
            tracing::warn!(action = %entry.action, actor = %entry.actor, "audit queue full: record dropped");
        }
    }

    /// Waits until everything queued before it is stored.
    pub async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        if self.queue.send(Queued::Flush(done)).await.is_ok() {
            let _ = stored.await;
        }
    }

    /// A page of `tenant`'s records matching `filter`, newest first.
    pub async fn list(&self, tenant: &str, filter: &AuditFilter) -> Result<AuditPage, AccessError> {
        let limit = filter.limit.unwrap_or(100);
        if !(1..=Query::MAX_LIMIT).contains(&limit) {
            return Err(AccessError::Invalid(format!(
                "limit is 1 to {}",
                Query::MAX_LIMIT
            )));
        }
        let mut query = Query::new()
            .order_by("seq", Direction::Descending)
            .limit(limit);
        for (field, value) in [
            ("actor", &filter.actor),
            ("action", &filter.action),
            ("resource", &filter.resource),
        ] {
            if let Some(value) = value {
                query = query.filter(field, value.clone());
            }
        }
        if let Some(decision) = filter.decision {
            query = query.filter("decision", decision.as_str());
        }
        if let Some(cursor) = &filter.cursor {
            query = query.after(cursor.clone());
        }
        let mut records = Vec::new();
        let mut scanned = 0;
        loop {
            let page = self.records.list(tenant, &query).await?;
            scanned += page.items.len();
            let mut older = false;
            for item in page.items {
                let at = item.record.at;
                if filter.since.is_some_and(|since| at < since) {
                    older = true;
                    break;
                }
                if filter.until.is_none_or(|until| at < until) {
                    records.push(item.record);
                }
            }
            match page.next {
                Some(next) if !older && records.len() < limit && scanned < MAX_SCAN => {
                    query = query.after(next);
                }
                next => {
                    records.truncate(limit);
                    let next = if older { None } else { next };
                    return Ok(AuditPage { records, next });
                }
            }
        }
    }

    /// Checks `tenant`'s whole chain: every record's hash, every link, no place
    /// missing up to the head.
    pub async fn verify(&self, tenant: &str) -> Result<Verification, AccessError> {
        let mut chain = Chain::new(tenant);
        let mut last_seq = 0;
        let mut query = Query::new()
            .order_by("seq", Direction::Ascending)
            .limit(Query::MAX_LIMIT);
        loop {
            let page = self.records.list(tenant, &query).await?;
            for item in &page.items {
                chain.push(&item.record);
                last_seq = item.record.seq;
            }
            match page.next {
                Some(next) => query = query.after(next),
                None => break,
            }
        }
        let head = self
            .heads
            .get(tenant, AuditRecord::id_of(tenant, 0))
            .await?
            .map(|v| v.record);
        let head_seq = head.as_ref().map_or(0, |h| h.seq);
        let mut breaks = chain.breaks.clone();
        if head_seq > last_seq && breaks.len() < Chain::MAX_BREAKS {
            // The tail was deleted: the head still counts it.
            breaks.push(BrokenLink {
                seq: last_seq + 1,
                problem: Break::Missing,
            });
        }
        Ok(Verification {
            ok: breaks.is_empty(),
            records: chain.records,
            head_seq,
            head_hash: head.map_or_else(|| GENESIS.to_owned(), |h| h.hash),
            first_break: breaks.first().copied(),
            breaks,
        })
    }
}

/// The writer: takes what is queued, writes it per tenant, tells the waiters.
async fn write(
    mut incoming: mpsc::Receiver<Queued>,
    records: Arc<dyn DynRepository<AuditRecord>>,
    heads: Arc<dyn DynRepository<AuditHead>>,
) {
    let mut known: HashMap<String, (AuditHead, u64)> = HashMap::new();
    while let Some(first) = incoming.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match incoming.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut by_tenant: HashMap<String, (Vec<AuditEntry>, Vec<Done>)> = HashMap::new();
        let mut flushes = Vec::new();
        for queued in batch {
            match queued {
                Queued::Entry {
                    tenant,
                    entry,
                    done,
                } => {
                    let (entries, waiters) = by_tenant.entry(tenant).or_default();
                    entries.push(entry);
                    waiters.extend(done);
                }
                Queued::Flush(done) => flushes.push(done),
            }
        }
        for (tenant, (entries, waiters)) in by_tenant {
            let result = append(&*records, &*heads, &mut known, &tenant, entries)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, tenant, "audit records not written");
                    e.to_string()
                });
            for done in waiters {
                let _ = done.send(result.clone());
            }
        }
        for done in flushes {
            let _ = done.send(Ok(()));
        }
    }
}

/// Chains `entries` onto `tenant`'s log: reserves their places by advancing the head
/// (re-read and retried when another writer moved it), then writes them.
async fn append(
    records: &dyn DynRepository<AuditRecord>,
    heads: &dyn DynRepository<AuditHead>,
    known: &mut HashMap<String, (AuditHead, u64)>,
    tenant: &str,
    entries: Vec<AuditEntry>,
) -> Result<(), AccessError> {
    let head_id = AuditRecord::id_of(tenant, 0);
    for _ in 0..16 {
        let (head, version) = match known.remove(tenant) {
            Some(cached) => cached,
            None => match heads.get(tenant, head_id).await? {
                Some(stored) => (stored.record, stored.version),
                None => (
                    AuditHead {
                        id: head_id,
                        seq: 0,
                        hash: GENESIS.to_owned(),
                    },
                    0,
                ),
            },
        };
        let at = Utc::now();
        let mut prev = head.hash.clone();
        let chained: Vec<AuditRecord> = entries
            .iter()
            .zip(head.seq + 1..)
            .map(|(entry, seq)| {
                let record = AuditRecord::chained(tenant, seq, &prev, at, entry.clone());
                prev = record.hash.clone();
                record
            })
            .collect();
        let next = AuditHead {
            id: head_id,
            seq: head.seq + chained.len() as u64,
            hash: prev,
        };
        let reserved = if version == 0 {
            heads.create(tenant, &next).await
        } else {
            heads.update(tenant, &next, version).await
        };
        let reserved = match reserved {
            Ok(stored) => stored,
            Err(StoreError::AlreadyExists { .. } | StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        known.insert(tenant.to_owned(), (next, reserved.version));
        for result in records.create_many(tenant, &chained).await? {
            result?;
        }
        return Ok(());
    }
    Err(AccessError::Unavailable(
        "the audit head kept moving".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TenantId;

    fn entry(action: &str, decision: Decision) -> AuditEntry {
        AuditEntry::new("key:1", action, "task:1", decision, Some("r".into()))
    }

    #[tokio::test]
    async fn two_writers_on_one_chain_never_take_the_same_place() {
        let engine = crate::Engine::in_memory().await;
        let journal = engine.journal();
        let [a, b] =
            [0, 1].map(|_| AuditLog::start(journal.audit.clone(), journal.audit_heads.clone()));
        let tenant = TenantId::new().to_string();
        let writes: Vec<_> = (0..200)
            .map(|i| {
                let log = if i % 2 == 0 { a.clone() } else { b.clone() };
                let tenant = tenant.clone();
                tokio::spawn(async move {
                    log.record(&tenant, entry("task.submit", Decision::Allowed))
                        .await
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        let verified = a.verify(&tenant).await.unwrap();
        assert!(verified.ok, "{:?}", verified.breaks);
        assert_eq!((verified.records, verified.head_seq), (200, 200));
    }

    #[tokio::test]
    async fn listings_filter_and_page_newest_first() {
        let engine = crate::Engine::in_memory().await;
        let journal = engine.journal();
        let log = AuditLog::start(journal.audit.clone(), journal.audit_heads.clone());
        let tenant = TenantId::new().to_string();
        for i in 0..30 {
            let decision = if i % 3 == 0 {
                Decision::Refused
            } else {
                Decision::Allowed
            };
            log.record_later(&tenant, entry("task.submit", decision));
        }
        log.flush().await;
        let refused = AuditFilter {
            decision: Some(Decision::Refused),
            limit: Some(4),
            ..AuditFilter::default()
        };
        let first = log.list(&tenant, &refused).await.unwrap();
        assert_eq!(
            first.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![28, 25, 22, 19]
        );
        let rest = AuditFilter {
            cursor: first.next.clone(),
            limit: Some(100),
            ..refused
        };
        let second = log.list(&tenant, &rest).await.unwrap();
        assert_eq!(second.records.len(), 6);
        assert!(second.next.is_none());
        let future = AuditFilter {
            since: Some(Utc::now() + chrono::Duration::hours(1)),
            ..AuditFilter::default()
        };
        assert!(log.list(&tenant, &future).await.unwrap().records.is_empty());
    }
}
