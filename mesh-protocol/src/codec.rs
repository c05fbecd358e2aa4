//! The frame codec: pure buffer logic, as a tokio-util `Decoder`/`Encoder`.

use std::collections::VecDeque;
use std::collections::vec_deque::Drain;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{HEADER_LEN, Header, flags};
use crate::gzip::Gzip;
use crate::{Error, Frame, MessageType};

/// The codec's limits and compression settings. Defaults follow the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest payload accepted or sent on the wire (after compression). Default 16 MiB.
    pub max_wire_payload: usize,
    /// Largest payload after decompression; inflation stops here. Default 10 MiB.
    /// A batch's frames share this budget.
    pub max_decompressed: usize,
    /// Payloads larger than this are gzip-compressed when that makes them smaller.
    /// Default 1024 bytes.
    pub compression_threshold: usize,
    /// gzip level, 0–9. Default 1: fast, and JSON still shrinks several times.
    pub compression_level: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_wire_payload: 16 * 1024 * 1024,
            max_decompressed: 10 * 1024 * 1024,
            compression_threshold: 1024,
            compression_level: 1,
        }
    }
}

/// Builds a [`FrameCodec`] with limits other than the defaults.
#[derive(Debug, Clone, Default)]
pub struct FrameCodecBuilder {
    limits: Limits,
}

impl FrameCodecBuilder {
    /// Sets [`Limits::max_wire_payload`].
    pub fn max_wire_payload(mut self, bytes: usize) -> Self {
        self.limits.max_wire_payload = bytes.min(u32::MAX as usize);
        self
    }

    /// Sets [`Limits::max_decompressed`].
    pub fn max_decompressed(mut self, bytes: usize) -> Self {
        self.limits.max_decompressed = bytes;
        self
    }

    /// Sets [`Limits::compression_threshold`]; `usize::MAX` turns compression off.
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.limits.compression_threshold = bytes;
        self
    }

    /// Sets [`Limits::compression_level`] (clamped to 0–9).
    pub fn compression_level(mut self, level: u32) -> Self {
        self.limits.compression_level = level.min(9);
        self
    }

    /// The codec.
    pub fn build(self) -> FrameCodec {
        FrameCodec::with_limits(self.limits)
    }
}

/// Encodes and decodes mesh frames.
///
/// As a [`Decoder`] it reads a byte stream: `Ok(None)` while a frame is partial, a batch
/// handed out frame by frame. [`decode_message`](Self::decode_message) reads one
/// WebSocket message, which must hold exactly one frame. Plain payloads are handed out
/// as views into the received buffer; compressed ones are inflated within the limits.
/// The deflate/inflate state is kept and reset between frames, never reallocated.
pub struct FrameCodec {
    limits: Limits,
    gzip: Gzip,
    scratch: Vec<u8>,
    pending: VecDeque<Frame>,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCodec")
            .field("limits", &self.limits)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl FrameCodec {
    /// A codec with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A builder for other limits.
    pub fn builder() -> FrameCodecBuilder {
        FrameCodecBuilder::default()
    }

    fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            gzip: Gzip::new(limits.compression_level),
            scratch: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends one frame of `msg_type` with `payload` to `dst`, compressed when the
    /// payload is over the threshold and gzip makes it smaller.
    pub fn encode_frame(
        &mut self,
        msg_type: MessageType,
        payload: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        self.encode_with(msg_type, 0, dst, |dst| {
            dst.extend_from_slice(payload);
            Ok(())
        })
    }

    /// Appends one frame whose payload is `value` as JSON, serialized straight into `dst`.
    pub fn encode_json<T: serde::Serialize + ?Sized>(
        &mut self,
        msg_type: MessageType,
        value: &T,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        self.encode_with(msg_type, 0, dst, |dst| {
            serde_json::to_writer(dst.writer(), value).map_err(std::io::Error::from)?;
            Ok(())
        })
    }

    /// Appends one batch frame holding `frames`: the frames are written plain, one after
    /// another, and the whole batch payload is compressed when that pays.
    pub fn encode_batch<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame>,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        self.encode_with(MessageType::BATCH, flags::BATCH, dst, |dst| {
            for frame in frames {
                check_not_batch(frame.msg_type())?;
                let len = u32::try_from(frame.payload().len()).map_err(|_| Error::TooLarge {
                    len: frame.payload().len(),
                    max: u32::MAX as usize,
                })?;
                dst.extend_from_slice(&Header::write(0, frame.msg_type(), len));
                dst.extend_from_slice(frame.payload());
            }
            Ok(())
        })
    }

