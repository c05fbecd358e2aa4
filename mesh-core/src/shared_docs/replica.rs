//! One replica of a shared document, text or state, behind one interface.

use mesh_crdt::{
    DecodeError, Leaf, ReplicaId, StateCrdt, StateOp, StateValue, TextDoc, TextOp, VectorClock,
};
use serde_json::{Map, Value};

use crate::domain::DocKind;

/// A text or state CRDT.
#[derive(Debug, Clone)]
pub(crate) enum Replica {
    Text(TextDoc),
    State(StateCrdt),
}

/// An update, decoded and checked, not yet applied.
#[derive(Debug)]
pub(crate) enum Decoded {
    Text(Vec<TextOp>),
    State(Vec<StateOp>),
}

impl Decoded {
    /// How much the update can add: characters inserted (text), paths written (state).
    pub(crate) fn growth(&self) -> usize {
        match self {
            Self::Text(ops) => ops
                .iter()
                .map(|op| match op {
                    TextOp::Insert { text, .. } => text.chars().count(),
                    _ => 0,
                })
                .sum(),
            Self::State(ops) => ops.len(),
        }
    }
}

impl Replica {
    /// The state `snapshot` holds (empty bytes: an empty document), edited as `replica`.
    pub(crate) fn decode(
        kind: DocKind,
        snapshot: &[u8],
        replica: ReplicaId,
    ) -> Result<Self, DecodeError> {
        Ok(match (kind, snapshot.is_empty()) {
            (DocKind::State, true) => Self::State(StateCrdt::new(replica)),
            (DocKind::State, false) => Self::State(StateCrdt::decode(snapshot, replica)?),
            (_, true) => Self::Text(TextDoc::new(replica)),
            (_, false) => Self::Text(TextDoc::decode(snapshot, replica)?),
        })
    }

    pub(crate) fn kind(&self) -> DocKind {
        match self {
            Self::Text(_) => DocKind::Text,
            Self::State(_) => DocKind::State,
        }
    }

    /// The whole state, encoded (compressed for text).
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Self::Text(doc) => doc.encode(),
            Self::State(doc) => doc.encode(),
        }
    }

    pub(crate) fn version(&self) -> VectorClock {
        match self {
            Self::Text(doc) => doc.version(),
            Self::State(doc) => doc.version().clone(),
        }
    }

    /// What a replica at `since` lacks, as an update.
    pub(crate) fn update_since(&self, since: &VectorClock) -> Vec<u8> {
        match self {
            Self::Text(doc) => doc.update_since(since),
            Self::State(doc) => doc.update_since(since),
        }
    }

    /// Decodes an update of this document's kind; a malformed one (or one of the other
    /// kind) is an error.
    pub(crate) fn decode_update(&self, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        Ok(match self {
            Self::Text(_) => Decoded::Text(TextOp::decode_all(bytes)?),
            Self::State(_) => Decoded::State(StateOp::decode_all(bytes)?),
        })
    }

    /// Whether every operation of `update` applies at once to a replica at `version`
    /// (none would wait for one it lacks); when so, `version` moves past them.
    pub(crate) fn applies_at(update: &Decoded, version: &mut VectorClock) -> bool {
        match update {
            Decoded::Text(ops) => ops.iter().all(|op| op.applies_at(version)),
            Decoded::State(ops) => ops.iter().all(|op| op.applies_at(version)),
        }
    }

    /// Applies a decoded update (operations already applied change nothing).
    pub(crate) fn apply(&mut self, update: Decoded) {
        match (self, update) {
            (Self::Text(doc), Decoded::Text(ops)) => ops.into_iter().for_each(|op| doc.apply(op)),
            (Self::State(doc), Decoded::State(ops)) => ops.into_iter().for_each(|op| doc.apply(op)),
            // `decode_update` decodes by this replica's kind.
            _ => {}
        }
    }

    /// Merges another replica's whole state (of the same kind).
    pub(crate) fn merge(&mut self, other: &Replica) {
        match (self, other) {
            (Self::Text(doc), Self::Text(other)) => doc.merge(other),
            (Self::State(doc), Self::State(other)) => doc.merge(other),
            _ => {}
        }
    }

    /// How big it is, in the unit [`Decoded::growth`] counts: characters (text), paths
    /// (state).
    pub(crate) fn size(&self) -> usize {
        match self {
            Self::Text(doc) => doc.len(),
            Self::State(doc) => doc.paths("").count(),
        }
    }

    /// The content as people read it: the text as a string; the state as
    /// [`state_content`] shows it.
    pub(crate) fn content(&self) -> Value {
        match self {
            Self::Text(doc) => Value::String(doc.text()),
            Self::State(doc) => state_content(doc),
        }
    }

    pub(crate) fn text_mut(&mut self) -> Option<&mut TextDoc> {
        match self {
            Self::Text(doc) => Some(doc),
            Self::State(_) => None,
        }
    }

    pub(crate) fn state_mut(&mut self) -> Option<&mut StateCrdt> {
        match self {
            Self::State(doc) => Some(doc),
            Self::Text(_) => None,
        }
    }
}

/// A state document's content as people read it: an object from each path to its
/// value — a register's scalar, a counter's integer, a set's sorted strings. What REST
/// and MCP show; a client holding a replica computes the same.
pub fn state_content(doc: &StateCrdt) -> Value {
    let mut out = Map::new();
    for path in doc.paths("") {
        let value = match doc.get(path) {
            Some(Leaf::Register(_)) => doc.value(path).map_or(Value::Null, scalar),
            Some(Leaf::Counter(_)) => Value::from(doc.counter(path)),
            Some(Leaf::Set(_)) => {
                let mut elements = doc.set(path);
                elements.sort_unstable();
                Value::from(elements)
            }
            _ => Value::Null,
        };
        out.insert(path.to_owned(), value);
    }
    Value::Object(out)
}

fn scalar(value: &StateValue) -> Value {
    match value {
        StateValue::Bool(b) => Value::Bool(*b),
        StateValue::Int(i) => Value::from(*i),
        StateValue::Float(f) => Value::from(*f),
        StateValue::Str(s) => Value::String(s.clone()),
        _ => Value::Null,
    }
}
