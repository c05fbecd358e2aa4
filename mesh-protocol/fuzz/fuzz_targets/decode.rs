//! Feeds arbitrary bytes to both decoding paths (one WebSocket message, and a byte
//! stream in two chunks) and decodes every frame that comes out as a typed message.
//! Any panic, or a decoded frame that does not re-encode and decode to itself, is a bug.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mesh_protocol::{FrameCodec, Message};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = FrameCodec::builder().max_decompressed(1 << 20).build();
    let frames: Vec<_> = match codec.decode_message(Bytes::copy_from_slice(data)) {
        Ok(frames) => frames.collect(),
        Err(_) => Vec::new(),
    };
    for frame in &frames {
        let _ = Message::from_frame(frame);
        let mut encoder = FrameCodec::new();
        let mut wire = BytesMut::new();
        encoder.encode_frame(frame.msg_type(), frame.payload(), &mut wire).unwrap();
        let again: Vec<_> = match encoder.decode_message(wire.freeze()) {
            Ok(frames) => frames.collect(),
            Err(e) => panic!("re-encoded frame does not decode: {e}"),
        };
        assert_eq!(&again, std::slice::from_ref(frame));
    }
    let split = data.first().map_or(0, |&b| b as usize).min(data.len());
    let mut buf = BytesMut::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let _ = Message::from_frame(&frame);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
});
