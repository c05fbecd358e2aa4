//! Replica ids, version vectors and hybrid logical clocks.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::encoding::{DecodeError, Reader, Writer, tag};

/// Identifies a replica (a process, an agent). Any stable, unique `u64` will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReplicaId(pub u64);

/// A version vector: for each replica, how many of its events are known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VectorClock {
    entries: BTreeMap<ReplicaId, u64>,
}

impl VectorClock {
    /// An empty clock (knows nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// The count known for `replica`.
    pub fn get(&self, replica: ReplicaId) -> u64 {
        self.entries.get(&replica).copied().unwrap_or(0)
    }

    /// Records one more event of `replica`; returns its new count.
    pub fn increment(&mut self, replica: ReplicaId) -> u64 {
        let c = self.entries.entry(replica).or_insert(0);
        // Only a peer claiming 2^64 events of `replica` gets here; never panic on it.
        *c = c.saturating_add(1);
        *c
    }

    /// Raises `replica`'s count to at least `count`.
    pub fn observe(&mut self, replica: ReplicaId, count: u64) {
        let c = self.entries.entry(replica).or_insert(0);
        *c = (*c).max(count);
    }

    /// The pointwise maximum with `other`.
    pub fn merge(&mut self, other: &VectorClock) {
        for (&r, &c) in &other.entries {
            self.observe(r, c);
        }
    }

    /// Whether every count here is at most `other`'s.
    pub fn le(&self, other: &VectorClock) -> bool {
        self.entries.iter().all(|(&r, &c)| c <= other.get(r))
    }

    /// Whether `self` happened strictly before `other`.
    pub fn happens_before(&self, other: &VectorClock) -> bool {
        self.le(other) && self != other
    }

    /// Whether neither happened before the other.
    pub fn concurrent(&self, other: &VectorClock) -> bool {
        !self.le(other) && !other.le(self)
    }

    /// `Some(order)` when the clocks are ordered, `None` when concurrent.
    pub fn compare(&self, other: &VectorClock) -> Option<Ordering> {
        match (self.le(other), other.le(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }

    /// The replicas and their counts.
    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.entries.iter().map(|(&r, &c)| (r, c))
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.entries.len() as u64);
        for (r, c) in &self.entries {
            w.u64(r.0);
            w.u64(*c);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.usize(r.remaining())?;
        let mut clock = Self::new();
        for _ in 0..n {
            let replica = ReplicaId(r.u64()?);
            clock.observe(replica, r.u64()?);
        }
        Ok(clock)
    }

    /// The compact binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::VECTOR_CLOCK);
        self.write(&mut w);
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::VECTOR_CLOCK)?;
        let clock = Self::read(&mut r)?;
        r.end()?;
        Ok(clock)
    }
}

/// A hybrid logical clock timestamp: wall time in milliseconds, a counter for events
/// within one millisecond, and the replica as the final tie-break — a total order that
/// respects causality and stays close to wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (or any fixed origin).
    pub wall_ms: u64,
    /// Events within the same millisecond.
    pub counter: u32,
    /// The replica that made it.
    pub replica: ReplicaId,
}

/// Issues [`Hlc`] timestamps for one replica. The caller passes physical time in, so
/// tests are deterministic.
#[derive(Debug, Clone)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    /// A clock for `replica`.
    pub fn new(replica: ReplicaId) -> Self {
        Self {
            last: Hlc {
                wall_ms: 0,
                counter: 0,
                replica,
            },
        }
    }

    /// A timestamp for a local event at physical time `now_ms`; always greater than
    /// every timestamp issued or observed before.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        if now_ms > self.last.wall_ms {
            self.last.wall_ms = now_ms;
            self.last.counter = 0;
        } else if let Some(next) = self.last.counter.checked_add(1) {
            self.last.counter = next;
        } else {
            // The logical counter is spent (a peer's timestamp can put it there): move
            // on to the next millisecond, still after everything seen.
            self.last.wall_ms = self.last.wall_ms.saturating_add(1);
            self.last.counter = 0;
        }
        self.last
    }

    /// Takes a remote timestamp into account, so later local ones order after it.
    pub fn observe(&mut self, remote: Hlc) {
        if (remote.wall_ms, remote.counter) > (self.last.wall_ms, self.last.counter) {
            self.last.wall_ms = remote.wall_ms;
            self.last.counter = remote.counter;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_order_and_detect_concurrency() {
        let (a, b) = (ReplicaId(1), ReplicaId(2));
        let mut x = VectorClock::new();
        x.increment(a);
        let mut y = x.clone();
        y.increment(b);
        assert!(x.happens_before(&y));
        assert_eq!(x.compare(&y), Some(Ordering::Less));
        x.increment(a);
        assert!(x.concurrent(&y));
        assert_eq!(x.compare(&y), None);
        let mut m = x.clone();
        m.merge(&y);
        assert!(x.le(&m) && y.le(&m));
        assert_eq!(VectorClock::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn hlc_stays_monotonic_and_follows_remote_time() {
        let mut c = HlcClock::new(ReplicaId(1));
        let t1 = c.tick(100);
        let t2 = c.tick(100);
        let t3 = c.tick(50); // the wall clock went backwards
        assert!(t1 < t2 && t2 < t3);
        c.observe(Hlc {
            wall_ms: 500,
            counter: 3,
            replica: ReplicaId(9),
        });
        let t4 = c.tick(200);
        assert_eq!((t4.wall_ms, t4.counter), (500, 4));
    }
}
