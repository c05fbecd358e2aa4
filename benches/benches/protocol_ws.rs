//! WebSocket round trips on loopback: the mesh transport (typed messages, bounded
//! queue, writer task) against a bare fastwebsockets echo, in the same run.
//!
//! `cargo bench -p mesh-benches --bench protocol_ws`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use http_body_util::Empty;
use hyper::body::Incoming as Body;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mesh_protocol::ws::{ClientConfig, Connection, ConnectionConfig, Incoming, connect, upgrade};
use mesh_protocol::{FrameCodec, Heartbeat, Message};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

#[derive(Clone, Copy)]
enum Server {
    Bare,
    Mesh,
}

async fn start(kind: Server) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let service = service_fn(move |mut req: Request<Body>| async move {
                    let response = match kind {
                        Server::Bare => {
                            let (response, fut) =
                                fastwebsockets::upgrade::upgrade(&mut req).unwrap();
                            tokio::spawn(async move { bare_echo(fut.await.unwrap()).await });
                            response
                        }
                        Server::Mesh => {
                            let (response, pending) = upgrade(&mut req).unwrap();
                            tokio::spawn(async move {
                                mesh_echo(
                                    pending
                                        .into_connection(ConnectionConfig::default())
                                        .await
                                        .unwrap(),
                                )
                                .await
                            });
                            response
                        }
                    };
                    Ok::<Response<Empty<Bytes>>, Infallible>(response)
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

async fn bare_echo(mut ws: WebSocket<TokioIo<hyper::upgrade::Upgraded>>) {
    while let Ok(frame) = ws.read_frame().await {
        if frame.opcode == OpCode::Binary {
            let payload = frame.payload.to_vec();
            if ws
                .write_frame(Frame::binary(Payload::Owned(payload)))
                .await
                .is_err()
            {
                return;
            }
        } else if frame.opcode == OpCode::Close {
            return;
        }
    }
}

async fn mesh_echo(mut connection: Connection) {
    let sender = connection.sender();
    while let Some(item) = connection.recv().await {
        if let Ok(Incoming::Message(m)) = item {
            let _ = sender.send(m).await;
        }
    }
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

async fn bare_client(addr: SocketAddr) -> WebSocket<TokioIo<hyper::upgrade::Upgraded>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
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

fn round_trips(c: &mut Criterion) {
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    round_trips_on(c, "ws_round_trip_1thread", &single);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    round_trips_on(c, "ws_round_trip_2threads", &multi);
}

fn round_trips_on(c: &mut Criterion, name: &str, rt: &Runtime) {
    let heartbeat = Message::from(Heartbeat::new(Some(3), Some(0.25)));
    let mut wire = BytesMut::new();
    heartbeat.encode(&mut FrameCodec::new(), &mut wire).unwrap();
    let wire = wire.to_vec();

    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_secs(8));

    let bare_addr = rt.block_on(start(Server::Bare));
    let mut bare = rt.block_on(bare_client(bare_addr));
    group.bench_function("bare_fastwebsockets_echo", |b| {
        b.iter_custom(|iters| {
            run(
                rt,
                iters,
                async |ws: &mut WebSocket<_>| {
                    ws.write_frame(Frame::binary(Payload::Borrowed(&wire)))
                        .await
                        .unwrap();
                    let frame = ws.read_frame().await.unwrap();
                    assert_eq!(frame.payload.len(), wire.len());
                },
                &mut bare,
            )
        })
    });

    let mesh_addr = rt.block_on(start(Server::Mesh));
    let mut mesh = rt
        .block_on(connect(&ClientConfig::new(format!("ws://{mesh_addr}/ws"))))
        .unwrap();
    group.bench_function("mesh_transport_echo", |b| {
        b.iter_custom(|iters| {
            run(
                rt,
                iters,
                async |conn: &mut Connection| {
                    conn.send(heartbeat.clone()).await.unwrap();
                    match conn.recv().await {
                        Some(Ok(Incoming::Message(_))) => {}
                        other => panic!("{other:?}"),
                    }
                },
                &mut mesh,
            )
        })
    });
    group.finish();
}

fn run<T>(rt: &Runtime, iters: u64, mut once: impl AsyncFnMut(&mut T), state: &mut T) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            once(state).await;
        }
        start.elapsed()
    })
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
