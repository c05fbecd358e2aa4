//! A JSON-like state tree addressed by paths, with CRDT leaves.

use std::collections::BTreeMap;

use crate::encoding::{Atom, DecodeError, Reader, Writer, tag};
use crate::{Dot, Hlc, HlcClock, LwwRegister, OrSet, PNCounter, ReplicaId, VectorClock};

/// A scalar held by a register leaf.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum StateValue {
    /// Nothing (also what a deleted register holds).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

impl Atom for StateValue {
    fn write(&self, w: &mut Writer) {
        match self {
            Self::Null => w.u64(0),
            Self::Bool(b) => {
                w.u64(1);
                b.write(w);
            }
            Self::Int(i) => {
                w.u64(2);
                w.i64(*i);
            }
            Self::Float(f) => {
                w.u64(3);
                w.u64(f.to_bits());
            }
            Self::Str(s) => {
                w.u64(4);
                s.write(w);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u64()? {
            0 => Self::Null,
            1 => Self::Bool(bool::read(r)?),
            2 => Self::Int(r.i64()?),
            3 => Self::Float(f64::from_bits(r.u64()?)),
            4 => Self::Str(String::read(r)?),
            _ => return Err(DecodeError::Invalid("value tag")),
        })
    }
}

/// What lives at a path.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Leaf {
    /// Last writer wins.
    Register(LwwRegister<StateValue>),
    /// A counter.
    Counter(PNCounter),
    /// An add-wins set of strings.
    Set(OrSet<String>),
}

/// One change, with a unique id (replica, sequence number); applying it twice is a
/// no-op.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct StateOp {
    /// The replica that made it.
    pub replica: ReplicaId,
    /// Its sequence number there, from 1.
    pub seq: u64,
    /// Where.
    pub path: String,
    /// What.
    pub change: Change,
}

/// A change to one path.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Change {
    /// Writes a register.
    Set {
        /// The value.
        value: StateValue,
        /// When.
        stamp: Hlc,
    },
    /// Adds to a counter.
    Add {
        /// How much (negative subtracts).
        delta: i64,
    },
    /// Adds to a set.
    Insert {
        /// The element.
        element: String,
        /// The add's dot.
        dot: Dot,
        /// The dots it replaced.
        observed: Vec<Dot>,
    },
    /// Removes from a set the adds seen.
    Remove {
        /// The element.
        element: String,
        /// The dots removed.
        observed: Vec<Dot>,
    },
}

/// A JSON-like tree of CRDT leaves addressed by `/`-separated paths (`"task/status"`,
/// `"votes/yes"`). Local changes return [`StateOp`]s to send; remote ones apply in any
/// order and any number of times (duplicates are recognised by id, out-of-order ones
/// wait for their predecessors). Whole states merge too.
#[derive(Debug, Clone)]
pub struct StateCrdt {
    replica: ReplicaId,
    clock: HlcClock,
    seen: VectorClock,
    leaves: BTreeMap<String, Leaf>,
    log: Vec<StateOp>,
    pending: Vec<StateOp>,
    /// Waiting operations were dropped (over the limit) since the last merge.
    resync: bool,
}

impl StateCrdt {
    /// An empty tree for `replica`.
    pub fn new(replica: ReplicaId) -> Self {
        Self {
            replica,
            clock: HlcClock::new(replica),
            seen: VectorClock::new(),
            leaves: BTreeMap::new(),
            log: Vec::new(),
            pending: Vec::new(),
            resync: false,
        }
    }

    /// The leaf at `path`.
    pub fn get(&self, path: &str) -> Option<&Leaf> {
        self.leaves.get(path)
    }

    /// The register value at `path`.
    pub fn value(&self, path: &str) -> Option<&StateValue> {
        match self.leaves.get(path) {
            Some(Leaf::Register(r)) => r.get(),
            _ => None,
        }
    }

    /// The counter at `path` (0 if none).
    pub fn counter(&self, path: &str) -> i64 {
        match self.leaves.get(path) {
            Some(Leaf::Counter(c)) => c.value(),
            _ => 0,
        }
    }

