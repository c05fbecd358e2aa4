//! One input of the shared-documents fuzz target (`mesh-core/fuzz`, and the proptest in
//! `tests/shared_docs.rs` that runs the same checks on every test run): what a peer
//! sends — well-formed updates, mutated and cut ones, arbitrary bytes — goes through
//! [`LiveDoc::apply`](crate::shared_docs::LiveDoc::apply) as the hub passes it on. A
//! refused update changes nothing; an accepted one is stored, so a process that loads
//! the documents afresh sees the same content.

use mesh_crdt::{ReplicaId, StateCrdt, StateOp, StateValue, TextDoc, TextOp};

use crate::domain::{DocKind, TenantId};
use crate::engine::{Engine, EngineConfig, MemoryStores};
use crate::shared_docs::{DocLimits, SharedDocs};

/// Runs one input; panics when a check fails.
pub async fn check_doc_updates(input: &[u8]) {
    let engine = Engine::start(EngineConfig::default(), MemoryStores::new())
        .await
        .unwrap();
    let limits = DocLimits {
        compact_every: 8,
        max_update_bytes: 4096,
        ..DocLimits::default()
    };
    let docs = SharedDocs::new(&engine, limits.clone());
    let tenant = TenantId::new();
    let text_id = docs.create(tenant, "t", DocKind::Text).await.unwrap().id;
    let state_id = docs.create(tenant, "s", DocKind::State).await.unwrap().id;
    let text_doc = docs.live(tenant, text_id).await.unwrap();
    let state_doc = docs.live(tenant, state_id).await.unwrap();
    let mut peer_text = TextDoc::new(ReplicaId(7));
    let mut peer_state = StateCrdt::new(ReplicaId(7));
    let mut last = Vec::new();
    let mut bytes = input.iter().copied();
    while let Some(action) = bytes.next() {
        let arg = bytes.next().unwrap_or(0) as usize;
        let on_text = action & 1 == 0;
        let update = match action >> 1 & 3 {
            // A well-formed edit of the peer's replica.
            0 if on_text => {
                let pos = arg % (peer_text.len() + 1);
                let op = if arg.is_multiple_of(3) && peer_text.len() > pos {
                    peer_text.delete(pos, 1 + arg % 4)
                } else {
                    peer_text.insert(pos, ["a", "b\u{e9}", "\u{1f600}c"][arg % 3])
                };
                TextOp::encode_all(&op.into_iter().collect::<Vec<_>>())
            }
            0 => {
                let op = match arg % 3 {
                    0 => peer_state.set_value("a", StateValue::Int(arg as i64), arg as u64),
                    1 => peer_state.add("n", 1),
                    _ => peer_state.insert("s", &format!("e{}", arg % 5)),
                };
                StateOp::encode_all(&[op])
            }
            // The last update with one byte changed.
            1 if !last.is_empty() => {
                let mut changed: Vec<u8> = last.clone();
                let at = arg % changed.len();
                changed[at] ^= bytes.next().unwrap_or(1) | 1;
                changed
            }
            // The last update cut short.
            2 if !last.is_empty() => last[..arg % last.len()].to_vec(),
            // Arbitrary bytes.
            _ => bytes.by_ref().take(arg % 64).collect(),
        };
        if action >> 1 & 3 == 0 {
            last = update.clone();
        }
        let doc = if on_text { &text_doc } else { &state_doc };
        let before = doc.content().await.unwrap();
        if doc.apply(1, update).await.is_err() {
            assert_eq!(
                doc.content().await.unwrap(),
                before,
                "a refused update changed it"
            );
        }
    }
    // A process loading the documents afresh sees what this one holds.
    let fresh = SharedDocs::new(&engine, limits);
    for id in [text_id, state_id] {
        let here = docs.read(tenant, id).await.unwrap().content;
        let there = fresh.read(tenant, id).await.unwrap().content;
        assert_eq!(here, there, "the stored copy differs");
    }
}
