//! The WebSocket transport against a real hyper server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mesh_protocol::ws::{
    Backoff, ClientConfig, Connection, ConnectionConfig, Incoming, Subprotocol, connect,
    credential, upgrade,
};
use mesh_protocol::{Error, Extension, Heartbeat, Message, MessageType};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const KEY: &str = "secret";

/// What the test server does with each connection.
#[derive(Clone, Copy)]
enum Mode {
    Echo,
    /// Floods the client with 256 KiB messages and reports how many went in before the
    /// bounded queue reported a slow peer.
    Flood,
}

async fn start_server(
    mode: Mode,
    config: ConnectionConfig,
    events: mpsc::UnboundedSender<String>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, mode, config, events));
    format!("ws://{addr}/ws")
}

async fn serve(
    listener: TcpListener,
    mode: Mode,
    config: ConnectionConfig,
    events: mpsc::UnboundedSender<String>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let events = events.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut req: Request<Body>| {
                let events = events.clone();
                async move {
                    if credential(&req).as_deref() != Some(KEY) {
                        return Ok::<_, Infallible>(
                            Response::builder()
                                .status(401)
                                .body(Empty::<Bytes>::new())
                                .unwrap(),
                        );
                    }
                    let (response, pending) = upgrade(&mut req).unwrap();
                    tokio::spawn(async move {
                        let connection = pending.into_connection(config).await.unwrap();
                        match mode {
                            Mode::Echo => echo(connection, events).await,
                            Mode::Flood => flood(connection, events).await,
                        }
                    });
                    Ok(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn echo(mut connection: Connection, events: mpsc::UnboundedSender<String>) {
    let sender = connection.sender();
    while let Some(item) = connection.recv().await {
        match item {
            Ok(Incoming::Message(m)) => {
                let _ = sender.send(m).await;
            }
            Ok(Incoming::Text(t)) => {
                let _ = sender.try_send_text(t);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = events.send(e.code().to_owned());
            }
        }
    }
    let _ = events.send("closed".to_owned());
}

async fn flood(connection: Connection, events: mpsc::UnboundedSender<String>) {
    let big = Bytes::from(
        (0..256 * 1024)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<_>>(),
    );
    for sent in 0..1_000_000 {
        let ext = Extension::new(MessageType(0x8001), big.clone()).unwrap();
        match connection.try_send(ext) {
            // About a thousand a second: a peer's socket buffers fill within a few
            // dozen, while a queue of 100,000 would take minutes to.
            Ok(()) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(Error::SlowPeer { .. }) => {
                let _ = events.send(format!("slow after {sent}"));
                return;
            }
            Err(Error::Closed) => {
                let _ = events.send(format!("closed after {sent}"));
                return;
            }
            Err(e) => {
                let _ = events.send(format!("unexpected {e}"));
                return;
            }
        }
    }
    let _ = events.send("never slow".to_owned());
}

/// Floods a client that never reads from a server configured by `server`; returns what
/// the server's flood saw first ("slow after N", "closed after N", …).
async fn flood_a_client_that_never_reads(server: ConnectionConfig) -> String {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let url = start_server(Mode::Flood, server, tx).await;
    let config = client(&url).connection(ConnectionConfig::default().ping_interval(None));
    let _connection = connect(&config).await.unwrap(); // never reads
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

/// How many messages the flood sent before the server found the client too slow.
fn sent_before_slow(event: &str) -> usize {
    event
        .strip_prefix("slow after ")
        .unwrap_or_else(|| panic!("{event}"))
        .parse()
        .unwrap()
}

fn client(url: &str) -> ClientConfig {
    ClientConfig::new(url).api_key(KEY).retry(
        Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        20,
    )
}

async fn next_message(connection: &mut Connection) -> Message {
    match tokio::time::timeout(Duration::from_secs(5), connection.recv())
        .await
        .unwrap()
    {
        Some(Ok(Incoming::Message(m))) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn connects_with_a_key_negotiates_and_echoes() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let url = start_server(Mode::Echo, ConnectionConfig::default(), tx).await;
    let mut connection = connect(&client(&url)).await.unwrap();
    assert_eq!(connection.subprotocol(), Some(Subprotocol::MeshV1));
    let hb = Message::from(Heartbeat::new(Some(1), Some(0.25)));
    connection.send(hb.clone()).await.unwrap();
    assert_eq!(next_message(&mut connection).await, hb);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_401_and_not_retried() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let url = start_server(Mode::Echo, ConnectionConfig::default(), tx).await;
    let started = Instant::now();
    let err = connect(&ClientConfig::new(url.clone()).api_key("wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HandshakeRefused { status: 401 }),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = connect(&ClientConfig::new(url)).await.unwrap_err();
    assert!(
        matches!(err, Error::HandshakeRefused { status: 401 }),
        "{err}"
    );
}

#[tokio::test]
async fn many_queued_messages_arrive_in_order_through_batches() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let url = start_server(Mode::Echo, ConnectionConfig::default(), tx).await;
    let mut connection = connect(&client(&url)).await.unwrap();
    let sent: Vec<Message> = (0..500)
        .map(|i| Message::from(Heartbeat::new(Some(i), None)))
        .collect();
    for m in &sent {
        connection.try_send(m.clone()).unwrap();
    }
    for m in &sent {
        assert_eq!(&next_message(&mut connection).await, m);
    }
}

#[tokio::test]
async fn messages_queued_at_once_arrive_in_order_between_single_ones() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let url = start_server(Mode::Echo, ConnectionConfig::default(), tx).await;
    let mut connection = connect(&client(&url)).await.unwrap();
    let heartbeat = |i| Message::from(Heartbeat::new(Some(i), None));
    // More than one batch frame holds (64 messages): the rest go next, in order.
    let together: Vec<Message> = (1..=300).map(heartbeat).collect();
    let sender = connection.sender();
    sender.try_send(heartbeat(0)).unwrap();
    sender.try_send_all(together).unwrap();
    sender.try_send_all(Vec::new()).unwrap();
    sender.try_send_all(vec![heartbeat(301)]).unwrap();
    sender.try_send(heartbeat(302)).unwrap();
    for i in 0..=302 {
        assert_eq!(next_message(&mut connection).await, heartbeat(i));
    }
}

#[tokio::test]
async fn text_messages_carry_json_rpc() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let url = start_server(Mode::Echo, ConnectionConfig::default(), tx).await;
    let config = client(&url).subprotocols([Subprotocol::Mcp]);
    let mut connection = connect(&config).await.unwrap();
    assert_eq!(connection.subprotocol(), Some(Subprotocol::Mcp));
    let request = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    connection.sender().try_send_text(request).unwrap();
    match connection.recv().await {
        Some(Ok(Incoming::Text(t))) => assert_eq!(t, request),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn reconnects_with_backoff_until_the_server_appears() {
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let (tx, _rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        serve(listener, Mode::Echo, ConnectionConfig::default(), tx).await;
    });
    let started = Instant::now();
    let mut connection = connect(&client(&format!("ws://{addr}/ws"))).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it had to wait for the server"
    );
    connection.send(Heartbeat::default()).await.unwrap();
    assert_eq!(
        next_message(&mut connection).await,
        Message::from(Heartbeat::default())
    );
}

#[tokio::test]
async fn pings_keep_an_otherwise_silent_link_alive() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = ConnectionConfig::default().idle_timeout(Some(Duration::from_millis(300)));
    let url = start_server(Mode::Echo, server, tx).await;
    let config = client(&url)
        .connection(ConnectionConfig::default().ping_interval(Some(Duration::from_millis(50))));
    let mut connection = connect(&config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(rx.try_recv().is_err(), "the server saw no idle timeout");
    connection.send(Heartbeat::default()).await.unwrap();
    next_message(&mut connection).await;
}

#[tokio::test]
async fn a_silent_peer_is_timed_out() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = ConnectionConfig::default().idle_timeout(Some(Duration::from_millis(200)));
    let url = start_server(Mode::Echo, server, tx).await;
    let config = client(&url).connection(ConnectionConfig::default().ping_interval(None));
    let mut connection = connect(&config).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, "idle_timeout");
    // The client is told why, then the server closes.
    match next_message(&mut connection).await {
        Message::Error(e) => assert_eq!(e.code, "idle_timeout"),
        other => panic!("{other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), connection.recv())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_peer_that_does_not_read_is_dropped_not_buffered() {
    let event = flood_a_client_that_never_reads(ConnectionConfig::default().send_queue(8)).await;
    let sent = sent_before_slow(&event);
    // Socket buffers take some; the queue holds 8; then the peer is dropped.
    assert!(
        sent < 500,
        "{sent} messages of 256 KiB accepted before detection"
    );
}

/// Hardening issue, item 8: a peer that stops reading blocked the writer on a full
/// socket for ever, pinning its queue. A write now times out and the connection ends.
#[tokio::test]
async fn hardening_8_a_peer_that_stops_reading_is_cut_off_by_the_write_timeout() {
    // A queue too big to fill: only the write timeout can notice the peer.
    let server = ConnectionConfig::default()
        .send_queue(100_000)
        .send_queue_bytes(usize::MAX)
        .write_timeout(Some(Duration::from_millis(300)));
    let event = flood_a_client_that_never_reads(server).await;
    assert!(event.starts_with("closed after "), "{event}");
}

/// Hardening issue, item 8: two large messages queued together went out as one batch
/// larger than the receiver's 10 MiB budget, and the receiver dropped the connection.
#[tokio::test]
async fn hardening_8_batches_stay_within_the_receivers_limit() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let url = start_server(Mode::Echo, ConnectionConfig::default(), tx).await;
    let mut connection = connect(&client(&url)).await.unwrap();
    // 6 MiB each, incompressible: together past the 10 MiB a batch may decompress to.
    let big = Bytes::from(
        (0..6 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<_>>(),
    );
    for _ in 0..2 {
        let ext = Extension::new(MessageType(0x8001), big.clone()).unwrap();
        connection.try_send(ext).unwrap(); // queued together: the writer sees both
    }
    for _ in 0..2 {
        match next_message(&mut connection).await {
            Message::Extension(ext) => assert_eq!(ext.payload().len(), big.len()),
            other => panic!("{other:?}"),
        }
    }
}

/// Hardening issue, item 8: the send queue was bounded only by its count, so a peer
/// that stopped reading pinned up to 1,024 messages of any size. The writer now holds
/// at most `send_queue_bytes` for it, then drops it as too slow.
#[tokio::test]
async fn hardening_8_the_send_queue_is_bounded_by_bytes() {
    // Neither the count (100,000) nor a write timeout notices the peer: only bytes.
    let server = ConnectionConfig::default()
        .send_queue(100_000)
        .send_queue_bytes(4 << 20)
        .write_timeout(None);
    let sent = sent_before_slow(&flood_a_client_that_never_reads(server).await);
    // Loopback socket buffers take tens of MiB; the writer holds at most one largest
    // message (16 MiB) more; then the peer is dropped.
    assert!(sent < 400, "{sent} messages of 256 KiB held");
}
