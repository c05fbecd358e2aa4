use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{Delivery, Queue, QueueConfig, QueueDepth, Result, StoreError};

#[derive(Debug)]
struct Message {
    body: String,
    receive_count: u32,
    visible_at: Instant,
    /// Bumped on every receive and nack, so older receipts stop working.
    generation: u64,
    received: bool,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    messages: HashMap<u64, Message>,
    /// Every message, keyed by when it becomes (or became) receivable.
    schedule: BTreeSet<(Instant, u64)>,
    dead: VecDeque<(u64, Message)>,
}

/// A queue in memory, with the same visibility, redelivery and dead-letter behaviour as
/// the PostgreSQL and SQS queues. Time is tokio's, so tests can pause it.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    config: QueueConfig,
    state: Mutex<State>,
    arrived: Notify,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> Self {
        Self {
            config,
            state: Mutex::default(),
            arrived: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, state: &mut State, body: &str, delay: Duration) -> String {
        let id = state.next_id;
        state.next_id += 1;
        let visible_at = Instant::now() + delay;
        state.messages.insert(
            id,
            Message {
                body: body.to_owned(),
                receive_count: 0,
                visible_at,
                generation: 0,
                received: false,
            },
        );
        state.schedule.insert((visible_at, id));
        id.to_string()
    }

    /// Receives what is due now; returns the deliveries and when the next message is due.
    fn take_due(&self, max: usize, visibility: Duration) -> (Vec<Delivery>, Option<Instant>) {
        let mut state = self.state();
        let now = Instant::now();
        let mut out = Vec::new();
        while out.len() < max {
            let Some(&(at, id)) = state.schedule.first() else {
                break;
            };
            if at > now {
                break;
            }
            state.schedule.pop_first();
            let Some(mut message) = state.messages.remove(&id) else {
                continue;
            };
            if message.receive_count >= self.config.max_receives {
                state.dead.push_back((id, message));
                continue;
            }
            message.receive_count += 1;
            message.generation += 1;
            message.received = true;
            message.visible_at = now + visibility;
            state.schedule.insert((message.visible_at, id));
            out.push(Delivery {
                id: id.to_string(),
                receipt: format!("{id}:{}", message.generation),
                body: message.body.clone(),
                receive_count: message.receive_count,
            });
            state.messages.insert(id, message);
        }
        let next = state.schedule.first().map(|&(at, _)| at);
        (out, next)
    }

    /// Runs `f` on the message a receipt refers to, if the receipt is current.
    fn with_receipt<R>(&self, receipt: &str, f: impl FnOnce(&mut State, u64) -> R) -> Result<R> {
        let (id, generation) = parse_receipt(receipt)?;
        let mut state = self.state();
        let current = state.messages.get(&id).is_some_and(|m| {
            m.received && m.generation == generation && m.visible_at > Instant::now()
        });
        if !current {
            return Err(StoreError::ReceiptExpired);
        }
        Ok(f(&mut state, id))
    }
}

/// A receipt's message id and delivery generation.
fn parse_receipt(receipt: &str) -> Result<(u64, u64)> {
    receipt
        .split_once(':')
        .and_then(|(i, g)| Some((i.parse::<u64>().ok()?, g.parse::<u64>().ok()?)))
        .ok_or_else(|| StoreError::invalid("malformed receipt"))
}

impl Queue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String> {
        let id = self.push(&mut self.state(), body, delay);
        self.arrived.notify_waiters();
        Ok(id)
    }

    async fn send_batch(&self, messages: &[(String, Duration)]) -> Result<Vec<String>> {
        let ids = {
            let mut state = self.state();
            messages
                .iter()
                .map(|(body, delay)| self.push(&mut state, body, *delay))
                .collect()
        };
        self.arrived.notify_waiters();
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let (out, next) = self.take_due(max.max(1), visibility);
            let now = Instant::now();
            if !out.is_empty() || now >= deadline {
                return Ok(out);
            }
            let wake = next.map_or(deadline, |n| n.min(deadline));
            tokio::select! {
                () = &mut arrived => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        self.with_receipt(receipt, |state, id| {
            if let Some(m) = state.messages.remove(&id) {
                state.schedule.remove(&(m.visible_at, id));
            }
        })
    }

    async fn ack_batch(&self, receipts: &[String]) -> Result<Vec<Result<()>>> {
        // All or nothing for a malformed receipt, as on the databases.
        for receipt in receipts {
            parse_receipt(receipt)?;
        }
        let mut out = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            out.push(self.ack(receipt).await);
        }
        Ok(out)
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<()> {
        self.with_receipt(receipt, |state, id| {
            if let Some(m) = state.messages.get_mut(&id) {
                let old = (m.visible_at, id);
                m.visible_at = Instant::now() + visibility;
                let new = (m.visible_at, id);
                state.schedule.remove(&old);
                state.schedule.insert(new);
            }
        })
    }

    async fn nack(&self, receipt: &str, retry_after: Duration) -> Result<()> {
        self.with_receipt(receipt, |state, id| {
            if let Some(m) = state.messages.get_mut(&id) {
                let old = (m.visible_at, id);
                m.visible_at = Instant::now() + retry_after;
                m.generation += 1;
                m.received = false;
                let new = (m.visible_at, id);
                state.schedule.remove(&old);
                state.schedule.insert(new);
            }
        })?;
        self.arrived.notify_waiters();
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let state = self.state();
        let now = Instant::now();
        let mut depth = QueueDepth {
            dead: state.dead.len() as u64,
            ..QueueDepth::default()
        };
        for m in state.messages.values() {
            match (m.visible_at <= now, m.received) {
                (true, _) => depth.available += 1,
                (false, true) => depth.in_flight += 1,
                (false, false) => depth.delayed += 1,
            }
        }
        Ok(depth)
    }

    async fn take_dead(&self, max: usize) -> Result<Vec<Delivery>> {
        let mut state = self.state();
        let n = max.min(state.dead.len());
        Ok(state
            .dead
            .drain(..n)
            .map(|(id, m)| Delivery {
                id: id.to_string(),
                receipt: String::new(),
                body: m.body,
                receive_count: m.receive_count,
            })
            .collect())
    }
}