    /// The set elements at `path`.
    pub fn set(&self, path: &str) -> Vec<String> {
        match self.leaves.get(path) {
            Some(Leaf::Set(s)) => s.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The paths under `prefix` (`"a/"` lists `"a/b"`, `"a/c/d"`…).
    pub fn paths<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.leaves
            .range(prefix.to_owned()..)
            .map(|(k, _)| k.as_str())
            .take_while(move |k| k.starts_with(prefix))
    }

    /// The operations applied so far, per replica.
    pub fn version(&self) -> &VectorClock {
        &self.seen
    }

    fn local(&mut self, path: &str, change: Change) -> StateOp {
        let op = StateOp {
            replica: self.replica,
            seq: self.seen.get(self.replica).saturating_add(1),
            path: path.to_owned(),
            change,
        };
        self.apply(op.clone());
        op
    }

    /// Writes `value` at `path` at physical time `now_ms`.
    pub fn set_value(&mut self, path: &str, value: StateValue, now_ms: u64) -> StateOp {
        let stamp = self.clock.tick(now_ms);
        self.local(path, Change::Set { value, stamp })
    }

    /// Adds `delta` to the counter at `path`.
    pub fn add(&mut self, path: &str, delta: i64) -> StateOp {
        self.local(path, Change::Add { delta })
    }

    /// Adds `element` to the set at `path`.
    pub fn insert(&mut self, path: &str, element: &str) -> StateOp {
        let replica = self.replica;
        let set = self.set_leaf(path);
        let observed = set.dots(&element.to_owned());
        let dot = set.next_dot(replica);
        self.local(
            path,
            Change::Insert {
                element: element.to_owned(),
                dot,
                observed,
            },
        )
    }

    /// Removes `element` from the set at `path`.
    pub fn remove(&mut self, path: &str, element: &str) -> StateOp {
        let observed = self.set_leaf(path).dots(&element.to_owned());
        self.local(
            path,
            Change::Remove {
                element: element.to_owned(),
                observed,
            },
        )
    }

    fn set_leaf(&mut self, path: &str) -> &mut OrSet<String> {
        let leaf = self
            .leaves
            .entry(path.to_owned())
            .or_insert_with(|| Leaf::Set(OrSet::new()));
        if !matches!(leaf, Leaf::Set(_)) {
            *leaf = Leaf::Set(OrSet::new());
        }
        match leaf {
            Leaf::Set(s) => s,
            _ => unreachable!("just made a set"),
        }
    }

    /// Applies an operation (local or remote). Already applied: nothing happens. Its
    /// replica's earlier operations missing: it waits until they arrive.
    pub fn apply(&mut self, op: StateOp) {
        let have = self.seen.get(op.replica);
        if op.seq <= have {
            return;
        }
        if op.seq > have.saturating_add(1) {
            crate::text::wait(&mut self.pending, op, &mut self.resync);
            return;
        }
        self.apply_now(op);
        while let Some(i) = self
            .pending
            .iter()
            .position(|p| p.seq == self.seen.get(p.replica).saturating_add(1))
        {
            let next = self.pending.swap_remove(i);
            self.apply_now(next);
        }
        let seen = &self.seen;
        self.pending.retain(|p| p.seq > seen.get(p.replica));
    }

    fn apply_now(&mut self, op: StateOp) {
        self.seen.observe(op.replica, op.seq);
        match &op.change {
            Change::Set { value, stamp } => {
                self.clock.observe(*stamp);
                let leaf = self
                    .leaves
                    .entry(op.path.clone())
                    .or_insert_with(|| Leaf::Register(LwwRegister::new()));
                if !matches!(leaf, Leaf::Register(_)) {
                    *leaf = Leaf::Register(LwwRegister::new());
                }
                if let Leaf::Register(r) = leaf {
                    r.set(value.clone(), *stamp);
                }
            }
            Change::Add { delta } => {
                let leaf = self
                    .leaves
                    .entry(op.path.clone())
                    .or_insert_with(|| Leaf::Counter(PNCounter::new()));
                if !matches!(leaf, Leaf::Counter(_)) {
                    *leaf = Leaf::Counter(PNCounter::new());
                }
                if let Leaf::Counter(c) = leaf {
                    c.add(op.replica, *delta);
                }
            }
            Change::Insert {
                element,
                dot,
                observed,
            } => self
                .set_leaf(&op.path)
                .apply_add(element.clone(), *dot, observed),
            Change::Remove { element, observed } => {
                self.set_leaf(&op.path).apply_remove(element, observed)
            }
        }
        self.log.push(op);
    }

    /// The operations a replica that has applied `since` is missing, in order.
    pub fn delta(&self, since: &VectorClock) -> Vec<StateOp> {
        self.log
            .iter()
            .filter(|op| op.seq > since.get(op.replica))
            .cloned()
            .collect()
    }

    /// Joins another replica's whole state in (its leaves, merged leaf by leaf).
    pub fn merge(&mut self, other: &StateCrdt) {
        for op in other.delta(&self.seen) {
            self.apply(op);
        }
        self.resync = false;
    }

    /// Operations received whose predecessors have not arrived yet (at most
    /// [`MAX_PENDING_OPS`](crate::MAX_PENDING_OPS)).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether waiting operations were dropped because too many waited: merge a
    /// peer's whole state to be sure nothing is missing. Cleared by `merge`.
    pub fn needs_resync(&self) -> bool {
        self.resync
    }

    /// The compact binary encoding: the applied-operation log (the state is its replay).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::STATE);
        write_ops(&mut w, &self.log);
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output, as `replica`.
    pub fn decode(bytes: &[u8], replica: ReplicaId) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::STATE)?;
        let mut doc = Self::new(replica);
        for op in read_ops(&mut r)? {
            doc.apply(op);
        }
        Ok(doc)
    }

    /// What a replica that has seen `since` is missing ([`delta`](Self::delta)), as an
    /// update's bytes.
    pub fn update_since(&self, since: &VectorClock) -> Vec<u8> {
        StateOp::encode_all(&self.delta(since))
    }

    /// Applies an update ([`StateOp::encode_all`]'s bytes); returns how many operations
    /// it held. Malformed bytes are an error and change nothing.
    pub fn apply_update(&mut self, bytes: &[u8]) -> Result<usize, DecodeError> {
        let ops = StateOp::decode_all(bytes)?;
        let n = ops.len();
        for op in ops {
            self.apply(op);
        }
        Ok(n)
    }
}

