//! The text CRDT: no interleaving, a seeded multi-replica convergence fuzzer, delta
//! sync and the encoding. (The real editing traces live outside the crate; the
//! `mesh-benches` package replays them in its tests.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use mesh_crdt::{CharId, ReplicaId, TextDoc, TextOp, VectorClock};

fn exchange(a: &mut TextDoc, b: &mut TextDoc, from_a: Vec<TextOp>, from_b: Vec<TextOp>) {
    for op in from_b {
        a.apply(op);
    }
    for op in from_a {
        b.apply(op);
    }
}

/// Two replicas type three characters each at the same place, forwards (each after the
/// previous) or backwards (each before the previous); the runs must not interleave.
#[test]
fn concurrent_typing_at_one_place_never_interleaves() {
    for backwards in [false, true] {
        for (ra, rb) in [(1, 2), (2, 1)] {
            let mut a = TextDoc::new(ReplicaId(ra));
            let mut b = TextDoc::new(ReplicaId(rb));
            let base = a.insert(0, "[]").unwrap();
            b.apply(base);
            let type_three = |doc: &mut TextDoc, chars: [&str; 3]| -> Vec<TextOp> {
                if backwards {
                    chars
                        .iter()
                        .rev()
                        .map(|c| doc.insert(1, c).unwrap())
                        .collect()
                } else {
                    chars
                        .iter()
                        .enumerate()
                        .map(|(i, c)| doc.insert(1 + i, c).unwrap())
                        .collect()
                }
            };
            let from_a = type_three(&mut a, ["a", "b", "c"]);
            let from_b = type_three(&mut b, ["x", "y", "z"]);
            assert_eq!(a.text(), "[abc]");
            exchange(&mut a, &mut b, from_a, from_b);
            assert_eq!(a.text(), b.text());
            let t = a.text();
            assert!(
                t == "[abcxyz]" || t == "[xyzabc]",
                "backwards={backwards}: {t}"
            );
        }
    }
}

#[test]
fn concurrent_edits_converge_with_deletes_and_duplicates() {
    let mut a = TextDoc::new(ReplicaId(1));
    let mut b = TextDoc::new(ReplicaId(2));
    b.apply(a.insert(0, "hello world").unwrap());
    let from_a = vec![a.delete(0, 6).unwrap(), a.insert(5, "!").unwrap()];
    let from_b = vec![b.insert(5, ","), b.delete(7, 4), b.insert(7, "there")];
    let from_b: Vec<TextOp> = from_b.into_iter().flatten().collect();
    exchange(&mut a, &mut b, from_a.clone(), from_b.clone());
    assert_eq!(a.text(), b.text());
    // Duplicates change nothing; ops delivered backwards wait for their dependencies.
    for op in from_a.iter().chain(&from_b) {
        a.apply(op.clone());
    }
    let mut c = TextDoc::new(ReplicaId(3));
    let mut all: Vec<TextOp> = vec![];
    all.extend(a.delta(&c.version()));
    for op in all.into_iter().rev() {
        c.apply(op);
    }
    assert_eq!(c.pending(), 0);
    assert_eq!(c.text(), a.text());
}

