//! The worker: drains the job queue (document indexing), and sweeps tasks whose
//! engine died. Jobs are idempotent, so a job redelivered after a crash or a lost ack
//! does no harm; a failing job is retried with backoff and dead-lettered by the queue
//! after its maximum receives. Done jobs are acked together (`Queue::ack_batch`: one
//! statement on PostgreSQL), not one round trip each.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::knowledge::Job;
use crate::services::Services;

/// Worker settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Jobs handled at once. Default 4.
    pub concurrency: usize,
    /// How long a received job stays hidden from other workers. Default 60 s.
    pub visibility: Duration,
    /// How long one receive waits for a job (long polling). Default 1 s.
    pub poll_wait: Duration,
    /// First retry delay of a failed job; doubles per receive. Default 1 s.
    pub retry_backoff: Duration,
    /// Largest retry delay. Default 60 s.
    pub max_backoff: Duration,
    /// How often stuck tasks are swept ([`crate::Engine::sweep`]); `None` never. Default 5 s.
    pub sweep_every: Option<Duration>,
    /// How long past its timeout an in-flight task must be to count as stuck. Default 5 s.
    pub sweep_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            visibility: Duration::from_secs(60),
            poll_wait: Duration::from_secs(1),
            retry_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            sweep_every: Some(Duration::from_secs(5)),
            sweep_grace: Duration::from_secs(5),
        }
    }
}

impl WorkerConfig {
    /// Sets how many jobs run at once.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets the retry backoff (initial and largest).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the sweep interval (`None` to never sweep) and grace.
    pub fn sweep(mut self, every: Option<Duration>, grace: Duration) -> Self {
        self.sweep_every = every;
        self.sweep_grace = grace;
        self
    }

    /// Sets the visibility timeout and the long-poll wait.
    pub fn polling(mut self, visibility: Duration, wait: Duration) -> Self {
        self.visibility = visibility;
        self.poll_wait = wait;
        self
    }
}

