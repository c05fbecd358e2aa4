//! The audit log's records, hash-chained per tenant: each record's hash covers its
//! fields and the previous record's hash, so altering a stored record breaks its own
//! hash and deleting one breaks the sequence — [`verify`] finds both.

use chrono::{DateTime, Utc};
use mesh_store::Record;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether the request was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub enum Decision {
    /// Allowed (and attempted).
    Allowed,
    /// Refused: bad credentials, a missing permission, a rate limit.
    Refused,
}

impl Decision {
    /// Its snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Refused => "refused",
        }
    }
}

/// What happened, before it takes its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Who: the caller's subject (`key:<id>`, `jwt:<tenant>:<sub>`), or `anonymous`.
    pub actor: String,
    /// What, as `<resource>.<verb>`: `task.submit`, `tool.execute`, `role.update`, …
    pub action: String,
    /// To what: `task:<id>`, `tool:<name>`, `key:<id>`, or a route.
    pub resource: String,
    /// Allowed or refused.
    pub decision: Decision,
    /// The request's `x-request-id`, or the MCP or hub request's id.
    pub request_id: Option<String>,
}

impl AuditEntry {
    /// An entry.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
        decision: Decision,
        request_id: Option<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            resource: resource.into(),
            decision,
            request_id,
        }
    }
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct AuditRecord {
    /// Its id (derived from the tenant and `seq`: one record per place in the chain).
    pub id: Uuid,
    /// The tenant whose chain it is in.
    pub tenant: String,
    /// Its place in the tenant's chain, from 1.
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub resource: String,
    /// Allowed or refused.
    pub decision: Decision,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The previous record's hash (64 zeros for the first).
    pub prev: String,
    /// SHA-256 of this record's fields and `prev`, hex.
    pub hash: String,
}

impl Record for AuditRecord {
    const COLLECTION: &'static str = "audit";
    const INDEXED: &'static [&'static str] = &["seq", "actor", "action", "resource", "decision"];
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Where a tenant's chain ends: the last record's `seq` and hash. Advanced (with
/// optimistic concurrency) before a batch of records is written, so two writers
/// never take the same places, and a deleted tail still shows as missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditHead {
    /// Its id (one per tenant: [`AuditRecord::id_of`] with `seq` 0).
    pub id: Uuid,
    /// The last record's place.
    pub seq: u64,
    /// The last record's hash.
    pub hash: String,
}

impl Record for AuditHead {
    const COLLECTION: &'static str = "audit_heads";
    fn id(&self) -> Uuid {
        self.id
    }
}

/// The chain's start: what the first record's `prev` is.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditRecord {
    /// `entry` as record `seq` of `tenant`'s chain, after the record hashed `prev`.
    pub fn chained(tenant: &str, seq: u64, prev: &str, at: DateTime<Utc>, e: AuditEntry) -> Self {
        let mut record = Self {
            id: Self::id_of(tenant, seq),
            tenant: tenant.to_owned(),
            seq,
            at,
            actor: e.actor,
            action: e.action,
            resource: e.resource,
            decision: e.decision,
            request_id: e.request_id,
            prev: prev.to_owned(),
            hash: String::new(),
        };
        record.hash = record.digest();
        record
    }

    /// The id of `tenant`'s record `seq`.
    pub fn id_of(tenant: &str, seq: u64) -> Uuid {
        super::ids::derived_id(&format!("audit:{tenant}:{seq}"))
    }

    /// The hash its fields and `prev` give (what `hash` holds if nobody altered it).
    pub fn digest(&self) -> String {
        let fields = serde_json::json!([
            self.tenant,
            self.seq,
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            self.actor,
            self.action,
            self.resource,
            self.decision.as_str(),
            self.request_id,
            self.prev,
        ]);
        super::keys::hash_key(&fields.to_string())
    }
}

/// What is wrong at one place in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub enum Break {
    /// The record's fields no longer give its hash: it was altered.
    Altered,
    /// Records are missing before this one: deleted.
    Missing,
    /// Its `prev` is not the previous record's hash: that one was altered and rehashed,
    /// or this one was.
    Unlinked,
}

/// One broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub struct BrokenLink {
    /// Where: the record's `seq` (for `missing`, the first missing `seq`).
    pub seq: u64,
    /// What.
    pub problem: Break,
}

/// Walks a chain in `seq` order, record by record: [`Chain::push`] each, then read
/// what broke.
#[derive(Debug, Clone)]
pub struct Chain {
    tenant: String,
    next_seq: u64,
    prev: String,
    /// Records seen.
    pub records: u64,
    /// The broken links, first first (at most [`Chain::MAX_BREAKS`]).
    pub breaks: Vec<BrokenLink>,
}

impl Chain {
    /// A walk over `tenant`'s chain (a record of another tenant's counts as altered).
    pub fn new(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            next_seq: 1,
            prev: GENESIS.to_owned(),
            records: 0,
            breaks: Vec::new(),
        }
    }

    /// The most broken links reported.
    pub const MAX_BREAKS: usize = 100;

    /// Checks the next record.
    pub fn push(&mut self, record: &AuditRecord) {
        self.records += 1;
        if record.seq != self.next_seq {
            self.broke(self.next_seq, Break::Missing);
        } else if record.prev != self.prev {
            self.broke(record.seq, Break::Unlinked);
        }
        if record.digest() != record.hash || record.tenant != self.tenant {
            self.broke(record.seq, Break::Altered);
        }
        self.next_seq = record.seq + 1;
        self.prev = record.hash.clone();
    }

    fn broke(&mut self, seq: u64, problem: Break) {
        if self.breaks.len() < Self::MAX_BREAKS {
            self.breaks.push(BrokenLink { seq, problem });
        }
    }

    /// The last record's hash: publish it elsewhere to detect a truncated tail.
    pub fn head(&self) -> &str {
        &self.prev
    }
}

/// Checks `tenant`'s `records` (in `seq` order); the broken links, first first.
pub fn verify<'a>(
    tenant: &str,
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Vec<BrokenLink> {
    let mut chain = Chain::new(tenant);
    records.into_iter().for_each(|r| chain.push(r));
    chain.breaks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let entry = AuditEntry::new(
                    "key:1",
                    "task.submit",
                    format!("task:{seq}"),
                    Decision::Allowed,
                    None,
                );
                let record = AuditRecord::chained("t", seq, &prev, Utc::now(), entry);
                prev = record.hash.clone();
                record
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert!(verify("t", &chain(5)).is_empty());
        // Another tenant's records do not pass for this one's.
        assert_eq!(verify("u", &chain(1))[0].problem, Break::Altered);
        assert_ne!(AuditRecord::id_of("t", 1), AuditRecord::id_of("u", 1));
    }

    #[test]
    fn alterations_and_deletions_are_found() {
        let mut records = chain(6);
        records[1].actor = "key:2".into();
        records.remove(3);
        assert_eq!(
            verify("t", &records),
            vec![
                BrokenLink {
                    seq: 2,
                    problem: Break::Altered
                },
                BrokenLink {
                    seq: 4,
                    problem: Break::Missing
                },
            ]
        );
        // Rehashing the altered record moves the break to the next link.
        let mut records = chain(3);
        records[1].resource = "task:9".into();
        records[1].hash = records[1].digest();
        assert_eq!(
            verify("t", &records),
            vec![BrokenLink {
                seq: 3,
                problem: Break::Unlinked
            }]
        );
    }
}