/// A seeded fuzzer: replicas edit at random, fork new replicas from existing ones,
/// and sync pairwise by delta or whole-state merge; at the end everyone syncs and all
/// texts must be equal. The seed is printed; set `MESH_CRDT_SEED` to replay one.
#[test]
fn seeded_multi_replica_convergence_fuzzer() {
    let (seed, mut rand) = seeded();
    for round in 0..20 {
        let mut docs = vec![
            TextDoc::new(ReplicaId(1)),
            TextDoc::new(ReplicaId(2)),
            TextDoc::new(ReplicaId(3)),
        ];
        let mut next_id = 4;
        for _ in 0..200 {
            let i = rand(docs.len());
            match rand(10) {
                0..=4 => {
                    let pos = rand(docs[i].len() + 1);
                    let text: String = (0..1 + rand(4))
                        .map(|_| (b'a' + rand(26) as u8) as char)
                        .collect();
                    docs[i].insert(pos, &text);
                }
                5..=6 => {
                    let len = docs[i].len();
                    if len > 0 {
                        let pos = rand(len);
                        docs[i].delete(pos, 1 + rand(3));
                    }
                }
                7 => {
                    let j = rand(docs.len());
                    let delta = docs[j].delta(&docs[i].version());
                    for op in delta {
                        docs[i].apply(op);
                    }
                }
                8 => {
                    let j = rand(docs.len());
                    let other = docs[j].clone();
                    docs[i].merge(&other);
                }
                _ if docs.len() < 6 => {
                    // Fork: a new replica starts from an existing one's encoded state.
                    let fork = TextDoc::decode(&docs[i].encode(), ReplicaId(next_id)).unwrap();
                    assert_eq!(fork.text(), docs[i].text());
                    next_id += 1;
                    docs.push(fork);
                }
                _ => {}
            }
        }
        for _ in 0..2 {
            for i in 0..docs.len() {
                for j in 0..docs.len() {
                    let other = docs[j].clone();
                    docs[i].merge(&other);
                }
            }
        }
        let text = docs[0].text();
        for (k, d) in docs.iter().enumerate() {
            assert_eq!(d.pending(), 0, "seed {seed} round {round} replica {k}");
            assert_eq!(d.text(), text, "seed {seed} round {round} replica {k}");
        }
    }
}

