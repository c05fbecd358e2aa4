//! mesh-crdt against the real editing traces in `benches/data/traces` (CC-BY-4.0, see
//! their README): replayed, every replica ends on the trace's final text. (Here, not in
//! mesh-crdt, so the published crate's tests read only its own files.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    missing_docs
)]

#[path = "../../mesh-crdt/examples/replay/trace.rs"]
mod trace;

fn trace_path(name: &str) -> String {
    format!("{}/data/traces/{name}.json.gz", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_sequential_trace_replays_to_its_end_content() {
    let trace = trace::Trace::load(&trace_path("automerge-paper")).expect("benches/data/traces");
    let (text, _, encoded) = trace::replay(&trace, 1);
    assert_eq!(text, trace.end());
    // The encoding's size target (issue 23; diamond-types writes 106 KB).
    assert!(
        encoded <= 110_000,
        "automerge-paper encodes to {encoded} bytes"
    );
    let trace::Trace::Sequential { patches, .. } = &trace else {
        panic!("a sequential trace")
    };
    let doc = trace::replay_sequential(patches);
    let decoded = mesh_crdt::TextDoc::decode(&doc.encode(), mesh_crdt::ReplicaId(9)).unwrap();
    assert_eq!(decoded.text(), trace.end());
    assert_eq!(decoded.version(), doc.version());
}

#[test]
fn the_concurrent_trace_replays_to_its_end_content_on_every_replica() {
    let trace = trace::Trace::load(&trace_path("friendsforever")).expect("benches/data/traces");
    let trace::Trace::Concurrent { agents, txns, end } = &trace else {
        panic!("a concurrent trace")
    };
    for replica in trace::replay_concurrent(*agents, txns) {
        assert_eq!(replica.pending(), 0);
        assert_eq!(&replica.text(), end);
    }
}
