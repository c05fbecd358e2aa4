//! Coalescing concurrent small requests into model-sized batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{BoxFuture, EmbedError, Embedder, Embeddings, ModelInfo, Role};

type Job = (
    String,
    Role,
    oneshot::Sender<Result<(Vec<f32>, u64), EmbedError>>,
);

/// Collects texts from concurrent callers for up to `max_delay` (or until a batch is
/// full) and sends them to the inner embedder in one request per role.
///
/// Owns a background task, stopped when the batcher is dropped.
pub struct Batcher {
    info: ModelInfo,
    jobs: mpsc::Sender<Job>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("model", &self.info.id)
            .finish()
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Batcher {
    /// Batches requests to `inner`, waiting at most `max_delay` to fill a batch. Must
    /// be called inside a tokio runtime.
    pub fn new<E: Embedder + 'static>(inner: Arc<E>, max_delay: Duration) -> Self {
        let info = inner.model().clone();
        let (jobs, rx) = mpsc::channel(info.max_batch.max(1) * 8);
        let task = tokio::spawn(run(inner, rx, max_delay));
        Self { info, jobs, task }
    }
}

async fn run<E: Embedder + 'static>(
    inner: Arc<E>,
    mut rx: mpsc::Receiver<Job>,
    max_delay: Duration,
) {
    let max = inner.model().max_batch.max(1);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + max_delay;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => batch.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        let (documents, queries): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .partition(|(_, r, _)| *r == Role::Document);
        for (role, jobs) in [(Role::Document, documents), (Role::Query, queries)] {
            if jobs.is_empty() {
                continue;
            }
            let (texts, replies): (Vec<String>, Vec<_>) =
                jobs.into_iter().map(|(t, _, tx)| (t, tx)).unzip();
            let inner = inner.clone();
            // Each batch runs on its own task, so a slow provider does not hold the next.
            tokio::spawn(async move {
                match inner.embed(&texts, role).await {
                    Ok(e) => {
                        let share = e.tokens / texts.len().max(1) as u64;
                        for (tx, v) in replies.into_iter().zip(e.vectors) {
                            let _ = tx.send(Ok((v, share)));
                        }
                    }
                    Err(e) => {
                        for tx in replies {
                            let _ = tx.send(Err(e.clone()));
                        }
                    }
                }
            });
        }
    }
}

impl Embedder for Batcher {
    fn model(&self) -> &ModelInfo {
        &self.info
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            let mut pending = Vec::with_capacity(texts.len());
            for text in texts {
                let (tx, rx) = oneshot::channel();
                self.jobs
                    .send((text.clone(), role, tx))
                    .await
                    .map_err(|_| EmbedError::Closed)?;
                pending.push(rx);
            }
            let mut vectors = Vec::with_capacity(texts.len());
            let mut tokens = 0;
            for rx in pending {
                let (v, t) = rx.await.map_err(|_| EmbedError::Closed)??;
                vectors.push(v);
                tokens += t;
            }
            Ok(Embeddings::new(self.info.id.clone(), vectors, tokens))
        })
    }
}
