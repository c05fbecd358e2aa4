//! Type erasure for the [`Queue`], [`VectorIndex`] and [`Repository`] traits, beside
//! them (as tower ships `BoxService` beside `Service`): their methods return
//! `impl Future`, so they cannot be trait objects themselves. [`DynQueue`],
//! [`DynVectorIndex`] and [`DynRepository`] can, and every implementation of the typed
//! traits implements them, so a service can hold an `Arc<dyn DynQueue>` that is
//! memory, PostgreSQL or SQS alike.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

use uuid::Uuid;

use crate::{
    Delivery, Hit, Metric, Page, Query, Queue, QueueDepth, Record, Repository, Result, VectorIndex,
    VectorItem, Versioned,
};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A [`Queue`] as a trait object (its methods return `impl Future`, so it cannot be
/// one itself); every `Queue` implements it: hold an `Arc<dyn DynQueue>`.
///
/// ```
/// use std::sync::Arc;
/// use mesh_store::{DynQueue, MemoryQueue, QueueConfig};
///
/// # async fn run() -> mesh_store::Result<()> {
/// let queue: Arc<dyn DynQueue> = Arc::new(MemoryQueue::new(QueueConfig::default()));
/// queue.send("job".into(), std::time::Duration::ZERO).await?;
/// assert_eq!(queue.depth().await?.available, 1);
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
pub trait DynQueue: Send + Sync {
    /// [`Queue::send`].
    fn send(&self, body: String, delay: Duration) -> BoxFuture<'_, Result<String>>;
    /// [`Queue::receive`].
    fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>>;
    /// [`Queue::ack`].
    fn ack(&self, receipt: String) -> BoxFuture<'_, Result<()>>;
    /// [`Queue::ack_batch`]; by default, one [`ack`](Self::ack) after another.
    fn ack_batch(&self, receipts: Vec<String>) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        Box::pin(crate::queue::ack_each(receipts, |r| self.ack(r)))
    }
    /// [`Queue::extend`].
    fn extend(&self, receipt: String, visibility: Duration) -> BoxFuture<'_, Result<()>>;
    /// [`Queue::nack`].
    fn nack(&self, receipt: String, retry_after: Duration) -> BoxFuture<'_, Result<()>>;
    /// [`Queue::depth`].
    fn depth(&self) -> BoxFuture<'_, Result<QueueDepth>>;
    /// [`Queue::take_dead`].
    fn take_dead(&self, max: usize) -> BoxFuture<'_, Result<Vec<Delivery>>>;
}

impl<Q: Queue + 'static> DynQueue for Q {
    fn send(&self, body: String, delay: Duration) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move { Queue::send(self, &body, delay).await })
    }
    fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>> {
        Box::pin(Queue::receive(self, max, visibility, wait))
    }
    fn ack(&self, receipt: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { Queue::ack(self, &receipt).await })
    }
    fn ack_batch(&self, receipts: Vec<String>) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        Box::pin(async move { Queue::ack_batch(self, &receipts).await })
    }
    fn extend(&self, receipt: String, visibility: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { Queue::extend(self, &receipt, visibility).await })
    }
    fn nack(&self, receipt: String, retry_after: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { Queue::nack(self, &receipt, retry_after).await })
    }
    fn depth(&self) -> BoxFuture<'_, Result<QueueDepth>> {
        Box::pin(Queue::depth(self))
    }
    fn take_dead(&self, max: usize) -> BoxFuture<'_, Result<Vec<Delivery>>> {
        Box::pin(Queue::take_dead(self, max))
    }
}

/// A [`VectorIndex`] as a trait object; every `VectorIndex` implements it: hold an
/// `Arc<dyn DynVectorIndex>`.
pub trait DynVectorIndex: Send + Sync {
    /// [`VectorIndex::create_collection`].
    fn create_collection<'a>(
        &'a self,
        collection: &'a str,
        dims: usize,
        metric: Metric,
    ) -> BoxFuture<'a, Result<()>>;
    /// [`VectorIndex::upsert`].
    fn upsert<'a>(
        &'a self,
        tenant: &'a str,
        collection: &'a str,
        items: &'a [VectorItem],
    ) -> BoxFuture<'a, Result<()>>;
    /// [`VectorIndex::delete`].
    fn delete<'a>(
        &'a self,
        tenant: &'a str,
        collection: &'a str,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<usize>>;
    /// [`VectorIndex::search`].
    fn search<'a>(
        &'a self,
        tenant: &'a str,
        collection: &'a str,
        query: &'a [f32],
        k: usize,
        filter: &'a [(String, Value)],
    ) -> BoxFuture<'a, Result<Vec<Hit>>>;
}

