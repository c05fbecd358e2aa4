//! The Mesh binaries: thin `main`s that choose adapters and configuration and hand
//! everything else to `mesh-core`.
//!
//! - `mesh up` — the all-in-one: engine and agent hub on embedded defaults, on one
//!   port; `--demo` adds demo agents and a stream of demo tasks.
//!
//! This library holds what the binaries share: the demo fleet.

pub mod demo;
pub mod serve;
pub mod setup;
