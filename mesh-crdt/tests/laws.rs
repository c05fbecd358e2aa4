//! Algebraic laws: every state-based type's merge is commutative, associative and
//! idempotent; operation-based types converge for every delivery order, duplicates
//! included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_crdt::{
    GCounter, Hlc, LwwRegister, MvRegister, OrSet, PNCounter, ReplicaId, StateCrdt, StateValue,
    TextDoc, VectorClock,
};
use proptest::prelude::*;

fn r(i: u8) -> ReplicaId {
    ReplicaId(u64::from(i % 3) + 1)
}

fn laws<T: Clone + PartialEq + std::fmt::Debug>(
    a: &T,
    b: &T,
    c: &T,
    merge: impl Fn(&mut T, &T),
) -> Result<(), TestCaseError> {
    let join = |x: &T, y: &T| {
        let mut z = x.clone();
        merge(&mut z, y);
        z
    };
    prop_assert_eq!(join(a, b), join(b, a), "commutative");
    prop_assert_eq!(join(&join(a, b), c), join(a, &join(b, c)), "associative");
    prop_assert_eq!(join(a, a), a.clone(), "idempotent");
    Ok(())
}

fn gcounter() -> impl Strategy<Value = GCounter> {
    proptest::collection::vec((any::<u8>(), 0u64..100), 0..8).prop_map(|incs| {
        let mut g = GCounter::new();
        for (rep, n) in incs {
            g.increment(r(rep), n);
        }
        g
    })
}

fn pncounter() -> impl Strategy<Value = PNCounter> {
    proptest::collection::vec((any::<u8>(), -100i64..100), 0..8).prop_map(|adds| {
        let mut c = PNCounter::new();
        for (rep, n) in adds {
            c.add(r(rep), n);
        }
        c
    })
}

fn lww() -> impl Strategy<Value = LwwRegister<String>> {
    // A timestamp identifies one write, so the value is a function of it.
    proptest::collection::vec((any::<u8>(), 0u64..20, 0u32..3), 0..5).prop_map(|writes| {
        let mut reg = LwwRegister::new();
        for (rep, t, c) in writes {
            let stamp = Hlc {
                wall_ms: t,
                counter: c,
                replica: r(rep),
            };
            reg.set(format!("{t}/{c}/{}", stamp.replica.0), stamp);
        }
        reg
    })
}

/// Sets built by one history forked among replicas, so dots are consistent.
fn orsets() -> impl Strategy<Value = (OrSet<i64>, OrSet<i64>, OrSet<i64>)> {
    proptest::collection::vec((0u8..3, any::<bool>(), 0i64..4), 0..30).prop_map(|steps| {
        let mut sets = [OrSet::new(), OrSet::new(), OrSet::new()];
        for (i, (rep, add, v)) in steps.into_iter().enumerate() {
            let s = &mut sets[rep as usize];
            if add {
                s.add(r(rep), v)
            } else {
                s.remove(&v);
            }
            if i % 5 == 4 {
                let other = sets[(rep as usize + 1) % 3].clone();
                sets[rep as usize].merge(&other);
            }
        }
        let [a, b, c] = sets;
        (a, b, c)
    })
}

