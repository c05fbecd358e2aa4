//! The binaries' allocator: mimalloc, with transparent huge pages off.
//!
//! The engine task allocates and frees task records and messages that other threads
//! free and allocate; glibc's allocator made that over a quarter of the engine task's
//! time (arena locks, consolidation), mimalloc's per-thread heaps take most of that
//! away (`docs/benchmarks.md`, issue 24). The library crates leave the choice to
//! whoever builds a binary.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` is
/// set (then mimalloc's own setting decides). Call it first thing in `main`.
///
/// mimalloc asks the kernel for huge pages on its memory (`madvise`), so the first
/// touch of each fresh 2 MiB region makes the kernel zero all of it, in whichever
/// thread allocated there — a stall of a fraction of a millisecond in the middle of a
/// request. On the hub under load that was 7–15 % of the engine task's time, and the
/// submit-to-complete p99 at 64 tasks in flight was 11 ms with huge pages, 3–4 ms
/// without (`docs/benchmarks.md`, issue 24). Latency-sensitive servers (Redis,
/// MongoDB, PostgreSQL's own advice) turn them off for the same reason.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Refused only by kernels older than 3.15: the process then runs as before.
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}
