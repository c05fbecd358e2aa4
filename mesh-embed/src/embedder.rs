//! The `Embedder` trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::EmbedError;

/// A boxed future, so `Embedder` works as a trait object (failover chains mix
/// providers).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the text is for: some models embed documents and queries differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Role {
    /// Text to be found (indexed).
    #[default]
    Document,
    /// Text to search with.
    Query,
}

/// A model's identity and limits.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The model id; vectors of different ids never share a collection.
    pub id: String,
    /// Length of its vectors.
    pub dimensions: usize,
    /// Longest input it takes, in tokens (approximate for the offline model).
    pub max_input_tokens: usize,
    /// Most texts in one request.
    pub max_batch: usize,
    /// Dollars per million input tokens.
    pub price_per_million_tokens: f64,
}

/// Vectors for a batch of texts, in input order, with the tokens they cost.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Embeddings {
    /// The model that made them.
    pub model: String,
    /// One vector per text.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens billed.
    pub tokens: u64,
}

impl Embeddings {
    /// Vectors from `model` that cost `tokens`.
    pub fn new(model: impl Into<String>, vectors: Vec<Vec<f32>>, tokens: u64) -> Self {
        Self {
            model: model.into(),
            vectors,
            tokens,
        }
    }
}

/// Turns text into vectors.
pub trait Embedder: Send + Sync {
    /// The model answering (for a failover chain: the first provider's).
    fn model(&self) -> &ModelInfo;

    /// Embeds `texts` (at most `model().max_batch`), returning one vector per text.
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>>;
}

impl<E: Embedder + ?Sized> Embedder for Arc<E> {
    fn model(&self) -> &ModelInfo {
        (**self).model()
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        (**self).embed(texts, role)
    }
}

impl<E: Embedder + ?Sized> Embedder for Box<E> {
    fn model(&self) -> &ModelInfo {
        (**self).model()
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        (**self).embed(texts, role)
    }
}
