//! The conformance suites against SQLite (a fresh database file per test), plus
//! what only a file can show: several processes' worth of connections on one queue,
//! vectors surviving a reopen, and a database from a newer build refused.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::queue::Timing;
use mesh_store::{
    Metric, Queue, QueueConfig, SqliteOptions, SqliteStore, StoreError, VectorIndex, VectorItem,
};
use serde_json::json;

const TIMING: Timing = Timing {
    unit: Duration::from_millis(150),
    strict_receipts: true,
};

/// A directory removed when the test ends.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(conformance::unique("mesh_sqlite"));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
    fn db(&self) -> std::path::PathBuf {
        self.0.join("mesh.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

macro_rules! with_store {
    ($name:ident, |$s:ident| $body:expr) => {
        #[tokio::test]
        async fn $name() {
            let dir = Dir::new();
            let $s = SqliteStore::open(dir.db()).await.unwrap();
            $body.await;
        }
    };
}

with_store!(repository_crud, |s| async move {
    conformance::repository::crud(&s.repository().await.unwrap()).await
});
with_store!(repository_filters_ordering_and_paging, |s| async move {
    conformance::repository::filters_ordering_and_paging(&s.repository().await.unwrap()).await
});
with_store!(repository_tenant_isolation, |s| async move {
    conformance::repository::tenant_isolation(&s.repository().await.unwrap()).await
});
with_store!(repository_concurrent_updates_one_wins, |s| async move {
    conformance::repository::concurrent_updates_of_a_record_one_wins(&s.repository().await.unwrap())
        .await
});
with_store!(repository_write_many, |s| async move {
    conformance::repository::write_many_creates_and_updates(&s.repository().await.unwrap()).await
});
with_store!(repository_write_tenants, |s| async move {
    conformance::repository::write_tenants_keeps_each_share_in_its_tenant(
        &s.repository().await.unwrap(),
    )
    .await
});
with_store!(vector_search_matches_brute_force, |s| async move {
    conformance::vector::search_matches_brute_force(&s.vectors().await.unwrap()).await
});
with_store!(vector_upsert_and_delete, |s| async move {
    conformance::vector::upsert_replaces_and_delete_removes(&s.vectors().await.unwrap()).await
});
with_store!(vector_errors_and_isolation, |s| async move {
    conformance::vector::errors_and_isolation(&s.vectors().await.unwrap()).await
});
with_store!(queue_send_receive_ack, |s| async move {
    conformance::queue::send_receive_ack(&s.queue("q", QueueConfig::default()).unwrap(), TIMING)
        .await
});
with_store!(queue_unacked_messages_come_back, |s| async move {
    conformance::queue::unacked_messages_come_back(
        &s.queue("q", QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_extend, |s| async move {
    conformance::queue::extend_keeps_a_message_hidden(
        &s.queue("q", QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_nack, |s| async move {
    conformance::queue::nack_returns_a_message_early(
        &s.queue("q", QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_delays_and_long_polling, |s| async move {
    conformance::queue::delayed_messages_and_long_polling(
        &s.queue("q", QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_dead_letters, |s| async move {
    conformance::queue::dead_letters_after_max_receives(
        &s.queue("q", QueueConfig::max_receives(2)).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_batches, |s| async move {
    conformance::queue::batches(&s.queue("q", QueueConfig::default()).unwrap(), TIMING).await
});
with_store!(queue_ack_batch, |s| async move {
    conformance::queue::ack_batch_acks_together(
        &s.queue("q", QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});

/// Three stores on one file stand for three processes: each has its own connections,
/// so only SQLite's file locking keeps them apart.
#[tokio::test]
async fn consumers_on_separate_connections_receive_each_message_exactly_once() {
    let dir = Dir::new();
    let first = SqliteStore::open(dir.db()).await.unwrap();
    let queue = first.queue("jobs", QueueConfig::default()).unwrap();
    let bodies: Vec<(String, Duration)> = (0..300)
        .map(|i| (format!("job {i}"), Duration::ZERO))
        .collect();
    queue.send_batch(&bodies).await.unwrap();
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let store = SqliteStore::open(dir.db()).await.unwrap();
        for _ in 0..2 {
            let queue = store.queue("jobs", QueueConfig::default()).unwrap();
            let seen = seen.clone();
            consumers.push(tokio::spawn(async move {
                loop {
                    let got = queue
                        .receive(7, Duration::from_secs(60), Duration::from_millis(300))
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return;
                    }
                    for d in got {
                        *seen.lock().unwrap().entry(d.body.clone()).or_default() += 1;
                        queue.ack(&d.receipt).await.unwrap();
                    }
                }
            }));
        }
    }
    for c in consumers {
        c.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 300, "every message was received");
    assert!(seen.values().all(|&n| n == 1), "none twice");
}

#[tokio::test]
async fn vectors_and_records_survive_a_reopen() {
    let dir = Dir::new();
    {
        let store = SqliteStore::open(dir.db()).await.unwrap();
        let vectors = store.vectors().await.unwrap();
        vectors
            .create_collection("docs", 3, Metric::Cosine)
            .await
            .unwrap();
        let items: Vec<VectorItem> = (0..10)
            .map(|i| VectorItem::new(format!("v{i}"), vec![1.0, i as f32, 0.5], json!({"i": i})))
            .collect();
        vectors.upsert("t", "docs", &items).await.unwrap();
        vectors.delete("t", "docs", &["v3".into()]).await.unwrap();
        vectors
            .upsert(
                "t",
                "docs",
                &[VectorItem::new("v4", vec![0.0, 0.0, 1.0], json!({"i": 40}))],
            )
            .await
            .unwrap();
        store.close().await;
    }
    let store = SqliteStore::open(dir.db()).await.unwrap();
    let vectors = store.vectors().await.unwrap();
    let hits = vectors
        .search("t", "docs", &[1.0, 0.0, 0.5], 20, &[])
        .await
        .unwrap();
    assert_eq!(hits.len(), 9, "the deleted vector stays deleted");
    assert!(hits.iter().all(|h| h.id != "v3"));
    let v4 = hits.iter().find(|h| h.id == "v4").unwrap();
    assert_eq!(v4.metadata, json!({"i": 40}), "the replacement was kept");
    let nearest = vectors
        .search("t", "docs", &[0.0, 0.0, 1.0], 1, &[])
        .await
        .unwrap();
    assert_eq!(nearest[0].id, "v4");
    assert!(matches!(
        vectors.create_collection("docs", 4, Metric::Cosine).await,
        Err(StoreError::DimensionMismatch { .. })
    ));
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused_by_name() {
    let dir = Dir::new();
    let store = SqliteStore::open(dir.db()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(store.writer())
    .await
    .unwrap();
    store.close().await;
    let err = SqliteStore::open(dir.db()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                backend: "sqlite",
                applied: 9999,
                known: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer mesh-store"), "{err}");
}

#[tokio::test]
async fn a_writer_holding_the_file_past_the_busy_timeout_is_a_clear_retryable_error() {
    let dir = Dir::new();
    let holder = SqliteStore::open(dir.db()).await.unwrap();
    let other = SqliteStore::open_with(
        dir.db(),
        SqliteOptions::default().busy_timeout(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let queue = other.queue("q", QueueConfig::default()).unwrap();
    // Another "process" holds the write lock in an open transaction.
    let mut tx = holder.writer().begin().await.unwrap();
    sqlx::query("INSERT INTO mesh_queue (queue, body, visible_at) VALUES ('x', 'y', 0)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = queue.send("blocked", Duration::ZERO).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("locked by another writer"),
        "{err}"
    );
    tx.rollback().await.unwrap();
    // Once it lets go, writes go through.
    queue.send("free", Duration::ZERO).await.unwrap();
    assert_eq!(queue.depth().await.unwrap().available, 1);
}

#[tokio::test]
async fn the_owner_of_the_file_releases_messages_a_dead_process_had_received() {
    let dir = Dir::new();
    let store = SqliteStore::open(dir.db()).await.unwrap();
    let queue = store.queue("jobs", QueueConfig::default()).unwrap();
    queue.send("orphaned", Duration::ZERO).await.unwrap();
    queue.send("waiting", Duration::ZERO).await.unwrap();
    let taken = queue
        .receive(1, Duration::from_secs(3600), Duration::ZERO)
        .await
        .unwrap();
    // The process that received it dies; the next one owns the file.
    let next = SqliteStore::open(dir.db()).await.unwrap();
    let queue = next.queue("jobs", QueueConfig::default()).unwrap();
    assert_eq!(queue.release_in_flight().await.unwrap(), 1);
    let got = queue
        .receive(10, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap();
    let bodies: Vec<&str> = got.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, ["orphaned", "waiting"]);
    assert_eq!(got[0].receive_count, 2, "the first receive still counts");
    assert!(matches!(
        queue.ack(&taken[0].receipt).await,
        Err(StoreError::ReceiptExpired)
    ));
}
