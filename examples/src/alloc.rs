//! The binaries' allocator: mimalloc. The engine task allocates and frees task records
//! and messages that other threads free and allocate; glibc's allocator made that
//! over a quarter of the engine task's time (arena locks, consolidation), mimalloc's
//! per-thread heaps take most of that away (`docs/benchmarks.md`, issue 24). The library crates
//! leave the choice to whoever builds a binary.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
