//! An observed-remove set with add-wins semantics.

use std::collections::{BTreeMap, BTreeSet};

use crate::encoding::{Atom, DecodeError, Reader, Writer, tag};
use crate::{ReplicaId, VectorClock};

/// A unique add event: the replica and its event count.
pub type Dot = (ReplicaId, u64);

/// An observed-remove set: each add is tagged with a fresh dot; a remove deletes the
/// dots it has seen. A concurrent add (a dot the remover had not seen) survives — add
/// wins — while a removed element never comes back from a stale replica, because the
/// causal context (a version vector) records every dot ever seen. The state holds only
/// live dots and one counter per replica, so it does not grow with add/remove cycles.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrSet<T: Ord> {
    entries: BTreeMap<T, BTreeSet<Dot>>,
    context: VectorClock,
}

impl<T: Ord> Default for OrSet<T> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            context: VectorClock::new(),
        }
    }
}

impl<T: Ord + Atom> OrSet<T> {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` on `replica` (replacing the dots it had: they are observed).
    pub fn add(&mut self, replica: ReplicaId, value: T) {
        let dot = (replica, self.context.increment(replica));
        self.entries.insert(value, BTreeSet::from([dot]));
    }

    /// Removes `value` (the adds this replica has observed); returns the dots removed.
    pub fn remove(&mut self, value: &T) -> Vec<Dot> {
        self.entries
            .remove(value)
            .map(|d| d.into_iter().collect())
            .unwrap_or_default()
    }

    /// Applies a remote add of `value` with `dot`, which replaced the dots in `observed`.
    pub(crate) fn apply_add(&mut self, value: T, dot: Dot, observed: &[Dot]) {
        if dot.1 <= self.context.get(dot.0)
            && !self.entries.get(&value).is_some_and(|d| d.contains(&dot))
        {
            return; // seen and since removed
        }
        let dots = self.entries.entry(value).or_default();
        for d in observed {
            dots.remove(d);
        }
        dots.insert(dot);
        self.context.observe(dot.0, dot.1);
    }

    /// Applies a remote remove of the dots in `observed` from `value`.
    pub(crate) fn apply_remove(&mut self, value: &T, observed: &[Dot]) {
        if let Some(dots) = self.entries.get_mut(value) {
            for d in observed {
                dots.remove(d);
            }
            if dots.is_empty() {
                self.entries.remove(value);
            }
        }
        for d in observed {
            self.context.observe(d.0, d.1);
        }
    }

    /// The dots `value` holds now.
    pub(crate) fn dots(&self, value: &T) -> Vec<Dot> {
        self.entries
            .get(value)
            .map(|d| d.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The dot `replica`'s next add will carry (recorded when the add is applied).
    pub(crate) fn next_dot(&self, replica: ReplicaId) -> Dot {
        (replica, self.context.get(replica).saturating_add(1))
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: &T) -> bool {
        self.entries.contains_key(value)
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.keys()
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The causal context: every dot this replica has seen.
    pub fn context(&self) -> &VectorClock {
        &self.context
    }

    /// Joins `other` in: a dot survives if both sides hold it, or one side holds it and
    /// the other has not seen it.
    pub fn merge(&mut self, other: &OrSet<T>) {
        let keys: BTreeSet<T> = self
            .entries
            .keys()
            .chain(other.entries.keys())
            .cloned()
            .collect();
        let empty = BTreeSet::new();
        for key in keys {
            let mine = self.entries.get(&key).unwrap_or(&empty);
            let theirs = other.entries.get(&key).unwrap_or(&empty);
            let kept: BTreeSet<Dot> = mine
                .iter()
                .filter(|d| theirs.contains(d) || d.1 > other.context.get(d.0))
                .chain(theirs.iter().filter(|d| d.1 > self.context.get(d.0)))
                .copied()
                .collect();
            if kept.is_empty() {
                self.entries.remove(&key);
            } else {
                self.entries.insert(key, kept);
            }
        }
        self.context.merge(&other.context);
    }

    /// What a peer that has seen `since` needs to catch up. Removals are learned from
    /// absence, so the delta carries the live entries (their elements and dots) and the
    /// context; it is empty when the peer has seen everything.
    pub fn delta(&self, since: &VectorClock) -> OrSet<T> {
        if self.context.le(since) {
            return OrSet::new();
        }
        self.clone()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.context.write(w);
        w.u64(self.entries.len() as u64);
        for (v, dots) in &self.entries {
            v.write(w);
            w.u64(dots.len() as u64);
            for (r, c) in dots {
                w.u64(r.0);
                w.u64(*c);
            }
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let context = VectorClock::read(r)?;
        let n = r.usize(r.remaining())?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let v = T::read(r)?;
            let k = r.usize(r.remaining())?;
            let mut dots = BTreeSet::new();
            for _ in 0..k {
                let replica = ReplicaId(r.u64()?);
                dots.insert((replica, r.u64()?));
            }
            entries.insert(v, dots);
        }
        Ok(Self { entries, context })
    }

    /// The compact binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::OR_SET);
        self.write(&mut w);
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::OR_SET)?;
        let v = Self::read(&mut r)?;
        r.end()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_element_does_not_come_back_from_a_stale_replica() {
        let (a, b) = (ReplicaId(1), ReplicaId(2));
        let mut x = OrSet::new();
        x.add(a, "k".to_string());
        let stale = x.clone();
        x.remove(&"k".to_string());
        x.merge(&stale);
        assert!(!x.contains(&"k".to_string()));
        // A concurrent add wins over the remove.
        let mut y = stale.clone();
        y.add(b, "k".to_string());
        x.merge(&y);
        assert!(x.contains(&"k".to_string()));
    }

    #[test]
    fn add_remove_cycles_do_not_grow_the_state() {
        let a = ReplicaId(1);
        let mut s = OrSet::new();
        for _ in 0..1000 {
            s.add(a, 7i64);
            s.remove(&7);
        }
        s.add(a, 7);
        assert_eq!(
            s.encode().len(),
            OrSet::<i64>::decode(&s.encode()).unwrap().encode().len()
        );
        assert!(s.encode().len() < 32, "{} bytes", s.encode().len());
    }
}
