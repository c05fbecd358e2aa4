//! The vector index trait.

use std::future::Future;

use serde_json::Value;

use crate::Result;

/// How distance between vectors is measured. Smaller distances are nearer, as in
/// pgvector: cosine distance `1 − cos`, negative inner product, Euclidean distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// `1 − cos(a, b)`.
    Cosine,
    /// `−(a · b)`.
    InnerProduct,
    /// `‖a − b‖`.
    L2,
}

impl Metric {
    /// The name stored with a collection.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::InnerProduct => "ip",
            Self::L2 => "l2",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cosine" => Some(Self::Cosine),
            "ip" => Some(Self::InnerProduct),
            "l2" => Some(Self::L2),
            _ => None,
        }
    }
}

/// A vector with its id and metadata.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VectorItem {
    /// Unique within the tenant's collection; upserting the same id replaces it.
    pub id: String,
    /// The embedding.
    pub vector: Vec<f32>,
    /// A JSON object that search filters match against.
    pub metadata: Value,
}

impl VectorItem {
    /// An item.
    pub fn new(id: impl Into<String>, vector: Vec<f32>, metadata: Value) -> Self {
        Self {
            id: id.into(),
            vector,
            metadata,
        }
    }
}

/// A search result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Hit {
    /// The item's id.
    pub id: String,
    /// Its distance to the query (smaller is nearer).
    pub distance: f32,
    /// Its metadata.
    pub metadata: Value,
}

/// Nearest-neighbour search over vectors, per tenant and per named collection. A
/// collection has one dimension count and one metric, so vectors of different models
/// never mix: give each model its own collection.
pub trait VectorIndex: Send + Sync {
    /// Creates the collection if it does not exist; an existing one must have the same
    /// dimensions and metric.
    fn create_collection(
        &self,
        collection: &str,
        dims: usize,
        metric: Metric,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Inserts or replaces items in the tenant's part of the collection.
    fn upsert(
        &self,
        tenant: &str,
        collection: &str,
        items: &[VectorItem],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes items by id; returns how many existed.
    fn delete(
        &self,
        tenant: &str,
        collection: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<usize>> + Send;

    /// The `k` nearest of the tenant's items whose metadata contains every
    /// `(key, value)` of `filter`, nearest first.
    fn search(
        &self,
        tenant: &str,
        collection: &str,
        query: &[f32],
        k: usize,
        filter: &[(String, Value)],
    ) -> impl Future<Output = Result<Vec<Hit>>> + Send;
}
