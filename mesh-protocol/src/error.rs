//! The crate's error type and the stable codes that go into `error` frames.

/// Everything that can go wrong decoding, encoding or transporting mesh frames.
///
/// Each variant that a peer can cause has a stable [`code`](Error::code) for the `error`
/// frame sent back, and [`close_code`](Error::close_code) says whether the connection
/// must be closed (the stream can no longer be trusted) or stays open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The version byte is not 1.
    #[error("unsupported protocol version {version}")]
    BadVersion {
        /// The version byte received.
        version: u8,
    },
    /// One of flag bits 3–7 is set.
    #[error("reserved flag bits set: {flags:#04x}")]
    ReservedFlags {
        /// The flags byte received.
        flags: u8,
    },
    /// The ENCRYPTED flag is set; this version does not define encryption.
    #[error("encrypted frames are not supported")]
    EncryptionUnsupported,
    /// The payload on the wire is larger than the configured limit.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The declared payload size.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The payload inflates past the decompressed limit (inflation stopped there).
    #[error("payload inflates past the limit of {max} bytes")]
    DecompressedTooLarge {
        /// The limit in force.
        max: usize,
    },
    /// A frame's declared payload size disagrees with the bytes that carry it.
    #[error("frame declares {declared} payload bytes but carries {actual}")]
    SizeMismatch {
        /// Payload size from the header.
        declared: usize,
        /// Payload bytes actually present.
        actual: usize,
    },
    /// The COMPRESSED payload is not a valid gzip member.
    #[error("invalid gzip payload: {reason}")]
    BadGzip {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A batch frame whose type is not 0, a type-0 frame without the BATCH flag, or a
    /// batch payload that is not a sequence of complete frames.
    #[error("malformed batch: {reason}")]
    BadBatch {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A batch inside a batch.
    #[error("a batch may not contain another batch")]
    NestedBatch,
    /// A message type below the extension range that this version does not define.
    #[error("unknown message type {msg_type:#06x}")]
    UnknownType {
        /// The type received.
        msg_type: u16,
    },
    /// The payload is not JSON of the shape its message type fixes.
    #[error("invalid payload for {name}: {source}")]
    BadPayload {
        /// The message name, e.g. `"hello"`.
        name: &'static str,
        /// What the JSON parser reported.
        #[source]
        source: serde_json::Error,
    },
    /// The payload is well-formed JSON but a value is out of its range.
    #[error("invalid payload for {name}: {reason}")]
    InvalidValue {
        /// The message name.
        name: &'static str,
        /// Which value is wrong, and why.
        reason: &'static str,
    },
    /// A JSON-RPC message that is not a request, notification or response.
    #[error("invalid JSON-RPC message: {reason}")]
    BadJsonRpc {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The underlying byte stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer does not read fast enough: its send queue is full, by count or by
    /// bytes (`ConnectionConfig::send_queue_bytes`).
    #[error("peer is too slow: its send queue ({capacity} messages, or its byte limit) is full")]
    SlowPeer {
        /// The queue's capacity in messages.
        capacity: usize,
    },
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// The WebSocket layer or its HTTP handshake failed.
    #[error("websocket error: {0}")]
    WebSocket(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server refused the handshake with this HTTP status (401: bad credentials).
    #[error("handshake refused with HTTP status {status}")]
    HandshakeRefused {
        /// The HTTP status code.
        status: u16,
    },
    /// The peer sent nothing, not even a pong, for longer than the idle timeout.
    #[error("peer silent for longer than the idle timeout")]
    IdleTimeout,
    /// TLS to a `wss://` server failed for good: its certificate is not trusted or
    /// does not name the host, or the two sides share no protocol version.
    #[error("TLS failed: {0}")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The stable code sent in the `error` frame that answers this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadVersion { .. } => "bad_version",
            Self::ReservedFlags { .. } => "reserved_flags",
            Self::EncryptionUnsupported => "encryption_unsupported",
            Self::TooLarge { .. } | Self::DecompressedTooLarge { .. } => "too_large",
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::BadGzip { .. } => "bad_gzip",
            Self::BadBatch { .. } => "bad_batch",
            Self::NestedBatch => "nested_batch",
            Self::UnknownType { .. } => "unknown_type",
            Self::BadPayload { .. } | Self::InvalidValue { .. } | Self::BadJsonRpc { .. } => {
                "bad_payload"
            }
            Self::Io(_) => "io",
            Self::SlowPeer { .. } => "slow_peer",
            Self::Closed => "closed",
            Self::WebSocket(_) => "websocket",
            Self::HandshakeRefused { .. } => "handshake_refused",
            Self::IdleTimeout => "idle_timeout",
            Self::Tls(_) => "tls",
        }
    }

    /// The WebSocket close code to end the connection with, or `None` when the
    /// connection stays open after the `error` frame.
    ///
    /// Framing errors close (1002 protocol error, 1007 invalid payload, 1009 too big);
    /// an unknown type or a payload of the wrong shape only rejects that one message.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Self::BadVersion { .. }
            | Self::ReservedFlags { .. }
            | Self::EncryptionUnsupported
            | Self::SizeMismatch { .. }
            | Self::BadBatch { .. }
            | Self::NestedBatch => Some(1002),
            Self::BadGzip { .. } => Some(1007),
            Self::TooLarge { .. } | Self::DecompressedTooLarge { .. } => Some(1009),
            Self::SlowPeer { .. } => Some(1008),
            Self::UnknownType { .. }
            | Self::BadPayload { .. }
            | Self::InvalidValue { .. }
            | Self::BadJsonRpc { .. } => None,
            Self::Io(_)
            | Self::Closed
            | Self::WebSocket(_)
            | Self::HandshakeRefused { .. }
            | Self::IdleTimeout
            | Self::Tls(_) => None,
        }
    }

    /// Whether trying again (reconnecting) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Io(_)
                | Self::Closed
                | Self::WebSocket(_)
                | Self::IdleTimeout
                | Self::SlowPeer { .. }
        ) || matches!(self, Self::HandshakeRefused { status } if *status >= 500)
    }
}
