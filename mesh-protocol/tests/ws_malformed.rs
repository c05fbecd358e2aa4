//! Malformed input over a real WebSocket: each case gets its `error` frame with the
//! stable code, and a close exactly when the stream can no longer be trusted; the
//! server keeps serving other peers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use http_body_util::Empty;
use hyper::Request;
use hyper::body::Incoming as Body;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use mesh_protocol::ws::{ConnectionConfig, Incoming, upgrade};
use mesh_protocol::{FrameCodec, Heartbeat, Message};
use tokio::net::{TcpListener, TcpStream};

async fn start_echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(|mut req: Request<Body>| async move {
                    let (response, pending) = upgrade(&mut req).unwrap();
                    tokio::spawn(async move {
                        let mut connection = pending
                            .into_connection(ConnectionConfig::default())
                            .await
                            .unwrap();
                        let sender = connection.sender();
                        while let Some(item) = connection.recv().await {
                            if let Ok(Incoming::Message(m)) = item {
                                let _ = sender.send(m).await;
                            }
                        }
                    });
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

struct Exec;
impl<F: std::future::Future + Send + 'static> hyper::rt::Executor<F> for Exec
where
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

/// A bare WebSocket client that can send anything.
async fn raw_client(addr: std::net::SocketAddr) -> WebSocket<TokioIo<Upgraded>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = Request::builder()
        .uri("/ws")
        .header("Host", addr.to_string())
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    fastwebsockets::handshake::client(&Exec, request, stream)
        .await
        .unwrap()
        .0
}

/// Reads until a binary message or a close; returns (mesh error code, close code).
async fn read_reply(ws: &mut WebSocket<TokioIo<Upgraded>>) -> (Option<String>, Option<u16>) {
    let mut code = None;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.read_frame())
            .await
            .unwrap();
        let Ok(frame) = frame else {
            return (code, None);
        };
        match frame.opcode {
            OpCode::Binary => {
                let mut codec = FrameCodec::new();
                let frames: Vec<_> = codec
                    .decode_message(Bytes::from(frame.payload.to_vec()))
                    .unwrap()
                    .collect();
                match Message::from_frame(&frames[0]).unwrap() {
                    Message::Error(e) => code = Some(e.code),
                    other => return (Some(format!("echo:{:?}", other.msg_type())), None),
                }
            }
            OpCode::Close => {
                let close = (frame.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                return (code, close);
            }
            _ => {}
        }
    }
}

fn header(version: u8, flags: u8, msg_type: u16, len: u32) -> Vec<u8> {
    let mut h = vec![version, flags];
    h.extend_from_slice(&msg_type.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

fn with_payload(mut header: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    header.extend_from_slice(payload);
    header
}

#[tokio::test]
async fn each_malformed_message_gets_its_code_and_the_right_close() {
    let addr = start_echo_server().await;
    let hb = br#"{"load":0.5}"#;
    let cases: Vec<(&str, Vec<u8>, &str, Option<u16>)> = vec![
        (
            "bad version",
            with_payload(header(9, 0, 3, hb.len() as u32), hb),
            "bad_version",
            Some(1002),
        ),
        (
            "reserved flag",
            with_payload(header(1, 0x40, 3, hb.len() as u32), hb),
            "reserved_flags",
            Some(1002),
        ),
        (
            "encrypted",
            with_payload(header(1, 0x02, 3, hb.len() as u32), hb),
            "encryption_unsupported",
            Some(1002),
        ),
        (
            "size mismatch",
            with_payload(header(1, 0, 3, 99), hb),
            "size_mismatch",
            Some(1002),
        ),
        (
            "bad gzip",
            with_payload(header(1, 1, 3, 4), b"nope"),
            "bad_gzip",
            Some(1007),
        ),
        (
            "too large",
            header(1, 0, 3, 17 << 20),
            "too_large",
            Some(1009),
        ),
        (
            "nested batch",
            with_payload(header(1, 4, 0, 12), &header(1, 4, 0, 0)),
            "nested_batch",
            Some(1002),
        ),
    ];
    for (name, bytes, code, close) in cases {
        let mut ws = raw_client(addr).await;
        ws.write_frame(Frame::binary(Payload::Owned(bytes)))
            .await
            .unwrap();
        let (got_code, got_close) = read_reply(&mut ws).await;
        assert_eq!(got_code.as_deref(), Some(code), "{name}");
        assert_eq!(got_close, close, "{name}");
    }
}

#[tokio::test]
async fn unknown_types_and_bad_payloads_keep_the_connection_open() {
    let addr = start_echo_server().await;
    let mut ws = raw_client(addr).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with_payload(header(1, 0, 0x0200, 2), b"{}"), "unknown_type"),
        (
            with_payload(header(1, 0, 1, 11), br#"{"name":5}}"#),
            "bad_payload",
        ),
        (
            with_payload(
                header(1, 0, 0x0104, 46),
                br#"{"task_id":"not-a-uuid-at-all","progress":0.1}"#,
            ),
            "bad_payload",
        ),
    ];
    for (bytes, code) in cases {
        ws.write_frame(Frame::binary(Payload::Owned(bytes)))
            .await
            .unwrap();
        // The error frame arrives; then a valid message still echoes on the same link.
        let mut codec = FrameCodec::new();
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.read_frame())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(frame.opcode, OpCode::Binary);
        let f: Vec<_> = codec
            .decode_message(Bytes::from(frame.payload.to_vec()))
            .unwrap()
            .collect();
        match Message::from_frame(&f[0]).unwrap() {
            Message::Error(e) => assert_eq!(e.code, code),
            other => panic!("{other:?}"),
        }
    }
    let mut wire = bytes::BytesMut::new();
    Message::from(Heartbeat::new(Some(3), None))
        .encode(&mut FrameCodec::new(), &mut wire)
        .unwrap();
    ws.write_frame(Frame::binary(Payload::Owned(wire.to_vec())))
        .await
        .unwrap();
    let (reply, close) = read_reply(&mut ws).await;
    assert_eq!(reply.as_deref(), Some("echo:heartbeat(0x0003)"));
    assert_eq!(close, None);
}

#[tokio::test]
async fn garbage_from_one_peer_does_not_disturb_another() {
    let addr = start_echo_server().await;
    let mut good = raw_client(addr).await;
    let mut bad = raw_client(addr).await;
    for i in 0..50u32 {
        let junk: Vec<u8> = (0..(i * 7) % 40).map(|j| (j * 31 + i) as u8).collect();
        if bad
            .write_frame(Frame::binary(Payload::Owned(junk)))
            .await
            .is_err()
        {
            bad = raw_client(addr).await;
        }
    }
    let mut wire = bytes::BytesMut::new();
    Message::from(Heartbeat::default())
        .encode(&mut FrameCodec::new(), &mut wire)
        .unwrap();
    good.write_frame(Frame::binary(Payload::Owned(wire.to_vec())))
        .await
        .unwrap();
    let (reply, _) = read_reply(&mut good).await;
    assert_eq!(reply.as_deref(), Some("echo:heartbeat(0x0003)"));
}
