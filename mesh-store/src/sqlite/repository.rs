//! Records of every collection in one table, `mesh_records`, keyed by (collection,
//! tenant, id), with partial expression indexes for each collection's indexed fields.
//!
//! Statements by key name their collection as `(SELECT ?1)`, a value the planner
//! does not see. With a bare `?1`, a statement the primary key does not answer in
//! one row — the batch update, its rows given as a list — has SQLite weigh the
//! partial indexes' `WHERE collection = '…'` against the bound value, and then each
//! new binding expires it: it was prepared again at every run (`sqlite3Reprepare`,
//! 100 times in 100 runs; none with `(SELECT ?1)`). One-row lookups were not, but
//! follow the same rule. Listings inline the collection's (checked) name, so those
//! indexes serve them.
//!
//! Long on purpose: the one table's SQL for one trait — statements, their bind
//! parameters and row decoding share the helpers at the top; split, each part would
//! import the rest.

use std::marker::PhantomData;

use serde_json::Value;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Arguments, Row};
use uuid::Uuid;

use super::{Pools, micros, time};
use crate::record::{check_distinct, check_name, page_of, refused_update};
use crate::{
    Direction, Page, Query, Record, Repository, Result, StoreError, TenantWrites, Versioned,
    Written,
};

/// Records inserted or updated by one statement: at most 7 parameters each, under
/// SQLite's limit of 32,766 with room to spare.
const ROWS_PER_STATEMENT: usize = 1000;

/// Records of `T` as JSON rows in `mesh_records`.
#[derive(Debug, Clone)]
pub struct SqliteRepository<T> {
    pools: Pools,
    _record: PhantomData<fn() -> T>,
}

/// Bind parameters of a query built at run time.
#[derive(Default)]
struct Params {
    args: SqliteArguments,
}

impl Params {
    fn push<'q, V>(&mut self, value: V) -> Result<&'static str>
    where
        V: sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + 'q,
    {
        self.args
            .add(value)
            .map_err(|e| StoreError::invalid(e.to_string()))?;
        Ok("?")
    }