fn mvregs() -> impl Strategy<Value = (MvRegister<i64>, MvRegister<i64>, MvRegister<i64>)> {
    proptest::collection::vec((0u8..3, 0i64..5, any::<bool>()), 0..20).prop_map(|steps| {
        let mut regs = [MvRegister::new(), MvRegister::new(), MvRegister::new()];
        for (rep, v, sync) in steps {
            regs[rep as usize].set(r(rep), v);
            if sync {
                let other = regs[(rep as usize + 2) % 3].clone();
                regs[rep as usize].merge(&other);
            }
        }
        let [a, b, c] = regs;
        (a, b, c)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn g_counter_laws(a in gcounter(), b in gcounter(), c in gcounter()) {
        laws(&a, &b, &c, GCounter::merge)?;
    }

    #[test]
    fn pn_counter_laws(a in pncounter(), b in pncounter(), c in pncounter()) {
        laws(&a, &b, &c, PNCounter::merge)?;
    }

    #[test]
    fn lww_register_laws(a in lww(), b in lww(), c in lww()) {
        laws(&a, &b, &c, LwwRegister::merge)?;
    }

    #[test]
    fn mv_register_laws((a, b, c) in mvregs()) {
        laws(&a, &b, &c, MvRegister::merge)?;
    }

    #[test]
    fn or_set_laws((a, b, c) in orsets()) {
        laws(&a, &b, &c, OrSet::merge)?;
    }

    #[test]
    fn vector_clock_laws(xs in proptest::collection::vec((any::<u8>(), 0u64..9), 0..6), ys in proptest::collection::vec((any::<u8>(), 0u64..9), 0..6), zs in proptest::collection::vec((any::<u8>(), 0u64..9), 0..6)) {
        let build = |v: Vec<(u8, u64)>| { let mut c = VectorClock::new(); for (rep, n) in v { c.observe(r(rep), n); } c };
        laws(&build(xs), &build(ys), &build(zs), VectorClock::merge)?;
    }

    #[test]
    fn counter_deltas_bring_a_peer_up_to_date(a in gcounter(), b in gcounter()) {
        let mut peer = b.clone();
        peer.merge(&a.delta(&b.version()));
        let mut full = b.clone();
        full.merge(&a);
        prop_assert_eq!(peer, full);
    }

    #[test]
    fn text_converges_for_every_delivery_order(
        edits in proptest::collection::vec((0u8..3, any::<bool>(), 0usize..20, "[a-z]{1,4}", 1usize..4), 1..25),
        order in proptest::collection::vec(any::<u32>(), 0..200),
        dup in proptest::collection::vec(any::<u32>(), 0..20),
    ) {
        // Three replicas edit on their own; every op goes to every other replica, in a
        // shuffled order with some duplicates.
        let mut docs: Vec<TextDoc> = (0..3).map(|i| TextDoc::new(ReplicaId(i + 1))).collect();
        let mut ops = Vec::new();
        for (rep, insert, pos, text, len) in edits {
            let doc = &mut docs[rep as usize];
            let pos = pos.min(doc.len());
            let op = if insert || doc.is_empty() { doc.insert(pos, &text) } else { doc.delete(pos, len) };
            ops.extend(op.map(|o| (rep as usize, o)));
        }
        let mut delivery: Vec<usize> = (0..ops.len()).collect();
        for (i, k) in order.iter().enumerate() {
            let n = delivery.len();
            if n > 1 { delivery.swap(i % n, *k as usize % n); }
        }
        for d in &dup {
            if !ops.is_empty() { delivery.push(*d as usize % ops.len()); }
        }
        for (target, doc) in docs.iter_mut().enumerate() {
            for &i in &delivery {
                if ops[i].0 != target { doc.apply(ops[i].1.clone()); }
            }
        }
        prop_assert_eq!(docs[0].pending(), 0);
        prop_assert_eq!(docs[0].text(), docs[1].text());
        prop_assert_eq!(docs[1].text(), docs[2].text());
    }

    #[test]
    fn state_converges_for_every_delivery_order(
        steps in proptest::collection::vec((0u8..3, 0u8..4, 0u8..3, 0i64..5), 1..30),
        order in proptest::collection::vec(any::<u32>(), 0..100),
    ) {
        let mut trees: Vec<StateCrdt> = (0..3).map(|i| StateCrdt::new(ReplicaId(i + 1))).collect();
        let mut ops = Vec::new();
        for (t, (rep, kind, key, v)) in steps.into_iter().enumerate() {
            let tree = &mut trees[rep as usize];
            let path = format!("p/{key}");
            ops.push(match kind {
                0 => tree.set_value(&format!("{path}/r"), StateValue::Int(v), t as u64 / 2),
                1 => tree.add(&format!("{path}/c"), v - 2),
                2 => tree.insert(&format!("{path}/s"), &v.to_string()),
                _ => tree.remove(&format!("{path}/s"), &v.to_string()),
            });
        }
        let mut delivery: Vec<usize> = (0..ops.len()).collect();
        for (i, k) in order.iter().enumerate() {
            let n = delivery.len();
            delivery.swap(i % n, *k as usize % n);
        }
        delivery.extend(0..ops.len()); // everything twice
        for tree in &mut trees {
            for &i in &delivery { tree.apply(ops[i].clone()); }
        }
        for path in ["p/0", "p/1", "p/2"] {
            for t in &trees[1..] {
                prop_assert_eq!(trees[0].value(&format!("{path}/r")), t.value(&format!("{path}/r")));
                prop_assert_eq!(trees[0].counter(&format!("{path}/c")), t.counter(&format!("{path}/c")));
                prop_assert_eq!(trees[0].set(&format!("{path}/s")), t.set(&format!("{path}/s")));
            }
        }
    }

    #[test]
    fn decoding_garbage_is_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), tag in 1u8..11) {
        let mut framed = b"MCRD\x01".to_vec();
        framed.push(tag);
        framed.extend(&bytes);
        // What decodes must also merge either way without panicking.
        if let Ok(doc) = TextDoc::decode(&framed, ReplicaId(1)) {
            let mut fresh = TextDoc::new(ReplicaId(2));
            fresh.insert(0, "seed");
            fresh.merge(&doc);
            let mut doc = doc;
            doc.merge(&fresh);
        }
        if let Ok(state) = StateCrdt::decode(&framed, ReplicaId(1)) {
            let mut fresh = StateCrdt::new(ReplicaId(2));
            fresh.merge(&state);
        }
        let mut doc = TextDoc::new(ReplicaId(1));
        let _ = doc.apply_update(&framed);
        let mut tree = StateCrdt::new(ReplicaId(1));
        let _ = tree.apply_update(&framed);
        let _ = OrSet::<String>::decode(&framed);
        let _ = MvRegister::<i64>::decode(&framed);
        let _ = LwwRegister::<StateValue>::decode(&framed);
        let _ = PNCounter::decode(&framed);
        let _ = VectorClock::decode(&bytes);
    }
}

