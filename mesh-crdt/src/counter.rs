//! Grow-only and positive-negative counters.

use std::collections::BTreeMap;

use crate::encoding::{DecodeError, Reader, Writer, tag};
use crate::{ReplicaId, VectorClock};

/// A counter that only goes up: each replica counts its own increments; the value is
/// the sum, and merging takes each replica's maximum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GCounter {
    counts: BTreeMap<ReplicaId, u64>,
}

impl GCounter {
    /// Zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` on behalf of `replica`.
    pub fn increment(&mut self, replica: ReplicaId, n: u64) {
        if n == 0 {
            return; // no entry for nothing, so equal values have equal states
        }
        let c = self.counts.entry(replica).or_insert(0);
        *c = c.saturating_add(n);
    }

    /// The total.
    pub fn value(&self) -> u64 {
        self.counts.values().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Joins `other` in (commutative, associative, idempotent).
    pub fn merge(&mut self, other: &GCounter) {
        for (&r, &c) in other.counts.iter().filter(|(_, c)| **c > 0) {
            let mine = self.counts.entry(r).or_insert(0);
            *mine = (*mine).max(c);
        }
    }

    /// What a peer that has seen `since` is missing.
    pub fn delta(&self, since: &VectorClock) -> GCounter {
        GCounter {
            counts: self
                .counts
                .iter()
                .filter(|(r, c)| **c > since.get(**r))
                .map(|(r, c)| (*r, *c))
                .collect(),
        }
    }

    /// The version vector of this counter (each replica's count).
    pub fn version(&self) -> VectorClock {
        let mut v = VectorClock::new();
        for (&r, &c) in &self.counts {
            v.observe(r, c);
        }
        v
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.counts.len() as u64);
        for (r, c) in &self.counts {
            w.u64(r.0);
            w.u64(*c);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.usize(r.remaining())?;
        let mut g = Self::new();
        for _ in 0..n {
            let replica = ReplicaId(r.u64()?);
            g.counts.insert(replica, r.u64()?);
        }
        Ok(g)
    }

    /// The compact binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::G_COUNTER);
        self.write(&mut w);
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::G_COUNTER)?;
        let g = Self::read(&mut r)?;
        r.end()?;
        Ok(g)
    }
}

/// A counter that goes up and down: two grow-only counters, increments and decrements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PNCounter {
    up: GCounter,
    down: GCounter,
}

impl PNCounter {
    /// Zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` (negative subtracts) on behalf of `replica`.
    pub fn add(&mut self, replica: ReplicaId, n: i64) {
        if n >= 0 {
            self.up.increment(replica, n as u64);
        } else {
            self.down.increment(replica, n.unsigned_abs());
        }
    }

    /// The value.
    pub fn value(&self) -> i64 {
        (i128::from(self.up.value()) - i128::from(self.down.value()))
            .clamp(i64::MIN.into(), i64::MAX.into()) as i64
    }

    /// Joins `other` in.
    pub fn merge(&mut self, other: &PNCounter) {
        self.up.merge(&other.up);
        self.down.merge(&other.down);
    }

    /// What a peer that has seen the given versions is missing.
    pub fn delta(&self, since_up: &VectorClock, since_down: &VectorClock) -> PNCounter {
        PNCounter {
            up: self.up.delta(since_up),
            down: self.down.delta(since_down),
        }
    }

    /// The versions of the increments and of the decrements.
    pub fn version(&self) -> (VectorClock, VectorClock) {
        (self.up.version(), self.down.version())
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.up.write(w);
        self.down.write(w);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            up: GCounter::read(r)?,
            down: GCounter::read(r)?,
        })
    }

    /// The compact binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::PN_COUNTER);
        self.write(&mut w);
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::PN_COUNTER)?;
        let c = Self::read(&mut r)?;
        r.end()?;
        Ok(c)
    }
}
