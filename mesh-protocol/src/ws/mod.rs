//! WebSocket transport (feature `ws`): one mesh frame per binary message, JSON-RPC in
//! text messages, on fastwebsockets over hyper 1 and tokio.
//!
//! - [`upgrade`] turns a hyper request into a [`Connection`], negotiating the `mesh.v1`
//!   / `mcp` subprotocol; [`credential`] reads the API key the protocol allows at upgrade.
//! - [`connect`] dials a server with an API key, retrying with exponential backoff and
//!   jitter ([`Backoff`]).
//! - A [`Connection`] answers malformed input itself (an `error` frame with the stable
//!   code, and the close code 1002/1007/1009 where the stream can no longer be trusted),
//!   pings to keep the link alive, times out a silent peer, and writes through a bounded
//!   queue: a peer that does not read is closed with 1008 instead of growing memory.
//! - [`run_agent`] is a small agent runtime on top: register, heartbeat, run tasks
//!   through a handler, delegate sub-tasks, reconnect; a task opens shared documents
//!   with [`AgentContext::open_doc`] ([`OpenDoc`], [`DocEvent`]).

mod agent;
mod backoff;
mod client;
mod connection;
mod docs;
mod server;

pub use agent::{AgentContext, TaskError, TaskFuture, run_agent};
pub use backoff::Backoff;
pub use client::{ClientConfig, connect, connect_once};
pub use connection::{Connection, ConnectionConfig, Incoming, Sender};
pub use docs::{DOC_EVENT_BUFFER, DocEvent, OpenDoc};
pub use fastwebsockets::Role;
pub use server::{Subprotocol, Upgrade, credential, upgrade};
