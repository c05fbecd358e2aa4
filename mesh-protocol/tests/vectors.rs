//! The byte-exact vectors of `tests/vectors/frames.json` (written by an independent
//! Python generator): every valid vector decodes to its frames, every malformed one to
//! its stable error code, and plain ones re-encode to the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use mesh_protocol::{FrameCodec, Message};
use serde_json::Value;
use tokio_util::codec::Decoder;

fn vectors() -> Vec<Value> {
    let text = include_str!("vectors/frames.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn expected_frames(v: &Value) -> Vec<(u16, Value)> {
    v["frames"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .map(|f| (f["type"].as_u64().unwrap() as u16, f["json"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_vectors_file_covers_every_error_code() {
    let codes: std::collections::BTreeSet<_> = vectors()
        .iter()
        .filter_map(|v| v["error"].as_str().map(str::to_owned))
        .collect();
    for code in [
        "bad_version",
        "reserved_flags",
        "encryption_unsupported",
        "size_mismatch",
        "too_large",
        "bad_gzip",
        "bad_batch",
        "nested_batch",
        "unknown_type",
        "bad_payload",
    ] {
        assert!(codes.contains(code), "no vector for {code}");
    }
}

#[test]
fn every_vector_decodes_as_specified() {
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let bytes = Bytes::from(unhex(v["hex"].as_str().unwrap()));
        let mut codec = FrameCodec::new();
        let decoded = codec
            .decode_message(bytes)
            .map(|frames| frames.collect::<Vec<_>>());
        match (v["error"].as_str(), v["at"].as_str()) {
            (Some(code), Some("frame")) => {
                let err = decoded.expect_err(name);
                assert_eq!(err.code(), code, "{name}: {err}");
            }
            (Some(code), _) => {
                let frames = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(frames.len(), 1, "{name}");
                let err = Message::from_frame(&frames[0]).expect_err(name);
                assert_eq!(err.code(), code, "{name}: {err}");
                assert_eq!(
                    err.close_code(),
                    None,
                    "{name}: message errors keep the connection"
                );
            }
            (None, _) => {
                let frames = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
                let got: Vec<(u16, Value)> = frames
                    .iter()
                    .map(|f| (f.msg_type().0, serde_json::from_slice(f.payload()).unwrap()))
                    .collect();
                assert_eq!(got, expected_frames(&v), "{name}");
                for frame in &frames {
                    Message::from_frame(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            }
        }
    }
}

#[test]
fn plain_vectors_re_encode_to_the_same_bytes() {
    for name in [
        "hello_plain",
        "heartbeat_plain",
        "welcome_plain",
        "jsonrpc_request",
        "extension",
    ] {
        let v = vectors().into_iter().find(|v| v["name"] == name).unwrap();
        let wire = unhex(v["hex"].as_str().unwrap());
        let mut codec = FrameCodec::new();
        let frame = codec
            .decode_message(Bytes::from(wire.clone()))
            .unwrap()
            .next()
            .unwrap();
        let message = Message::from_frame(&frame).unwrap();
        let mut out = BytesMut::new();
        message.encode(&mut codec, &mut out).unwrap();
        assert_eq!(&out[..], &wire[..], "{name}");
    }
}

#[test]
fn valid_vectors_decode_the_same_from_a_byte_stream_in_any_chunking() {
    let valid: Vec<Value> = vectors()
        .into_iter()
        .filter(|v| v["error"].is_null() && v["name"] != "heartbeat_reserved_word_ignored")
        .collect();
    let stream: Vec<u8> = valid
        .iter()
        .flat_map(|v| unhex(v["hex"].as_str().unwrap()))
        .collect();
    let expected: Vec<(u16, Value)> = valid.iter().flat_map(expected_frames).collect();
    for chunk in [1, 2, 7, 12, 13, 100, 4096, stream.len()] {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                got.push((
                    frame.msg_type().0,
                    serde_json::from_slice(frame.payload()).unwrap(),
                ));
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got, expected, "chunk size {chunk}");
    }
}
