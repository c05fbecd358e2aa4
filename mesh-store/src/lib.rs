//! # mesh-store
//!
//! Storage traits for Mesh (repositories, vector index, queue) with in-memory, PostgreSQL + pgvector and SQS implementations.
//!
//! Part of [Mesh](https://github.com/mesh-agents/mesh). This crate depends on no other
//! Mesh crate and is useful on its own.
//!
//! **Status:** scaffold. The traits and their in-memory, PostgreSQL and SQS implementations are planned; nothing is exported yet.
//!
//! ```
//! // The crate links; its API arrives with the work described above.
//! use mesh_store as _;
//! ```
