//! A bounded content-hash cache in front of any embedder.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::{BoxFuture, EmbedError, Embedder, Embeddings, ModelInfo, Role};

/// Keeps the vectors of the last `capacity` distinct (model, role, text) triples, keyed
/// by their SHA-256, and asks the inner embedder only for the rest.
pub struct Cached<E> {
    inner: E,
    entries: Mutex<LruCache<[u8; 32], Vec<f32>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<E: Embedder> std::fmt::Debug for Cached<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("model", &self.inner.model().id)
            .field("hits", &self.hits())
            .finish()
    }
}

impl<E: Embedder> Cached<E> {
    /// A cache of at most `capacity` vectors (at least 1).
    pub fn new(inner: E, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner,
            entries: Mutex::new(LruCache::new(capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Texts answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Texts sent to the inner embedder so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn key(&self, role: Role, text: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.inner.model().id.as_bytes());
        h.update([0, role as u8]);
        h.update(text.as_bytes());
        h.finalize().into()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], Vec<f32>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<E: Embedder> Embedder for Cached<E> {
    fn model(&self) -> &ModelInfo {
        self.inner.model()
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            let keys: Vec<[u8; 32]> = texts.iter().map(|t| self.key(role, t)).collect();
            let mut vectors: Vec<Option<Vec<f32>>> = {
                let mut entries = self.entries();
                keys.iter().map(|k| entries.get(k).cloned()).collect()
            };
            let missing: Vec<usize> = (0..texts.len()).filter(|&i| vectors[i].is_none()).collect();
            let (hits, misses) = ((texts.len() - missing.len()) as u64, missing.len() as u64);
            self.hits.fetch_add(hits, Ordering::Relaxed);
            self.misses.fetch_add(misses, Ordering::Relaxed);
            metrics::counter!("mesh_embedding_cache_total", "result" => "hit").increment(hits);
            metrics::counter!("mesh_embedding_cache_total", "result" => "miss").increment(misses);
            let mut tokens = 0;
            if !missing.is_empty() {
                let asked: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
                let fresh = self.inner.embed(&asked, role).await?;
                tokens = fresh.tokens;
                let mut entries = self.entries();
                for (&i, v) in missing.iter().zip(fresh.vectors) {
                    entries.put(keys[i], v.clone());
                    vectors[i] = Some(v);
                }
            }
            Ok(Embeddings::new(
                self.inner.model().id.clone(),
                vectors.into_iter().map(Option::unwrap_or_default).collect(),
                tokens,
            ))
        })
    }
}
