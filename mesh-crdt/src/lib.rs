//! # mesh-crdt
//!
//! Convergent replicated data types for Mesh agents: counters, registers, sets, a text CRDT and a path-based state CRDT with delta sync.
//!
//! Part of [Mesh](https://github.com/mesh-agents/mesh). This crate depends on no other
//! Mesh crate and is useful on its own.
//!
//! **Status:** scaffold. Counters, registers, sets, the text CRDT and the state CRDT are planned; nothing is exported yet.
//!
//! ```
//! // The crate links; its API arrives with the work described above.
//! use mesh_crdt as _;
//! ```
