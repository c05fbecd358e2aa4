//! The conformance suites against PostgreSQL + pgvector, plus the queue under
//! concurrent consumers. Needs `MESH_TEST_DATABASE_URL` (scripts/test.sh sets it).

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::queue::Timing;
use conformance::{service, unique};
use mesh_store::{PgStore, Queue, QueueConfig, StoreError};

const TIMING: Timing = Timing {
    unit: Duration::from_millis(300),
    strict_receipts: true,
};

async fn store() -> Option<PgStore> {
    let url = service("MESH_TEST_DATABASE_URL")?;
    Some(
        PgStore::connect(&url, 8)
            .await
            .expect("connect to the test database"),
    )
}

macro_rules! with_store {
    ($name:ident, |$s:ident| $body:expr) => {
        #[tokio::test]
        async fn $name() {
            if let Some($s) = store().await {
                $body.await;
            }
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
    conformance::vector::search_matches_brute_force(&s.vectors()).await
});
with_store!(vector_upsert_and_delete, |s| async move {
    conformance::vector::upsert_replaces_and_delete_removes(&s.vectors()).await
});
with_store!(vector_errors_and_isolation, |s| async move {
    conformance::vector::errors_and_isolation(&s.vectors()).await
});
with_store!(queue_send_receive_ack, |s| async move {
    conformance::queue::send_receive_ack(
        &s.queue(&unique("q"), QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_unacked_messages_come_back, |s| async move {
    conformance::queue::unacked_messages_come_back(
        &s.queue(&unique("q"), QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_extend, |s| async move {
    conformance::queue::extend_keeps_a_message_hidden(
        &s.queue(&unique("q"), QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_nack, |s| async move {
    conformance::queue::nack_returns_a_message_early(
        &s.queue(&unique("q"), QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_delays_and_long_polling, |s| async move {
    conformance::queue::delayed_messages_and_long_polling(
        &s.queue(&unique("q"), QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_dead_letters, |s| async move {
    conformance::queue::dead_letters_after_max_receives(
        &s.queue(&unique("q"), QueueConfig::max_receives(2)).unwrap(),
        TIMING,
    )
    .await
});
with_store!(queue_batches, |s| async move {
    conformance::queue::batches(
        &s.queue(&unique("q"), QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});

with_store!(migrations_are_idempotent, |s| async move {
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
});

with_store!(
    unreachable_database_is_a_typed_retryable_error,
    |_s| async move {
        let err = PgStore::connect("postgres://postgres@127.0.0.1:1/none", 1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Backend {
                    backend: "postgres",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_retryable(), "{err}");
    }
);

with_store!(
    concurrent_consumers_receive_each_message_exactly_once,
    |s| async move {
        let queue = s.queue(&unique("q"), QueueConfig::default()).unwrap();
        let bodies: Vec<(String, Duration)> = (0..300)
            .map(|i| (format!("job {i}"), Duration::ZERO))
            .collect();
        queue.send_batch(&bodies).await.unwrap();
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let mut consumers = Vec::new();
        for _ in 0..6 {
            let (queue, seen) = (queue.clone(), seen.clone());
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
        for c in consumers {
            c.await.unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 300, "every message was received");
        assert!(
            seen.values().all(|&n| n == 1),
            "none twice within the visibility window"
        );
    }
);

with_store!(
    a_consumer_killed_mid_message_loses_nothing,
    |s| async move {
        let name = unique("q");
        let queue = s.queue(&name, QueueConfig::default()).unwrap();
        queue.send("important", Duration::ZERO).await.unwrap();
        // A consumer takes the message and dies without acking (its task is aborted).
        let doomed = {
            let queue = queue.clone();
            tokio::spawn(async move {
                let got = queue
                    .receive(1, Duration::from_millis(800), Duration::from_secs(2))
                    .await
                    .unwrap();
                assert_eq!(got.len(), 1);
                std::future::pending::<()>().await;
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        doomed.abort();
        // Another consumer, on another connection pool, gets it after the timeout.
        let other = PgStore::connect(&service("MESH_TEST_DATABASE_URL").unwrap(), 2)
            .await
            .unwrap();
        let queue2 = other.queue(&name, QueueConfig::default()).unwrap();
        let got = queue2
            .receive(1, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].body.as_str(), got[0].receive_count),
            ("important", 2)
        );
        queue2.ack(&got[0].receipt).await.unwrap();
    }
);

/// A fresh, empty database on the test server.
async fn empty_database() -> Option<String> {
    let base = service("MESH_TEST_DATABASE_URL")?;
    let name = unique("mesh_store_empty");
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

async fn has_table(pool: &sqlx::PgPool, table: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_store_on_an_existing_pool_runs_no_ddl_until_asked() {
    let Some(url) = empty_database().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let store = PgStore::from_pool(pool.clone());
    assert!(!has_table(&pool, "mesh_records").await, "from_pool ran DDL");
    assert!(!has_table(&pool, "_sqlx_migrations").await);
    // The migrator is there to inspect or run with one's own.
    let versions: Vec<i64> = mesh_store::MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(versions, [1]);
    store.migrate().await.unwrap();
    assert!(has_table(&pool, "mesh_records").await);
    assert!(has_table(&pool, "mesh_queue").await);
    // Applied once, whoever asks again.
    mesh_store::MIGRATOR.run(&pool).await.unwrap();
    store.migrate().await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
    let q = store.queue(&unique("q"), QueueConfig::default()).unwrap();
    q.send("works", Duration::ZERO).await.unwrap();
    assert_eq!(q.depth().await.unwrap().available, 1);
}
with_store!(queue_ack_batch, |s| async move {
    conformance::queue::ack_batch_acks_together(
        &s.queue(&unique("q"), QueueConfig::default()).unwrap(),
        TIMING,
    )
    .await
});

/// Index scans of `index` so far, as the statistics show them.
async fn index_scans(pool: &sqlx::PgPool, index: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(idx_scan), 0)::int8 FROM pg_stat_user_indexes WHERE indexrelname = $1",
    )
    .bind(index)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn key_lookups_use_the_primary_key_on_a_new_database() {
    use conformance::repository::Item;
    use mesh_store::{Record, Repository};
    let Some(url) = empty_database().await else {
        return;
    };
    // One connection: its statistics reach the view when a later statement of its
    // own ends (at most once a second), not after another backend's idle timer.
    let store = PgStore::connect(&url, 1).await.unwrap();
    let repo = store.repository::<Item>().await.unwrap();
    let tenant = unique("t");
    let items: Vec<Item> = (0..2_000)
        .map(|i| Item {
            id: uuid::Uuid::now_v7(),
            name: format!("item {i}"),
            status: ["a", "b", "c"][i % 3].to_owned(),
            rank: i as i64 % 13,
            tag: None,
        })
        .collect();
    repo.create_many(&tenant, &items).await.unwrap();
    // Never analyzed: the planner has no statistics, only the table's size.
    for item in &items[..20] {
        assert!(repo.get(&tenant, item.id).await.unwrap().is_some());
    }
    let updates: Vec<(Item, u64)> = items[20..120].iter().map(|i| (i.clone(), 1)).collect();
    for result in repo.update_many(&tenant, &updates).await.unwrap() {
        assert_eq!(result.unwrap().version, 2);
    }
    let pool = store.pool();
    for _ in 0..600 {
        if index_scans(pool, "mesh_records_pkey").await >= 120 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(index_scans(pool, "mesh_records_pkey").await >= 120);
    for field in Item::INDEXED {
        let index = format!(
            "mesh_records_{}_{field}",
            <Item as mesh_store::Record>::COLLECTION
        );
        assert_eq!(
            index_scans(pool, &index).await,
            0,
            "{index} served a key lookup"
        );
    }
}
