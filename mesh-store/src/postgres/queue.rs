use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use super::backend;
use crate::record::check_name;
use crate::{Delivery, Queue, QueueConfig, QueueDepth, Result, StoreError};

/// A queue in `mesh_queue`, shared by any number of consumers and instances: receiving
/// claims rows with `FOR UPDATE SKIP LOCKED`, so each message goes to one consumer at a
/// time, and comes back when its visibility timeout passes.
#[derive(Debug, Clone)]
pub struct PgQueue {
    pool: PgPool,
    name: String,
    config: QueueConfig,
    poll: Duration,
}

impl PgQueue {
    pub(crate) fn new(pool: PgPool, name: &str, config: QueueConfig) -> Result<Self> {
        check_name(name, 80)?;
        Ok(Self {
            pool,
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

    async fn claim(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "WITH due AS (
                 SELECT id, receive_count FROM mesh_queue
                 WHERE queue = $1 AND NOT dead AND visible_at <= now()
                 ORDER BY visible_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
             ), buried AS (
                 UPDATE mesh_queue q SET dead = true, receipt = NULL, received = false
                 FROM due WHERE q.id = due.id AND due.receive_count >= $4
             )
             UPDATE mesh_queue q
             SET receive_count = q.receive_count + 1,
                 visible_at = now() + make_interval(secs => $3),
                 receipt = gen_random_uuid(),
                 received = true
             FROM due WHERE q.id = due.id AND due.receive_count < $4
             RETURNING q.id, q.body, q.receive_count, q.receipt",
        )
        .bind(&self.name)
        .bind(max.clamp(1, 1000) as i64)
        .bind(visibility.as_secs_f64())
        .bind(self.config.max_receives as i32)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        deliveries(&rows, true)
    }

    fn parse_receipt(receipt: &str) -> Result<(i64, Uuid)> {
        receipt
            .split_once(':')
            .and_then(|(id, r)| Some((id.parse().ok()?, r.parse().ok()?)))
            .ok_or_else(|| StoreError::invalid("malformed receipt"))
    }

    /// Runs `sql` (binding the delivery's id, its receipt and `secs`) on a delivery
    /// that is still current; [`StoreError::ReceiptExpired`] if it is not.
    async fn with_receipt(&self, sql: &'static str, receipt: &str, secs: Duration) -> Result<()> {
        let (id, receipt) = Self::parse_receipt(receipt)?;
        let done = sqlx::query(sql)
            .bind(id)
            .bind(receipt)
            .bind(secs.as_secs_f64())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            Err(StoreError::ReceiptExpired)
        } else {
            Ok(())
        }
    }
}

/// Deliveries from rows, in message order (UPDATE … RETURNING does not keep it).
fn deliveries(rows: &[sqlx::postgres::PgRow], with_receipt: bool) -> Result<Vec<Delivery>> {
    let mut out = rows
        .iter()
        .map(|row| delivery(row, with_receipt))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|d| d.id.parse::<i64>().unwrap_or(0));
    Ok(out)
}

/// A delivery from a claimed or dead-lettered row (with its receipt, if it has one).
fn delivery(row: &sqlx::postgres::PgRow, with_receipt: bool) -> Result<Delivery> {
    let id: i64 = row.try_get("id").map_err(backend)?;
    let count: i32 = row.try_get("receive_count").map_err(backend)?;
    let receipt = if with_receipt {
        let r: Uuid = row.try_get("receipt").map_err(backend)?;
        format!("{id}:{r}")
    } else {
        String::new()
    };
    Ok(Delivery {
        id: id.to_string(),
        receipt,
        body: row.try_get("body").map_err(backend)?,
        receive_count: count as u32,
    })
}

impl Queue for PgQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO mesh_queue (queue, body, visible_at) VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING id",
        )
        .bind(&self.name)
        .bind(body)
        .bind(delay.as_secs_f64())
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(id.to_string())
    }

    async fn send_batch(&self, messages: &[(String, Duration)]) -> Result<Vec<String>> {
        let bodies: Vec<&str> = messages.iter().map(|(b, _)| b.as_str()).collect();
        let delays: Vec<f64> = messages.iter().map(|(_, d)| d.as_secs_f64()).collect();
        let ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO mesh_queue (queue, body, visible_at)
             SELECT $1, u.body, now() + make_interval(secs => u.delay)
             FROM unnest($2::text[], $3::float8[]) WITH ORDINALITY AS u(body, delay, n) ORDER BY u.n
             RETURNING id",
        )
        .bind(&self.name)
        .bind(&bodies)
        .bind(&delays)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut ids = ids;
        ids.sort_unstable();
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
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
        let (id, receipt) = Self::parse_receipt(receipt)?;
        let done = sqlx::query(
            "DELETE FROM mesh_queue WHERE id = $1 AND receipt = $2 AND visible_at > now()",
        )
        .bind(id)
        .bind(receipt)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            Err(StoreError::ReceiptExpired)
        } else {
            Ok(())
        }
    }

    async fn ack_batch(&self, receipts: &[String]) -> Result<Vec<Result<()>>> {
        let parsed = receipts
            .iter()
            .map(|r| Self::parse_receipt(r))
            .collect::<Result<Vec<_>>>()?;
        let (ids, tokens): (Vec<i64>, Vec<Uuid>) = parsed.iter().copied().unzip();
        // One statement, one commit: the current deliveries among them go.
        let gone: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM mesh_queue q USING unnest($1::int8[], $2::uuid[]) AS a(id, receipt)
             WHERE q.id = a.id AND q.receipt = a.receipt AND q.visible_at > now()
             RETURNING q.id",
        )
        .bind(&ids)
        .bind(&tokens)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        // A receipt given twice is acked once, as two `ack`s would be.
        let mut gone: std::collections::HashSet<i64> = gone.into_iter().collect();
        Ok(ids
            .iter()
            .map(|id| {
                if gone.remove(id) {
                    Ok(())
                } else {
                    Err(StoreError::ReceiptExpired)
                }
            })
            .collect())
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<()> {
        self.with_receipt(
            "UPDATE mesh_queue SET visible_at = now() + make_interval(secs => $3)
             WHERE id = $1 AND receipt = $2 AND received AND visible_at > now()",
            receipt,
            visibility,
        )
        .await
    }

    async fn nack(&self, receipt: &str, retry_after: Duration) -> Result<()> {
        self.with_receipt(
            "UPDATE mesh_queue SET visible_at = now() + make_interval(secs => $3), receipt = NULL, received = false
             WHERE id = $1 AND receipt = $2 AND visible_at > now()",
            receipt,
            retry_after,
        )
        .await
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE NOT dead AND visible_at <= now()) AS available,
                    count(*) FILTER (WHERE NOT dead AND visible_at > now() AND received) AS in_flight,
                    count(*) FILTER (WHERE NOT dead AND visible_at > now() AND NOT received) AS delayed,
                    count(*) FILTER (WHERE dead) AS dead
             FROM mesh_queue WHERE queue = $1",
        )
        .bind(&self.name)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let get = |c: &str| row.try_get::<i64, _>(c).map(|n| n as u64).map_err(backend);
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
                 SELECT id FROM mesh_queue WHERE queue = $1 AND dead ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
             ) RETURNING id, body, receive_count",
        )
        .bind(&self.name)
        .bind(max.clamp(1, 1000) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        deliveries(&rows, false)
    }
}
