//! Reading and replaying the editing traces of `benches/data/traces` (see their
//! README): sequential, or concurrent with one replica per author exchanging
//! operations along the `parents` graph. Shared by the `replay` example and the tests.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::Read;
use std::time::{Duration, Instant};

use mesh_crdt::{ReplicaId, TextDoc, TextOp};
use serde_json::Value;

/// One splice: delete `del` code points at `pos`, then insert `ins` there.
pub type Patch = (usize, usize, String);

pub struct Txn {
    pub agent: usize,
    pub parents: Vec<usize>,
    pub patches: Vec<Patch>,
}

pub enum Trace {
    Sequential {
        patches: Vec<Patch>,
        end: String,
    },
    Concurrent {
        agents: usize,
        txns: Vec<Txn>,
        end: String,
    },
}

impl Trace {
    pub fn load(path: &str) -> Result<Self, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut json)
            .map_err(|e| format!("{path}: {e}"))?;
        let v: Value = serde_json::from_slice(&json).map_err(|e| format!("{path}: {e}"))?;
        let patches = |txn: &Value| -> Vec<Patch> {
            txn["patches"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p[0].as_u64().unwrap_or(0) as usize,
                                p[1].as_u64().unwrap_or(0) as usize,
                                p[2].as_str().unwrap_or("").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let end = v["endContent"].as_str().ok_or("no endContent")?.to_owned();
        let txns = v["txns"].as_array().ok_or("no txns")?;
        if v["kind"] == "concurrent" {
            let txns = txns
                .iter()
                .map(|t| Txn {
                    agent: t["agent"].as_u64().unwrap_or(0) as usize,
                    parents: t["parents"]
                        .as_array()
                        .map(|p| {
                            p.iter()
                                .filter_map(Value::as_u64)
                                .map(|x| x as usize)
                                .collect()
                        })
                        .unwrap_or_default(),
                    patches: patches(t),
                })
                .collect();
            Ok(Self::Concurrent {
                agents: v["numAgents"].as_u64().unwrap_or(1) as usize,
                txns,
                end,
            })
        } else {
            Ok(Self::Sequential {
                patches: txns.iter().flat_map(patches).collect(),
                end,
            })
        }
    }

    pub fn patches(&self) -> usize {
        match self {
            Self::Sequential { patches, .. } => patches.len(),
            Self::Concurrent { txns, .. } => txns.iter().map(|t| t.patches.len()).sum(),
        }
    }

    pub fn end(&self) -> &str {
        match self {
            Self::Sequential { end, .. } | Self::Concurrent { end, .. } => end,
        }
    }
}

fn splice(doc: &mut TextDoc, (pos, del, ins): &Patch, ops: &mut Vec<TextOp>) {
    if *del > 0 {
        ops.extend(doc.delete(*pos, *del));
    }
    if !ins.is_empty() {
        ops.extend(doc.insert(*pos, ins));
    }
}

/// Replays a sequential trace on one replica, one operation per edit.
pub fn replay_sequential(patches: &[Patch]) -> TextDoc {
    let mut doc = TextDoc::new(ReplicaId(1));
    for (pos, del, ins) in patches {
        doc.splice(*pos, *del, ins);
    }
    doc
}

/// Replays a concurrent trace: each author's replica applies the operations of a
/// transaction's causal history (its `parents`) it has not seen, then makes the
/// transaction's edits locally. Returns every replica after merging everything.
pub fn replay_concurrent(agents: usize, txns: &[Txn]) -> Vec<TextDoc> {
    let mut replicas: Vec<TextDoc> = (0..agents)
        .map(|a| TextDoc::new(ReplicaId(a as u64 + 1)))
        .collect();
    let mut seen: Vec<Vec<bool>> = vec![vec![false; txns.len()]; agents];
    let mut ops: Vec<Vec<TextOp>> = Vec::with_capacity(txns.len());
    let mut stack = Vec::new();
    let mut needed = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        let a = txn.agent;
        // The transactions in the parents' history this replica lacks.
        stack.extend(txn.parents.iter().copied());
        while let Some(p) = stack.pop() {
            if !seen[a][p] {
                seen[a][p] = true;
                needed.push(p);
                stack.extend(txns[p].parents.iter().copied());
            }
        }
        needed.sort_unstable();
        for &p in &needed {
            for op in &ops[p] {
                replicas[a].apply(op.clone());
            }
        }
        needed.clear();
        let mut mine = Vec::new();
        for patch in &txn.patches {
            splice(&mut replicas[a], patch, &mut mine);
        }
        seen[a][t] = true;
        ops.push(mine);
    }
    for (a, replica) in replicas.iter_mut().enumerate() {
        for (t, txn_ops) in ops.iter().enumerate() {
            if !seen[a][t] {
                for op in txn_ops {
                    replica.apply(op.clone());
                }
            }
        }
    }
    replicas
}

/// Replays `trace` `rounds` times; returns the final text, the fastest replay's time,
/// and the size of the final document's encoding.
pub fn replay(trace: &Trace, rounds: usize) -> (String, Duration, usize) {
    let mut best = Duration::MAX;
    for _ in 1..rounds.max(1) {
        let started = Instant::now();
        let doc = replay_once(trace);
        best = best.min(started.elapsed());
        drop(doc);
    }
    let started = Instant::now();
    let doc = replay_once(trace);
    let elapsed = started.elapsed().min(best);
    if std::env::var_os("REPLAY_SHAPE").is_some() {
        eprintln!(
            "runs, chunks: {:?}; heap {} bytes",
            doc.shape(),
            doc.heap_bytes()
        );
    }
    (doc.text(), elapsed, doc.encode().len())
}

fn replay_once(trace: &Trace) -> TextDoc {
    match trace {
        Trace::Sequential { patches, .. } => replay_sequential(patches),
        Trace::Concurrent { agents, txns, .. } => replay_concurrent(*agents, txns).swap_remove(0),
    }
}
