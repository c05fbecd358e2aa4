use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{backend, ddl};
use crate::record::check_name;
use crate::{Hit, Metric, Result, StoreError, VectorIndex, VectorItem};

/// Vectors in pgvector: one table per collection (`mesh_vectors_<name>`) with a
/// `vector(dims)` column and an HNSW index for the collection's metric.
///
/// `ef_search` (default 100) trades speed for recall. pgvector 0.6 filters after the
/// index scan, so a tenant or metadata filter that matches few rows can return fewer
/// than `k` hits.
#[derive(Debug, Clone)]
pub struct PgVectorIndex {
    pool: PgPool,
    collections: Arc<RwLock<HashMap<String, (usize, Metric)>>>,
    ef_search: u32,
}

fn text(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

impl PgVectorIndex {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            collections: Arc::default(),
            ef_search: 100,
        }
    }

    /// Sets HNSW's `ef_search` for searches (candidates examined; higher = better recall).
    pub fn with_ef_search(mut self, ef_search: u32) -> Self {
        self.ef_search = ef_search.clamp(1, 1000);
        self
    }

    async fn collection(&self, name: &str) -> Result<(usize, Metric)> {
        if let Some(c) = self
            .collections
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(*c);
        }
        let row = sqlx::query("SELECT dims, metric FROM mesh_vector_collections WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))?;
        let dims: i32 = row.try_get("dims").map_err(backend)?;
        let metric: String = row.try_get("metric").map_err(backend)?;
        let metric =
            Metric::parse(&metric).ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))?;
        let c = (dims as usize, metric);
        self.collections
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), c);
        Ok(c)
    }

    fn check(collection: &str, dims: usize, v: &[f32]) -> Result<()> {
        if v.len() == dims {
            Ok(())
        } else {
            Err(StoreError::DimensionMismatch {
                collection: collection.to_owned(),
                expected: dims,
                got: v.len(),
            })
        }
    }
}

fn operator(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "<=>",
        Metric::InnerProduct => "<#>",
        Metric::L2 => "<->",
    }
}

impl VectorIndex for PgVectorIndex {
    async fn create_collection(&self, collection: &str, dims: usize, metric: Metric) -> Result<()> {
        check_name(collection, 40)?;
        if dims == 0 || dims > 16_000 {
            return Err(StoreError::invalid(format!("{dims} dimensions")));
        }
        let ops = match metric {
            Metric::Cosine => "vector_cosine_ops",
            Metric::InnerProduct => "vector_ip_ops",
            Metric::L2 => "vector_l2_ops",
        };
        // The collection's row and its table in one transaction: nobody sees one
        // without the other. (The name is checked above, the rest are numbers and a
        // fixed word: nothing here comes from a user unchecked.)
        ddl(
            &self.pool,
            &[
                format!(
                    "INSERT INTO mesh_vector_collections (name, dims, metric) VALUES ('{collection}', {dims}, '{}') \
                     ON CONFLICT DO NOTHING",
                    metric.as_str()
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS mesh_vectors_{collection} (tenant text NOT NULL, id text NOT NULL, \
                     embedding vector({dims}) NOT NULL, metadata jsonb NOT NULL DEFAULT '{{}}', PRIMARY KEY (tenant, id))"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS mesh_vectors_{collection}_hnsw ON mesh_vectors_{collection} \
                     USING hnsw (embedding {ops}) WITH (m = 16, ef_construction = 64)"
                ),
            ],
        )
        .await?;
        // Created before, maybe by another process, with other settings: refused.
        let (have_dims, have_metric) = self.collection(collection).await?;
        if have_dims != dims {
            return Err(StoreError::DimensionMismatch {
                collection: collection.to_owned(),
                expected: have_dims,
                got: dims,
            });
        }
        if have_metric != metric {
            return Err(StoreError::invalid(format!(
                "collection {collection} uses the {} metric",
                have_metric.as_str()
            )));
        }
        Ok(())
    }

    async fn upsert(&self, tenant: &str, collection: &str, items: &[VectorItem]) -> Result<()> {
        let (dims, _) = self.collection(collection).await?;
        let mut ids = Vec::with_capacity(items.len());
        let mut vectors = Vec::with_capacity(items.len());
        let mut metadata = Vec::with_capacity(items.len());
        for item in items {
            Self::check(collection, dims, &item.vector)?;
            ids.push(item.id.clone());
            vectors.push(text(&item.vector));
            metadata.push(item.metadata.clone());
        }
        // The collection name is checked ([a-z0-9_]) before it is inlined.
        let sql = format!(
            "INSERT INTO mesh_vectors_{collection} (tenant, id, embedding, metadata)
             SELECT $1, u.id, u.embedding::vector, u.metadata FROM unnest($2::text[], $3::text[], $4::jsonb[]) AS u(id, embedding, metadata)
             ON CONFLICT (tenant, id) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(&ids)
            .bind(&vectors)
            .bind(&metadata)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete(&self, tenant: &str, collection: &str, ids: &[String]) -> Result<usize> {
        self.collection(collection).await?;
        let sql =
            format!("DELETE FROM mesh_vectors_{collection} WHERE tenant = $1 AND id = ANY($2)");
        let result = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(result.rows_affected() as usize)
    }

    async fn search(
        &self,
        tenant: &str,
        collection: &str,
        query: &[f32],
        k: usize,
        filter: &[(String, Value)],
    ) -> Result<Vec<Hit>> {
        let (dims, metric) = self.collection(collection).await?;
        Self::check(collection, dims, query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let op = operator(metric);
        let filter_clause = if filter.is_empty() {
            ""
        } else {
            " AND metadata @> $3::jsonb"
        };
        let sql = format!(
            "SELECT id, (embedding {op} $2::vector)::real AS distance, metadata FROM mesh_vectors_{collection}
             WHERE tenant = $1{filter_clause} ORDER BY embedding {op} $2::vector LIMIT $4"
        );
        let filter_json = Value::Object(filter.iter().cloned().collect());
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let set = format!(
            "SET LOCAL hnsw.ef_search = {}",
            self.ef_search.max(k as u32).min(1000)
        );
        sqlx::query(sqlx::AssertSqlSafe(set))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(text(query))
            .bind(&filter_json)
            .bind(k as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| match &e {
                // Registered by another process that has not created its table yet
                // (the row goes in first): nothing is in it.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                    StoreError::UnknownCollection(collection.to_owned())
                }
                _ => backend(e),
            })?;
        tx.commit().await.map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(Hit {
                    id: row.try_get("id").map_err(backend)?,
                    distance: row.try_get("distance").map_err(backend)?,
                    metadata: row.try_get("metadata").map_err(backend)?,
                })
            })
            .collect()
    }
}
