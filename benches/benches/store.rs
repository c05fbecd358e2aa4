//! mesh-store: repository operations, exact vector search against the memory-bandwidth
//! bound, pgvector HNSW speed and recall, queue throughput — memory, SQLite (a file
//! under target/tmp) and PostgreSQL side by side; and the time SQLite takes to open a
//! file holding 100,000 vectors.
//!
//! `scripts/bench.sh store` (starts PostgreSQL, runs this, stops it). Without
//! `MESH_TEST_DATABASE_URL` the PostgreSQL benchmarks are skipped.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mesh_store::{
    MemoryQueue, MemoryRepository, MemoryVectorIndex, Metric, PgStore, Query, Queue, QueueConfig,
    Record, Repository, SqliteStore, VectorIndex, VectorItem,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use uuid::Uuid;

const N: usize = 100_000;
const DIMS: usize = 384;

#[derive(Clone, Serialize, Deserialize)]
struct Doc {
    id: Uuid,
    status: String,
    body: String,
}

impl Record for Doc {
    const COLLECTION: &'static str = "bench_docs";
    const INDEXED: &'static [&'static str] = &["status"];
    fn id(&self) -> Uuid {
        self.id
    }
}

fn doc(i: usize) -> Doc {
    Doc {
        id: Uuid::now_v7(),
        status: ["new", "done"][i % 2].into(),
        body: "x".repeat(200),
    }
}

/// Clustered vectors, as embeddings are: 1,000 fixed centres, each point a centre plus
/// noise; `seed` picks the points (queries come from the same distribution as the data).
fn dataset(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut centre_rng = SmallRng::seed_from_u64(0xce17);
    let centres: Vec<Vec<f32>> = (0..1000)
        .map(|_| {
            (0..DIMS)
                .map(|_| centre_rng.random_range(-1.0..1.0))
                .collect()
        })
        .collect();
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            c.iter()
                .map(|x| x + rng.random_range(-0.35..0.35))
                .collect()
        })
        .collect()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn database() -> Option<String> {
    let url = std::env::var("MESH_TEST_DATABASE_URL").ok();
    if url.is_none() {
        eprintln!("MESH_TEST_DATABASE_URL not set: skipping the PostgreSQL benchmarks");
    }
    url
}

/// A fresh SQLite file for one benchmark (under cargo's scratch directory).
fn sqlite_file(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-sqlite");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A SQLite store that does not flush each commit to disk (`synchronous = NORMAL`:
/// still safe against a killed process, not against power loss).
async fn relaxed_sqlite(name: &str) -> SqliteStore {
    let options = mesh_store::SqliteOptions::default().sync_every_commit(false);
    SqliteStore::open_with(sqlite_file(name), options)
        .await
        .unwrap()
}

/// create, get, update and a filtered page of 20 on one repository.
fn repository_ops<R: Repository<Doc>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    backend: &str,
    repo: &R,
) {
    let mut i = 0;
    group.bench_function(format!("{backend}/create"), |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(repo.create("t", &doc(i))).unwrap()
        })
    });
    let known = doc(0);
    rt.block_on(repo.create("t", &known)).unwrap();
    group.bench_function(format!("{backend}/get"), |b| {
        b.iter(|| rt.block_on(repo.get("t", black_box(known.id))).unwrap())
    });
    let mut version = 1;
    group.bench_function(format!("{backend}/update"), |b| {
        b.iter(|| {
            version = rt
                .block_on(repo.update("t", &known, version))
                .unwrap()
                .version;
        })
    });
    let query = Query::new().filter("status", "done").limit(20);
    group.bench_function(format!("{backend}/list_filtered_20"), |b| {
        b.iter(|| rt.block_on(repo.list("t", &query)).unwrap())
    });
}

fn repositories(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("repository");
    group.throughput(Throughput::Elements(1));
    repository_ops(&mut group, &rt, "memory", &MemoryRepository::<Doc>::new());
    let sqlite = rt
        .block_on(SqliteStore::open(sqlite_file("repository")))
        .unwrap();
    let repo = rt.block_on(sqlite.repository::<Doc>()).unwrap();
    repository_ops(&mut group, &rt, "sqlite", &repo);
    let relaxed = rt.block_on(relaxed_sqlite("repository_relaxed"));
    let repo = rt.block_on(relaxed.repository::<Doc>()).unwrap();
    repository_ops(&mut group, &rt, "sqlite_no_fsync_per_commit", &repo);
    if let Some(url) = database() {
        let store = rt.block_on(PgStore::connect(&url, 8)).unwrap();
        let repo = rt.block_on(store.repository::<Doc>()).unwrap();
        repository_ops(&mut group, &rt, "postgres", &repo);
    }
    group.finish();
}

