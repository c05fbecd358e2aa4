//! # mesh-embed
//!
//! Text embeddings for Mesh: the Embedder trait, an offline default, AWS Bedrock clients, batching, caching, failover and cost accounting.
//!
//! Part of [Mesh](https://github.com/mesh-agents/mesh). This crate depends on no other
//! Mesh crate and is useful on its own.
//!
//! **Status:** scaffold. The `Embedder` trait, the offline embedder and the Bedrock clients are planned; nothing is exported yet.
//!
//! ```
//! // The crate links; its API arrives with the work described above.
//! use mesh_embed as _;
//! ```