    /// Writes a header placeholder, lets `write` append the plain payload, compresses it
    /// in place when that pays, then fills in the header. On error `dst` is unchanged.
    fn encode_with(
        &mut self,
        msg_type: MessageType,
        mut frame_flags: u8,
        dst: &mut BytesMut,
        write: impl FnOnce(&mut BytesMut) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if frame_flags & flags::BATCH == 0 {
            check_not_batch(msg_type)?;
        }
        let start = dst.len();
        dst.put_bytes(0, HEADER_LEN);
        let body = start + HEADER_LEN;
        if let Err(e) = write(dst) {
            dst.truncate(start);
            return Err(e);
        }
        if dst.len() - body > self.limits.compression_threshold {
            self.scratch.clear();
            if self
                .gzip
                .compress_if_smaller(&dst[body..], &mut self.scratch)
            {
                dst.truncate(body);
                dst.extend_from_slice(&self.scratch);
                frame_flags |= flags::COMPRESSED;
            }
        }
        let len = dst.len() - body;
        if len > self.limits.max_wire_payload {
            dst.truncate(start);
            return Err(Error::TooLarge {
                len,
                max: self.limits.max_wire_payload,
            });
        }
        // max_wire_payload is at most u32::MAX (the builder clamps it).
        let header = Header::write(frame_flags, msg_type, len as u32);
        dst[start..body].copy_from_slice(&header);
        Ok(())
    }

    /// Decodes one WebSocket message, which must hold exactly one frame (a batch counts
    /// as one), and returns the frames it carries.
    ///
    /// A batch is all or nothing: when one of its frames is malformed, none is returned.
    pub fn decode_message(&mut self, message: Bytes) -> Result<Drain<'_, Frame>, Error> {
        if message.len() < HEADER_LEN {
            return Err(Error::SizeMismatch {
                declared: HEADER_LEN,
                actual: message.len(),
            });
        }
        let header = Header::parse(&message[..HEADER_LEN], self.limits.max_wire_payload)?;
        let actual = message.len() - HEADER_LEN;
        if actual != header.payload_len {
            return Err(Error::SizeMismatch {
                declared: header.payload_len,
                actual,
            });
        }
        let start = self.pending.len();
        let mut budget = self.limits.max_decompressed;
        self.decode_body(header, message.slice(HEADER_LEN..), false, &mut budget)?;
        Ok(self.pending.drain(start..))
    }

    /// Decodes a frame's payload into `pending`: inflates it, unpacks a batch.
    fn decode_body(
        &mut self,
        header: Header,
        wire: Bytes,
        in_batch: bool,
        budget: &mut usize,
    ) -> Result<(), Error> {
        let payload = if header.flags & flags::COMPRESSED != 0 {
            Bytes::from(self.gzip.decompress(&wire, *budget)?)
        } else {
            wire
        };
        if payload.len() > *budget {
            return Err(Error::DecompressedTooLarge {
                max: self.limits.max_decompressed,
            });
        }
        *budget -= payload.len();
        if header.flags & flags::BATCH == 0 {
            self.pending.push_back(Frame::new(header.msg_type, payload));
            return Ok(());
        }
        if in_batch {
            return Err(Error::NestedBatch);
        }
        let mark = self.pending.len();
        let result = self.decode_batch(payload, budget);
        if result.is_err() {
            self.pending.truncate(mark);
        }
        result
    }

    fn decode_batch(&mut self, mut payload: Bytes, budget: &mut usize) -> Result<(), Error> {
        while !payload.is_empty() {
            if payload.len() < HEADER_LEN {
                return Err(Error::BadBatch {
                    reason: "truncated frame header inside batch",
                });
            }
            if payload[1] & flags::BATCH != 0 {
                return Err(Error::NestedBatch);
            }
            let header = Header::parse(&payload[..HEADER_LEN], self.limits.max_wire_payload)?;
            let total = HEADER_LEN + header.payload_len;
            if payload.len() < total {
                return Err(Error::BadBatch {
                    reason: "truncated frame inside batch",
                });
            }
            let frame = payload.split_to(total);
            self.decode_body(header, frame.slice(HEADER_LEN..), true, budget)?;
        }
        Ok(())
    }
}

fn check_not_batch(msg_type: MessageType) -> Result<(), Error> {
    if msg_type == MessageType::BATCH {
        return Err(Error::BadBatch {
            reason: "type 0 is only for batch frames",
        });
    }
    Ok(())
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(Some(frame));
            }
            if src.len() < HEADER_LEN {
                return Ok(None);
            }
            let header = Header::parse(&src[..HEADER_LEN], self.limits.max_wire_payload)?;
            let total = HEADER_LEN + header.payload_len;
            if src.len() < total {
                src.reserve(total - src.len());
                return Ok(None);
            }
            let wire = src.split_to(total).freeze().slice(HEADER_LEN..);
            let mut budget = self.limits.max_decompressed;
            self.decode_body(header, wire, false, &mut budget)?;
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        self.encode_frame(frame.msg_type(), frame.payload(), dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = Error;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), Error> {
        self.encode_frame(frame.msg_type(), frame.payload(), dst)
    }
}
