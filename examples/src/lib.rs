//! The Mesh binaries: thin `main`s that choose adapters and configuration and hand
//! everything else to `mesh-core`.
//!
//! Planned: `mesh` (all-in-one, embedded defaults), `mcp-server`, `rest-api`, `worker`.
//! None is built yet; this package holds their shared start-up code as it lands.
