//! # mesh-core
//!
//! The engine of [Mesh](https://github.com/mesh-agents/mesh), an SDK for orchestrating
//! AI agents, and the services around it. This crate joins the leaf crates (protocol,
//! router, store, embed, crdt) and is what a Rust service embeds; it re-exports them
//! ([`protocol`], [`router`], [`store`], [`embed`], [`crdt`]) so that one dependency
//! suffices.
//!
//! The module tree is the architecture, in layers; each only uses the ones below it:
//!
//! 1. [`domain`] — ids, agents, tasks, task specs, principals; no I/O. [`trace`] — the
//!    W3C trace context carried across processes.
//! 2. [`engine`] — the single-owner engine (registry, routing, lifecycle, timers,
//!    keys, clustering), with [`collab`] patterns on top; [`services`] bundle it with
//!    the vector index, embedder, job queue and [`tools`]; [`knowledge`] indexes and
//!    searches documents; the [`worker`] drains the job queue; [`agents`] runs LLM
//!    agents (a chat model, tools, limits) as agents of the engine.
//! 3. `http` — what every HTTP surface shares: state, the one credential gate, the
//!    error type, extractors.
//! 4. Surfaces, siblings over `http`: the agent `hub`, `rest`, `mcp`.
//! 5. `app` — one router that mounts the chosen surfaces.
//!
//! With `default-features = false` only layers 1–2 are built: no HTTP at all.
//!
//! ## Features
//!
//! | feature | what it adds | heavy dependencies |
//! |---|---|---|
//! | `hub` (default) | `hub`: the agent hub at `/ws` (mesh.v1 WebSocket protocol) | hyper, fastwebsockets, axum |
//! | `http` | `http` and `app`: state, credential gate, errors, composition | axum, tower-http |
//! | `rest` | `rest`: the REST API under `/api/v1` with its OpenAPI 3.1 document | utoipa |
//! | `mcp` | `mcp`: the MCP server (Streamable HTTP at `/mcp`, WebSocket at `/ws`) | rmcp, schemars |
//! | `ui` | `ui`: the dashboard at `/ui` (static files compiled in; needs `rest`) | flate2 |
//! | `metrics` | Prometheus metrics at `/metrics` (`http::metrics`) | metrics-exporter-prometheus |
//! | `github` | the GitHub tool adapter | reqwest |
//! | `otel` | OpenTelemetry context for Mesh's spans: [`trace`] reads and writes W3C `traceparent` | opentelemetry (API), tracing-opentelemetry |
//! | `postgres` | `PgStores` and clustering over LISTEN/NOTIFY | sqlx |
//! | `sqlite` | `SqliteStores`: the engine durable in one file, nothing to install | sqlx, SQLite (bundled) |
//! | `server` | `hub` + `rest` + `mcp` + `ui` + `metrics` + `github` + `otel`, what the binaries use | |
//! | `testing` | `testing`: helpers for tests, benches and examples | |
//!
//! ## Quick start
//!
//! An engine on embedded defaults, an agent running in this process, one task:
//!
//! ```
//! use mesh_core::protocol::Hello;
//! use mesh_core::{Engine, TaskSpec, TaskStatus, TenantId};
//!
//! # async fn run() -> Result<(), mesh_core::EngineError> {
//! let engine = Engine::in_memory().await;
//! let tenant = TenantId::new();
//! let _agent = engine
//!     .connect_local(tenant, Hello::new("echo", ["echo"]), |task| async move {
//!         Ok(task.input)
//!     })
//!     .await?;
//! let task = engine.submit(tenant, TaskSpec::new("echo", "hi".into())).await?;
//! let done = engine.wait(tenant, task.id).await?;
//! assert_eq!(done.status(), TaskStatus::Completed);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod access;
pub mod agents;
#[cfg(feature = "http")]
pub mod app;
#[cfg(feature = "postgres")]
pub mod cluster;
pub mod collab;
pub mod domain;
pub mod engine;
pub mod health;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "hub")]
pub mod hub;
pub mod knowledge;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod observe;
#[cfg(feature = "rest")]
pub mod rest;
pub mod services;
pub mod shared_docs;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tools;
pub mod trace;
#[cfg(feature = "ui")]
pub mod ui;
pub mod worker;
pub mod workflow;

pub use mesh_crdt as crdt;
pub use mesh_embed as embed;
pub use mesh_protocol as protocol;
pub use mesh_router as router;
pub use mesh_store as store;

pub use domain::{
    Agent, AgentId, AgentStatus, ApiKey, Error, IndexedDocument, ParseIdError, Principal, Priority,
    RoutingPreference, Scope, SessionId, Task, TaskId, TaskSpec, TaskStatus, Tenant, TenantId,
    WorkflowId, generate_key, hash_key,
};
#[cfg(feature = "postgres")]
pub use engine::PgStores;
#[cfg(feature = "sqlite")]
pub use engine::SqliteStores;
pub use engine::{
    AgentFilter, AgentLink, Change, Engine, EngineConfig, EngineError, Event, LocalAgent,
    MAX_SHARDS, MAX_WRITES_IN_FLIGHT, MemoryStores, Page, RouterFactory, Stores, TaskFilter,
    WallClock,
};
