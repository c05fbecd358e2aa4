//! Replaying automerge-paper (259,778 edits, one operation each) through mesh-crdt and,
//! in the same run, diamond-types, cola (alone and with a rope), loro, yrs and
//! automerge; the concurrent friendsforever trace through mesh-crdt; encoded sizes and
//! load times.
//!
//! `cargo bench -p mesh-benches --bench crdt` (heap: `--bench crdt_heap`)

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod crdt_common;

use std::hint::black_box;
use std::time::Duration;

use automerge::ReadDoc;
use crdt_common as peers;
use criterion::{Criterion, criterion_group, criterion_main};

fn replay(c: &mut Criterion) {
    let (patches, end) = peers::patches();
    // Every peer must produce the right text before it is timed.
    assert_eq!(peers::mesh(&patches).text(), end);
    assert_eq!(peers::diamond(&patches).branch.content().to_string(), end);
    assert_eq!(peers::loro(&patches).get_text("text").to_string(), end);
    assert_eq!(peers::cola_rope(&patches).1.to_string(), end);

    let mut fast = c.benchmark_group("automerge_paper_replay");
    fast.sample_size(20)
        .measurement_time(Duration::from_secs(5));
    fast.bench_function("mesh-crdt", |b| b.iter(|| black_box(peers::mesh(&patches))));
    fast.bench_function("diamond-types", |b| {
        b.iter(|| black_box(peers::diamond(&patches)))
    });
    fast.bench_function("cola", |b| b.iter(|| black_box(peers::cola(&patches))));
    fast.bench_function("cola+jumprope", |b| {
        b.iter(|| black_box(peers::cola_rope(&patches)))
    });
    fast.bench_function("loro", |b| b.iter(|| black_box(peers::loro(&patches))));
    fast.finish();

    let mut slow = c.benchmark_group("automerge_paper_replay_slow_peers");
    slow.sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .warm_up_time(Duration::from_millis(1));
    slow.bench_function("automerge", |b| {
        b.iter(|| black_box(peers::automerge(&patches)))
    });
    slow.bench_function("yrs", |b| b.iter(|| black_box(peers::yrs(&patches))));
    slow.finish();

    let concurrent = peers::concurrent();
    let peers::trace::Trace::Concurrent {
        agents,
        txns,
        end: concurrent_end,
    } = &concurrent
    else {
        unreachable!()
    };
    let mut group = c.benchmark_group("friendsforever_merge");
    group.sample_size(20);
    group.bench_function("mesh-crdt", |b| {
        b.iter(|| {
            let replicas = peers::trace::replay_concurrent(*agents, txns);
            assert_eq!(&replicas[0].text(), concurrent_end);
        })
    });
    group.finish();

    // Encoded sizes and load times of the final documents.
    let doc = peers::mesh(&patches);
    let bytes = doc.encode();
    let mut load = c.benchmark_group("automerge_paper_load");
    load.bench_function("mesh-crdt", |b| {
        b.iter(|| black_box(mesh_crdt::TextDoc::decode(&bytes, mesh_crdt::ReplicaId(2)).unwrap()))
    });
    let dt = peers::diamond(&patches)
        .oplog
        .encode(diamond_types::list::encoding::ENCODE_FULL);
    load.bench_function("diamond-types", |b| {
        b.iter(|| black_box(diamond_types::list::OpLog::load_from(&dt).unwrap()))
    });
    let loro = peers::loro(&patches)
        .export(loro::ExportMode::Snapshot)
        .unwrap();
    load.bench_function("loro", |b| {
        b.iter(|| black_box(loro::LoroDoc::from_snapshot(&loro).unwrap()))
    });
    load.finish();
    let (mut am, _) = peers::automerge(&patches);
    let am_bytes = am.save();
    let _ = am.length(automerge::ROOT);
    println!(
        "encoded size: mesh-crdt {} bytes, diamond-types {} bytes, loro {} bytes, automerge {} bytes",
        bytes.len(),
        dt.len(),
        loro.len(),
        am_bytes.len()
    );
}

criterion_group!(benches, replay);
criterion_main!(benches);
