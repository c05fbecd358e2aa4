//! Shared documents through the hub: N editors on loopback type into one text
//! document, each keeping a mesh-crdt replica and applying everyone else's edits.
//!
//! - **Throughput**: every editor sends its edits as fast as the mesh takes them;
//!   edits per second is all edits over the time until every editor holds every edit
//!   (each one checked, stored, applied by the mesh and relayed to the N − 1 others).
//! - **Fan-out latency**: every editor sends one edit every 10 ms; the time from an
//!   edit being sent to each other editor having applied it, p50 and p99.
//!
//! `cargo bench -p mesh-benches --bench doc_hub`
//! (`-- --editors N` for one size instead of 1, 4 and 16; `--edits E` per editor;
//! `--store sqlite` or `--store postgres` for those stores — PostgreSQL needs
//! `MESH_TEST_DATABASE_URL`, each run gets a fresh database)

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesh_core::crdt::{ReplicaId, TextDoc, TextOp};
use mesh_core::domain::DocKind;
use mesh_core::shared_docs::{DocLimits, SharedDocs};
use mesh_core::{Engine, EngineConfig, Scope, Stores, TenantId};
use mesh_protocol::ws::{ClientConfig, Incoming, Sender, connect};
use mesh_protocol::{DocOpen, DocUpdate, Hello, Message};
use uuid::Uuid;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One editor: its replica (shared with its reader task) and its connection's sender.
struct Editor {
    replica: Arc<Mutex<TextDoc>>,
    sender: Sender,
    reader: tokio::task::JoinHandle<()>,
}

/// What the readers measure: edits applied, and fan-out latencies in microseconds.
#[derive(Default)]
struct Seen {
    applied: AtomicUsize,
    latencies: Mutex<Vec<u64>>,
}

/// When each edit was sent, by editor and index: microseconds since `epoch` + 1.
struct Sent {
    epoch: Instant,
    at: Vec<Vec<AtomicU64>>,
}

async fn editor(
    url: &str,
    key: &str,
    doc: Uuid,
    me: usize,
    seen: Arc<Seen>,
    sent: Arc<Sent>,
) -> Editor {
    let mut conn = connect(&ClientConfig::new(url).api_key(key)).await.unwrap();
    conn.send(Hello::new(format!("editor-{me}"), ["edit"]))
        .await
        .unwrap();
    let replica = Arc::new(Mutex::new(TextDoc::new(ReplicaId(1 + me as u64))));
    conn.send(DocOpen::new(doc, Vec::new())).await.unwrap();
    loop {
        match conn.recv().await.unwrap().unwrap() {
            Incoming::Message(Message::DocSync(sync)) => {
                replica.lock().unwrap().apply_update(&sync.update).unwrap();
                break;
            }
            Incoming::Message(Message::Error(e)) => panic!("{e:?}"),
            _ => {}
        }
    }
    let sender = conn.sender();
    let mine = replica.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(incoming)) = conn.recv().await {
            let Incoming::Message(Message::DocUpdate(update)) = incoming else {
                continue;
            };
            let ops = TextOp::decode_all(&update.update).unwrap();
            let now = sent.epoch.elapsed().as_micros() as u64;
            for op in &ops {
                if let TextOp::Insert { text, .. } = op
                    && let Some((from, index)) = tag(text)
                {
                    let at = sent.at[from][index].load(Ordering::Relaxed);
                    if at > 0 {
                        seen.latencies.lock().unwrap().push(now + 1 - at);
                    }
                }
            }
            let mut replica = mine.lock().unwrap();
            for op in ops {
                replica.apply(op);
            }
            seen.applied.fetch_add(1, Ordering::Relaxed);
        }
    });
    Editor {
        replica,
        sender,
        reader,
    }
}

/// The editor and index an edit's text names (`"<editor>.<index>;"`).
fn tag(text: &str) -> Option<(usize, usize)> {
    let (from, index) = text.strip_suffix(';')?.split_once('.')?;
    Some((from.parse().ok()?, index.parse().ok()?))
}

/// Types edit `index` at the end of the editor's replica and sends it.
async fn type_one(editor: &Editor, doc: Uuid, me: usize, index: usize, sent: &Sent) {
    let update = {
        let mut replica = editor.replica.lock().unwrap();
        let end = replica.len();
        let op = replica.insert(end, &format!("{me}.{index};")).unwrap();
        TextOp::encode_all(&[op])
    };
    let at = sent.epoch.elapsed().as_micros() as u64 + 1;
    sent.at[me][index].store(at, Ordering::Relaxed);
    editor
        .sender
        .send(DocUpdate::new(doc, update))
        .await
        .unwrap();
}