fn vectors(c: &mut Criterion) {
    let rt = runtime();
    let data = dataset(N, 1);
    let queries = dataset(50, 2);
    let mut group = c.benchmark_group("vector_search_100k_384");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes((N * DIMS * 4) as u64));

    // The bound: one pass summing the same number of f32s, contiguous.
    let flat: Vec<f32> = data.iter().flatten().copied().collect();
    group.bench_function("baseline_sum_same_bytes", |b| {
        b.iter(|| black_box(mesh_store::bandwidth_baseline(black_box(&flat))))
    });
    drop(flat);

    let memory = MemoryVectorIndex::new();
    let items: Vec<VectorItem> = data
        .iter()
        .enumerate()
        .map(|(i, v)| VectorItem::new(i.to_string(), v.clone(), serde_json::json!({})))
        .collect();
    for metric in [Metric::Cosine, Metric::InnerProduct, Metric::L2] {
        let name = format!("bench_{}", metric.as_str());
        rt.block_on(memory.create_collection(&name, DIMS, metric))
            .unwrap();
        rt.block_on(memory.upsert("t", &name, &items)).unwrap();
        let mut qi = 0;
        group.bench_function(
            BenchmarkId::new("memory_exact_top10", metric.as_str()),
            |b| {
                b.iter(|| {
                    qi = (qi + 1) % queries.len();
                    rt.block_on(memory.search("t", &name, &queries[qi], 10, &[]))
                        .unwrap()
                })
            },
        );
    }

    // SQLite: the same vectors in a file, searched in memory once opened.
    let path = sqlite_file("vectors");
    let store = rt.block_on(SqliteStore::open(&path)).unwrap();
    let sqlite = rt.block_on(store.vectors()).unwrap();
    rt.block_on(sqlite.create_collection("bench_cosine", DIMS, Metric::Cosine))
        .unwrap();
    for chunk in items.chunks(2000) {
        rt.block_on(sqlite.upsert("t", "bench_cosine", chunk))
            .unwrap();
    }
    let mut qi = 0;
    group.bench_function(BenchmarkId::new("sqlite_exact_top10", "cosine"), |b| {
        b.iter(|| {
            qi = (qi + 1) % queries.len();
            rt.block_on(sqlite.search("t", "bench_cosine", &queries[qi], 10, &[]))
                .unwrap()
        })
    });
    drop(sqlite);
    rt.block_on(store.close());
    group.finish();

    let mut group = c.benchmark_group("sqlite_open_100k_384");
    group.sample_size(10);
    group.bench_function("open_and_load_vectors", |b| {
        b.iter(|| {
            rt.block_on(async {
                let store = SqliteStore::open(&path).await.unwrap();
                black_box(store.vectors().await.unwrap());
                store.close().await;
            })
        })
    });
    group.finish();

    if let Some(url) = database() {
        pgvector(&rt, &url, &memory, &items, &queries);
    }
}

