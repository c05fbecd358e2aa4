//! The conformance suites against the in-memory implementations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::time::Duration;

use conformance::queue::Timing;
use mesh_store::{MemoryQueue, MemoryRepository, MemoryVectorIndex, QueueConfig};

const TIMING: Timing = Timing {
    unit: Duration::from_millis(100),
    strict_receipts: true,
};

#[tokio::test]
async fn repository_crud() {
    conformance::repository::crud(&MemoryRepository::new()).await;
}

#[tokio::test]
async fn repository_filters_ordering_and_paging() {
    conformance::repository::filters_ordering_and_paging(&MemoryRepository::new()).await;
}

#[tokio::test]
async fn repository_tenant_isolation() {
    conformance::repository::tenant_isolation(&MemoryRepository::new()).await;
}

#[tokio::test]
async fn repository_concurrent_updates_one_wins() {
    conformance::repository::concurrent_updates_of_a_record_one_wins(&MemoryRepository::new())
        .await;
}

#[tokio::test]
async fn vector_search_matches_brute_force() {
    conformance::vector::search_matches_brute_force(&MemoryVectorIndex::new()).await;
}

#[tokio::test]
async fn vector_upsert_and_delete() {
    conformance::vector::upsert_replaces_and_delete_removes(&MemoryVectorIndex::new()).await;
}

#[tokio::test]
async fn vector_errors_and_isolation() {
    conformance::vector::errors_and_isolation(&MemoryVectorIndex::new()).await;
}

#[tokio::test]
async fn queue_send_receive_ack() {
    conformance::queue::send_receive_ack(&MemoryQueue::new(QueueConfig::default()), TIMING).await;
}

#[tokio::test]
async fn queue_unacked_messages_come_back() {
    conformance::queue::unacked_messages_come_back(
        &MemoryQueue::new(QueueConfig::default()),
        TIMING,
    )
    .await;
}

#[tokio::test]
async fn queue_extend() {
    conformance::queue::extend_keeps_a_message_hidden(
        &MemoryQueue::new(QueueConfig::default()),
        TIMING,
    )
    .await;
}

#[tokio::test]
async fn queue_nack() {
    conformance::queue::nack_returns_a_message_early(
        &MemoryQueue::new(QueueConfig::default()),
        TIMING,
    )
    .await;
}

#[tokio::test]
async fn queue_delays_and_long_polling() {
    conformance::queue::delayed_messages_and_long_polling(
        &MemoryQueue::new(QueueConfig::default()),
        TIMING,
    )
    .await;
}

#[tokio::test]
async fn queue_dead_letters() {
    conformance::queue::dead_letters_after_max_receives(
        &MemoryQueue::new(QueueConfig::max_receives(2)),
        TIMING,
    )
    .await;
}

#[tokio::test]
async fn queue_batches() {
    conformance::queue::batches(&MemoryQueue::new(QueueConfig::default()), TIMING).await;
}

#[tokio::test]
async fn queue_ack_batch() {
    conformance::queue::ack_batch_acks_together(&MemoryQueue::new(QueueConfig::default()), TIMING)
        .await;
}

#[tokio::test]
async fn repository_write_many() {
    conformance::repository::write_many_creates_and_updates(&MemoryRepository::new()).await;
}

#[tokio::test]
async fn repository_write_tenants() {
    conformance::repository::write_tenants_keeps_each_share_in_its_tenant(&MemoryRepository::new())
        .await;
}
