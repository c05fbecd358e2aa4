use std::sync::Arc;

use serde_json::Value;
use sqlx::Row;

use super::Pools;
use crate::{Hit, MemoryVectorIndex, Metric, Result, StoreError, VectorIndex, VectorItem};

/// Vectors persisted in SQLite and searched exactly in memory: every vector is loaded
/// into a [`MemoryVectorIndex`] when the index is opened, and each write goes to the
/// file first, then to memory. Searches are the memory index's, at its speed.
#[derive(Debug, Clone)]
pub struct SqliteVectorIndex {
    pools: Pools,
    memory: Arc<MemoryVectorIndex>,
    /// Keeps the file and memory in the same order of writes.
    writes: Arc<tokio::sync::Mutex<()>>,
}

/// Rows read per round trip while loading.
const LOAD_BATCH: i64 = 4096;

/// A vector as stored: little-endian `f32`s.
fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

impl SqliteVectorIndex {
    /// Reads every collection and vector of the file into memory.
    pub(crate) async fn load(pools: Pools) -> Result<Self> {
        let memory = MemoryVectorIndex::new();
        let collections = sqlx::query("SELECT name, dims, metric FROM mesh_vector_collections")
            .fetch_all(&pools.readers)
            .await
            .map_err(|e| pools.error(e))?;
        for row in &collections {
            let name: String = row.try_get("name").map_err(|e| pools.error(e))?;
            let dims: i64 = row.try_get("dims").map_err(|e| pools.error(e))?;
            let metric: String = row.try_get("metric").map_err(|e| pools.error(e))?;
            let metric = Metric::parse(&metric).ok_or_else(|| {
                StoreError::invalid(format!("collection {name} has unknown metric {metric}"))
            })?;
            memory
                .create_collection(&name, dims as usize, metric)
                .await?;
        }
        let mut after = 0_i64;
        loop {
            let rows = sqlx::query(
                "SELECT rowid, collection, tenant, id, vector, metadata FROM mesh_vectors
                 WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            )
            .bind(after)
            .bind(LOAD_BATCH)
            .fetch_all(&pools.readers)
            .await
            .map_err(|e| pools.error(e))?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("rowid").map_err(|e| pools.error(e))?;
            for row in &rows {
                let get = |c: &str| row.try_get::<&str, _>(c).map_err(|e| pools.error(e));
                let vector: &[u8] = row.try_get("vector").map_err(|e| pools.error(e))?;
                let item = VectorItem::new(
                    get("id")?,
                    from_blob(vector),
                    serde_json::from_str(get("metadata")?)?,
                );
                memory
                    .upsert(
                        get("tenant")?,
                        get("collection")?,
                        std::slice::from_ref(&item),
                    )
                    .await?;
            }
        }
        Ok(Self {
            pools,
            memory: Arc::new(memory),
            writes: Arc::default(),
        })
    }
}

impl VectorIndex for SqliteVectorIndex {
    async fn create_collection(&self, collection: &str, dims: usize, metric: Metric) -> Result<()> {
        let _order = self.writes.lock().await;
        // The memory index checks the name, the dimensions and an existing collection.
        self.memory
            .create_collection(collection, dims, metric)
            .await?;
        sqlx::query(
            "INSERT INTO mesh_vector_collections (name, dims, metric) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )
        .bind(collection)
        .bind(dims as i64)
        .bind(metric.as_str())
        .execute(&self.pools.writer)
        .await
        .map_err(|e| self.pools.error(e))?;
        Ok(())
    }

    async fn upsert(&self, tenant: &str, collection: &str, items: &[VectorItem]) -> Result<()> {
        let (dims, _) = self.memory.shape(collection)?;
        if let Some(bad) = items.iter().find(|i| i.vector.len() != dims) {
            return Err(StoreError::DimensionMismatch {
                collection: collection.to_owned(),
                expected: dims,
                got: bad.vector.len(),
            });
        }
        let _order = self.writes.lock().await;
        let mut tx = self
            .pools
            .writer
            .begin()
            .await
            .map_err(|e| self.pools.error(e))?;
        for item in items {
            sqlx::query(
                "INSERT INTO mesh_vectors (collection, tenant, id, vector, metadata) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (collection, tenant, id) DO UPDATE SET vector = excluded.vector, metadata = excluded.metadata",
            )
            .bind(collection)
            .bind(tenant)
            .bind(&item.id)
            .bind(to_blob(&item.vector))
            .bind(item.metadata.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.pools.error(e))?;
        }
        tx.commit().await.map_err(|e| self.pools.error(e))?;
        self.memory.upsert(tenant, collection, items).await
    }

    async fn delete(&self, tenant: &str, collection: &str, ids: &[String]) -> Result<usize> {
        self.memory.shape(collection)?;
        let _order = self.writes.lock().await;
        let mut tx = self
            .pools
            .writer
            .begin()
            .await
            .map_err(|e| self.pools.error(e))?;
        for id in ids {
            sqlx::query(
                "DELETE FROM mesh_vectors WHERE collection = ?1 AND tenant = ?2 AND id = ?3",
            )
            .bind(collection)
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.pools.error(e))?;
        }
        tx.commit().await.map_err(|e| self.pools.error(e))?;
        self.memory.delete(tenant, collection, ids).await
    }

    async fn search(
        &self,
        tenant: &str,
        collection: &str,
        query: &[f32],
        k: usize,
        filter: &[(String, Value)],
    ) -> Result<Vec<Hit>> {
        self.memory
            .search(tenant, collection, query, k, filter)
            .await
    }
}