/// A seeded generator (xorshift), the seed printed; set `MESH_CRDT_SEED` to replay one.
fn seeded() -> (u64, impl FnMut(usize) -> usize) {
    let seed: u64 = std::env::var("MESH_CRDT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("MESH_CRDT_SEED={seed}");
    let mut state = seed | 1;
    let rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    (seed, rand)
}

/// Editing the way people do — typing on at a cursor, backspacing, deleting forwards,
/// now and then jumping elsewhere — through `insert`/`delete` and `splice`, matches the
/// same edits on a plain string after every step (the paths that continue where the
/// last edit left off), while operations from a second replica also arrive; a replica
/// fed the operations, and a decoded copy, end with the same text.
#[test]
fn editing_at_a_cursor_matches_a_plain_string() {
    let (seed, mut rand) = seeded();
    for round in 0..4 {
        let mut doc = TextDoc::new(ReplicaId(1));
        let mut other = TextDoc::new(ReplicaId(2));
        let mut model: Vec<char> = Vec::new();
        let mut follower = TextDoc::new(ReplicaId(3));
        let mut cursor = 0usize;
        let mut sent = Vec::new();
        for step in 0..4000 {
            let splice = rand(2) == 0;
            match rand(20) {
                0..=10 => {
                    let text: String = (0..1 + rand(3) * rand(2))
                        .map(|_| ['a', 'b', 'é', ' '][rand(4)])
                        .collect();
                    if splice {
                        doc.splice(cursor, 0, &text);
                    } else {
                        sent.extend(doc.insert(cursor, &text));
                    }
                    model.splice(cursor..cursor, text.chars());
                    cursor += text.chars().count();
                }
                11..=14 if cursor > 0 => {
                    let n = 1 + rand(2).min(cursor - 1);
                    cursor -= n;
                    if splice {
                        doc.splice(cursor, n, "");
                    } else {
                        sent.extend(doc.delete(cursor, n));
                    }
                    model.drain(cursor..cursor + n);
                }
                15..=16 if cursor < model.len() => {
                    let n = (1 + rand(3)).min(model.len() - cursor);
                    if splice {
                        doc.splice(cursor, n, "");
                    } else {
                        sent.extend(doc.delete(cursor, n));
                    }
                    model.drain(cursor..cursor + n);
                }
                17 => cursor = rand(model.len() + 1),
                18 => {
                    // The other replica, up to date, types at the start: its text
                    // shifts ours.
                    other.merge(&doc);
                    if let Some(op) = other.insert(0, "x") {
                        doc.apply(op);
                        model.insert(0, 'x');
                        cursor += 1;
                    }
                }
                _ => {}
            }
            assert_eq!(
                doc.text(),
                model.iter().collect::<String>(),
                "seed {seed} round {round} step {step}"
            );
        }
        // Splices return no operations: a delta carries everything instead.
        for op in sent.into_iter().chain(doc.delta(&follower.version())) {
            follower.apply(op);
        }
        follower.merge(&other);
        let text = doc.text();
        assert_eq!(follower.text(), text, "seed {seed} round {round}");
        assert_eq!(
            follower.pending(),
            0,
            "an operation cut differently still applies"
        );
        let decoded = TextDoc::decode(&doc.encode(), ReplicaId(4)).unwrap();
        assert_eq!(decoded.text(), text, "seed {seed} round {round}");
        assert!(doc.shape().1 > 2, "the edits span several chunks");
    }
}

#[test]
fn encoding_round_trips_and_drops_deleted_content() {
    let mut a = TextDoc::new(ReplicaId(7));
    a.insert(0, "héllo wörld");
    a.delete(0, 6);
    a.insert(0, "🙂 ");
    let bytes = a.encode();
    let b = TextDoc::decode(&bytes, ReplicaId(8)).unwrap();
    assert_eq!(b.text(), a.text());
    assert_eq!(b.version(), a.version());
    assert!(
        !String::from_utf8_lossy(&bytes).contains("héllo"),
        "deleted text is not in the encoding"
    );
    // The decoded replica keeps editing and syncing with the original.
    let mut b = b;
    let op = b.insert(b.len(), "!").unwrap();
    a.apply(op);
    assert_eq!(a.text(), b.text());
    assert!(TextDoc::decode(&bytes[..bytes.len() - 1], ReplicaId(1)).is_err());
}

/// A text document's encoding with one replica (`1`, two characters "ab") whose run's
/// right origin names agent index `origin_agent` (valid: 0).
fn crafted_doc(origin_agent: u8) -> Vec<u8> {
    let mut bytes = b"MCRD\x01\x07".to_vec();
    bytes.extend([1, 1, 2]); // one agent: replica 1, two characters
    bytes.extend([1, 0, 0, 4]); // one run: agent 0, seq 0, len 2, visible
    bytes.push(0); // no left origin
    bytes.extend([origin_agent + 2, 0]); // right origin: agent index, seq 0
    bytes.extend([2, b'a', b'b']);
    bytes
}

/// Hardening issue, item 15: `decode` did not check origin indices, and merging such a
/// document panicked (index out of bounds) in release builds too.
#[test]
fn hardening_15_a_crafted_origin_is_refused_at_decode() {
    assert!(TextDoc::decode(&crafted_doc(0), ReplicaId(9)).is_ok());
    let crafted = TextDoc::decode(&crafted_doc(5), ReplicaId(9));
    assert!(crafted.is_err(), "an origin naming agent 5 of 1 decoded");
    // Two agents with the same replica id are refused too.
    let mut twice = b"MCRD\x01\x07".to_vec();
    twice.extend([2, 1, 0, 1, 0, 0, 0]);
    assert!(TextDoc::decode(&twice, ReplicaId(9)).is_err());
}

/// Hardening issue, item 15: operations no replica could produce (a range past
/// `u32::MAX`, an empty range) overflowed sequence arithmetic.
#[test]
fn hardening_15_impossible_operations_are_ignored_without_panicking() {
    let mut doc = TextDoc::new(ReplicaId(1));
    doc.insert(0, "hello");
    let far = mesh_crdt::CharId {
        replica: ReplicaId(2),
        seq: u32::MAX,
    };
    let mine = mesh_crdt::CharId {
        replica: ReplicaId(1),
        seq: 0,
    };
    doc.apply(TextOp::Delete {
        ranges: vec![(far, 2)],
    });
    doc.apply(TextOp::Delete {
        ranges: vec![(mine, 0)],
    });
    doc.apply(TextOp::Insert {
        id: far,
        origin_left: None,
        origin_right: None,
        text: "xy".into(),
    });
    assert_eq!(doc.text(), "hello");
    assert_eq!(doc.pending(), 0, "impossible operations do not wait");
}

/// Hardening issue, item 15: operations waiting for dependencies that never come were
/// kept without bound. Past the limit the oldest go, and the document says it needs a
/// full state from a peer.
#[test]
fn hardening_15_waiting_operations_are_bounded() {
    let mut doc = TextDoc::new(ReplicaId(1));
    for seq in 1..=(mesh_crdt::MAX_PENDING_OPS as u32 + 10) {
        doc.apply(TextOp::Insert {
            id: mesh_crdt::CharId {
                replica: ReplicaId(2),
                seq,
            },
            origin_left: None,
            origin_right: None,
            text: "z".into(),
        });
    }
    assert_eq!(doc.pending(), mesh_crdt::MAX_PENDING_OPS);
    assert!(doc.needs_resync());
    // A full state from the peer heals it.
    let mut peer = TextDoc::new(ReplicaId(2));
    peer.insert(0, "z");
    doc.merge(&peer);
    assert_eq!(doc.text(), "z");
}

/// Updates (operations as bytes): the layout of `docs/crdt-encoding.md`, byte for byte.
#[test]
fn text_updates_match_their_byte_vector() {
    let c = |replica: u64, seq: u32| CharId {
        replica: ReplicaId(replica),
        seq,
    };
    let ops = vec![
        TextOp::Insert {
            id: c(7, 0),
            origin_left: None,
            origin_right: None,
            text: "hi".into(),
        },
        TextOp::Insert {
            id: c(300, 0),
            origin_left: Some(c(7, 1)),
            origin_right: None,
            text: "!".into(),
        },
        TextOp::Delete {
            ranges: vec![(c(7, 0), 1)],
        },
    ];
    let bytes = TextOp::encode_all(&ops);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        concat!(
            "4d435244", "01", "09", // magic, version 1, tag 9
            "02", "07", "ac02", // two replicas: 7, 300
            "03",   // three operations
            "00", "00", "00", "00", "00", "02", "6869", // insert (0 0) "hi", no origins
            "00", "01", "00", "01", "01", "00", "01", "21", // insert (1 0) "!" after (0 1)
            "01", "01", "00", "00", "01", // delete one range: (0 0) × 1
        )
    );
    assert_eq!(TextOp::decode_all(&bytes).unwrap(), ops);
    let mut doc = TextDoc::new(ReplicaId(1));
    assert_eq!(doc.apply_update(&bytes).unwrap(), 3);
    assert_eq!(doc.text(), "i!");
}

