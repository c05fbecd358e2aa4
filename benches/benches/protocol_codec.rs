//! mesh-protocol codec throughput against a `memcpy` of the same bytes, and the rate of
//! heartbeat-sized typed messages end to end.
//!
//! `cargo bench -p mesh-benches --bench protocol_codec`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mesh_protocol::{FrameCodec, Heartbeat, Message, MessageType};
use tokio_util::codec::Decoder;

const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1024, "1KiB"),
    (64 * 1024, "64KiB"),
    (1024 * 1024, "1MiB"),
];

/// JSON-like text, compressible as real payloads are.
fn payload(len: usize) -> Vec<u8> {
    let text = br#"{"task_id":"0192f5a4-6c1e-7cc3-9b7e-2a1d4c5e6f72","kind":"summarize","input":{"text":"the agents share context through the mesh"}},"#;
    text.iter().copied().cycle().take(len).collect()
}

fn plain(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec_plain");
    for (len, name) in SIZES {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        // Physical baseline: copying the payload once.
        group.bench_with_input(BenchmarkId::new("memcpy", name), &data, |b, data| {
            let mut dst = vec![0u8; data.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(data));
                black_box(&dst);
            })
        });
        let mut codec = FrameCodec::builder()
            .compression_threshold(usize::MAX)
            .build();
        let mut wire = BytesMut::new();
        codec
            .encode_frame(MessageType::TASK_ASSIGN, &data, &mut wire)
            .unwrap();
        let wire = wire.freeze();
        group.bench_with_input(
            BenchmarkId::new("decode_message", name),
            &wire,
            |b, wire| {
                b.iter(|| {
                    let frame = codec
                        .decode_message(black_box(wire.clone()))
                        .unwrap()
                        .next()
                        .unwrap();
                    black_box(frame);
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("decode_stream", name), &wire, |b, wire| {
            // Includes copying the bytes into the read buffer, as a socket read would.
            let mut buf = BytesMut::with_capacity(wire.len());
            b.iter(|| {
                buf.extend_from_slice(black_box(wire));
                black_box(codec.decode(&mut buf).unwrap().unwrap());
            })
        });
        group.bench_with_input(BenchmarkId::new("encode", name), &data, |b, data| {
            let mut dst = BytesMut::with_capacity(data.len() + 64);
            b.iter(|| {
                dst.clear();
                codec
                    .encode_frame(MessageType::TASK_ASSIGN, black_box(data), &mut dst)
                    .unwrap();
                black_box(&dst);
            })
        });
    }
    group.finish();
}

fn compressed(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec_gzip");
    group.sample_size(20);
    // Over the 1024-byte threshold, so these frames are compressed.
    for (len, name) in [(4096, "4KiB"), (64 * 1024, "64KiB"), (1024 * 1024, "1MiB")] {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        let mut codec = FrameCodec::new();
        let mut wire = BytesMut::new();
        codec
            .encode_frame(MessageType::TASK_ASSIGN, &data, &mut wire)
            .unwrap();
        assert_eq!(wire[1] & 1, 1, "compressed");
        let wire: Bytes = wire.freeze();
        group.bench_with_input(BenchmarkId::new("encode", name), &data, |b, data| {
            let mut dst = BytesMut::with_capacity(data.len() + 64);
            b.iter(|| {
                dst.clear();
                codec
                    .encode_frame(MessageType::TASK_ASSIGN, black_box(data), &mut dst)
                    .unwrap();
            })
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &wire, |b, wire| {
            b.iter(|| black_box(codec.decode_message(wire.clone()).unwrap().next().unwrap()))
        });
    }
    group.finish();
}

fn small_messages(c: &mut Criterion) {
    let mut group = c.benchmark_group("messages");
    group.throughput(Throughput::Elements(1));
    let mut codec = FrameCodec::new();
    let message = Message::from(Heartbeat::new(Some(3), Some(0.25)));
    group.bench_function("heartbeat_round_trip", |b| {
        let mut buf = BytesMut::with_capacity(256);
        b.iter(|| {
            // serialize + frame
            black_box(&message).encode(&mut codec, &mut buf).unwrap();
            // deframe + deserialize
            let frame = codec.decode(&mut buf).unwrap().unwrap();
            black_box(Message::from_frame(&frame).unwrap());
        })
    });
    group.finish();
}

criterion_group!(benches, plain, compressed, small_messages);
criterion_main!(benches);
