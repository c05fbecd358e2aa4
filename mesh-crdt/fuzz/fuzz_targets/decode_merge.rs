//! Decodes arbitrary bytes as every type — and, framed as a compressed text body, as a
//! text document's columns — merges what decodes into a live replica and a live replica
//! into it, then edits on; applies them as updates to live replicas. Any panic is a bug:
//! mesh-crdt promises that bytes from a peer never panic it.
//!
//! `cargo fuzz run decode_merge` in `mesh-crdt/fuzz` (needs cargo-fuzz; on stable,
//! `RUSTC_BOOTSTRAP=1`). Start from real encodings with `-seed_inputs` or a corpus of
//! `TextDoc::encode` outputs to reach past the header quickly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_crdt::{OrSet, PNCounter, ReplicaId, StateCrdt, TextDoc, VectorClock};

/// `body` as a version-2 text document: header, length, DEFLATE-compressed body.
fn text_frame(body: &[u8]) -> Vec<u8> {
    let mut framed = b"MCRD\x02\x07".to_vec();
    let mut n = body.len() as u64;
    while n >= 0x80 {
        framed.push((n as u8) | 0x80);
        n >>= 7;
    }
    framed.push(n as u8);
    framed.extend(miniz_oxide::deflate::compress_to_vec(body, 1));
    framed
}

fuzz_target!(|data: &[u8]| {
    text_document(data);
    text_document(&text_frame(data));
    let mut live = TextDoc::new(ReplicaId(2));
    live.insert(0, "live text");
    let _ = live.apply_update(data);
    let mut tree = StateCrdt::new(ReplicaId(2));
    tree.add("n", 1);
    let _ = tree.apply_update(data);
    if let Ok(mut state) = StateCrdt::decode(data, ReplicaId(1)) {
        let mut live = StateCrdt::new(ReplicaId(2));
        live.add("n", 1);
        live.merge(&state);
        state.merge(&live);
        state.add("n", 1);
    }
    if let Ok(mut set) = OrSet::<String>::decode(data) {
        set.merge(&OrSet::new());
    }
    if let Ok(mut counter) = PNCounter::decode(data) {
        counter.merge(&PNCounter::new());
    }
    let _ = VectorClock::decode(data);
});

/// Decodes `bytes` as a text document and merges it with a live replica both ways.
fn text_document(bytes: &[u8]) {
    if let Ok(mut doc) = TextDoc::decode(bytes, ReplicaId(1)) {
        let mut live = TextDoc::new(ReplicaId(2));
        live.insert(0, "live text");
        live.merge(&doc);
        doc.merge(&live);
        doc.insert(0, "x");
        let end = doc.len();
        doc.delete(end / 2, 1.min(end));
        assert_eq!(doc.text().chars().count(), doc.len());
    }
}
