//! The repository trait.

use std::future::Future;

use uuid::Uuid;

use crate::{Page, Query, Record, Result, Versioned};

/// A batch call's outcome for each of its records, in order.
pub type PerRecord<T> = Vec<Result<Versioned<T>>>;

/// What [`Repository::write_many`] gives back: the creates' outcomes, the updates'.
pub type Written<T> = (PerRecord<T>, PerRecord<T>);

/// One tenant's share of a [`Repository::write_tenants`] call.
#[derive(Debug)]
pub struct TenantWrites<'a, T> {
    /// The tenant.
    pub tenant: &'a str,
    /// Records to store, as [`Repository::create_many`] would.
    pub creates: &'a [T],
    /// Records to replace at their expected versions, as [`Repository::update_many`]
    /// would.
    pub updates: &'a [(T, u64)],
}

// By hand: a derive would ask `T: Clone`, and only references are copied.
impl<T> Clone for TenantWrites<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TenantWrites<'_, T> {}

/// Stores records of type `T`, each scoped to a tenant: no call made for one tenant
/// ever reads or changes another tenant's records.
pub trait Repository<T: Record>: Send + Sync {
    /// Stores a new record at version 1; [`AlreadyExists`](crate::StoreError::AlreadyExists)
    /// if its id is taken in this tenant.
    fn create(&self, tenant: &str, record: &T)
    -> impl Future<Output = Result<Versioned<T>>> + Send;

    /// The record with this id, if the tenant has one.
    fn get(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Versioned<T>>>> + Send;

    /// A page of the tenant's records matching the query.
    fn list(&self, tenant: &str, query: &Query) -> impl Future<Output = Result<Page<T>>> + Send;

    /// Replaces the record if its stored version is `expected_version`, and bumps it
    /// to `expected_version + 1` (callers may count on that);
    /// [`Conflict`](crate::StoreError::Conflict) otherwise,
    /// [`NotFound`](crate::StoreError::NotFound) if it does not exist.
    fn update(
        &self,
        tenant: &str,
        record: &T,
        expected_version: u64,
    ) -> impl Future<Output = Result<Versioned<T>>> + Send;

    /// Deletes the record; returns whether it existed.
    fn delete(&self, tenant: &str, id: Uuid) -> impl Future<Output = Result<bool>> + Send;

    /// Deletes the records with these ids (those that exist) — in one statement and
    /// one commit where the backend allows (SQLite, PostgreSQL); returns how many
    /// existed. By default, one [`delete`](Self::delete) after another.
    fn delete_many(
        &self,
        tenant: &str,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<usize>> + Send {
        async move {
            let mut deleted = 0;
            for id in ids {
                deleted += usize::from(self.delete(tenant, *id).await?);
            }
            Ok(deleted)
        }
    }

    /// Stores new records at version 1 — in one round trip and one commit where the
    /// backend allows (PostgreSQL), which is what lets callers group their commits —
    /// with, for each record in order, its stored version or
    /// [`AlreadyExists`](crate::StoreError::AlreadyExists). The outer error is the
    /// batch's (nothing stored). By default, one [`create`](Self::create) after another.
    fn create_many(
        &self,
        tenant: &str,
        records: &[T],
    ) -> impl Future<Output = Result<Vec<Result<Versioned<T>>>>> + Send {
        async move {
            let mut out = Vec::with_capacity(records.len());
            for record in records {
                match self.create(tenant, record).await {
                    Err(e @ crate::StoreError::AlreadyExists { .. }) => out.push(Err(e)),
                    Err(e) => return Err(e),
                    ok => out.push(ok),
                }
            }
            Ok(out)
        }
    }

    /// Replaces several records, each if its stored version is the one paired with it
    /// — in one round trip and one commit where the backend allows (PostgreSQL) — with,
    /// for each in order, its new version or the
    /// [`Conflict`](crate::StoreError::Conflict) / [`NotFound`](crate::StoreError::NotFound)
    /// a single [`update`](Self::update) would give. The ids must be distinct
    /// ([`Invalid`](crate::StoreError::Invalid) otherwise: one statement cannot apply
    /// two changes of one row in order). The outer error is the batch's (nothing
    /// changed). By default, one [`update`](Self::update) after another.
    fn update_many(
        &self,
        tenant: &str,
        updates: &[(T, u64)],
    ) -> impl Future<Output = Result<Vec<Result<Versioned<T>>>>> + Send {
        async move {
            crate::record::check_distinct(updates.iter().map(|(r, _)| r.id()))?;
            let mut out = Vec::with_capacity(updates.len());
            for (record, expected) in updates {
                match self.update(tenant, record, *expected).await {
                    Err(
                        e @ (crate::StoreError::Conflict { .. }
                        | crate::StoreError::NotFound { .. }),
                    ) => out.push(Err(e)),
                    Err(e) => return Err(e),
                    ok => out.push(ok),
                }
            }
            Ok(out)
        }
    }

    /// Stores `creates` and applies `updates` (as [`create_many`](Self::create_many) and
    /// [`update_many`](Self::update_many) would, results in the same shapes) with as few
    /// commits as the backend allows: one transaction on SQLite (one flush), the two
    /// side by side on PostgreSQL (two connections, one round trip each). Not atomic
    /// across the two unless the backend says so. `updates` must not name a record of
    /// `creates`. By default, `create_many` then `update_many`.
    fn write_many(
        &self,
        tenant: &str,
        creates: &[T],
        updates: &[(T, u64)],
    ) -> impl Future<Output = Result<Written<T>>> + Send {
        async move {
            let created = if creates.is_empty() {
                Vec::new()
            } else {
                self.create_many(tenant, creates).await?
            };
            let updated = if updates.is_empty() {
                Vec::new()
            } else {
                self.update_many(tenant, updates).await?
            };
            Ok((created, updated))
        }
    }

    /// [`write_many`](Self::write_many) for several tenants in one call, each tenant's
    /// outcome in order, with as few commits as the backend allows: one transaction
    /// for them all on SQLite (one flush; if it fails, every tenant's share fails
    /// with it — a share whose updates name a record twice is refused alone), the
    /// tenants side by side on PostgreSQL (a few at a time). A group commit that
    /// spans tenants pays for one. By default, `write_many` for each in turn.
    fn write_tenants(
        &self,
        writes: &[TenantWrites<'_, T>],
    ) -> impl Future<Output = Vec<Result<Written<T>>>> + Send {
        async move {
            let mut out = Vec::with_capacity(writes.len());
            for w in writes {
                out.push(self.write_many(w.tenant, w.creates, w.updates).await);
            }
            out
        }
    }
}
