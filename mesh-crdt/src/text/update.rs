//! Text operations as bytes: what replicas send each other between whole states — a
//! local edit's operation, or the [`delta`](TextDoc::delta) a peer is missing (see
//! `docs/crdt-encoding.md`, "Updates").

use std::collections::HashMap;

use super::{CharId, TextDoc, TextOp};
use crate::encoding::{DecodeError, Reader, Writer, tag};
use crate::{ReplicaId, VectorClock};

/// Operation kinds.
const INSERT: u64 = 0;
const DELETE: u64 = 1;

impl TextOp {
    /// Whether this operation applies at once to a document at `version` (what
    /// [`TextDoc::version`] gives) rather than waiting for characters it lacks; when
    /// it does, `version` moves past it. One already applied, or one no replica could
    /// have made, applies (as nothing). A replica that others sync through can refuse
    /// an update that would wait instead of holding operations no encoding carries.
    pub fn applies_at(&self, version: &mut VectorClock) -> bool {
        let known = |c: CharId, v: &VectorClock| u64::from(c.seq) < v.get(c.replica);
        match self {
            TextOp::Insert {
                id,
                origin_left,
                origin_right,
                text,
            } => {
                let n = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
                let Some(end) = id.seq.checked_add(n).filter(|_| n > 0) else {
                    return true;
                };
                let have = version.get(id.replica);
                if u64::from(end) <= have {
                    return true;
                }
                // Partly applied, the rest follows the last character known instead of
                // its left origin (as `TextDoc::apply` does).
                let left_ok =
                    u64::from(id.seq) < have || origin_left.is_none_or(|c| known(c, version));
                let ready = u64::from(id.seq) <= have
                    && left_ok
                    && origin_right.is_none_or(|c| known(c, version));
                if ready {
                    version.observe(id.replica, u64::from(end));
                }
                ready
            }
            TextOp::Delete { ranges } => ranges.iter().all(|&(start, len)| {
                match len.checked_sub(1).and_then(|l| start.seq.checked_add(l)) {
                    Some(last) => known(CharId { seq: last, ..start }, version),
                    None => true, // an empty range, or past the last sequence number
                }
            }),
        }
    }

    /// The compact binary encoding of `ops`, in order (an *update*).
    pub fn encode_all(ops: &[TextOp]) -> Vec<u8> {
        // Replica ids are long; each is written once and named by its index.
        let mut replicas: Vec<ReplicaId> = Vec::new();
        let mut indexes: HashMap<ReplicaId, u64> = HashMap::new();
        let mut index = |r: ReplicaId| {
            *indexes.entry(r).or_insert_with(|| {
                replicas.push(r);
                replicas.len() as u64 - 1
            })
        };
        let mut body = Writer::bare();
        body.u64(ops.len() as u64);
        for op in ops {
            match op {
                TextOp::Insert {
                    id,
                    origin_left,
                    origin_right,
                    text,
                } => {
                    body.u64(INSERT);
                    body.u64(index(id.replica));
                    body.u64(u64::from(id.seq));
                    for origin in [origin_left, origin_right] {
                        match origin {
                            None => body.u64(0),
                            Some(o) => {
                                body.u64(index(o.replica) + 1);
                                body.u64(u64::from(o.seq));
                            }
                        }
                    }
                    body.bytes(text.as_bytes());
                }
                TextOp::Delete { ranges } => {
                    body.u64(DELETE);
                    body.u64(ranges.len() as u64);
                    for (start, len) in ranges {
                        body.u64(index(start.replica));
                        body.u64(u64::from(start.seq));
                        body.u64(u64::from(*len));
                    }
                }
            }
        }
        let mut w = Writer::new(tag::TEXT_OPS);
        w.u64(replicas.len() as u64);
        for r in &replicas {
            w.u64(r.0);
        }
        w.buf.extend_from_slice(&body.finish());
        w.finish()
    }

    /// Reads [`encode_all`](Self::encode_all)'s output; an error if any of it is
    /// malformed (nothing is half-read).
    pub fn decode_all(bytes: &[u8]) -> Result<Vec<TextOp>, DecodeError> {
        let mut r = Reader::new(bytes, tag::TEXT_OPS)?;
        let n = r.usize(r.remaining())?;
        let replicas: Vec<ReplicaId> = (0..n)
            .map(|_| r.u64().map(ReplicaId))
            .collect::<Result<_, _>>()?;
        let replica = |i: u64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| replicas.get(i).copied())
                .ok_or(DecodeError::Invalid("replica index"))
        };
        let n_ops = r.usize(r.remaining())?;
        let mut ops = Vec::with_capacity(n_ops);
        for _ in 0..n_ops {
            let op = match r.u64()? {
                INSERT => {
                    let id = CharId {
                        replica: replica(r.u64()?)?,
                        seq: r.u32()?,
                    };
                    let mut origins = [None; 2];
                    for origin in &mut origins {
                        *origin = match r.u64()? {
                            0 => None,
                            i => Some(CharId {
                                replica: replica(i - 1)?,
                                seq: r.u32()?,
                            }),
                        };
                    }
                    TextOp::Insert {
                        id,
                        origin_left: origins[0],
                        origin_right: origins[1],
                        text: r.str()?.to_owned(),
                    }
                }
                DELETE => {
                    let m = r.usize(r.remaining())?;
                    let ranges = (0..m)
                        .map(|_| {
                            let start = CharId {
                                replica: replica(r.u64()?)?,
                                seq: r.u32()?,
                            };
                            Ok((start, r.u32()?))
                        })
                        .collect::<Result<_, DecodeError>>()?;
                    TextOp::Delete { ranges }
                }
                _ => return Err(DecodeError::Invalid("operation kind")),
            };
            ops.push(op);
        }
        r.end()?;
        Ok(ops)
    }
}

impl TextDoc {
    /// What a replica that has seen `since` is missing ([`delta`](Self::delta)), as an
    /// update's bytes.
    pub fn update_since(&self, since: &VectorClock) -> Vec<u8> {
        TextOp::encode_all(&self.delta(since))
    }

    /// Applies an update ([`TextOp::encode_all`]'s bytes, from a local edit or
    /// [`update_since`](Self::update_since)); returns how many operations it held.
    /// Malformed bytes are an error and change nothing.
    pub fn apply_update(&mut self, bytes: &[u8]) -> Result<usize, DecodeError> {
        let ops = TextOp::decode_all(bytes)?;
        let n = ops.len();
        for op in ops {
            self.apply(op);
        }
        Ok(n)
    }
}
