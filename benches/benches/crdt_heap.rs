//! Heap after replaying automerge-paper, and peak heap during the replay, for
//! mesh-crdt and the peers (dhat counts every allocation; timings here mean nothing).
//!
//! `cargo bench -p mesh-benches --bench crdt_heap`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod crdt_common;

use crdt_common as peers;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn measure<T>(
    name: &str,
    patches: &[peers::trace::Patch],
    replay: impl Fn(&[peers::trace::Patch]) -> T,
) {
    let before = dhat::HeapStats::get();
    let doc = replay(patches);
    let after = dhat::HeapStats::get();
    println!(
        "{name:<14} heap after replay {:>10} bytes   peak during replay {:>10} bytes",
        after.curr_bytes - before.curr_bytes,
        after.max_bytes.saturating_sub(before.curr_bytes)
    );
    drop(doc);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // criterion-style discovery
    }
    let (patches, _) = peers::patches();
    // One profiler per peer, so each peak is its own.
    for (name, run) in [
        ("mesh-crdt", 0),
        ("diamond-types", 1),
        ("cola", 2),
        ("cola+jumprope", 6),
        ("loro", 3),
        ("automerge", 4),
        ("yrs", 5),
    ] {
        let _profiler = dhat::Profiler::builder().testing().build();
        match run {
            0 => measure(name, &patches, peers::mesh),
            1 => measure(name, &patches, peers::diamond),
            2 => measure(name, &patches, peers::cola),
            3 => measure(name, &patches, peers::loro),
            4 => measure(name, &patches, peers::automerge),
            6 => measure(name, &patches, peers::cola_rope),
            _ => measure(name, &patches, peers::yrs),
        }
    }
}