/// Replicas that exchange only update bytes — each edit's operation, or what the other
/// is missing since its version — converge; a malformed update is an error and changes
/// nothing.
#[test]
fn replicas_converge_on_update_bytes_and_refuse_malformed_ones() {
    let (seed, mut rand) = seeded();
    let mut a = TextDoc::new(ReplicaId(1));
    let mut b = TextDoc::new(ReplicaId(2));
    let mut to_b = Vec::new();
    for step in 0..500 {
        let (doc, other) = if rand(2) == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let len = doc.len();
        let op = if rand(3) == 0 && len > 0 {
            doc.delete(rand(len), 1 + rand(3))
        } else {
            doc.insert(rand(len + 1), ["x", "yz", "é"][rand(3)])
        };
        if let Some(op) = op {
            let bytes = TextOp::encode_all(&[op]);
            if rand(4) == 0 {
                to_b.push(bytes); // delivered late
            } else {
                other.apply_update(&bytes).unwrap();
            }
        }
        if step % 97 == 0 {
            let update = a.update_since(&b.version());
            b.apply_update(&update).unwrap();
        }
    }
    for bytes in to_b {
        b.apply_update(&bytes).unwrap();
        a.apply_update(&bytes).unwrap(); // its own, or already applied: no change
    }
    a.apply_update(&b.update_since(&a.version())).unwrap();
    b.apply_update(&a.update_since(&b.version())).unwrap();
    assert_eq!(a.text(), b.text(), "seed {seed}");

    let good = a.update_since(&VectorClock::new());
    let before = (b.text(), b.version());
    for cut in [0, 5, 6, 7, good.len() / 2, good.len() - 1] {
        assert!(b.apply_update(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = good.clone();
    bad.push(0);
    assert!(b.apply_update(&bad).is_err(), "trailing bytes");
    assert!(
        b.apply_update(&a.encode()).is_err(),
        "a state is not an update"
    );
    assert_eq!((b.text(), b.version()), before);
}

/// `applies_at` tells, before applying, exactly which operations would wait: three
/// replicas' operations delivered to a fourth in a scrambled order, each predicted on
/// the receiver's version and then applied.
#[test]
fn applies_at_predicts_which_operations_wait() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut writers: Vec<TextDoc> = (1..=3).map(|r| TextDoc::new(ReplicaId(r))).collect();
    let mut ops: Vec<TextOp> = Vec::new();
    for _ in 0..300 {
        let w = next(3);
        let doc = &mut writers[w];
        let made = if doc.len() > 2 && next(3) == 0 {
            let pos = next(doc.len() - 1);
            doc.delete(pos, 1 + next(2))
        } else {
            let pos = next(doc.len() + 1);
            doc.insert(pos, ["a", "bc", "\u{e9}"][next(3)])
        };
        // Others hear of it now and then, so later edits depend on other replicas'.
        let made: Vec<TextOp> = made.into_iter().collect();
        let other = (w + 1 + next(2)) % 3;
        if next(2) == 0 {
            for op in &made {
                writers[other].apply(op.clone());
            }
        }
        ops.extend(made);
    }
    for i in (1..ops.len()).rev() {
        if next(4) == 0 {
            ops.swap(i, next(i + 1));
        }
    }
    let mut reader = TextDoc::new(ReplicaId(9));
    let (mut waited, mut applied) = (0, 0);
    for op in ops {
        let before = reader.pending();
        let predicted = op.applies_at(&mut reader.version());
        reader.apply(op);
        let did_wait = reader.pending() == before + 1;
        assert_eq!(predicted, !did_wait);
        if did_wait { waited += 1 } else { applied += 1 }
    }
    assert!(
        waited > 10 && applied > 10,
        "{waited} waited, {applied} applied"
    );
}

/// An operation claiming a sequence number past what its replica has sent waits, and
/// `applies_at` says so without applying it; the version moves past those that apply.
#[test]
fn applies_at_refuses_a_gap_and_moves_the_version() {
    let mut a = TextDoc::new(ReplicaId(1));
    let first = a.insert(0, "ab").unwrap();
    let second = a.insert(2, "c").unwrap();
    let mut version = VectorClock::new();
    assert!(!second.applies_at(&mut version.clone()), "it follows `ab`");
    assert!(first.applies_at(&mut version));
    assert_eq!(version.get(ReplicaId(1)), 2);
    assert!(second.applies_at(&mut version));
    let deleted = a.delete(0, 3).unwrap();
    assert!(deleted.applies_at(&mut version.clone()));
    assert!(!deleted.applies_at(&mut VectorClock::new()));
    // A state operation waits for its replica's earlier ones the same way.
    let mut s = mesh_crdt::StateCrdt::new(ReplicaId(1));
    let (one, two) = (s.add("n", 1), s.add("n", 1));
    let mut version = VectorClock::new();
    assert!(!two.applies_at(&mut version.clone()));
    assert!(one.applies_at(&mut version) && two.applies_at(&mut version));
    assert!(
        one.applies_at(&mut version),
        "one already applied applies as nothing"
    );
}