/// Loads the same vectors into pgvector, builds the HNSW index, and measures queries
/// per second and recall@10 against the exact answer, at several `ef_search`.
fn pgvector(
    rt: &Runtime,
    url: &str,
    memory: &MemoryVectorIndex,
    items: &[VectorItem],
    queries: &[Vec<f32>],
) {
    let store = rt.block_on(PgStore::connect(url, 4)).unwrap();
    let pool = store.pool().clone();
    let name = "bench_cosine_hnsw";
    rt.block_on(async {
        sqlx::query("DROP TABLE IF EXISTS mesh_vectors_bench_cosine_hnsw")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM mesh_vector_collections WHERE name = 'bench_cosine_hnsw'")
            .execute(&pool)
            .await
            .unwrap();
    });
    let index = store.vectors();
    rt.block_on(index.create_collection(name, DIMS, Metric::Cosine))
        .unwrap();
    // Bulk load without the index, then build it once (as one would for a backfill).
    rt.block_on(sqlx::query("DROP INDEX mesh_vectors_bench_cosine_hnsw_hnsw").execute(&pool))
        .unwrap();
    let started = Instant::now();
    for chunk in items.chunks(2000) {
        rt.block_on(index.upsert("t", name, chunk)).unwrap();
    }
    let loaded = started.elapsed();
    let started = Instant::now();
    rt.block_on(async {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET maintenance_work_mem = '2GB'")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(
            "CREATE INDEX mesh_vectors_bench_cosine_hnsw_hnsw ON mesh_vectors_bench_cosine_hnsw \
             USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
    });
    println!(
        "pgvector: loaded {} vectors in {:.1?}, built HNSW in {:.1?}",
        items.len(),
        loaded,
        started.elapsed()
    );

    let exact: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            rt.block_on(memory.search("t", "bench_cosine", q, 10, &[]))
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect()
        })
        .collect();
    for ef in [40u32, 100, 200] {
        let index = store.vectors().with_ef_search(ef);
        let mut found = 0;
        let started = Instant::now();
        let rounds = 4;
        for _ in 0..rounds {
            for (q, truth) in queries.iter().zip(&exact) {
                let hits = rt.block_on(index.search("t", name, q, 10, &[])).unwrap();
                found += hits.iter().filter(|h| truth.contains(&h.id)).count();
            }
        }
        let per_query = started.elapsed() / (rounds * queries.len()) as u32;
        let recall = found as f64 / (rounds * queries.len() * 10) as f64;
        println!(
            "pgvector hnsw ef_search={ef}: recall@10 {recall:.3}, {:.0} queries/s ({per_query:.2?} per query, one client)",
            1.0 / per_query.as_secs_f64()
        );
    }
}

fn queues(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("queue");
    let batch: Vec<(String, Duration)> = (0..100)
        .map(|i| (format!("{{\"job\":{i}}}"), Duration::ZERO))
        .collect();
    group.throughput(Throughput::Elements(100));
    let memory = MemoryQueue::new(QueueConfig::default());
    group.bench_function("memory/send_receive_ack_100", |b| {
        b.iter(|| rt.block_on(cycle(&memory, &batch)))
    });
    group.sample_size(20);
    let sqlite = rt
        .block_on(SqliteStore::open(sqlite_file("queue")))
        .unwrap();
    let queue = sqlite.queue("bench_queue", QueueConfig::default()).unwrap();
    group.bench_function("sqlite/send_receive_ack_100", |b| {
        b.iter(|| rt.block_on(cycle(&queue, &batch)))
    });
    group.bench_function("sqlite/send_receive_ack_batch_100", |b| {
        b.iter(|| rt.block_on(cycle_batched(&queue, &batch)))
    });
    let relaxed = rt.block_on(relaxed_sqlite("queue_relaxed"));
    let queue = relaxed
        .queue("bench_queue", QueueConfig::default())
        .unwrap();
    group.bench_function("sqlite_no_fsync_per_commit/send_receive_ack_100", |b| {
        b.iter(|| rt.block_on(cycle(&queue, &batch)))
    });
    if let Some(url) = database() {
        let store = rt.block_on(PgStore::connect(&url, 8)).unwrap();
        let pg = store.queue("bench_queue", QueueConfig::default()).unwrap();
        group.bench_function("postgres/send_receive_ack_100", |b| {
            b.iter(|| rt.block_on(cycle(&pg, &batch)))
        });
        group.bench_function("postgres/send_receive_ack_batch_100", |b| {
            b.iter(|| rt.block_on(cycle_batched(&pg, &batch)))
        });
    }
    group.finish();
}

/// Sends 100 messages in one batch, receives them 10 at a time and acks each.
async fn cycle<Q: Queue>(q: &Q, batch: &[(String, Duration)]) {
    q.send_batch(batch).await.unwrap();
    let mut left = batch.len();
    while left > 0 {
        for d in q
            .receive(10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap()
        {
            q.ack(&d.receipt).await.unwrap();
            left -= 1;
        }
    }
}

/// As [`cycle`], acking each receive's messages together (`ack_batch`).
async fn cycle_batched<Q: Queue>(q: &Q, batch: &[(String, Duration)]) {
    q.send_batch(batch).await.unwrap();
    let mut left = batch.len();
    while left > 0 {
        let receipts: Vec<String> = q
            .receive(10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.receipt)
            .collect();
        let acked = q.ack_batch(&receipts).await.unwrap();
        assert!(acked.iter().all(Result::is_ok));
        left -= receipts.len();
    }
}

criterion_group!(benches, repositories, vectors, queues);
criterion_main!(benches);