async fn wait_for(seen: &Seen, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.applied.load(Ordering::Relaxed) < count {
        assert!(Instant::now() < deadline, "edits never all arrived");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One size: `n` editors, `edits` each, flooding then paced. Returns (edits/s, p50 µs,
/// p99 µs).
async fn run<S: Stores>(stores: S, n: usize, edits: usize) -> (f64, u64, u64) {
    let engine = Engine::start(EngineConfig::default(), stores)
        .await
        .unwrap();
    let mut limits = DocLimits::default();
    limits.updates_per_second = 1e9;
    limits.burst = 1e9;
    limits.relay_buffer = 1 << 16;
    let docs = SharedDocs::new(&engine, limits);
    let (url, _hub) = mesh_core::testing::serve_hub_with(&engine, docs.clone()).await;
    let tenant = TenantId::new();
    let (key, _) = engine
        .create_api_key(tenant, "bench", vec![Scope::Agent], None)
        .await
        .unwrap();

    let mut results = Vec::new();
    for paced in [false, true] {
        let doc = docs.create(tenant, "bench", DocKind::Text).await.unwrap();
        let doc = *doc.id.as_uuid();
        let seen = Arc::new(Seen::default());
        let sent = Arc::new(Sent {
            epoch: Instant::now(),
            at: (0..n)
                .map(|_| (0..edits).map(|_| AtomicU64::new(0)).collect())
                .collect(),
        });
        let mut editors = Vec::new();
        for me in 0..n {
            editors.push(editor(&url, &key, doc, me, seen.clone(), sent.clone()).await);
        }
        let editors = Arc::new(editors);
        let started = Instant::now();
        let mut typists = Vec::new();
        for me in 0..n {
            let (editors, sent) = (editors.clone(), sent.clone());
            typists.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                for index in 0..edits {
                    if paced {
                        tick.tick().await;
                    }
                    type_one(&editors[me], doc, me, index, &sent).await;
                }
            }));
        }
        for typist in typists {
            typist.await.unwrap();
        }
        // Every editor gets every other editor's edits (one update each).
        wait_for(&seen, n * (n - 1) * edits).await;
        let elapsed = started.elapsed();
        if n == 1 {
            // Alone, nothing is relayed: wait until the mesh holds every edit.
            let live = docs.live(tenant, doc.into()).await.unwrap();
            let want = editors[0].replica.lock().unwrap().text();
            while live.content().await.unwrap().as_str() != Some(want.as_str()) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let elapsed = elapsed.max(started.elapsed());
        let text = editors[0].replica.lock().unwrap().text();
        for editor in editors.iter() {
            assert_eq!(
                editor.replica.lock().unwrap().text(),
                text,
                "replicas agree"
            );
            editor.reader.abort();
        }
        let mut latencies = std::mem::take(&mut *seen.latencies.lock().unwrap());
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        results.push((
            (n * edits) as f64 / elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99),
        ));
    }
    (results[0].0, results[1].1, results[1].2)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sizes: Vec<usize> = match arg("--editors") {
        Some(n) => vec![n.parse().unwrap()],
        None => vec![1, 4, 16],
    };
    let edits: usize = arg("--edits").map_or(500, |e| e.parse().unwrap());
    let store = arg("--store").unwrap_or_else(|| "memory".into());
    println!("store: {store}; {edits} edits per editor");
    println!(
        "| editors | edits/s through the hub | relayed updates/s | fan-out p50 | fan-out p99 |"
    );
    println!("|---|---|---|---|---|");
    for n in sizes {
        let (rate, p50, p99) = runtime.block_on(async {
            match store.as_str() {
                "sqlite" => {
                    let path = std::env::temp_dir()
                        .join(format!("doc-hub-{}.db", Uuid::now_v7().simple()));
                    let store = mesh_store::SqliteStore::open(&path).await.unwrap();
                    run(mesh_core::SqliteStores::new(store).await.unwrap(), n, edits).await
                }
                "postgres" => {
                    let url = mesh_core::testing::fresh_database()
                        .await
                        .expect("MESH_TEST_DATABASE_URL");
                    run(mesh_core::testing::pg_stores(&url).await, n, edits).await
                }
                _ => run(mesh_core::MemoryStores::new(), n, edits).await,
            }
        });
        println!(
            "| {n} | {rate:.0} | {:.0} | {:.2} ms | {:.2} ms |",
            rate * (n.saturating_sub(1)) as f64,
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0
        );
    }
}
