//! The in-memory implementations: complete and concurrent, the embedded default.

mod queue;
mod repository;
mod vector;

pub use queue::MemoryQueue;
pub use repository::MemoryRepository;
pub use vector::MemoryVectorIndex;

/// Locks a std lock, recovering from poisoning (a panicking holder leaves the data as
/// it was at the panic, which every method here keeps consistent).
pub(crate) fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
