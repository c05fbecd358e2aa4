//! # mesh-router
//!
//! Routing strategies for Mesh: a live candidate index, round-robin, least-loaded, capability, cost, performance and learning routers, circuit breakers and rate limits.
//!
//! Part of [Mesh](https://github.com/mesh-agents/mesh). This crate depends on no other
//! Mesh crate and is useful on its own.
//!
//! **Status:** scaffold. The candidate index, the `Router` trait and its strategies are planned; nothing is exported yet.
//!
//! ```
//! // The crate links; its API arrives with the work described above.
//! use mesh_router as _;
//! ```