    /// Binds a JSON value as the sort key's second part ([`sort_key`]'s `value`).
    fn push_sort_value(&mut self, value: &Value) -> Result<&'static str> {
        match value {
            Value::Null => self.push(0_i64),
            Value::Bool(b) => self.push(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => self.push(i),
                None => self.push(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => self.push(s.clone()),
            other => self.push(other.to_string()),
        }
    }
}

/// A field's sort key as SQL: its JSON type's rank, in PostgreSQL's `jsonb` order
/// (null < string < number < boolean < array < object), then its value (a missing
/// field sorts as `null`). Row values compare it with a cursor's.
fn sort_key(f: &str) -> (String, String) {
    (
        format!(
            "CASE json_type(data, '$.{f}') WHEN 'text' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2 \
             WHEN 'true' THEN 3 WHEN 'false' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 5 ELSE 0 END"
        ),
        format!("coalesce(json_extract(data, '$.{f}'), 0)"),
    )
}

/// The rank [`sort_key`] gives a JSON value.
fn rank(value: &Value) -> i64 {
    match value {
        Value::Null => 0,
        Value::String(_) => 1,
        Value::Number(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

impl<T: Record> SqliteRepository<T> {
    pub(crate) async fn new(pools: Pools) -> Result<Self> {
        check_name(T::COLLECTION, 40)?;
        for f in T::INDEXED {
            check_name(f, 40)?;
            // Names are checked ([a-z0-9_]); the partial index applies to queries that
            // inline the same collection literal, as `list` does.
            let sql = format!(
                "CREATE INDEX IF NOT EXISTS mesh_records_{c}_{f} ON mesh_records (tenant, (data -> '$.{f}'), id) WHERE collection = '{c}'",
                c = T::COLLECTION
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pools.writer)
                .await
                .map_err(|e| pools.error(e))?;
        }
        Ok(Self {
            pools,
            _record: PhantomData,
        })
    }

    fn load(&self, row: &SqliteRow) -> Result<Versioned<T>> {
        let get_i64 = |c: &str| row.try_get::<i64, _>(c).map_err(|e| self.pools.error(e));
        let data: &str = row.try_get("data").map_err(|e| self.pools.error(e))?;
        Ok(Versioned::new(
            serde_json::from_str(data)?,
            get_i64("version")? as u64,
            time(get_i64("created_at")?),
            time(get_i64("updated_at")?),
        ))
    }

    /// The writer's one connection.
    async fn writer(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.pools
            .writer
            .acquire()
            .await
            .map_err(|e| self.pools.error(e))
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pools
            .writer
            .begin()
            .await
            .map_err(|e| self.pools.error(e))
    }

    /// Runs a statement built at run time on `conn`; its rows.
    async fn fetch_all(
        &self,
        conn: &mut SqliteConnection,
        mut query: sqlx::QueryBuilder<sqlx::Sqlite>,
    ) -> Result<Vec<SqliteRow>> {
        query
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.pools.error(e))
    }

    /// Inserts one record on `conn` (the writer, or a transaction of it).
    async fn insert(
        &self,
        conn: &mut SqliteConnection,
        tenant: &str,
        record: &T,
    ) -> Result<Versioned<T>> {
        let data = serde_json::to_string(record)?;
        let now = chrono::Utc::now();
        let done = sqlx::query(
            "INSERT INTO mesh_records (collection, tenant, id, version, data, created_at, updated_at)
             VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(record.id())
        .bind(&data)
        .bind(micros(now))
        .execute(&mut *conn)
        .await
        .map_err(|e| self.pools.error(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists {
                collection: T::COLLECTION,
                id: record.id(),
            });
        }
        let at = time(micros(now));
        Ok(Versioned::new(record.clone(), 1, at, at))
    }

    /// Inserts records on `conn`, each `AlreadyExists` on its own; another error is the
    /// batch's. A statement per [`ROWS_PER_STATEMENT`] records: sqlx runs each statement on
    /// the connection's own thread, and a hand-over per record cost more than the
    /// insert itself.
    async fn insert_all(
        &self,
        conn: &mut SqliteConnection,
        tenant: &str,
        records: &[T],
    ) -> Result<Vec<Result<Versioned<T>>>> {
        if records.len() == 1 {
            return match self.insert(conn, tenant, &records[0]).await {
                Err(e @ StoreError::AlreadyExists { .. }) => Ok(vec![Err(e)]),
                Err(e) => Err(e),
                ok => Ok(vec![ok]),
            };
        }
        let at = micros(chrono::Utc::now());
        let mut inserted = std::collections::HashSet::with_capacity(records.len());
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let data = chunk
                .iter()
                .map(serde_json::to_string)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO mesh_records (collection, tenant, id, version, data, created_at, updated_at) ",
            );
            query.push_values(chunk.iter().zip(&data), |mut row, (record, data)| {
                row.push_bind(T::COLLECTION)
                    .push_bind(tenant)
                    .push_bind(record.id())
                    .push("1")
                    .push_bind(data.as_str())
                    .push_bind(at)
                    .push_bind(at);
            });
            // Only the rows inserted come back: an id already stored does not.
            query.push(" ON CONFLICT DO NOTHING RETURNING id");
            let rows = self.fetch_all(conn, query).await?;
            for row in rows {
                inserted.insert(
                    row.try_get::<Uuid, _>("id")
                        .map_err(|e| self.pools.error(e))?,
                );
            }
        }
        let at = time(at);
        // A record is inserted once: a second with the same id in the batch is refused.
        Ok(records
            .iter()
            .map(|record| match inserted.remove(&record.id()) {
                true => Ok(Versioned::new(record.clone(), 1, at, at)),
                false => Err(StoreError::AlreadyExists {
                    collection: T::COLLECTION,
                    id: record.id(),
                }),
            })
            .collect())
    }

    /// Replaces records on `conn`, each `Conflict` or `NotFound` on its own; another
    /// error is the batch's. A statement per [`ROWS_PER_STATEMENT`] records (each row looked
    /// up by its whole key), then, for the rows it did not change, the one-record path,
    /// which says why.
    async fn replace_all(
        &self,
        conn: &mut SqliteConnection,
        tenant: &str,
        updates: &[(T, u64)],
    ) -> Result<Vec<Result<Versioned<T>>>> {
        let mut changed = std::collections::HashMap::with_capacity(updates.len());
        if updates.len() > 1 {
            let at = micros(chrono::Utc::now());
            for chunk in updates.chunks(ROWS_PER_STATEMENT) {
                let data = chunk
                    .iter()
                    .map(|(record, _)| serde_json::to_string(record))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let mut query = sqlx::QueryBuilder::new("WITH v(id, data, expected) AS (");
                query.push_values(
                    chunk.iter().zip(&data),
                    |mut row, ((record, expected), data)| {
                        row.push_bind(record.id())
                            .push_bind(data.as_str())
                            .push_bind(*expected as i64);
                    },
                );
                query
                    .push(
                        ") UPDATE mesh_records SET \
                         data = (SELECT v.data FROM v WHERE v.id = mesh_records.id), \
                         version = version + 1, updated_at = ",
                    )
                    .push_bind(at)
                    .push(" WHERE collection = (SELECT ")
                    .push_bind(T::COLLECTION)
                    .push(") AND tenant = ")
                    .push_bind(tenant)
                    .push(
                        " AND id IN (SELECT id FROM v) \
                         AND version = (SELECT v.expected FROM v WHERE v.id = mesh_records.id) \
                         RETURNING id, version, created_at, updated_at",
                    );
                let rows = self.fetch_all(conn, query).await?;
                for row in rows {
                    let get_i64 =
                        |c: &str| row.try_get::<i64, _>(c).map_err(|e| self.pools.error(e));
                    let id: Uuid = row.try_get("id").map_err(|e| self.pools.error(e))?;
                    let stamps = (
                        get_i64("version")? as u64,
                        get_i64("created_at")?,
                        get_i64("updated_at")?,
                    );
                    changed.insert(id, stamps);
                }
            }
        }
        let mut out = Vec::with_capacity(updates.len());
        for (record, expected) in updates {
            if let Some((version, created, updated)) = changed.remove(&record.id()) {
                out.push(Ok(Versioned::new(
                    record.clone(),
                    version,
                    time(created),
                    time(updated),
                )));
                continue;
            }
            match self.replace(conn, tenant, record, *expected).await {
                Err(e @ (StoreError::Conflict { .. } | StoreError::NotFound { .. })) => {
                    out.push(Err(e))
                }
                Err(e) => return Err(e),
                ok => out.push(ok),
            }
        }
        Ok(out)
    }

    /// Replaces one record on `conn` if its version is `expected_version`.
    async fn replace(
        &self,
        conn: &mut SqliteConnection,
        tenant: &str,
        record: &T,
        expected_version: u64,
    ) -> Result<Versioned<T>> {
        let data = serde_json::to_string(record)?;
        let id = record.id();
        let row = sqlx::query(
            "UPDATE mesh_records SET data = ?4, version = version + 1, updated_at = ?6
             WHERE collection = (SELECT ?1) AND tenant = ?2 AND id = ?3 AND version = ?5
             RETURNING version, created_at, updated_at",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .bind(&data)
        .bind(expected_version as i64)
        .bind(micros(chrono::Utc::now()))
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| self.pools.error(e))?;
        if let Some(row) = row {
            let get_i64 = |c: &str| row.try_get::<i64, _>(c).map_err(|e| self.pools.error(e));
            return Ok(Versioned::new(
                record.clone(),
                get_i64("version")? as u64,
                time(get_i64("created_at")?),
                time(get_i64("updated_at")?),
            ));
        }
        // Read on the writer: the version it just compared against.
        let actual: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM mesh_records WHERE collection = (SELECT ?1) AND tenant = ?2 AND id = ?3",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| self.pools.error(e))?;
        Err(refused_update(
            T::COLLECTION,
            id,
            expected_version,
            actual.map(|v| v as u64),
        ))
    }
}

impl<T: Record> SqliteRepository<T> {
    /// Every tenant's creates and updates in one transaction: one commit (one flush).
    /// The caller has checked each tenant's updates are distinct.
    async fn write_in_one(&self, writes: &[TenantWrites<'_, T>]) -> Result<Vec<Written<T>>> {
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let created = self.insert_all(&mut tx, w.tenant, w.creates).await?;
            let updated = self.replace_all(&mut tx, w.tenant, w.updates).await?;
            out.push((created, updated));
        }
        tx.commit().await.map_err(|e| self.pools.error(e))?;
        Ok(out)
    }
}

/// The error of a transaction that failed, for each of the `count` shares written in
/// it: the first share gets the error itself, the others a copy of what it says.
fn failed_together<T>(e: StoreError, count: usize) -> Vec<Result<T>> {
    let retryable = e.is_retryable();
    let said = match &e {
        StoreError::Backend { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    let mut out = Vec::with_capacity(count);
    out.push(Err(e));
    while out.len() < count {
        out.push(Err(StoreError::Backend {
            backend: "sqlite",
            retryable,
            source: said.clone().into(),
        }));
    }
    out.truncate(count);
    out
}

impl<T: Record> Repository<T> for SqliteRepository<T> {
    async fn create(&self, tenant: &str, record: &T) -> Result<Versioned<T>> {
        let mut conn = self.writer().await?;
        self.insert(&mut conn, tenant, record).await
    }

    async fn create_many(&self, tenant: &str, records: &[T]) -> Result<Vec<Result<Versioned<T>>>> {
        // One transaction: one commit (one flush) for the batch.
        let mut tx = self.begin().await?;
        let out = self.insert_all(&mut tx, tenant, records).await?;
        tx.commit().await.map_err(|e| self.pools.error(e))?;
        Ok(out)
    }

    async fn write_many(
        &self,
        tenant: &str,
        creates: &[T],
        updates: &[(T, u64)],
    ) -> Result<Written<T>> {
        check_distinct(updates.iter().map(|(r, _)| r.id()))?;
        let writes = [TenantWrites {
            tenant,
            creates,
            updates,
        }];
        Ok(self.write_in_one(&writes).await?.pop().unwrap_or_default())
    }

    async fn write_tenants(&self, writes: &[TenantWrites<'_, T>]) -> Vec<Result<Written<T>>> {
        // A share that names a record twice is refused alone; the rest commit together.
        let mut out: Vec<Option<Result<Written<T>>>> = writes
            .iter()
            .map(|w| {
                check_distinct(w.updates.iter().map(|(r, _)| r.id()))
                    .err()
                    .map(Err)
            })
            .collect();
        let valid: Vec<TenantWrites<'_, T>> = writes
            .iter()
            .zip(&out)
            .filter(|(_, refused)| refused.is_none())
            .map(|(w, _)| *w)
            .collect();
        let written = if valid.is_empty() {
            Vec::new()
        } else {
            match self.write_in_one(&valid).await {
                Ok(written) => written.into_iter().map(Ok).collect(),
                Err(e) => failed_together(e, valid.len()),
            }
        };
        let mut written = written.into_iter();
        for slot in out.iter_mut().filter(|slot| slot.is_none()) {
            *slot = written.next();
        }
        out.into_iter().flatten().collect()
    }

    async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Versioned<T>>> {
        sqlx::query(
            "SELECT data, version, created_at, updated_at FROM mesh_records WHERE collection = (SELECT ?1) AND tenant = ?2 AND id = ?3",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pools.readers)
        .await
        .map_err(|e| self.pools.error(e))?
        .as_ref()
        .map(|row| self.load(row))
        .transpose()
    }

    async fn list(&self, tenant: &str, query: &Query) -> Result<Page<T>> {
        query.check_fields()?;
        let limit = query.checked_limit()?;
        let cursor = query.decoded_cursor()?;
        let mut params = Params::default();
        let tenant = params.push(tenant.to_owned())?;
        // Names are checked ([a-z0-9_]) and inlined, so the partial expression indexes apply.
        let mut sql = format!(
            "SELECT data, version, created_at, updated_at FROM mesh_records WHERE collection = '{c}' AND tenant = {tenant}",
            c = T::COLLECTION
        );
        for (f, v) in &query.filters {
            let p = params.push(v.to_string())?;
            sql.push_str(&format!(" AND data -> '$.{f}' = json({p})"));
        }
        let order = query.order_by.as_ref().map(|(f, d)| (sort_key(f), *d));
        let (dir, cmp) = match order.as_ref().map(|(_, d)| *d) {
            Some(Direction::Descending) => ("DESC", "<"),
            _ => ("ASC", ">"),
        };
        if let Some(c) = &cursor {
            match &order {
                Some(((rank_sql, value_sql), _)) => {
                    let r = params.push(rank(&c.value))?;
                    let v = params.push_sort_value(&c.value)?;
                    let id = params.push(c.id)?;
                    sql.push_str(&format!(
                        " AND ({rank_sql}, {value_sql}, id) {cmp} ({r}, {v}, {id})"
                    ));
                }
                None => {
                    let id = params.push(c.id)?;
                    sql.push_str(&format!(" AND id > {id}"));
                }
            }
        }
        match &order {
            Some(((rank_sql, value_sql), _)) => sql.push_str(&format!(
                " ORDER BY {rank_sql} {dir}, {value_sql} {dir}, id {dir}"
            )),
            None => sql.push_str(" ORDER BY id ASC"),
        }
        sql.push_str(&format!(" LIMIT {}", limit + 1));
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), params.args)
            .fetch_all(&self.pools.readers)
            .await
            .map_err(|e| self.pools.error(e))?;
        let items = rows
            .iter()
            .map(|row| self.load(row))
            .collect::<Result<Vec<_>>>()?;
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
        let mut conn = self.writer().await?;
        self.replace(&mut conn, tenant, record, expected_version)
            .await
    }

    async fn update_many(
        &self,
        tenant: &str,
        updates: &[(T, u64)],
    ) -> Result<Vec<Result<Versioned<T>>>> {
        check_distinct(updates.iter().map(|(r, _)| r.id()))?;
        let mut tx = self.begin().await?;
        let out = self.replace_all(&mut tx, tenant, updates).await?;
        tx.commit().await.map_err(|e| self.pools.error(e))?;
        Ok(out)
    }

    async fn delete(&self, tenant: &str, id: Uuid) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM mesh_records WHERE collection = (SELECT ?1) AND tenant = ?2 AND id = ?3",
        )
        .bind(T::COLLECTION)
        .bind(tenant)
        .bind(id)
        .execute(&self.pools.writer)
        .await
        .map_err(|e| self.pools.error(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_many(&self, tenant: &str, ids: &[Uuid]) -> Result<usize> {
        // One transaction (one flush), a statement per few hundred ids.
        let mut tx = self.begin().await?;
        let mut deleted = 0;
        for chunk in ids.chunks(500) {
            let mut query =
                sqlx::QueryBuilder::new("DELETE FROM mesh_records WHERE collection = (SELECT ");
            query.push_bind(T::COLLECTION);
            query
                .push(") AND tenant = ")
                .push_bind(tenant)
                .push(" AND id IN (");
            let mut each = query.separated(", ");
            for id in chunk {
                each.push_bind(*id);
            }
            query.push(")");
            let done = query
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.pools.error(e))?;
            deleted += done.rows_affected() as usize;
        }
        tx.commit().await.map_err(|e| self.pools.error(e))?;
        Ok(deleted)
    }
}
