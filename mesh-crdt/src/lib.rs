//! # mesh-crdt
//!
//! Conflict-free replicated data types for [Mesh](https://github.com/mesh-agents/mesh):
//! agents edit shared documents and shared state while apart, and every replica that
//! has seen the same updates holds the same value — no coordination, no lost update.
//!
//! - [`VectorClock`], [`Hlc`] / [`HlcClock`]: version vectors and hybrid logical clocks.
//! - [`GCounter`], [`PNCounter`]: counters.
//! - [`LwwRegister`] (last writer wins by HLC, replica id breaking ties) and
//!   [`MvRegister`] (keeps concurrent values).
//! - [`OrSet`]: observed-remove set, add wins; removed elements never come back and the
//!   state does not grow with add/remove cycles.
//! - [`TextDoc`]: a sequence CRDT for text (YATA family, run-length encoded; no
//!   interleaving of concurrent insertions) — see its module docs for the choice.
//! - [`StateCrdt`]: a JSON-like tree addressed by paths, with register, counter and set
//!   leaves; operations carry ids, so applying one twice changes nothing.
//!
//! Every type merges whole states, produces the delta a peer is missing from that
//! peer's version vector, and has a compact versioned binary encoding
//! (`docs/crdt-encoding.md`). Feature `serde` derives serde for the public types.
//!
//! ## Quick start
//!
//! ```
//! use mesh_crdt::{ReplicaId, TextDoc};
//!
//! let mut alice = TextDoc::new(ReplicaId(1));
//! let mut bob = TextDoc::new(ReplicaId(2));
//! let op = alice.insert(0, "hello").unwrap();
//! bob.apply(op);
//! let a = alice.insert(5, " world").unwrap();
//! let b = bob.insert(0, "oh, ").unwrap();
//! alice.apply(b);
//! bob.apply(a);
//! assert_eq!(alice.text(), "oh, hello world");
//! assert_eq!(alice.text(), bob.text());
//! ```
//!
//! Over a network, send bytes: an edit's operations as an update, what a peer lacks
//! since its version as an update, or the whole state (compressed) to a newcomer.
//!
//! ```
//! use mesh_crdt::{ReplicaId, TextDoc, TextOp};
//!
//! let mut alice = TextDoc::new(ReplicaId(1));
//! let op = alice.insert(0, "hello").unwrap();
//! let bytes = TextOp::encode_all(&[op]);
//!
//! let mut bob = TextDoc::new(ReplicaId(2));
//! bob.apply_update(&bytes)?; // malformed bytes: an error, and nothing changes
//! bob.insert(5, "!");
//! alice.apply_update(&bob.update_since(&alice.version()))?;
//!
//! let carol = TextDoc::decode(&alice.encode(), ReplicaId(3))?;
//! assert_eq!(carol.text(), "hello!");
//! # Ok::<(), mesh_crdt::DecodeError>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod counter;
mod encoding;
mod orset;
mod register;
mod state;
mod text;

pub use clock::{Hlc, HlcClock, ReplicaId, VectorClock};
pub use counter::{GCounter, PNCounter};
pub use encoding::{Atom, DecodeError};
#[doc(hidden)]
pub use encoding::{Reader, Writer};
pub use orset::{Dot, OrSet};
pub use register::{LwwRegister, MvRegister};
pub use state::{Change, Leaf, StateCrdt, StateOp, StateValue};
pub use text::{CHUNK, CharId, MAX_CHARS, TextDoc, TextOp};

/// The most remote operations a [`TextDoc`] or [`StateCrdt`] keeps waiting for their
/// dependencies. Past it the oldest waiting operation is dropped and `needs_resync()`
/// turns true: merge a peer's whole state to heal.
pub const MAX_PENDING_OPS: usize = 10_000;