/// Runs jobs from the services' queue until `shutdown` resolves; jobs in hand are
/// finished first (a job cut short is redelivered anyway).
pub async fn run_worker(
    services: Services,
    config: WorkerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut running = JoinSet::new();
    let (acks, done) = mpsc::unbounded_channel();
    let acking = tokio::spawn(ack_done(services.jobs.clone(), done));
    let mut sweep = tokio::time::interval(config.sweep_every.unwrap_or(Duration::from_secs(3600)));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A receive, once started, is always finished: the queue may already have handed
    // its messages over (a committed claim), and a receive dropped half-way would hide
    // them from every worker until their visibility timeout passes.
    let jobs = services.jobs.clone();
    let mut sweeping: Option<tokio::task::JoinHandle<()>> = None;
    let mut receiving: Option<
        mesh_store::BoxFuture<'_, mesh_store::Result<Vec<mesh_store::Delivery>>>,
    > = None;
    loop {
        let free = slots.available_permits();
        if receiving.is_none() && free > 0 {
            receiving = Some(jobs.receive(free, config.visibility, config.poll_wait));
        }
        tokio::select! {
            () = &mut shutdown => break,
            _ = sweep.tick(), if config.sweep_every.is_some() => {
                // On its own task: awaiting it here would leave the receive in progress
                // unpolled, holding a pooled connection the sweep may need (a deadlock
                // on a one-connection SQLite writer).
                if sweeping.as_ref().is_none_or(|s| s.is_finished()) {
                    let (engine, grace) = (services.engine.clone(), config.sweep_grace);
                    sweeping = Some(tokio::spawn(async move {
                        if let Err(e) = engine.sweep(grace).await {
                            tracing::warn!(error = %e, "sweeping stuck tasks failed");
                        }
                    }));
                }
            }
            received = async {
                match receiving.as_mut() {
                    Some(receive) => receive.await,
                    None => std::future::pending().await,
                }
            }, if receiving.is_some() => {
                receiving = None;
                services.probes.worker_beat();
                let deliveries = match received {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "receiving jobs failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                for delivery in deliveries {
                    let Ok(permit) = slots.clone().acquire_owned().await else { return };
                    let (services, config, acks) = (services.clone(), config.clone(), acks.clone());
                    running.spawn(async move {
                        handle(&services, &config, &acks, delivery).await;
                        drop(permit);
                    });
                }
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    // Stopping: what a receive in progress gets is handed back at once, not left
    // hidden until its visibility timeout.
    if let Some(receiving) = receiving
        && let Ok(deliveries) = receiving.await
    {
        for delivery in deliveries {
            if let Err(e) = jobs.nack(delivery.receipt, Duration::ZERO).await {
                tracing::warn!(error = %e, job = %delivery.id, "handing back a job failed");
            }
        }
    }
    while running.join_next().await.is_some() {}
    // The last acks are sent before the worker returns.
    drop(acks);
    let _ = acking.await;
}

/// Acks taken per `ack_batch` call at most.
const MAX_ACKS: usize = 256;

/// A done job's receipt, and its id for the log.
type Done = (String, String);

/// Acks done jobs together: what has come in while the last batch was being acked goes
/// in the next one, so under load one call acks many jobs and when idle a job is acked
/// at once. A lost ack only means a redelivery (jobs are idempotent).
async fn ack_done(jobs: Arc<dyn mesh_store::DynQueue>, mut done: mpsc::UnboundedReceiver<Done>) {
    let mut batch = Vec::new();
    while done.recv_many(&mut batch, MAX_ACKS).await > 0 {
        let (receipts, ids): (Vec<String>, Vec<String>) =
            std::mem::take(&mut batch).into_iter().unzip();
        match jobs.ack_batch(receipts).await {
            Ok(results) => {
                for (id, result) in ids.iter().zip(results) {
                    if let Err(e) = result {
                        // Redelivered later and done again: harmless, the job is idempotent.
                        tracing::warn!(error = %e, job = %id, "acking a job failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, jobs = ids.len(), "acking jobs failed"),
        }
    }
}

/// Runs one delivery and acks it, or nacks it with backoff. While it runs, its lease
/// is extended every half visibility timeout, so a job longer than the timeout is not
/// delivered again to another worker meanwhile.
async fn handle(
    services: &Services,
    config: &WorkerConfig,
    acks: &mpsc::UnboundedSender<Done>,
    delivery: mesh_store::Delivery,
) {
    let every = (config.visibility / 2).max(Duration::from_millis(10));
    let mut lease = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let outcome = {
        let work = run_job(services, &delivery);
        tokio::pin!(work);
        loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = lease.tick() => {
                    let extended = services.jobs.extend(delivery.receipt.clone(), config.visibility).await;
                    if let Err(e) = extended {
                        tracing::warn!(error = %e, job = %delivery.id, "extending a job's lease failed");
                    }
                }
            }
        }
    };
    settle(services, config, acks, delivery, outcome).await;
}

/// What a job came to.
async fn run_job(services: &Services, delivery: &mesh_store::Delivery) -> Result<(), String> {
    match serde_json::from_str::<Job>(&delivery.body) {
        Ok(Job::IndexDocument {
            tenant,
            request,
            traceparent,
        }) => {
            let span = tracing::info_span!(
                "index_document",
                otel.kind = "consumer",
                otel.status_code = tracing::field::Empty,
                messaging.message.id = %delivery.id,
                mesh.job.receives = delivery.receive_count,
                mesh.collection = %request.collection,
            );
            if let Some(traceparent) = &traceparent {
                crate::trace::set_parent(&span, traceparent);
            }
            let outcome = services
                .index_now(tenant, &request)
                .instrument(span.clone())
                .await
                .map(|chunks| tracing::debug!(chunks, document = %request.document_id, "indexed"))
                .map_err(|e| e.to_string());
            if outcome.is_err() {
                span.record("otel.status_code", "ERROR");
            }
            outcome
        }
        Err(e) => Err(format!("unreadable job: {e}")),
    }
}

/// Acks a job that went well (with the others done meanwhile), nacks with backoff one
/// that did not.
async fn settle(
    services: &Services,
    config: &WorkerConfig,
    acks: &mpsc::UnboundedSender<Done>,
    delivery: mesh_store::Delivery,
    outcome: Result<(), String>,
) {
    let settled = if outcome.is_ok() { "done" } else { "retried" };
    metrics::counter!("mesh_jobs_total", "outcome" => settled).increment(1);
    match outcome {
        Ok(()) => {
            // The acker lives until every job is settled.
            let _ = acks.send((delivery.receipt, delivery.id.to_string()));
        }
        Err(error) => {
            let exponent = delivery.receive_count.saturating_sub(1).min(16);
            let delay = (config.retry_backoff * 2u32.pow(exponent)).min(config.max_backoff);
            tracing::warn!(%error, job = %delivery.id, receives = delivery.receive_count, ?delay, "job failed; retrying later");
            if let Err(e) = services.jobs.nack(delivery.receipt, delay).await {
                tracing::warn!(error = %e, job = %delivery.id, "nacking a job failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mesh_store::{MemoryQueue, Queue, QueueConfig};

    use super::*;
    use crate::knowledge::IndexRequest;
    use crate::{Engine, TenantId};

    #[tokio::test]
    async fn failing_jobs_are_retried_then_dead_lettered_and_good_ones_done_once() {
        let queue = Arc::new(MemoryQueue::new(QueueConfig::max_receives(3)));
        let mut services = Services::in_memory(Engine::in_memory().await);
        services.jobs = queue.clone();
        let tenant = TenantId::new();
        let request = IndexRequest {
            collection: "docs".into(),
            document_id: "d".into(),
            text: "worker jobs are idempotent".into(),
            metadata: serde_json::Value::Null,
        };
        services
            .index_document(tenant, request.clone())
            .await
            .unwrap();
        // The same job twice (a redelivery) indexes the same chunk ids.
        services.index_document(tenant, request).await.unwrap();
        Queue::send(&*queue, "not a job", Duration::ZERO)
            .await
            .unwrap();
        let config = WorkerConfig::default()
            .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
            .polling(Duration::from_secs(5), Duration::from_millis(20));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(run_worker(services.clone(), config, async {
            let _ = stopped.await;
        }));
        let dead = loop {
            let dead = queue.take_dead(10).await.unwrap();
            if !dead.is_empty() {
                break dead;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "not a job");
        assert_eq!(dead[0].receive_count, 3, "tried max_receives times");
        let depth = queue.depth().await.unwrap();
        assert_eq!((depth.available, depth.in_flight, depth.delayed), (0, 0, 0));
        let search = crate::knowledge::SearchRequest {
            collection: "docs".into(),
            query: "idempotent worker jobs".into(),
            k: Some(10),
            filter: None,
        };
        let hits = services.search(tenant, &search).await.unwrap();
        assert_eq!(hits.len(), 1, "one chunk, however often it was indexed");
        stop.send(()).unwrap();
        worker.await.unwrap();
    }

    /// An embedder that takes its time over documents, and counts them.
    struct Slow {
        inner: mesh_embed::HashEmbedder,
        documents: std::sync::atomic::AtomicUsize,
    }

    impl mesh_embed::Embedder for Slow {
        fn model(&self) -> &mesh_embed::ModelInfo {
            self.inner.model()
        }
        fn embed<'a>(
            &'a self,
            texts: &'a [String],
            role: mesh_embed::Role,
        ) -> mesh_embed::BoxFuture<'a, Result<mesh_embed::Embeddings, mesh_embed::EmbedError>>
        {
            Box::pin(async move {
                if role == mesh_embed::Role::Document {
                    self.documents
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(600)).await;
                }
                self.inner.embed(texts, role).await
            })
        }
    }

    /// Hardening issue, item 14: a job longer than the visibility timeout was delivered
    /// again, to a second worker slot, while the first still ran (and its ack failed).
    #[tokio::test]
    async fn hardening_14_a_job_longer_than_its_visibility_runs_once() {
        let queue = Arc::new(MemoryQueue::new(QueueConfig::max_receives(5)));
        let slow = Arc::new(Slow {
            inner: mesh_embed::HashEmbedder::default(),
            documents: std::sync::atomic::AtomicUsize::new(0),
        });
        let mut services = Services::in_memory(Engine::in_memory().await);
        services.jobs = queue.clone();
        services.embedder = slow.clone();
        let tenant = TenantId::new();
        let request = IndexRequest {
            collection: "docs".into(),
            document_id: "long".into(),
            text: "a job that takes longer than its visibility timeout".into(),
            metadata: serde_json::Value::Null,
        };
        services.index_document(tenant, request).await.unwrap();
        let config = WorkerConfig::default()
            .concurrency(2)
            .polling(Duration::from_millis(200), Duration::from_millis(20));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(run_worker(services.clone(), config, async {
            let _ = stopped.await;
        }));
        // Done when the queue is empty: acked, with nothing in flight or waiting.
        loop {
            let depth = queue.depth().await.unwrap();
            let (waiting, in_flight) = (depth.available + depth.delayed, depth.in_flight);
            if waiting + in_flight == 0
                && slow.documents.load(std::sync::atomic::Ordering::SeqCst) > 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            slow.documents.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the job ran once"
        );
        assert!(queue.take_dead(10).await.unwrap().is_empty());
        stop.send(()).unwrap();
        worker.await.unwrap();
    }

    /// A queue whose receive answers a while after the messages are claimed — as a
    /// database's does: the claim commits, then the rows travel back.
    struct SlowAnswers(MemoryQueue);

    impl mesh_store::DynQueue for SlowAnswers {
        fn send(
            &self,
            body: String,
            delay: Duration,
        ) -> mesh_store::BoxFuture<'_, mesh_store::Result<String>> {
            mesh_store::DynQueue::send(&self.0, body, delay)
        }
        fn receive(
            &self,
            max: usize,
            visibility: Duration,
            _wait: Duration,
        ) -> mesh_store::BoxFuture<'_, mesh_store::Result<Vec<mesh_store::Delivery>>> {
            Box::pin(async move {
                let claimed = Queue::receive(&self.0, max, visibility, Duration::ZERO).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                claimed
            })
        }
        fn ack(&self, receipt: String) -> mesh_store::BoxFuture<'_, mesh_store::Result<()>> {
            mesh_store::DynQueue::ack(&self.0, receipt)
        }
        fn extend(
            &self,
            receipt: String,
            visibility: Duration,
        ) -> mesh_store::BoxFuture<'_, mesh_store::Result<()>> {
            mesh_store::DynQueue::extend(&self.0, receipt, visibility)
        }
        fn nack(
            &self,
            receipt: String,
            retry_after: Duration,
        ) -> mesh_store::BoxFuture<'_, mesh_store::Result<()>> {
            mesh_store::DynQueue::nack(&self.0, receipt, retry_after)
        }
        fn depth(&self) -> mesh_store::BoxFuture<'_, mesh_store::Result<mesh_store::QueueDepth>> {
            mesh_store::DynQueue::depth(&self.0)
        }
        fn take_dead(
            &self,
            max: usize,
        ) -> mesh_store::BoxFuture<'_, mesh_store::Result<Vec<mesh_store::Delivery>>> {
            mesh_store::DynQueue::take_dead(&self.0, max)
        }
    }

    /// Found by `mesh up`'s SIGKILL test: the worker's loop dropped a receive in
    /// progress whenever its sweep timer fired first, and the messages that receive
    /// had claimed stayed hidden until their visibility timeout (a minute by default).
    #[tokio::test]
    async fn a_receive_in_progress_is_never_dropped_with_its_messages() {
        let queue = Arc::new(SlowAnswers(MemoryQueue::new(QueueConfig::default())));
        let mut services = Services::in_memory(Engine::in_memory().await);
        services.jobs = queue.clone();
        let tenant = TenantId::new();
        for n in 0..4 {
            let request = IndexRequest {
                collection: "docs".into(),
                document_id: format!("d{n}"),
                text: format!("document number {n}"),
                metadata: serde_json::Value::Null,
            };
            services.index_document(tenant, request).await.unwrap();
        }
        // The sweep fires every millisecond, always before a receive answers.
        let config = WorkerConfig::default()
            .sweep(Some(Duration::from_millis(1)), Duration::from_secs(60))
            .polling(Duration::from_secs(3600), Duration::from_millis(20));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(run_worker(services.clone(), config, async {
            let _ = stopped.await;
        }));
        let started = std::time::Instant::now();
        loop {
            let depth = mesh_store::DynQueue::depth(&*queue).await.unwrap();
            if depth.available + depth.in_flight == 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "jobs hidden by a dropped receive: {depth:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(()).unwrap();
        worker.await.unwrap();
    }
}