/// Hardening issue, item 15: counters and clocks a peer pushed to the top overflowed on
/// the next local write.
#[test]
fn hardening_15_counters_at_the_top_do_not_overflow() {
    let mut clock = VectorClock::new();
    clock.observe(r(1), u64::MAX);
    assert_eq!(clock.increment(r(1)), u64::MAX);
    let mut hlc = mesh_crdt::HlcClock::new(r(1));
    let remote = mesh_crdt::Hlc {
        wall_ms: 5,
        counter: u32::MAX,
        replica: r(2),
    };
    hlc.observe(remote);
    let next = hlc.tick(5);
    assert!((next.wall_ms, next.counter) > (remote.wall_ms, remote.counter));
    let mut peer = StateCrdt::new(r(2));
    let mut tree = StateCrdt::new(r(1));
    tree.merge(&peer);
    let mut op = peer.add("n", 1);
    op.seq = u64::MAX;
    tree.apply(op);
    assert_eq!(tree.pending(), 1, "it waits for its predecessors");
    tree.add("mine", 1);
}

/// A text document's version-2 frame around `body` (what `TextDoc::encode` writes:
/// the header, the body's length, the body DEFLATE-compressed).
fn text_frame(body: &[u8]) -> Vec<u8> {
    let mut framed = b"MCRD\x02\x07".to_vec();
    let mut n = body.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            framed.push(byte);
            break;
        }
        framed.push(byte | 0x80);
    }
    framed.extend(miniz_oxide::deflate::compress_to_vec(body, 2));
    framed
}

/// The uncompressed body of a version-2 text encoding.
fn text_body(bytes: &[u8]) -> Vec<u8> {
    let mut at = 6;
    while bytes[at] & 0x80 != 0 {
        at += 1;
    }
    miniz_oxide::inflate::decompress_to_vec(&bytes[at + 1..]).unwrap()
}

/// Two replicas' edits, with deletions and a non-ASCII character.
fn edited() -> (TextDoc, TextDoc) {
    let mut a = TextDoc::new(r(1));
    a.insert(0, "hello world");
    let mut b = TextDoc::new(r(2));
    b.merge(&a);
    b.insert(5, ", dear");
    a.delete(0, 2);
    a.insert(3, "é");
    a.merge(&b);
    (a, b)
}

/// What decodes must read and merge both ways without panicking.
fn decoded_merges(bytes: &[u8], b: &mut TextDoc) {
    if let Ok(mut doc) = TextDoc::decode(bytes, r(3)) {
        let _ = doc.text();
        doc.merge(b);
        b.merge(&doc);
        doc.insert(0, "x");
        let _ = doc.encode();
    }
}

