//! The frame: a 12-byte big-endian header and a payload.
//!
//! ```text
//! offset 0   u8   version        = 1
//! offset 1   u8   flags          bit0 COMPRESSED, bit1 ENCRYPTED (rejected), bit2 BATCH
//! offset 2   u16  message type
//! offset 4   u32  payload size   bytes of payload as sent (after compression)
//! offset 8   u32  reserved       written as 0, ignored on receipt
//! offset 12  ...  payload
//! ```

use std::fmt;

use bytes::Bytes;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Size of the frame header in bytes.
pub const HEADER_LEN: usize = 12;

/// Flag bits of the header's second byte.
pub mod flags {
    /// The payload is gzip (RFC 1952).
    pub const COMPRESSED: u8 = 0b001;
    /// Reserved for encryption; a frame with it set is rejected.
    pub const ENCRYPTED: u8 = 0b010;
    /// The payload is a sequence of complete frames.
    pub const BATCH: u8 = 0b100;
    /// Bits 3–7, which must be zero.
    pub const RESERVED: u8 = 0b1111_1000;
}

/// A message type: the header's `u16` at offset 2.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u16);

macro_rules! message_types {
    ($($(#[$doc:meta])* $konst:ident = $value:literal, $name:literal;)*) => {
        impl MessageType {
            $($(#[$doc])* pub const $konst: MessageType = MessageType($value);)*

            /// The catalogue name (`"hello"`, `"task_assign"`…), or `None` for an
            /// extension or unknown type.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($name),)*
                    _ => None,
                }
            }
        }
    };
}

message_types! {
    /// A batch of frames (only with the BATCH flag).
    BATCH = 0x0000, "batch";
    /// Agent → mesh: registration.
    HELLO = 0x0001, "hello";
    /// Mesh → agent: registration accepted.
    WELCOME = 0x0002, "welcome";
    /// Both: liveness and load.
    HEARTBEAT = 0x0003, "heartbeat";
    /// Both: something was wrong.
    ERROR = 0x0004, "error";
    /// Both: the sender is draining.
    GOODBYE = 0x0005, "goodbye";
    /// Mesh → agent: run this task.
    TASK_ASSIGN = 0x0101, "task_assign";
    /// Agent → mesh: task taken.
    TASK_ACCEPT = 0x0102, "task_accept";
    /// Agent → mesh: task refused.
    TASK_REJECT = 0x0103, "task_reject";
    /// Agent → mesh: progress report.
    TASK_PROGRESS = 0x0104, "task_progress";
    /// Agent → mesh: task finished with output.
    TASK_COMPLETE = 0x0105, "task_complete";
    /// Agent → mesh: task failed.
    TASK_FAIL = 0x0106, "task_fail";
    /// Mesh → agent: stop working on a task.
    TASK_CANCEL = 0x0107, "task_cancel";
    /// Agent → mesh: delegate a sub-task.
    TASK_SUBMIT = 0x0108, "task_submit";
    /// Mesh → agent: the delegated task's id.
    TASK_SUBMITTED = 0x0109, "task_submitted";
    /// Mesh → agent: a delegated task changed status.
    TASK_UPDATE = 0x010A, "task_update";
    /// Agent → mesh: open a shared document, saying which version the agent has.
    DOC_OPEN = 0x0201, "doc_open";
    /// Mesh → agent: what the agent lacks of an opened document, and the mesh's version.
    DOC_SYNC = 0x0202, "doc_sync";
    /// Both: edits to an open document, as a mesh-crdt update.
    DOC_UPDATE = 0x0203, "doc_update";
    /// Agent → mesh: stop receiving a document's edits.
    DOC_CLOSE = 0x0204, "doc_close";
    /// Both: a JSON-RPC 2.0 (MCP) message.
    JSONRPC = 0x0301, "jsonrpc";
}

impl MessageType {
    /// The first type of the application-defined extension range.
    pub const EXTENSION_START: u16 = 0x8000;

    /// Whether this type is in the extension range `0x8000..=0xFFFF`.
    pub const fn is_extension(self) -> bool {
        self.0 >= Self::EXTENSION_START
    }
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({:#06x})", self.0),
            None => write!(f, "MessageType({:#06x})", self.0),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}

/// One decoded frame: its type and its payload, decompressed.
///
/// A plain payload is a view into the received buffer (no copy). Batches never appear
/// as a `Frame`: the decoder hands out the frames inside them.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    msg_type: MessageType,
    payload: Bytes,
}

impl Frame {
    /// A frame of `msg_type` carrying `payload` (uncompressed; the encoder decides).
    pub fn new(msg_type: MessageType, payload: impl Into<Bytes>) -> Self {
        Self {
            msg_type,
            payload: payload.into(),
        }
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        self.msg_type
    }

    /// The payload, decompressed.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Takes the payload out.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("msg_type", &self.msg_type)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// A parsed, validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) flags: u8,
    pub(crate) msg_type: MessageType,
    pub(crate) payload_len: usize,
}

impl Header {
    /// Parses and checks the first [`HEADER_LEN`] bytes of `buf`.
    pub(crate) fn parse(buf: &[u8], max_wire_payload: usize) -> Result<Self, crate::Error> {
        let version = buf[0];
        if version != VERSION {
            return Err(crate::Error::BadVersion { version });
        }
        let flags = buf[1];
        if flags & flags::RESERVED != 0 {
            return Err(crate::Error::ReservedFlags { flags });
        }
        if flags & flags::ENCRYPTED != 0 {
            return Err(crate::Error::EncryptionUnsupported);
        }
        let msg_type = MessageType(u16::from_be_bytes([buf[2], buf[3]]));
        let payload_len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if payload_len > max_wire_payload {
            return Err(crate::Error::TooLarge {
                len: payload_len,
                max: max_wire_payload,
            });
        }
        let is_batch = flags & flags::BATCH != 0;
        if is_batch != (msg_type == MessageType::BATCH) {
            return Err(crate::Error::BadBatch {
                reason: "the BATCH flag and message type 0 go together",
            });
        }
        Ok(Self {
            flags,
            msg_type,
            payload_len,
        })
    }

    /// Writes a header for a payload of `payload_len` bytes.
    pub(crate) fn write(flags: u8, msg_type: MessageType, payload_len: u32) -> [u8; HEADER_LEN] {
        let t = msg_type.0.to_be_bytes();
        let l = payload_len.to_be_bytes();
        [
            VERSION, flags, t[0], t[1], l[0], l[1], l[2], l[3], 0, 0, 0, 0,
        ]
    }
}
