//! The queue trait.

use std::future::Future;
use std::time::Duration;

use crate::Result;

/// A message handed to a consumer. It stays invisible to others until its visibility
/// timeout passes; [`Queue::ack`] removes it, [`Queue::nack`] brings it back sooner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The message's id (stable across redeliveries).
    pub id: String,
    /// Proof of this delivery, for ack and nack.
    pub receipt: String,
    /// The body as sent.
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// How many messages a queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueueDepth {
    /// Ready to be received.
    pub available: u64,
    /// Received and not yet acked (within their visibility timeout).
    pub in_flight: u64,
    /// Sent with a delay that has not passed.
    pub delayed: u64,
    /// Dead-lettered after too many receives.
    pub dead: u64,
}

/// Settings shared by every queue implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Receives after which a message goes to the dead-letter queue. Default 5.
    pub max_receives: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { max_receives: 5 }
    }
}

impl QueueConfig {
    /// A config with this many receives before dead-lettering (at least 1).
    pub fn max_receives(max_receives: u32) -> Self {
        Self {
            max_receives: max_receives.max(1),
        }
    }
}

/// A work queue with at-least-once delivery: a message that is not acked within its
/// visibility timeout comes back, and after `max_receives` receives it is moved to the
/// dead-letter queue instead.
pub trait Queue: Send + Sync {
    /// Sends a message, visible after `delay`.
    fn send(&self, body: &str, delay: Duration) -> impl Future<Output = Result<String>> + Send;

    /// Sends several messages at once; returns their ids in order.
    fn send_batch(
        &self,
        messages: &[(String, Duration)],
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Receives up to `max` messages, hiding them for `visibility`; waits up to `wait`
    /// for the first one to arrive (long polling).
    fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Deletes a received message. [`ReceiptExpired`](crate::StoreError::ReceiptExpired)
    /// if the delivery is no longer current.
    fn ack(&self, receipt: &str) -> impl Future<Output = Result<()>> + Send;

    /// Deletes several received messages — in one round trip and one commit where the
    /// backend allows (PostgreSQL; one transaction on SQLite) — with, for each receipt
    /// in order, `Ok` or the [`ReceiptExpired`](crate::StoreError::ReceiptExpired) a
    /// single [`ack`](Self::ack) would give (a receipt given twice is acked once). The
    /// outer error is the batch's: a malformed receipt, or the backend failing — on
    /// the built-in queues nothing is acked then. By default (SQS), one `ack` after
    /// another, stopping at the first error other than an expired receipt.
    fn ack_batch(
        &self,
        receipts: &[String],
    ) -> impl Future<Output = Result<Vec<Result<()>>>> + Send {
        ack_each(receipts, |r| self.ack(r))
    }

    /// Keeps a received message hidden for `visibility` from now — the lease of a job
    /// that runs longer than its first visibility timeout; the receipt stays current.
    /// [`ReceiptExpired`](crate::StoreError::ReceiptExpired) if it no longer is.
    fn extend(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes a received message visible again after `retry_after`.
    fn nack(&self, receipt: &str, retry_after: Duration)
    -> impl Future<Output = Result<()>> + Send;

    /// How many messages are where.
    fn depth(&self) -> impl Future<Output = Result<QueueDepth>> + Send;

    /// Takes up to `max` messages off the dead-letter queue (to inspect or replay them);
    /// they are deleted from it.
    fn take_dead(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>>> + Send;
}

/// Acks one receipt after another, each reported as `ack` gave it; stops at the first
/// error other than an expired receipt (the default `ack_batch`).
pub(crate) async fn ack_each<R, F, Fut>(
    receipts: impl IntoIterator<Item = R>,
    mut ack: F,
) -> Result<Vec<Result<()>>>
where
    F: FnMut(R) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut out = Vec::new();
    for receipt in receipts {
        match ack(receipt).await {
            Err(crate::StoreError::ReceiptExpired) => {
                out.push(Err(crate::StoreError::ReceiptExpired));
            }
            Err(e) => return Err(e),
            Ok(()) => out.push(Ok(())),
        }
    }
    Ok(out)
}
