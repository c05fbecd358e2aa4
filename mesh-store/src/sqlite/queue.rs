use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Pools, micros};
use crate::record::check_name;
use crate::{Delivery, Queue, QueueConfig, QueueDepth, Result, StoreError};

/// A queue in `mesh_queue`, shared by any number of consumers and processes on the
/// file: each receive claims due rows in one write statement, which SQLite runs under
/// its write lock, so each message goes to one consumer at a time and comes back when
/// its visibility timeout passes.
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    pools: Pools,
    name: String,
    config: QueueConfig,
    poll: Duration,
}

/// Now, in the schema's microseconds; `plus` later.
/// A receipt's delivery id and token.
fn parse_receipt(receipt: &str) -> Result<(i64, &str)> {
    receipt
        .split_once(':')
        .and_then(|(id, r)| Some((id.parse::<i64>().ok()?, r)))
        .ok_or_else(|| StoreError::invalid("malformed receipt"))
}

fn at(plus: Duration) -> i64 {
    micros(chrono::Utc::now()).saturating_add(i64::try_from(plus.as_micros()).unwrap_or(i64::MAX))
}

impl SqliteQueue {
    pub(crate) fn new(pools: Pools, name: &str, config: QueueConfig) -> Result<Self> {
        check_name(name, 80)?;
        Ok(Self {
            pools,
            name: name.to_owned(),
            config,
            poll: Duration::from_millis(50),
        })
    }