impl StateOp {
    /// Whether this operation applies at once to a state at `version` (what
    /// [`StateCrdt::version`] gives) rather than waiting for its replica's earlier
    /// operations; when it does, `version` moves past it. One already applied applies
    /// (as nothing).
    pub fn applies_at(&self, version: &mut VectorClock) -> bool {
        let have = version.get(self.replica);
        if self.seq > have.saturating_add(1) {
            return false;
        }
        version.observe(self.replica, self.seq);
        true
    }

    /// The compact binary encoding of `ops`, in order (an *update*).
    pub fn encode_all(ops: &[StateOp]) -> Vec<u8> {
        let mut w = Writer::new(tag::STATE_OPS);
        write_ops(&mut w, ops);
        w.finish()
    }

    /// Reads [`encode_all`](Self::encode_all)'s output; an error if any of it is
    /// malformed.
    pub fn decode_all(bytes: &[u8]) -> Result<Vec<StateOp>, DecodeError> {
        read_ops(&mut Reader::new(bytes, tag::STATE_OPS)?)
    }
}

/// Operations: varint count, then each: replica, seq, path, change tag and fields.
fn write_ops(w: &mut Writer, ops: &[StateOp]) {
    w.u64(ops.len() as u64);
    for op in ops {
        w.u64(op.replica.0);
        w.u64(op.seq);
        w.bytes(op.path.as_bytes());
        match &op.change {
            Change::Set { value, stamp } => {
                w.u64(0);
                value.write(w);
                w.u64(stamp.wall_ms);
                w.u64(u64::from(stamp.counter));
                w.u64(stamp.replica.0);
            }
            Change::Add { delta } => {
                w.u64(1);
                w.i64(*delta);
            }
            Change::Insert {
                element,
                dot,
                observed,
            } => {
                w.u64(2);
                w.bytes(element.as_bytes());
                write_dots(w, std::slice::from_ref(dot));
                write_dots(w, observed);
            }
            Change::Remove { element, observed } => {
                w.u64(3);
                w.bytes(element.as_bytes());
                write_dots(w, observed);
            }
        }
    }
}

/// Reads [`write_ops`]' output to the end of the input.
fn read_ops(r: &mut Reader<'_>) -> Result<Vec<StateOp>, DecodeError> {
    let n = r.usize(r.remaining())?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let replica = ReplicaId(r.u64()?);
        let seq = r.u64()?;
        let path = r.str()?.to_owned();
        let change = match r.u64()? {
            0 => {
                let value = StateValue::read(r)?;
                Change::Set {
                    value,
                    stamp: Hlc {
                        wall_ms: r.u64()?,
                        counter: r.u32()?,
                        replica: ReplicaId(r.u64()?),
                    },
                }
            }
            1 => Change::Add { delta: r.i64()? },
            2 => {
                let element = r.str()?.to_owned();
                let dot = *read_dots(r)?
                    .first()
                    .ok_or(DecodeError::Invalid("missing dot"))?;
                Change::Insert {
                    element,
                    dot,
                    observed: read_dots(r)?,
                }
            }
            3 => {
                let element = r.str()?.to_owned();
                Change::Remove {
                    element,
                    observed: read_dots(r)?,
                }
            }
            _ => return Err(DecodeError::Invalid("change tag")),
        };
        ops.push(StateOp {
            replica,
            seq,
            path,
            change,
        });
    }
    let rest = std::mem::replace(r, Reader::bare(&[]));
    rest.end()?;
    Ok(ops)
}

fn write_dots(w: &mut Writer, dots: &[Dot]) {
    w.u64(dots.len() as u64);
    for (r, c) in dots {
        w.u64(r.0);
        w.u64(*c);
    }
}

fn read_dots(r: &mut Reader<'_>) -> Result<Vec<Dot>, DecodeError> {
    let n = r.usize(r.remaining())?;
    (0..n)
        .map(|_| Ok((ReplicaId(r.u64()?), r.u64()?)))
        .collect()
}
