//! A gzip bomb — 1 GiB of zeros in about a megabyte — is rejected with peak heap near
//! the 10 MiB decompression limit, not near the bomb's size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use mesh_protocol::{Error, FrameCodec};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Raw deflate of `copies` MiB of zeros: one fully flushed (self-contained, byte-aligned)
/// block of 1 MiB of zeros, repeated, then an empty final block.
fn deflate_zeros(copies: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(1 << 16);
    deflate
        .compress_vec(&zeros, &mut block, FlushCompress::Full)
        .unwrap();
    assert_eq!(deflate.total_in(), 1 << 20);
    let mut out = Vec::with_capacity(block.len() * copies + 16);
    for _ in 0..copies {
        out.extend_from_slice(&block);
    }
    let mut tail = Vec::with_capacity(64);
    deflate
        .compress_vec(&[], &mut tail, FlushCompress::Finish)
        .unwrap();
    out.extend_from_slice(&tail);
    out
}

#[test]
fn a_one_gib_bomb_is_refused_near_the_limit() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let body = deflate_zeros(1024);
    let mut wire = BytesMut::with_capacity(body.len() + 64);
    wire.put_slice(&[1, 0b001, 0, 3]);
    let payload_len = 10 + body.len() + 8;
    wire.put_u32(payload_len as u32);
    wire.put_u32(0);
    wire.put_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    wire.put_slice(&body);
    wire.put_slice(&[0; 8]); // never reached: inflation stops at the limit
    drop(body);
    let wire: Bytes = wire.freeze();
    assert!(
        wire.len() < 2 << 20,
        "the bomb is small on the wire: {}",
        wire.len()
    );

    let mut codec = FrameCodec::new();
    let before = dhat::HeapStats::get();
    let err = codec.decode_message(wire).map(|f| f.count()).unwrap_err();
    let after = dhat::HeapStats::get();

    assert!(matches!(err, Error::DecompressedTooLarge { .. }), "{err}");
    assert_eq!(err.code(), "too_large");
    assert_eq!(err.close_code(), Some(1009));
    let limit = codec.limits().max_decompressed;
    let peak_during_decode = after.max_bytes.saturating_sub(before.curr_bytes);
    eprintln!("peak heap while decoding: {peak_during_decode} bytes (limit {limit})");
    dhat::assert!(
        peak_during_decode < limit + limit / 4,
        "peak {peak_during_decode} bytes"
    );
}