    /// How often an empty long poll looks again. Default 50 ms.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Makes every received, unacked message visible again now (its receipt expires)
    /// and returns how many. For the process that owns the file, at its start: the
    /// consumers those messages went to died with the previous process, so waiting out
    /// their visibility timeouts would only delay the work. Never call it while
    /// another consumer may still be working on a message.
    pub async fn release_in_flight(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE mesh_queue SET visible_at = ?2, receipt = NULL, received = 0
             WHERE queue = ?1 AND dead = 0 AND received = 1",
        )
        .bind(&self.name)
        .bind(at(Duration::ZERO))
        .execute(&self.pools.writer)
        .await
        .map_err(|e| self.pools.error(e))?;
        Ok(done.rows_affected())
    }

    async fn claim(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        let now = at(Duration::ZERO);
        let max = max.clamp(1, 1000) as i64;
        // Messages received `max_receives` times and due again are dead.
        sqlx::query(
            "UPDATE mesh_queue SET dead = 1, receipt = NULL, received = 0 WHERE id IN (
                 SELECT id FROM mesh_queue
                 WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2 AND receive_count >= ?3
                 ORDER BY visible_at, id LIMIT ?4)",
        )
        .bind(&self.name)
        .bind(now)
        .bind(self.config.max_receives as i64)
        .bind(max)
        .execute(&self.pools.writer)
        .await
        .map_err(|e| self.pools.error(e))?;
        let rows = sqlx::query(
            "UPDATE mesh_queue
             SET receive_count = receive_count + 1, visible_at = ?5,
                 receipt = lower(hex(randomblob(12))), received = 1
             WHERE id IN (
                 SELECT id FROM mesh_queue
                 WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2 AND receive_count < ?3
                 ORDER BY visible_at, id LIMIT ?4)
             RETURNING id, body, receive_count, receipt",
        )
        .bind(&self.name)
        .bind(now)
        .bind(self.config.max_receives as i64)
        .bind(max)
        .bind(at(visibility))
        .fetch_all(&self.pools.writer)
        .await
        .map_err(|e| self.pools.error(e))?;
        self.deliveries(&rows, true)
    }

    /// Deliveries from rows, in message order (RETURNING does not promise it).
    fn deliveries(&self, rows: &[SqliteRow], with_receipt: bool) -> Result<Vec<Delivery>> {
        let mut out = rows
            .iter()
            .map(|row| {
                let id: i64 = row.try_get("id").map_err(|e| self.pools.error(e))?;
                let count: i64 = row
                    .try_get("receive_count")
                    .map_err(|e| self.pools.error(e))?;
                let receipt = if with_receipt {
                    let r: String = row.try_get("receipt").map_err(|e| self.pools.error(e))?;
                    format!("{id}:{r}")
                } else {
                    String::new()
                };
                Ok((
                    id,
                    Delivery {
                        id: id.to_string(),
                        receipt,
                        body: row.try_get("body").map_err(|e| self.pools.error(e))?,
                        receive_count: count as u32,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|(id, _)| *id);
        Ok(out.into_iter().map(|(_, d)| d).collect())
    }

    /// Runs `sql` (binding the delivery's id, its receipt, now, and — when given — now
    /// plus `later`) on a delivery that is still current;
    /// [`StoreError::ReceiptExpired`] if it is not.
    async fn with_receipt(
        &self,
        sql: &'static str,
        receipt: &str,
        later: Option<Duration>,
    ) -> Result<()> {
        let (id, receipt) = parse_receipt(receipt)?;
        let mut query = sqlx::query(sql)
            .bind(id)
            .bind(receipt)
            .bind(at(Duration::ZERO));
        if let Some(later) = later {
            query = query.bind(at(later));
        }
        let done = query
            .execute(&self.pools.writer)
            .await
            .map_err(|e| self.pools.error(e))?;
        if done.rows_affected() == 0 {
            Err(StoreError::ReceiptExpired)
        } else {
            Ok(())
        }
    }
}

impl Queue for SqliteQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String> {
        Ok(self
            .send_batch(&[(body.to_owned(), delay)])
            .await?
            .pop()
            .unwrap_or_default())
    }

    async fn send_batch(&self, messages: &[(String, Duration)]) -> Result<Vec<String>> {
        let mut tx = self
            .pools
            .writer
            .begin()
            .await
            .map_err(|e| self.pools.error(e))?;
        let mut ids = Vec::with_capacity(messages.len());
        for (body, delay) in messages {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO mesh_queue (queue, body, visible_at) VALUES (?1, ?2, ?3) RETURNING id",
            )
            .bind(&self.name)
            .bind(body)
            .bind(at(*delay))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.pools.error(e))?;
            ids.push(id.to_string());
        }
        tx.commit().await.map_err(|e| self.pools.error(e))?;
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.claim(max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(self.poll.min(deadline - now)).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        self.with_receipt(
            "DELETE FROM mesh_queue WHERE id = ?1 AND receipt = ?2 AND visible_at > ?3",
            receipt,
            None,
        )
        .await
    }

    async fn ack_batch(&self, receipts: &[String]) -> Result<Vec<Result<()>>> {
        let parsed = receipts
            .iter()
            .map(|r| parse_receipt(r))
            .collect::<Result<Vec<_>>>()?;
        // One transaction: one commit (one flush) for the batch.
        let error = |e| self.pools.error(e);
        let mut tx = self.pools.writer.begin().await.map_err(error)?;
        let now = at(Duration::ZERO);
        let mut out = Vec::with_capacity(parsed.len());
        for (id, receipt) in parsed {
            let done = sqlx::query(
                "DELETE FROM mesh_queue WHERE id = ?1 AND receipt = ?2 AND visible_at > ?3",
            )
            .bind(id)
            .bind(receipt)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
            out.push(if done.rows_affected() == 0 {
                Err(StoreError::ReceiptExpired)
            } else {
                Ok(())
            });
        }
        tx.commit().await.map_err(error)?;
        Ok(out)
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<()> {
        self.with_receipt(
            "UPDATE mesh_queue SET visible_at = ?4
             WHERE id = ?1 AND receipt = ?2 AND received = 1 AND visible_at > ?3",
            receipt,
            Some(visibility),
        )
        .await
    }

    async fn nack(&self, receipt: &str, retry_after: Duration) -> Result<()> {
        self.with_receipt(
            "UPDATE mesh_queue SET visible_at = ?4, receipt = NULL, received = 0
             WHERE id = ?1 AND receipt = ?2 AND visible_at > ?3",
            receipt,
            Some(retry_after),
        )
        .await
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE dead = 0 AND visible_at <= ?2) AS available,
                    count(*) FILTER (WHERE dead = 0 AND visible_at > ?2 AND received = 1) AS in_flight,
                    count(*) FILTER (WHERE dead = 0 AND visible_at > ?2 AND received = 0) AS delayed,
                    count(*) FILTER (WHERE dead = 1) AS dead
             FROM mesh_queue WHERE queue = ?1",
        )
        .bind(&self.name)
        .bind(at(Duration::ZERO))
        .fetch_one(&self.pools.readers)
        .await
        .map_err(|e| self.pools.error(e))?;
        let get = |c: &str| {
            row.try_get::<i64, _>(c)
                .map(|n| n as u64)
                .map_err(|e| self.pools.error(e))
        };
        Ok(QueueDepth {
            available: get("available")?,
            in_flight: get("in_flight")?,
            delayed: get("delayed")?,
            dead: get("dead")?,
        })
    }

    async fn take_dead(&self, max: usize) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "DELETE FROM mesh_queue WHERE id IN (
                 SELECT id FROM mesh_queue WHERE queue = ?1 AND dead = 1 ORDER BY id LIMIT ?2
             ) RETURNING id, body, receive_count",
        )
        .bind(&self.name)
        .bind(max.clamp(1, 1000) as i64)
        .fetch_all(&self.pools.writer)
        .await
        .map_err(|e| self.pools.error(e))?;
        self.deliveries(&rows, false)
    }
}
