//! The automerge-paper trace replayed through mesh-crdt and the peer CRDTs, one
//! operation per edit, shared by the timing and the heap benchmarks.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

#[path = "../../../mesh-crdt/examples/replay/trace.rs"]
pub mod trace;

use automerge::transaction::Transactable;
use yrs::{GetString, Text, Transact};

pub fn patches() -> (Vec<trace::Patch>, String) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/traces/automerge-paper.json.gz"
    );
    match trace::Trace::load(path).expect("benches/data/traces") {
        trace::Trace::Sequential { patches, end } => (patches, end),
        trace::Trace::Concurrent { .. } => panic!("automerge-paper is sequential"),
    }
}

pub fn concurrent() -> trace::Trace {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/traces/friendsforever.json.gz"
    );
    trace::Trace::load(path).expect("benches/data/traces")
}

pub fn mesh(patches: &[trace::Patch]) -> mesh_crdt::TextDoc {
    trace::replay_sequential(patches)
}

pub fn diamond(patches: &[trace::Patch]) -> diamond_types::list::ListCRDT {
    let mut doc = diamond_types::list::ListCRDT::new();
    let agent = doc.get_or_create_agent_id("paper");
    for (pos, del, ins) in patches {
        if *del > 0 {
            doc.delete(agent, *pos..*pos + *del);
        }
        if !ins.is_empty() {
            doc.insert(agent, *pos, ins);
        }
    }
    doc
}

/// cola tracks positions only (the text lives in the editor's own buffer).
pub fn cola(patches: &[trace::Patch]) -> cola::Replica {
    let mut replica = cola::Replica::new(1, 0);
    for (pos, del, ins) in patches {
        if *del > 0 {
            let _ = replica.deleted(*pos..*pos + *del);
        }
        if !ins.is_empty() {
            let _ = replica.inserted(*pos, ins.chars().count());
        }
    }
    replica
}

/// cola with the text beside it in a rope (jumprope's buffered rope, the fastest we
/// know): what a cola user stores to have the document, as mesh-crdt does.
pub fn cola_rope(patches: &[trace::Patch]) -> (cola::Replica, jumprope::JumpRopeBuf) {
    let mut replica = cola::Replica::new(1, 0);
    let mut rope = jumprope::JumpRopeBuf::new();
    for (pos, del, ins) in patches {
        if *del > 0 {
            let _ = replica.deleted(*pos..*pos + *del);
            rope.remove(*pos..*pos + *del);
        }
        if !ins.is_empty() {
            let _ = replica.inserted(*pos, ins.chars().count());
            rope.insert(*pos, ins);
        }
    }
    (replica, rope)
}

pub fn loro(patches: &[trace::Patch]) -> loro::LoroDoc {
    let doc = loro::LoroDoc::new();
    let text = doc.get_text("text");
    for (pos, del, ins) in patches {
        if *del > 0 {
            text.delete(*pos, *del).unwrap();
        }
        if !ins.is_empty() {
            text.insert(*pos, ins).unwrap();
        }
    }
    doc
}

pub fn yrs(patches: &[trace::Patch]) -> yrs::Doc {
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("text");
    for (pos, del, ins) in patches {
        let mut txn = doc.transact_mut();
        if *del > 0 {
            text.remove_range(&mut txn, *pos as u32, *del as u32);
        }
        if !ins.is_empty() {
            text.insert(&mut txn, *pos as u32, ins);
        }
    }
    doc
}

pub fn yrs_text(doc: &yrs::Doc) -> String {
    let text = doc.get_or_insert_text("text");
    text.get_string(&doc.transact())
}

pub fn automerge(patches: &[trace::Patch]) -> (automerge::AutoCommit, automerge::ObjId) {
    let mut doc = automerge::AutoCommit::new();
    let text = doc
        .put_object(automerge::ROOT, "text", automerge::ObjType::Text)
        .unwrap();
    for (pos, del, ins) in patches {
        doc.splice_text(&text, *pos, *del as isize, ins).unwrap();
    }
    (doc, text)
}
