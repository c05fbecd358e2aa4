//! # mesh-protocol
//!
//! The Mesh wire protocol: binary frame codec (12-byte header, gzip, batches, limits), typed messages and WebSocket transport.
//!
//! Part of [Mesh](https://github.com/mesh-agents/mesh). This crate depends on no other
//! Mesh crate and is useful on its own.
//!
//! **Status:** scaffold. The frame codec, message catalogue and transport are the next piece of work (see docs/protocol.md when it lands).
//!
//! ```
//! // The crate links; its API arrives with the work described above.
//! use mesh_protocol as _;
//! ```
