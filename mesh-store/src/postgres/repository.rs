//! Records of every collection in one table, `mesh_records`, keyed by (collection,
//! tenant, id), with partial expression indexes for each collection's indexed fields.
//!
//! Lookups by key name their collection as `(SELECT $1::text)`, a value the planner
//! does not see. Planning a run for its parameters (as PostgreSQL does for a prepared
//! statement's first runs, and whenever that looks cheaper), it would otherwise see
//! `collection = 'tasks'`, which lets it use the collection's partial indexes
//! `(tenant, field, id)` as well — and before the table has statistics it took one
//! for a lookup by id, a scan of every task of the tenant per lookup (a batch update
//! of 112 tasks: 362 ms at 22,000 records; by the primary key, 3.8 ms). Listings
//! name the collection as a plain parameter, so those indexes can serve them.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::{Arguments, Row};
use uuid::Uuid;

use super::{backend, ddl};
use crate::record::{check_distinct, check_name, page_of, refused_update};
use crate::{
    Direction, Page, Query, Record, Repository, Result, StoreError, TenantWrites, Versioned,
    Written,
};

/// Bind parameters of a query built at run time.
#[derive(Default)]
struct Params {
    args: PgArguments,
    n: usize,
}

impl Params {
    /// Binds `value`; returns its placeholder (`$n`).
    fn push<'q, V>(&mut self, value: V) -> Result<String>
    where
        V: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + 'q,
    {
        self.args
            .add(value)
            .map_err(|e| StoreError::invalid(e.to_string()))?;
        self.n += 1;
        Ok(format!("${}", self.n))
    }
}

/// Records of `T` as JSONB rows in `mesh_records`.
#[derive(Debug, Clone)]
pub struct PgRepository<T> {
    pool: PgPool,
    _record: PhantomData<fn() -> T>,
}

impl<T: Record> PgRepository<T> {
    pub(crate) async fn new(pool: PgPool) -> Result<Self> {
        check_name(T::COLLECTION, 40)?;
        let mut statements = Vec::new();
        for f in T::INDEXED {
            check_name(f, 40)?;
            statements.push(format!(
                "CREATE INDEX IF NOT EXISTS mesh_records_{c}_{f} ON mesh_records (tenant, (data->'{f}'), id) WHERE collection = '{c}'",
                c = T::COLLECTION
            ));
        }
        ddl(&pool, &statements).await?;
        Ok(Self {
            pool,
            _record: PhantomData,
        })
    }

    fn load(row: &PgRow) -> Result<Versioned<T>> {
        let data: Value = row.try_get("data").map_err(backend)?;
        let version: i64 = row.try_get("version").map_err(backend)?;
        let created: DateTime<Utc> = row.try_get("created_at").map_err(backend)?;
        let updated: DateTime<Utc> = row.try_get("updated_at").map_err(backend)?;
        Ok(Versioned::new(
            serde_json::from_value(data)?,
            version as u64,
            created,
            updated,
        ))
    }
}

/// Tenants a [`Repository::write_tenants`] call writes at once: two pooled connections
/// each, so four leave most of the default pool of ten to readers.
const TENANTS_AT_ONCE: usize = 4;

