//! Decodes arbitrary bytes as every type, and merges what decodes into a live replica
//! and a live replica into it, then edits on. Any panic is a bug: mesh-crdt promises
//! that bytes from a peer never panic it.
//!
//! `cargo fuzz run decode_merge` in `mesh-crdt/fuzz` (needs cargo-fuzz; on stable,
//! `RUSTC_BOOTSTRAP=1`). Start from real encodings with `-seed_inputs` or a corpus of
//! `TextDoc::encode` outputs to reach past the header quickly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_crdt::{OrSet, PNCounter, ReplicaId, StateCrdt, TextDoc, VectorClock};

fuzz_target!(|data: &[u8]| {
    if let Ok(mut doc) = TextDoc::decode(data, ReplicaId(1)) {
        let mut live = TextDoc::new(ReplicaId(2));
        live.insert(0, "live text");
        live.merge(&doc);
        doc.merge(&live);
        doc.insert(0, "x");
        let end = doc.len();
        doc.delete(end / 2, 1.min(end));
        assert_eq!(doc.text().chars().count(), doc.len());
    }
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
