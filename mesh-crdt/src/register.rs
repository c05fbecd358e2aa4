//! Registers: last-writer-wins and multi-value.

use crate::encoding::{Atom, DecodeError, Reader, Writer, tag};
use crate::{Hlc, ReplicaId, VectorClock};

/// Holds one value; a write with a later hybrid-logical-clock timestamp wins, ties
/// broken by replica id (inside [`Hlc`]'s order).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LwwRegister<T> {
    value: Option<T>,
    stamp: Hlc,
}

impl<T> Default for LwwRegister<T> {
    fn default() -> Self {
        Self {
            value: None,
            stamp: Hlc::default(),
        }
    }
}

impl<T: Atom> LwwRegister<T> {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` at `stamp`; ignored if a later write is already held.
    pub fn set(&mut self, value: T, stamp: Hlc) {
        if self.value.is_none() || stamp > self.stamp {
            self.value = Some(value);
            self.stamp = stamp;
        }
    }

    /// The value, if any was written.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// When the held value was written.
    pub fn stamp(&self) -> Hlc {
        self.stamp
    }

    /// Joins `other` in.
    pub fn merge(&mut self, other: &LwwRegister<T>) {
        if let Some(v) = &other.value {
            self.set(v.clone(), other.stamp);
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.stamp.wall_ms);
        w.u64(u64::from(self.stamp.counter));
        w.u64(self.stamp.replica.0);
        match &self.value {
            Some(v) => {
                w.u64(1);
                v.write(w);
            }
            None => w.u64(0),
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let stamp = Hlc {
            wall_ms: r.u64()?,
            counter: r.u32()?,
            replica: ReplicaId(r.u64()?),
        };
        let value = if r.u64()? == 1 {
            Some(T::read(r)?)
        } else {
            None
        };
        Ok(Self { value, stamp })
    }

    /// The compact binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::LWW_REGISTER);
        self.write(&mut w);
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::LWW_REGISTER)?;
        let v = Self::read(&mut r)?;
        r.end()?;
        Ok(v)
    }
}

/// Keeps every concurrently written value: a write replaces the values it has seen;
/// writes that did not see each other all stay until one that saw them replaces them.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MvRegister<T> {
    values: Vec<(T, VectorClock)>,
}

impl<T> Default for MvRegister<T> {
    fn default() -> Self {
        Self { values: Vec::new() }
    }
}

impl<T: Atom> MvRegister<T> {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current values (several when writes were concurrent).
    pub fn values(&self) -> Vec<&T> {
        self.values.iter().map(|(v, _)| v).collect()
    }

    /// Writes `value` on `replica`, replacing every value this replica has seen.
    pub fn set(&mut self, replica: ReplicaId, value: T) {
        let mut clock = VectorClock::new();
        for (_, c) in &self.values {
            clock.merge(c);
        }
        clock.increment(replica);
        self.values = vec![(value, clock)];
    }

    /// Joins `other` in: keeps the values no other value's clock dominates.
    pub fn merge(&mut self, other: &MvRegister<T>) {
        let all: Vec<(T, VectorClock)> = self.values.iter().chain(&other.values).cloned().collect();
        let mut keep: Vec<(T, VectorClock)> = Vec::new();
        for (v, c) in &all {
            let dominated = all.iter().any(|(_, d)| c.happens_before(d));
            if !dominated && !keep.iter().any(|(_, k)| k == c) {
                keep.push((v.clone(), c.clone()));
            }
        }
        // A canonical order, so merged replicas compare equal.
        keep.sort_by(|a, b| a.1.iter().cmp(b.1.iter()));
        self.values = keep;
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.values.len() as u64);
        for (v, c) in &self.values {
            v.write(w);
            c.write(w);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.usize(r.remaining())?;
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            let v = T::read(r)?;
            values.push((v, VectorClock::read(r)?));
        }
        Ok(Self { values })
    }

    /// The compact binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::MV_REGISTER);
        self.write(&mut w);
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::MV_REGISTER)?;
        let v = Self::read(&mut r)?;
        r.end()?;
        Ok(v)
    }
}
