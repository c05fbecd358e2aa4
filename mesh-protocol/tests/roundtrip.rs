//! Property tests: arbitrary frames and messages survive encode → decode, whatever the
//! chunking, and arbitrary bytes never panic the decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use mesh_protocol::{
    Frame, FrameCodec, Heartbeat, Hello, Message, MessageType, TaskAssign, TaskFail, TaskProgress,
    TaskSubmit,
};
use proptest::prelude::*;
use serde_json::json;
use tokio_util::codec::{Decoder, Encoder};
use uuid::Uuid;

fn any_frame() -> impl Strategy<Value = Frame> {
    let msg_type = (1u16..=u16::MAX).prop_map(MessageType);
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        // Repetitive payloads, so compression kicks in.
        (any::<u8>(), 0usize..20_000).prop_map(|(b, n)| vec![b; n]),
    ];
    (msg_type, payload).prop_map(|(t, p)| Frame::new(t, p))
}

/// Encodes `frames` (some runs as batches) into one byte stream.
fn encode_all(codec: &mut FrameCodec, frames: &[Frame], batch_every: usize) -> BytesMut {
    let mut wire = BytesMut::new();
    for group in frames.chunks(batch_every.max(1)) {
        if group.len() > 1 {
            codec.encode_batch(group, &mut wire).unwrap();
        } else {
            codec.encode(&group[0], &mut wire).unwrap();
        }
    }
    wire
}

fn decode_in_chunks(codec: &mut FrameCodec, wire: &[u8], sizes: &[usize]) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let n = sizes[i % sizes.len()].clamp(1, wire.len() - pos);
        i += 1;
        buf.extend_from_slice(&wire[pos..pos + n]);
        pos += n;
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            out.push(frame);
        }
    }
    assert!(buf.is_empty(), "bytes left over");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn frames_round_trip_in_random_chunks(
        frames in proptest::collection::vec(any_frame(), 1..12),
        batch_every in 1usize..5,
        sizes in proptest::collection::vec(1usize..5000, 1..8),
        threshold in prop_oneof![Just(0usize), Just(1024), Just(usize::MAX)],
    ) {
        let mut codec = FrameCodec::builder().compression_threshold(threshold).build();
        let wire = encode_all(&mut codec, &frames, batch_every);
        let decoded = decode_in_chunks(&mut FrameCodec::new(), &wire, &sizes);
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_frames(
        frames in proptest::collection::vec(any_frame(), 1..4),
    ) {
        let mut codec = FrameCodec::new();
        let wire = encode_all(&mut codec, &frames, 2);
        prop_assert_eq!(decode_in_chunks(&mut FrameCodec::new(), &wire, &[1]), frames);
    }

    #[test]
    fn each_websocket_message_decodes_to_its_frames(frames in proptest::collection::vec(any_frame(), 1..6)) {
        let mut codec = FrameCodec::new();
        let mut wire = BytesMut::new();
        codec.encode_batch(&frames, &mut wire).unwrap();
        let decoded: Vec<Frame> = codec.decode_message(wire.freeze()).unwrap().collect();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut codec = FrameCodec::new();
        if let Ok(frames) = codec.decode_message(Bytes::from(bytes.clone())) {
            for frame in frames.collect::<Vec<_>>() {
                let _ = Message::from_frame(&frame);
            }
        }
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            let _ = Message::from_frame(&frame);
        }
    }

    #[test]
    fn arbitrary_headers_with_valid_version_never_panic(
        flags in any::<u8>(), t in any::<u16>(), len in any::<u32>(), body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut wire = vec![1, flags];
        wire.extend_from_slice(&t.to_be_bytes());
        wire.extend_from_slice(&len.to_be_bytes());
        wire.extend_from_slice(&[0; 4]);
        wire.extend_from_slice(&body);
        let _ = FrameCodec::new().decode_message(Bytes::from(wire));
    }

    #[test]
    fn messages_round_trip(message in any_message()) {
        let mut codec = FrameCodec::new();
        let mut wire = BytesMut::new();
        message.encode(&mut codec, &mut wire).unwrap();
        let frame = codec.decode(&mut wire).unwrap().unwrap();
        prop_assert_eq!(frame.msg_type(), message.msg_type());
        prop_assert_eq!(Message::from_frame(&frame).unwrap(), message.clone());
        prop_assert_eq!(Message::from_frame(&message.to_frame().unwrap()).unwrap(), message);
    }
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// Floats with exact binary representations, so JSON text round-trips them exactly.
fn fraction() -> impl Strategy<Value = f64> {
    (0u32..=1024).prop_map(|n| f64::from(n) / 1024.0)
}

fn any_message() -> impl Strategy<Value = Message> {
    let text = "[a-zA-Z0-9 _ü漢-]{0,40}";
    prop_oneof![
        (
            text,
            proptest::collection::vec(text, 0..5),
            proptest::option::of(1u32..64),
            proptest::option::of(uuid())
        )
            .prop_map(|(name, caps, max, id)| {
                let mut h = Hello::new(name, caps);
                h.max_concurrency = max;
                h.agent_id = id;
                Message::from(h)
            }),
        (
            proptest::option::of(0u32..1000),
            proptest::option::of(fraction())
        )
            .prop_map(|(a, l)| Message::from(Heartbeat::new(a, l))),
        (uuid(), text, 1u32..10, text).prop_map(|(id, kind, attempt, s)| {
            Message::from(TaskAssign::new(
                id,
                kind,
                json!({"text": s, "n": attempt}),
                attempt,
            ))
        }),
        (uuid(), fraction()).prop_map(|(id, p)| Message::from(TaskProgress::new(id, p))),
        (uuid(), text, any::<bool>()).prop_map(|(id, e, r)| Message::from(TaskFail::new(id, e, r))),
        (text, text, proptest::option::of(uuid())).prop_map(|(r, k, parent)| {
            let mut s = TaskSubmit::new(r, k, json!([1, 2, 3]));
            s.parent = parent;
            Message::from(s)
        }),
    ]
}