impl<T: Record> Repository<T> for PgRepository<T> {
    async fn create(&self, tenant: &str, record: &T) -> Result<Versioned<T>> {
        let data = serde_json::to_value(record)?;
        let row = sqlx::query(
            "INSERT INTO mesh_records (collection, tenant, id, version, data) VALUES ($1, $2, $3, 1, $4)
             ON CONFLICT DO NOTHING RETURNING created_at, updated_at",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(record.id())
        .bind(&data)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let row = row.ok_or(StoreError::AlreadyExists {
            collection: T::COLLECTION,
            id: record.id(),
        })?;
        let created: DateTime<Utc> = row.try_get("created_at").map_err(backend)?;
        let updated: DateTime<Utc> = row.try_get("updated_at").map_err(backend)?;
        Ok(Versioned::new(record.clone(), 1, created, updated))
    }

    async fn create_many(&self, tenant: &str, records: &[T]) -> Result<Vec<Result<Versioned<T>>>> {
        let mut ids = Vec::with_capacity(records.len());
        let mut data = Vec::with_capacity(records.len());
        for record in records {
            ids.push(record.id());
            data.push(serde_json::to_value(record)?);
        }
        // One statement, one commit; a taken id is skipped, not an error for the rest.
        let rows = sqlx::query(
            "INSERT INTO mesh_records (collection, tenant, id, version, data)
             SELECT $1, $2, u.id, 1, u.data FROM unnest($3::uuid[], $4::jsonb[]) AS u(id, data)
             ON CONFLICT DO NOTHING RETURNING id, created_at, updated_at",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(&ids)
        .bind(&data)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut stored = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get("id").map_err(backend)?;
            let created: DateTime<Utc> = row.try_get("created_at").map_err(backend)?;
            let updated: DateTime<Utc> = row.try_get("updated_at").map_err(backend)?;
            stored.insert(id, (created, updated));
        }
        Ok(records
            .iter()
            .map(|record| match stored.remove(&record.id()) {
                Some((created, updated)) => Ok(Versioned::new(record.clone(), 1, created, updated)),
                None => Err(StoreError::AlreadyExists {
                    collection: T::COLLECTION,
                    id: record.id(),
                }),
            })
            .collect())
    }

    async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Versioned<T>>> {
        sqlx::query(
            "SELECT data, version, created_at, updated_at FROM mesh_records WHERE collection = (SELECT $1::text) AND tenant = $2 AND id = $3",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(Self::load)
        .transpose()
    }

    async fn list(&self, tenant: &str, query: &Query) -> Result<Page<T>> {
        query.check_fields()?;
        let limit = query.checked_limit()?;
        let cursor = query.decoded_cursor()?;
        let mut params = Params::default();
        let collection = params.push(T::COLLECTION)?;
        let tenant = params.push(tenant)?;
        // Field names are checked ([a-z0-9_]) and inlined, so expression indexes apply.
        let mut sql = format!(
            "SELECT data, version, created_at, updated_at FROM mesh_records WHERE collection = {collection} AND tenant = {tenant}"
        );
        for (f, v) in &query.filters {
            let p = params.push(v.clone())?;
            sql.push_str(&format!(" AND data->'{f}' = {p}::jsonb"));
        }
        let order_expr = query
            .order_by
            .as_ref()
            .map(|(f, d)| (format!("COALESCE(data->'{f}', 'null'::jsonb)"), *d));
        let (dir, cmp) = match order_expr.as_ref().map(|(_, d)| *d) {
            Some(Direction::Descending) => ("DESC", "<"),
            _ => ("ASC", ">"),
        };
        if let Some(c) = &cursor {
            let id = params.push(c.id)?;
            match &order_expr {
                Some((expr, _)) => {
                    let value = params.push(c.value.clone())?;
                    sql.push_str(&format!(" AND ({expr}, id) {cmp} ({value}::jsonb, {id})"));
                }
                None => sql.push_str(&format!(" AND id > {id}")),
            }
        }
        match &order_expr {
            Some((expr, _)) => sql.push_str(&format!(" ORDER BY {expr} {dir}, id {dir}")),
            None => sql.push_str(" ORDER BY id ASC"),
        }
        sql.push_str(&format!(" LIMIT {}", limit + 1));
        let args = params.args;
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let items = rows.iter().map(Self::load).collect::<Result<Vec<_>>>()?;
        page_of(
            items,
            limit,
            query.order_by.as_ref().map(|(f, _)| f.as_str()),
        )
    }

    async fn update(
        &self,
        tenant: &str,
        record: &T,
        expected_version: u64,
    ) -> Result<Versioned<T>> {
        let data = serde_json::to_value(record)?;
        let id = record.id();
        let row = sqlx::query(
            "UPDATE mesh_records SET data = $4, version = version + 1, updated_at = now()
             WHERE collection = (SELECT $1::text) AND tenant = $2 AND id = $3 AND version = $5
             RETURNING version, created_at, updated_at",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .bind(&data)
        .bind(expected_version as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        if let Some(row) = row {
            let version: i64 = row.try_get("version").map_err(backend)?;
            let created: DateTime<Utc> = row.try_get("created_at").map_err(backend)?;
            let updated: DateTime<Utc> = row.try_get("updated_at").map_err(backend)?;
            return Ok(Versioned::new(
                record.clone(),
                version as u64,
                created,
                updated,
            ));
        }
        let actual: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM mesh_records WHERE collection = (SELECT $1::text) AND tenant = $2 AND id = $3",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Err(refused_update(
            T::COLLECTION,
            id,
            expected_version,
            actual.map(|v| v as u64),
        ))
    }

    async fn write_many(
        &self,
        tenant: &str,
        creates: &[T],
        updates: &[(T, u64)],
    ) -> Result<Written<T>> {
        // Side by side on two connections: one round trip for both.
        let (created, updated) = tokio::join!(
            async {
                if creates.is_empty() {
                    return Ok(Vec::new());
                }
                self.create_many(tenant, creates).await
            },
            async {
                if updates.is_empty() {
                    return Ok(Vec::new());
                }
                self.update_many(tenant, updates).await
            },
        );
        Ok((created?, updated?))
    }

    async fn write_tenants(&self, writes: &[TenantWrites<'_, T>]) -> Vec<Result<Written<T>>> {
        // Side by side, a few tenants at a time (each takes two connections).
        let mut out = Vec::with_capacity(writes.len());
        for chunk in writes.chunks(TENANTS_AT_ONCE) {
            let mut side_by_side = Vec::with_capacity(chunk.len());
            for w in chunk {
                side_by_side.push(self.write_many(w.tenant, w.creates, w.updates));
            }
            out.extend(futures_util::future::join_all(side_by_side).await);
        }
        out
    }

    async fn update_many(
        &self,
        tenant: &str,
        updates: &[(T, u64)],
    ) -> Result<Vec<Result<Versioned<T>>>> {
        check_distinct(updates.iter().map(|(r, _)| r.id()))?;
        let mut ids = Vec::with_capacity(updates.len());
        let mut data = Vec::with_capacity(updates.len());
        let mut expected = Vec::with_capacity(updates.len());
        for (record, version) in updates {
            ids.push(record.id());
            data.push(serde_json::to_value(record)?);
            expected.push(*version as i64);
        }
        // One statement, one commit: the rows whose version matches change. Each row
        // is found by its whole key in a lateral subquery the planner cannot flatten:
        // a plain join, planned while the table's statistics say it is small (a new
        // database), reads every record of the tenant's collection for each batch.
        // (A row changed meanwhile has a new `ctid`, so it is refused, as its version
        // would refuse it.)
        let rows = sqlx::query(
            "UPDATE mesh_records m SET data = u.data, version = m.version + 1, updated_at = now()
             FROM unnest($3::uuid[], $4::jsonb[], $5::int8[]) AS u(id, data, expected),
                  LATERAL (SELECT r.ctid AS row FROM mesh_records r
                           WHERE r.collection = (SELECT $1::text) AND r.tenant = $2 AND r.id = u.id OFFSET 0) AS found
             WHERE m.ctid = found.row AND m.version = u.expected
             RETURNING m.id, m.version, m.created_at, m.updated_at",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(&ids)
        .bind(&data)
        .bind(&expected)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut changed = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get("id").map_err(backend)?;
            let version: i64 = row.try_get("version").map_err(backend)?;
            let created: DateTime<Utc> = row.try_get("created_at").map_err(backend)?;
            let updated: DateTime<Utc> = row.try_get("updated_at").map_err(backend)?;
            changed.insert(id, (version as u64, created, updated));
        }
        // The refused ones: the versions they were compared against, in one read.
        let refused: Vec<Uuid> = ids
            .iter()
            .filter(|id| !changed.contains_key(id))
            .copied()
            .collect();
        let mut actual = std::collections::HashMap::new();
        if !refused.is_empty() {
            let rows = sqlx::query(
                "SELECT id, version FROM mesh_records
                 WHERE collection = (SELECT $1::text) AND tenant = $2 AND id = ANY($3)",
            )
            .bind(T::COLLECTION)
            .bind(tenant)
            .bind(&refused)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
            for row in rows {
                let id: Uuid = row.try_get("id").map_err(backend)?;
                let version: i64 = row.try_get("version").map_err(backend)?;
                actual.insert(id, version as u64);
            }
        }
        Ok(updates
            .iter()
            .map(|(record, expected)| match changed.remove(&record.id()) {
                Some((version, created, updated)) => {
                    Ok(Versioned::new(record.clone(), version, created, updated))
                }
                None => Err(refused_update(
                    T::COLLECTION,
                    record.id(),
                    *expected,
                    actual.get(&record.id()).copied(),
                )),
            })
            .collect())
    }

    async fn delete(&self, tenant: &str, id: Uuid) -> Result<bool> {
        let result = sqlx::query(
            "DELETE FROM mesh_records WHERE collection = (SELECT $1::text) AND tenant = $2 AND id = $3",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_many(&self, tenant: &str, ids: &[Uuid]) -> Result<usize> {
        let result = sqlx::query(
            "DELETE FROM mesh_records WHERE collection = (SELECT $1::text) AND tenant = $2 AND id = ANY($3)",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(ids)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(result.rows_affected() as usize)
    }
}
