use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{read, write};
use crate::record::{Cursor, cmp_json, field};
use crate::{Direction, Page, Query, Record, Repository, Result, StoreError, Versioned};

/// A record as stored: the value itself, so create, get and update only clone it;
/// filters and sorting read its JSON form, made when a query needs it.
#[derive(Debug, Clone)]
struct Stored<T> {
    record: T,
    version: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl<T: Record> Stored<T> {
    fn versioned(&self) -> Versioned<T> {
        Versioned::new(
            self.record.clone(),
            self.version,
            self.created_at,
            self.updated_at,
        )
    }
}

/// Records in memory, per tenant, ordered by id.
#[derive(Debug)]
pub struct MemoryRepository<T> {
    tenants: RwLock<HashMap<String, BTreeMap<Uuid, Stored<T>>>>,
    _record: PhantomData<fn() -> T>,
}

impl<T> Default for MemoryRepository<T> {
    fn default() -> Self {
        Self {
            tenants: RwLock::new(HashMap::new()),
            _record: PhantomData,
        }
    }
}

impl<T: Record> MemoryRepository<T> {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }
}

fn matches(data: &Value, filters: &[(String, Value)]) -> bool {
    filters.iter().all(|(f, v)| data.get(f) == Some(v))
}

impl<T: Record> Repository<T> for MemoryRepository<T> {
    async fn create(&self, tenant: &str, record: &T) -> Result<Versioned<T>> {
        let now = Utc::now();
        let mut tenants = write(&self.tenants);
        let records = tenants.entry(tenant.to_owned()).or_default();
        let id = record.id();
        if records.contains_key(&id) {
            return Err(StoreError::AlreadyExists {
                collection: T::COLLECTION,
                id,
            });
        }
        let stored = Stored {
            record: record.clone(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let out = stored.versioned();
        records.insert(id, stored);
        Ok(out)
    }

    async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Versioned<T>>> {
        let tenants = read(&self.tenants);
        Ok(tenants
            .get(tenant)
            .and_then(|r| r.get(&id))
            .map(Stored::versioned))
    }

    async fn list(&self, tenant: &str, query: &Query) -> Result<Page<T>> {
        query.check_fields()?;
        let limit = query.checked_limit()?;
        let cursor = query.decoded_cursor()?;
        let tenants = read(&self.tenants);
        let Some(records) = tenants.get(tenant) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let json = |s: &Stored<T>| serde_json::to_value(&s.record);
        let mut picked: Vec<(Value, Uuid, &Stored<T>)> = Vec::with_capacity(limit + 1);
        match &query.order_by {
            None => {
                let start = cursor
                    .as_ref()
                    .map_or(Bound::Unbounded, |c| Bound::Excluded(c.id));
                for (id, s) in records.range((start, Bound::Unbounded)) {
                    if query.filters.is_empty() || matches(&json(s)?, &query.filters) {
                        picked.push((Value::Null, *id, s));
                        if picked.len() > limit {
                            break;
                        }
                    }
                }
            }
            Some((name, direction)) => {
                let ordered = |o: std::cmp::Ordering| {
                    if *direction == Direction::Descending {
                        o.reverse()
                    } else {
                        o
                    }
                };
                let mut all = Vec::new();
                for (id, s) in records {
                    let data = json(s)?;
                    if !matches(&data, &query.filters) {
                        continue;
                    }
                    let value = field(&data, name);
                    let after_cursor = cursor.as_ref().is_none_or(|c| {
                        ordered(cmp_json(&value, &c.value).then(id.cmp(&c.id))).is_gt()
                    });
                    if after_cursor {
                        all.push((value, *id, s));
                    }
                }
                all.sort_by(|a, b| ordered(cmp_json(&a.0, &b.0).then(a.1.cmp(&b.1))));
                all.truncate(limit + 1);
                picked = all;
            }
        }
        let more = picked.len() > limit;
        picked.truncate(limit);
        let next = if more {
            picked.last().map(|(v, id, _)| {
                Cursor {
                    value: v.clone(),
                    id: *id,
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Page {
            items: picked.into_iter().map(|(_, _, s)| s.versioned()).collect(),
            next,
        })
    }

    async fn update(
        &self,
        tenant: &str,
        record: &T,
        expected_version: u64,
    ) -> Result<Versioned<T>> {
        let id = record.id();
        let mut tenants = write(&self.tenants);
        let stored =
            tenants
                .get_mut(tenant)
                .and_then(|r| r.get_mut(&id))
                .ok_or(StoreError::NotFound {
                    collection: T::COLLECTION,
                    id,
                })?;
        if stored.version != expected_version {
            return Err(StoreError::Conflict {
                expected: expected_version,
                actual: stored.version,
            });
        }
        stored.record = record.clone();
        stored.version += 1;
        stored.updated_at = Utc::now();
        Ok(stored.versioned())
    }

    async fn delete(&self, tenant: &str, id: Uuid) -> Result<bool> {
        let mut tenants = write(&self.tenants);
        Ok(tenants
            .get_mut(tenant)
            .is_some_and(|r| r.remove(&id).is_some()))
    }
}