proptest! {
    /// Valid encodings with a few bytes changed decode or fail, and what decodes merges
    /// both ways without panicking: the compressed bytes, and the columns inside them.
    #[test]
    fn mutated_text_encodings_never_panic(flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..4), cut in any::<u16>()) {
        let (a, mut b) = edited();
        let mut bytes = a.encode();
        let mut body = text_body(&bytes);
        for &(at, byte) in &flips {
            let n = bytes.len();
            bytes[6 + at as usize % (n - 6)] = byte;
            let n = body.len();
            body[at as usize % n] = byte;
        }
        decoded_merges(&bytes, &mut b);
        decoded_merges(&text_frame(&body), &mut b);
        body.truncate(cut as usize % body.len());
        decoded_merges(&text_frame(&body), &mut b);
    }

    #[test]
    fn compressed_text_garbage_is_an_error_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut b) = edited();
        decoded_merges(&text_frame(&body), &mut b);
    }
}

/// A body claiming more runs than its columns hold is refused before anything is
/// allocated for them.
#[test]
fn a_text_body_claiming_more_runs_than_it_holds_is_refused() {
    // No replicas, ten runs, six empty columns, ten characters of text.
    let mut body = vec![0u8, 10];
    body.extend([0u8; 6]);
    body.push(10);
    body.extend(b"abcdefghij");
    assert_eq!(
        TextDoc::decode(&text_frame(&body), r(1)).unwrap_err(),
        mesh_crdt::DecodeError::Invalid("run count")
    );
}

/// A document written by version 1 of the encoding (a run at a time, uncompressed)
/// still reads, and re-encodes as version 2 to the same document.
#[test]
fn version_1_text_encodings_still_decode() {
    let v1 = "4d435244010702010c02060500000500000002060100000b020204020501000c0204020500050c01\
              00116c6c6fc3a92c206465617220776f726c64";
    let bytes: Vec<u8> = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&v1[i..i + 2], 16).unwrap())
        .collect();
    let doc = TextDoc::decode(&bytes, ReplicaId(3)).unwrap();
    // What the fixture's replicas (1 and 2) typed: `edited()`'s edits.
    assert_eq!(doc.text(), "llo\u{e9}, dear world");
    assert_eq!(doc.text(), edited().0.text());
    assert_eq!(doc.version().iter().count(), 2);
    let again = doc.encode();
    assert_eq!(&again[..6], b"MCRD\x02\x07");
    assert_eq!(
        TextDoc::decode(&again, ReplicaId(4)).unwrap().text(),
        doc.text()
    );
    // Later edits of another copy still merge into it.
    let mut later = TextDoc::decode(&bytes, ReplicaId(5)).unwrap();
    later.insert(0, ">");
    later.delete(4, 1);
    let mut doc = doc;
    doc.merge(&later);
    assert_eq!(doc.text(), later.text());
}

/// State updates (operations as bytes) bring a replica up to date; a malformed one is
/// an error and changes nothing.
#[test]
fn state_updates_sync_replicas_and_refuse_malformed_ones() {
    let mut a = StateCrdt::new(r(1));
    let mut b = StateCrdt::new(r(2));
    let ops = vec![
        a.set_value("title", StateValue::Str("plan".into()), 5),
        a.add("steps/done", 2),
        a.insert("owners", "ada"),
    ];
    let bytes = mesh_crdt::StateOp::encode_all(&ops);
    assert_eq!(&bytes[..6], b"MCRD\x01\x0a");
    assert_eq!(mesh_crdt::StateOp::decode_all(&bytes).unwrap(), ops);
    assert_eq!(b.apply_update(&bytes).unwrap(), 3);
    b.add("steps/done", 1);
    a.apply_update(&b.update_since(a.version())).unwrap();
    assert_eq!(a.counter("steps/done"), 3);
    assert_eq!(b.set("owners"), vec!["ada".to_owned()]);
    let before = b.encode();
    for cut in [0, 6, bytes.len() - 1] {
        assert!(b.apply_update(&bytes[..cut]).is_err());
    }
    assert!(
        b.apply_update(&b.encode()).is_err(),
        "a state is not an update"
    );
    assert_eq!(b.encode(), before);
}
