//! Criterion benchmarks for the Mesh crates.
//!
//! Each benchmark lives under `benches/` of this package with `harness = false`; run them
//! with `cargo bench -p mesh-benches` and record the figures, targets and the exact command
//! in `docs/benchmarks.md`. Peer crates compared against are dev-dependencies of this
//! package only, so they never reach a published Mesh crate.
