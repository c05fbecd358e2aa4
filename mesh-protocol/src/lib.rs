//! # mesh-protocol
//!
//! The Mesh wire protocol, version 1: how agents and the mesh talk. Agent authors use
//! this crate alone; agents in other languages follow `docs/protocol.md` and check
//! themselves against its test vectors.
//!
//! - [`FrameCodec`]: the frame codec — a 12-byte big-endian header, gzip above a
//!   threshold, batches, hard limits — as pure buffer logic (tokio-util
//!   [`Decoder`](tokio_util::codec::Decoder)/[`Encoder`](tokio_util::codec::Encoder)).
//!   Plain payloads are handed out without copying; inflation is bounded; deflate state
//!   is reused.
//! - [`Message`]: the typed catalogue (`hello`, `task_assign`, …), the JSON-RPC envelope
//!   for MCP ([`JsonRpcMessage`]) and the extension range.
//! - [`Coalescer`]: packs many small outgoing frames into one batch frame.
//! - [`Error`]: typed errors, each with the stable `code` sent in `error` frames and the
//!   WebSocket close code, if the connection must close.
//! - `ws` (feature): the WebSocket server and client transport.
//!
//! | feature | what it adds |
//! |---|---|
//! | `ws` | [`ws`] module: server upgrade (hyper 1 + fastwebsockets), client with auth, keep-alive and reconnect backoff, bounded send queues |
//!
//! ## Quick start
//!
//! ```
//! use bytes::BytesMut;
//! use mesh_protocol::{FrameCodec, Heartbeat, Message};
//! use tokio_util::codec::Decoder;
//!
//! let mut codec = FrameCodec::new();
//! let mut wire = BytesMut::new();
//! Message::from(Heartbeat::new(Some(2), Some(0.5))).encode(&mut codec, &mut wire)?;
//! assert_eq!(&wire[..4], &[1, 0, 0, 3]); // version 1, no flags, type 0x0003
//!
//! let frame = codec.decode(&mut wire)?.expect("a whole frame");
//! match Message::from_frame(&frame)? {
//!     Message::Heartbeat(hb) => assert_eq!(hb.active_tasks, Some(2)),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), mesh_protocol::Error>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod codec;
mod doc;
mod error;
mod frame;
mod gzip;
mod jsonrpc;
mod message;
mod task_error;
#[cfg(feature = "ws")]
pub mod ws;

pub use batch::{BatchConfig, Coalescer};
pub use codec::{FrameCodec, FrameCodecBuilder, Limits};
pub use doc::{DocClose, DocKind, DocOpen, DocSync, DocUpdate, base64_bytes};
pub use error::Error;
pub use frame::{Frame, HEADER_LEN, MessageType, VERSION, flags};
pub use jsonrpc::{JsonRpcError, JsonRpcMessage, RequestId};
pub use message::{
    ErrorMessage, Extension, Goodbye, Heartbeat, Hello, Message, TaskAccept, TaskAssign,
    TaskCancel, TaskComplete, TaskFail, TaskProgress, TaskReject, TaskStatus, TaskSubmit,
    TaskSubmitted, TaskUpdate, Welcome,
};
pub use task_error::TaskError;
