//! [`Shared`]: a value the engine task owns and its writes read. Handing it to a write
//! costs an `Arc` clone on the engine task (the write task makes the copy the store
//! takes); changing it copies it only while a write still holds the old one.
//! A leaf: it imports nothing from the engine task's concern files.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// Copy-on-write ownership: reads deref, writes go through [`Arc::make_mut`].
pub(super) struct Shared<T>(Arc<T>);

impl<T: Clone> Shared<T> {
    pub(super) fn new(value: T) -> Self {
        Self(Arc::new(value))
    }

    /// A handle for a write to read: no copy.
    pub(super) fn share(&self) -> Arc<T> {
        self.0.clone()
    }

    /// The value, copied only if a write still holds it.
    pub(super) fn into_inner(self) -> T {
        Arc::unwrap_or_clone(self.0)
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_while_shared_leaves_the_shared_copy_alone() {
        let mut value = Shared::new(vec![1]);
        let held = value.share();
        value.push(2);
        assert_eq!(*held, vec![1]);
        assert_eq!(*value, vec![1, 2]);
        drop(held);
        let before = value.as_ptr();
        value.push(3);
        assert_eq!(value.as_ptr(), before, "unshared, it changes in place");
        assert_eq!(value.into_inner(), vec![1, 2, 3]);
    }
}
