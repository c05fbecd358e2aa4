//! Capability names interned to small integers.

use std::collections::HashMap;

/// An interned capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(pub(crate) u32);

impl Capability {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// Maps capability names to [`Capability`] ids; ids are dense and never reused.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<Box<str>, Capability>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub(crate) fn intern(&mut self, name: &str) -> Capability {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = Capability(self.names.len() as u32);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub(crate) fn get(&self, name: &str) -> Option<Capability> {
        self.ids.get(name).copied()
    }

    pub(crate) fn name(&self, id: Capability) -> &str {
        &self.names[id.index()]
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}