impl<V: VectorIndex> DynVectorIndex for V {
    fn create_collection<'a>(
        &'a self,
        collection: &'a str,
        dims: usize,
        metric: Metric,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(VectorIndex::create_collection(
            self, collection, dims, metric,
        ))
    }
    fn upsert<'a>(
        &'a self,
        tenant: &'a str,
        collection: &'a str,
        items: &'a [VectorItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(VectorIndex::upsert(self, tenant, collection, items))
    }
    fn delete<'a>(
        &'a self,
        tenant: &'a str,
        collection: &'a str,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<usize>> {
        Box::pin(VectorIndex::delete(self, tenant, collection, ids))
    }
    fn search<'a>(
        &'a self,
        tenant: &'a str,
        collection: &'a str,
        query: &'a [f32],
        k: usize,
        filter: &'a [(String, Value)],
    ) -> BoxFuture<'a, Result<Vec<Hit>>> {
        Box::pin(VectorIndex::search(
            self, tenant, collection, query, k, filter,
        ))
    }
}

/// A [`Repository`] as a trait object; every `Repository<T>` implements it: hold an
/// `Arc<dyn DynRepository<T>>`.
pub trait DynRepository<T: Record>: Send + Sync {
    /// [`Repository::create`].
    fn create<'a>(&'a self, tenant: &'a str, record: &'a T) -> BoxFuture<'a, Result<Versioned<T>>>;
    /// [`Repository::get`].
    fn get<'a>(&'a self, tenant: &'a str, id: Uuid) -> BoxFuture<'a, Result<Option<Versioned<T>>>>;
    /// [`Repository::list`].
    fn list<'a>(&'a self, tenant: &'a str, query: &'a Query) -> BoxFuture<'a, Result<Page<T>>>;
    /// [`Repository::update`].
    fn update<'a>(
        &'a self,
        tenant: &'a str,
        record: &'a T,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<Versioned<T>>>;
    /// [`Repository::delete`].
    fn delete<'a>(&'a self, tenant: &'a str, id: Uuid) -> BoxFuture<'a, Result<bool>>;
    /// [`Repository::delete_many`].
    fn delete_many<'a>(&'a self, tenant: &'a str, ids: &'a [Uuid]) -> BoxFuture<'a, Result<usize>>;
    /// [`Repository::create_many`].
    fn create_many<'a>(
        &'a self,
        tenant: &'a str,
        records: &'a [T],
    ) -> BoxFuture<'a, Result<Vec<Result<Versioned<T>>>>>;
    /// [`Repository::update_many`].
    fn update_many<'a>(
        &'a self,
        tenant: &'a str,
        updates: &'a [(T, u64)],
    ) -> BoxFuture<'a, Result<Vec<Result<Versioned<T>>>>>;
}

impl<T: Record, R: Repository<T>> DynRepository<T> for R {
    fn create<'a>(&'a self, tenant: &'a str, record: &'a T) -> BoxFuture<'a, Result<Versioned<T>>> {
        Box::pin(Repository::create(self, tenant, record))
    }
    fn get<'a>(&'a self, tenant: &'a str, id: Uuid) -> BoxFuture<'a, Result<Option<Versioned<T>>>> {
        Box::pin(Repository::get(self, tenant, id))
    }
    fn list<'a>(&'a self, tenant: &'a str, query: &'a Query) -> BoxFuture<'a, Result<Page<T>>> {
        Box::pin(Repository::list(self, tenant, query))
    }
    fn update<'a>(
        &'a self,
        tenant: &'a str,
        record: &'a T,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<Versioned<T>>> {
        Box::pin(Repository::update(self, tenant, record, expected_version))
    }
    fn delete<'a>(&'a self, tenant: &'a str, id: Uuid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Repository::delete(self, tenant, id))
    }
    fn delete_many<'a>(&'a self, tenant: &'a str, ids: &'a [Uuid]) -> BoxFuture<'a, Result<usize>> {
        Box::pin(Repository::delete_many(self, tenant, ids))
    }
    fn create_many<'a>(
        &'a self,
        tenant: &'a str,
        records: &'a [T],
    ) -> BoxFuture<'a, Result<Vec<Result<Versioned<T>>>>> {
        Box::pin(Repository::create_many(self, tenant, records))
    }
    fn update_many<'a>(
        &'a self,
        tenant: &'a str,
        updates: &'a [(T, u64)],
    ) -> BoxFuture<'a, Result<Vec<Result<Versioned<T>>>>> {
        Box::pin(Repository::update_many(self, tenant, updates))
    }
}
