//! Coalescing many small outgoing frames into batch frames.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::{Error, Frame, FrameCodec};

/// When a [`Coalescer`] sends what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Send once this many frames are held. Default 64.
    pub max_frames: usize,
    /// Send once the held payloads reach this many bytes. Default 64 KiB.
    pub max_bytes: usize,
    /// Send at the latest this long after the oldest held frame arrived. Default 1 ms.
    pub max_delay: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_frames: 64,
            max_bytes: 64 * 1024,
            max_delay: Duration::from_millis(1),
        }
    }
}

impl BatchConfig {
    /// A config with these three limits.
    pub fn new(max_frames: usize, max_bytes: usize, max_delay: Duration) -> Self {
        Self {
            max_frames: max_frames.max(1),
            max_bytes,
            max_delay,
        }
    }
}

/// Collects outgoing frames and packs them into one batch frame by count, size and delay.
///
/// Pure logic: the caller passes the clock in, pushes frames, and flushes when
/// [`push`](Self::push) says so or when [`deadline`](Self::deadline) passes. A single
/// held frame is sent as itself, not as a batch of one.
#[derive(Debug, Default)]
pub struct Coalescer {
    config: BatchConfig,
    frames: Vec<Frame>,
    bytes: usize,
    oldest: Option<Instant>,
}

impl Coalescer {
    /// An empty coalescer.
    pub fn new(config: BatchConfig) -> Self {
        Self {
            config,
            frames: Vec::new(),
            bytes: 0,
            oldest: None,
        }
    }

    /// Holds `frame`, which arrived at `now`; returns true when the batch is full and
    /// should be flushed now.
    pub fn push(&mut self, frame: Frame, now: Instant) -> bool {
        self.oldest.get_or_insert(now);
        self.bytes += crate::HEADER_LEN + frame.payload().len();
        self.frames.push(frame);
        self.frames.len() >= self.config.max_frames || self.bytes >= self.config.max_bytes
    }

    /// Whether `frame` can join what is held without taking the batch past
    /// `max_bytes` (headers included); a first frame always can.
    pub fn fits(&self, frame: &Frame) -> bool {
        self.frames.is_empty()
            || self.bytes + crate::HEADER_LEN + frame.payload().len() <= self.config.max_bytes
    }

    /// When the held frames must be sent at the latest, if any are held.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.config.max_delay)
    }

    /// Whether the oldest held frame has waited its `max_delay` at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// How many frames are held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Drops what is held.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.oldest = None;
    }

    /// Encodes what is held into `dst` (one frame, or one batch frame) and empties the
    /// coalescer; returns how many frames went out.
    pub fn flush(&mut self, codec: &mut FrameCodec, dst: &mut BytesMut) -> Result<usize, Error> {
        let n = self.frames.len();
        let result = match self.frames.as_slice() {
            [] => Ok(()),
            [one] => codec.encode_frame(one.msg_type(), one.payload(), dst),
            many => codec.encode_batch(many, dst),
        };
        self.clear();
        result.map(|()| n)
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::Decoder;

    use super::*;
    use crate::MessageType;

    fn frame(i: u8) -> Frame {
        Frame::new(MessageType::HEARTBEAT, vec![b'{', i, b'}'])
    }

    #[test]
    fn flushes_by_count_and_decodes_back_in_order() {
        let mut c = Coalescer::new(BatchConfig::new(3, usize::MAX, Duration::from_secs(1)));
        let now = Instant::now();
        assert!(!c.push(frame(1), now));
        assert!(!c.push(frame(2), now));
        assert!(c.push(frame(3), now));
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        assert_eq!(c.flush(&mut codec, &mut buf).unwrap(), 3);
        assert!(c.is_empty());
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        assert_eq!(out, vec![frame(1), frame(2), frame(3)]);
    }

    #[test]
    fn flushes_by_size() {
        let mut c = Coalescer::new(BatchConfig::new(100, 30, Duration::from_secs(1)));
        let now = Instant::now();
        assert!(!c.push(frame(1), now));
        assert!(c.push(frame(2), now), "2 × (12 + 3) bytes reach 30");
    }

    #[test]
    fn is_due_after_the_delay_of_the_oldest_frame() {
        let mut c = Coalescer::new(BatchConfig::new(100, usize::MAX, Duration::from_millis(5)));
        let t0 = Instant::now();
        assert_eq!(c.deadline(), None);
        c.push(frame(1), t0);
        c.push(frame(2), t0 + Duration::from_millis(4));
        assert!(!c.is_due(t0 + Duration::from_millis(4)));
        assert!(c.is_due(t0 + Duration::from_millis(5)));
    }

    #[test]
    fn a_single_frame_goes_out_as_itself() {
        let mut c = Coalescer::new(BatchConfig::default());
        c.push(frame(7), Instant::now());
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        c.flush(&mut codec, &mut buf).unwrap();
        assert_eq!(buf[1], 0, "no BATCH flag");
        assert_eq!(&buf[2..4], &[0, 3]);
    }
}
