//! The Mesh binaries: thin `main`s that choose adapters and configuration and hand
//! everything else to `mesh-core`.
//!
//! - `mesh up` — the all-in-one: engine, agent hub, REST API, MCP server and worker on
//!   embedded defaults, on one port; `--demo` adds demo agents and a stream of demo
//!   tasks. `mesh openapi` prints the REST API's OpenAPI document.
//! - `rest-api`, `mcp-server`, `worker` — the three services, configured by flags and
//!   environment (`DATABASE_URL`, `MESH_SQS_QUEUE`, …; see `docs/services.md`).
//! - `llm-agent` — one built-in LLM agent in its own process, connected to a hub over
//!   the agent protocol (`docs/agents.md`).
//!
//! This library holds what the binaries share: configuration and set-up (`setup`),
//! `mesh up`'s data directory (`data_dir`),
//! serving HTTP (`serve`), the tools service's flags and file (`tools_file`), the LLM
//! agents' file (`agents_file`), the demo fleet (`demo`) and the allocator (`alloc`).

pub mod agents_file;
mod alloc;
pub mod cli;
pub mod data_dir;
pub mod demo;
pub mod serve;
pub mod setup;
pub mod tools_file;

pub use alloc::disable_transparent_huge_pages;
