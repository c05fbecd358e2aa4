//! One WebSocket connection carrying mesh frames and JSON-RPC text.
//!
//! Long on purpose: the reading side, the sending handle and the writer task share the
//! queue, the close slot and the limits (the tests are in `tests/ws.rs`).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fastwebsockets::{Frame as WsFrame, OpCode, Payload, Role, WebSocket, WebSocketError};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::{BatchConfig, Coalescer, Error, ErrorMessage, Frame, FrameCodec, Limits, Message};

use super::Subprotocol;

/// Any byte stream a WebSocket can run over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type BoxedIo = Box<dyn Io>;

/// How a [`Connection`] behaves.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Frame codec limits (also caps a WebSocket message at the wire limit plus header).
    pub limits: Limits,
    /// Messages queued for sending before the peer counts as too slow. Default 1024.
    pub send_queue: usize,
    /// Bytes the writer holds for a peer whose socket does not take them before the
    /// peer counts as too slow. Default 32 MiB; never less than one largest message.
    pub send_queue_bytes: usize,
    /// How outgoing messages that queue up together are packed into batch frames (the
    /// writer packs what is already queued; `max_delay` is not waited for).
    pub batch: BatchConfig,
    /// Send a WebSocket ping this often. Default 20 s; `None` for never.
    pub ping_interval: Option<Duration>,
    /// Close the connection when the peer sends nothing (not even a pong) for this long.
    /// Default 60 s; `None` for never.
    pub idle_timeout: Option<Duration>,
    /// End the connection when one write to the socket takes longer than this (a peer
    /// that stopped reading fills the socket's buffers, and a write then waits for
    /// ever). Default 30 s; `None` for never.
    pub write_timeout: Option<Duration>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            send_queue: 1024,
            send_queue_bytes: 32 * 1024 * 1024,
            batch: BatchConfig::new(64, 64 * 1024, Duration::ZERO),
            ping_interval: Some(Duration::from_secs(20)),
            idle_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl ConnectionConfig {
    /// Sets [`send_queue`](Self::send_queue).
    pub fn send_queue(mut self, messages: usize) -> Self {
        self.send_queue = messages.max(1);
        self
    }

    /// Sets [`send_queue_bytes`](Self::send_queue_bytes).
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        self.send_queue_bytes = bytes;
        self
    }

    /// Sets [`limits`](Self::limits).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`batch`](Self::batch).
    pub fn batch(mut self, batch: BatchConfig) -> Self {
        self.batch = batch;
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    pub fn ping_interval(mut self, every: Option<Duration>) -> Self {
        self.ping_interval = every;
        self
    }

    /// Sets [`write_timeout`](Self::write_timeout).
    pub fn write_timeout(mut self, after: Option<Duration>) -> Self {
        self.write_timeout = after;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn idle_timeout(mut self, after: Option<Duration>) -> Self {
        self.idle_timeout = after;
        self
    }
}

/// What a peer sent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// A mesh message from a binary WebSocket message.
    Message(Message),
    /// A text WebSocket message (JSON-RPC / MCP); answer with [`Sender::try_send_text`].
    Text(String),
}

enum Outgoing {
    Message(Message),
    /// Messages queued at once ([`Sender::try_send_all`]): they go out together.
    Messages(Vec<Message>),
    /// A message encoded (uncompressed) while it waited in the writer's backlog.
    Frame(Frame),
    Text(String),
    Control(OpCode, Vec<u8>),
    Close(u16, String),
}

/// The sending side of a [`Connection`]; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Outgoing>,
    capacity: usize,
    /// Set when the queue overflowed: the writer closes the connection. (A flag is
    /// enough: with a full queue the writer is busy, and checks it between writes.)
    slow: Arc<AtomicBool>,
    /// A close asked for while the queue was full: it must not be lost behind it.
    closing: Arc<Closing>,
}

/// A close frame waiting beside the queue, and the writer's wake-up for it.
#[derive(Default)]
struct Closing {
    frame: std::sync::Mutex<Option<(u16, String)>>,
    wake: tokio::sync::Notify,
}

impl Closing {
    fn take(&self) -> Option<(u16, String)> {
        self.frame
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Sender {
    /// Queues `message` without waiting. A full queue means the peer does not keep up:
    /// the connection is closed (1008) and [`Error::SlowPeer`] returned.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.try_push(Outgoing::Message(message.into()))
    }

    /// Queues `messages` at once, without waiting, as one entry of the queue: the writer
    /// finds them together and packs them into batch frames (as many as fit each), in
    /// order. A full queue is handled as by [`try_send`](Self::try_send).
    pub fn try_send_all(&self, mut messages: Vec<Message>) -> Result<(), Error> {
        match messages.len() {
            0 => Ok(()),
            1 => self.try_push(Outgoing::Message(messages.remove(0))),
            _ => self.try_push(Outgoing::Messages(messages)),
        }
    }

    /// Queues `message`, waiting for room when the queue is full.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.tx
            .send(Outgoing::Message(message.into()))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Queues a text message (a JSON-RPC reply) without waiting.
    pub fn try_send_text(&self, text: impl Into<String>) -> Result<(), Error> {
        self.try_push(Outgoing::Text(text.into()))
    }

    /// Asks the writer to send a close frame with `code` and end the connection —
    /// after what is queued, or at once when the queue is full.
    pub fn close(&self, code: u16, reason: &str) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.tx.try_send(Outgoing::Close(code, reason.to_owned()))
        {
            *self
                .closing
                .frame
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((code, reason.to_owned()));
            self.closing.wake.notify_one();
        }
    }

    /// Whether the writer has stopped (the connection is closed).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    fn try_push(&self, item: Outgoing) -> Result<(), Error> {
        if self.slow.load(Ordering::Relaxed) {
            return Err(Error::SlowPeer {
                capacity: self.capacity,
            });
        }
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow.store(true, Ordering::Relaxed);
                Err(Error::SlowPeer {
                    capacity: self.capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }
}

/// A WebSocket connection speaking the mesh protocol.
///
/// Reading happens in [`recv`](Self::recv), on the caller's task; writing happens on a
/// task of the connection's own, fed by a bounded queue through [`Sender`]s. The writer
/// ends when the connection closes or every `Sender` (and the `Connection`) is dropped.
pub struct Connection {
    reader: fastwebsockets::WebSocketRead<ReadHalf<BoxedIo>>,
    sender: Sender,
    codec: FrameCodec,
    inbox: VecDeque<Frame>,
    partial: Option<(OpCode, BytesMut)>,
    max_message: usize,
    idle: Option<IdleTimer>,
    subprotocol: Option<Subprotocol>,
    closed: bool,
    received: Traffic,
    frames_received: metrics::Counter,
}

/// Detects a silent peer without re-arming a timer per frame: frames only record the
/// time; the timer is re-armed when it fires early.
struct IdleTimer {
    limit: Duration,
    last_seen: Instant,
    sleep: std::pin::Pin<Box<Sleep>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("subprotocol", &self.subprotocol)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Connection {
    /// Wraps a stream on which the WebSocket handshake has completed, and starts its
    /// writer task (so this must run inside a tokio runtime).
    pub fn new<S>(
        stream: S,
        role: Role,
        subprotocol: Option<Subprotocol>,
        config: ConnectionConfig,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let boxed: BoxedIo = Box::new(stream);
        let mut ws = WebSocket::after_handshake(boxed, role);
        let max_message = config
            .limits
            .max_wire_payload
            .saturating_add(crate::HEADER_LEN);
        ws.set_max_message_size(max_message.saturating_add(1));
        ws.set_auto_close(true);
        // Pings are answered in `recv`, so that they also count as signs of life.
        ws.set_auto_pong(false);
        let (reader, writer) = ws.split(tokio::io::split);
        let (tx, rx) = mpsc::channel(config.send_queue.max(1));
        let slow = Arc::new(AtomicBool::new(false));
        let closing = Arc::new(Closing::default());
        let codec = FrameCodec::builder()
            .max_wire_payload(config.limits.max_wire_payload)
            .max_decompressed(config.limits.max_decompressed)
            .compression_threshold(config.limits.compression_threshold)
            .compression_level(config.limits.compression_level);
        // A batch never exceeds what the receiver decompresses (headers included).
        let batch = BatchConfig::new(
            config.batch.max_frames,
            config.batch.max_bytes.min(config.limits.max_decompressed),
            config.batch.max_delay,
        );
        let writer_task = Writer {
            ws: writer,
            inbox: Inbox {
                rx,
                backlog: VecDeque::new(),
                bytes: 0,
                limit: config.send_queue_bytes.max(max_message),
                ended: false,
                slow: slow.clone(),
            },
            closing: closing.clone(),
            write_timeout: config.write_timeout,
            codec: codec.clone().build(),
            coalescer: Coalescer::new(batch),
            buf: BytesMut::new(),
            sent: Traffic::new("out"),
        };
        tokio::spawn(writer_task.run(config.ping_interval));
        Self {
            reader,
            sender: Sender {
                tx,
                capacity: config.send_queue.max(1),
                slow,
                closing,
            },
            codec: codec.build(),
            inbox: VecDeque::new(),
            partial: None,
            max_message,
            idle: config.idle_timeout.map(|limit| IdleTimer {
                limit,
                last_seen: Instant::now(),
                sleep: Box::pin(tokio::time::sleep(limit)),
            }),
            subprotocol,
            closed: false,
            received: Traffic::new("in"),
            frames_received: metrics::counter!("mesh_protocol_frames_received_total"),
        }
    }

    /// A handle for sending on this connection.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The subprotocol agreed at the handshake, if any.
    pub fn subprotocol(&self) -> Option<Subprotocol> {
        self.subprotocol
    }

    /// Queues `message` without waiting (see [`Sender::try_send`]).
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.sender.try_send(message)
    }

    /// Queues `message`, waiting for room (see [`Sender::send`]). The future does not
    /// borrow the connection, so it can be awaited while another task reads.
    pub fn send(
        &self,
        message: impl Into<Message>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let sender = self.sender.clone();
        let message = message.into();
        async move { sender.send(message).await }
    }

    /// Closes the connection with a normal close (1000).
    pub fn close(&mut self) {
        self.sender.close(1000, "");
        self.closed = true;
    }

    /// The next thing the peer sent, or `None` once the connection is closed.
    ///
    /// Malformed input is answered here: the peer gets an `error` frame with the
    /// stable code, and a close frame when the stream can no longer be trusted. The
    /// error is also returned, for logging; after one that closes, `recv` returns `None`.
    pub async fn recv(&mut self) -> Option<Result<Incoming, Error>> {
        loop {
            if let Some(frame) = self.inbox.pop_front() {
                return Some(self.decode_frame(&frame));
            }
            if self.closed {
                return None;
            }
            let sender = self.sender.clone();
            let mut obligated = move |frame: WsFrame<'_>| {
                // Pongs and close replies; if the queue is full the peer is dropped anyway.
                let _ = sender
                    .tx
                    .try_send(Outgoing::Control(frame.opcode, frame.payload.to_vec()));
                std::future::ready(Ok::<(), Error>(()))
            };
            // `None`: the peer was silent for longer than the idle timeout.
            let outcome = {
                let read = self.reader.read_frame(&mut obligated);
                match &mut self.idle {
                    None => Some(read.await),
                    Some(idle) => {
                        tokio::pin!(read);
                        loop {
                            tokio::select! {
                                biased;
                                result = &mut read => break Some(result),
                                () = idle.sleep.as_mut() => {
                                    let deadline = idle.last_seen + idle.limit;
                                    if Instant::now() < deadline {
                                        idle.sleep.as_mut().reset(deadline);
                                        continue;
                                    }
                                    break None;
                                }
                            }
                        }
                    }
                }
            };
            let Some(result) = outcome else {
                return Some(Err(self.fail(Error::IdleTimeout, Some(1001))));
            };
            if let Some(idle) = &mut self.idle {
                idle.last_seen = Instant::now();
            }
            let frame = match result {
                Ok(frame) => frame,
                Err(WebSocketError::ConnectionClosed | WebSocketError::UnexpectedEOF) => {
                    self.closed = true;
                    return None;
                }
                Err(WebSocketError::IoError(e)) => {
                    self.closed = true;
                    return Some(Err(Error::Io(e)));
                }
                Err(WebSocketError::FrameTooLarge) => {
                    let err = Error::TooLarge {
                        len: self.max_message + 1,
                        max: self.max_message,
                    };
                    return Some(Err(self.fail(err, Some(1009))));
                }
                Err(e) => return Some(Err(self.fail(Error::WebSocket(Box::new(e)), Some(1002)))),
            };
            let fin = frame.fin;
            let opcode = frame.opcode;
            if matches!(opcode, OpCode::Binary | OpCode::Text | OpCode::Continuation) {
                self.received.count(frame.payload.len());
            }
            let payload = into_bytes(frame.payload);
            if let Some(message) = self.assemble(fin, opcode, payload) {
                match message {
                    Ok((OpCode::Text, bytes)) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => return Some(Ok(Incoming::Text(text))),
                        Err(_) => {
                            let err = Error::WebSocket("text message is not UTF-8".into());
                            return Some(Err(self.fail(err, Some(1007))));
                        }
                    },
                    Ok((_, bytes)) => {
                        let decoded = match self.codec.decode_message(bytes) {
                            Ok(frames) => {
                                self.frames_received.increment(frames.len() as u64);
                                self.inbox.extend(frames);
                                Ok(())
                            }
                            Err(e) => Err(e),
                        };
                        if let Err(e) = decoded {
                            let close = e.close_code();
                            return Some(Err(self.fail(e, close)));
                        }
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
        }
    }

    /// Reassembles fragmented messages with a size cap; `None` while incomplete or for
    /// control frames.
    fn assemble(
        &mut self,
        fin: bool,
        opcode: OpCode,
        payload: Bytes,
    ) -> Option<Result<(OpCode, Bytes), Error>> {
        match opcode {
            OpCode::Binary | OpCode::Text if self.partial.is_some() => Some(Err(self.fail(
                Error::WebSocket("new message inside a fragmented one".into()),
                Some(1002),
            ))),
            OpCode::Binary | OpCode::Text if fin => Some(Ok((opcode, payload))),
            OpCode::Binary | OpCode::Text => {
                self.partial = Some((opcode, BytesMut::from(&payload[..])));
                None
            }
            OpCode::Continuation => {
                let Some((first, mut buf)) = self.partial.take() else {
                    return Some(Err(self.fail(
                        Error::WebSocket("continuation without a message".into()),
                        Some(1002),
                    )));
                };
                if buf.len() + payload.len() > self.max_message {
                    let err = Error::TooLarge {
                        len: buf.len() + payload.len(),
                        max: self.max_message,
                    };
                    return Some(Err(self.fail(err, Some(1009))));
                }
                buf.extend_from_slice(&payload);
                if fin {
                    Some(Ok((first, buf.freeze())))
                } else {
                    self.partial = Some((first, buf));
                    None
                }
            }
            OpCode::Close => {
                self.closed = true;
                None
            }
            OpCode::Ping => {
                let _ = self
                    .sender
                    .tx
                    .try_send(Outgoing::Control(OpCode::Pong, payload.to_vec()));
                None
            }
            OpCode::Pong => None,
        }
    }

    fn decode_frame(&mut self, frame: &Frame) -> Result<Incoming, Error> {
        match Message::from_frame(frame) {
            Ok(message) => Ok(Incoming::Message(message)),
            Err(e) => {
                let close = e.close_code();
                Err(self.fail(e, close))
            }
        }
    }

    /// Answers `error` with an `error` frame, and closes with `close` when given.
    fn fail(&mut self, error: Error, close: Option<u16>) -> Error {
        let _ = self
            .sender
            .tx
            .try_send(Outgoing::Message(Message::Error(ErrorMessage::from(
                &error,
            ))));
        if let Some(code) = close {
            self.sender.close(code, error.code());
            self.closed = true;
            self.inbox.clear();
        }
        error
    }
}

/// One direction's WebSocket messages (data or control) and payload bytes, counted
/// through the `metrics` facade — nothing is recorded unless the application installs
/// a recorder. The handles are looked up once per connection, not per message.
struct Traffic {
    messages: metrics::Counter,
    bytes: metrics::Counter,
}

impl Traffic {
    fn new(direction: &'static str) -> Self {
        Self {
            messages: metrics::counter!("mesh_ws_messages_total", "direction" => direction),
            bytes: metrics::counter!("mesh_ws_bytes_total", "direction" => direction),
        }
    }

    fn count(&self, bytes: usize) {
        self.messages.increment(1);
        self.bytes.increment(bytes as u64);
    }
}

fn into_bytes(payload: Payload<'_>) -> Bytes {
    match payload {
        Payload::Bytes(b) => b.freeze(),
        Payload::Owned(v) => Bytes::from(v),
        other => Bytes::copy_from_slice(&other),
    }
}

/// The writer task: drains the queue, packs messages that queued up together into one
/// batch frame, pings, and closes. Every write is bounded by the write timeout.
struct Writer {
    ws: fastwebsockets::WebSocketWrite<WriteHalf<BoxedIo>>,
    inbox: Inbox,
    closing: Arc<Closing>,
    write_timeout: Option<Duration>,
    codec: FrameCodec,
    coalescer: Coalescer,
    buf: BytesMut,
    sent: Traffic,
}

/// The writer's side of the queue. While a write waits on the socket the writer keeps
/// taking items off the queue into `backlog`, encoded, so what a peer that stopped
/// reading pins is bounded by bytes (`limit`), not only by the queue's count.
struct Inbox {
    rx: mpsc::Receiver<Outgoing>,
    backlog: VecDeque<Outgoing>,
    bytes: usize,
    limit: usize,
    /// Every sender is gone: nothing more will come.
    ended: bool,
    slow: Arc<AtomicBool>,
}

impl Inbox {
    /// The next item already waiting, without waiting for one.
    fn take_now(&mut self) -> Option<Outgoing> {
        if let Some(item) = self.backlog.pop_front() {
            self.bytes -= item.size();
            return Some(item);
        }
        let item = self.rx.try_recv().ok()?;
        Some(self.unpack(item))
    }

    /// An item off the queue, one message at a time: of messages queued at once, the
    /// first now and the rest at the head of the backlog, in order.
    fn unpack(&mut self, item: Outgoing) -> Outgoing {
        let Outgoing::Messages(messages) = item else {
            return item;
        };
        let mut messages = messages.into_iter();
        let first = messages.next();
        let rest: Vec<Outgoing> = messages.map(Outgoing::Message).collect();
        for item in rest.into_iter().rev() {
            self.put_back(item);
        }
        first.map_or(Outgoing::Messages(Vec::new()), Outgoing::Message)
    }

    /// Puts back an item taken but not written yet, to go next.
    fn put_back(&mut self, item: Outgoing) {
        self.bytes += item.size();
        self.backlog.push_front(item);
    }

    /// Holds an item that arrived while a write was in progress; past the byte limit
    /// the peer counts as too slow.
    fn hold(&mut self, item: Outgoing) {
        let item = match item {
            Outgoing::Message(message) => match message.to_frame() {
                Ok(frame) => Outgoing::Frame(frame),
                Err(e) => return drop_unencodable(&e),
            },
            Outgoing::Messages(messages) => {
                for message in messages {
                    self.hold(Outgoing::Message(message));
                }
                return;
            }
            other => other,
        };
        self.bytes += item.size();
        self.backlog.push_back(item);
        if self.bytes > self.limit {
            self.slow.store(true, Ordering::Relaxed);
        }
    }

    /// The next item off the queue, waiting for one; `None` once every sender is gone.
    async fn recv(&mut self) -> Option<Outgoing> {
        let item = self.rx.recv().await;
        self.ended = item.is_none();
        Some(self.unpack(item?))
    }
}

impl Outgoing {
    /// Bytes it holds, as the backlog counts them.
    fn size(&self) -> usize {
        match self {
            Self::Frame(frame) => crate::HEADER_LEN + frame.payload().len(),
            // Not held encoded (a first message, or one queued with others).
            Self::Message(_) => crate::HEADER_LEN,
            Self::Messages(messages) => crate::HEADER_LEN * messages.len(),
            Self::Text(text) => text.len(),
            Self::Control(_, payload) => payload.len(),
            Self::Close(_, reason) => reason.len(),
        }
    }
}

impl Writer {
    async fn run(mut self, ping_interval: Option<Duration>) {
        // One timer for pings, re-armed only when it fires.
        let far = Duration::from_secs(86_400 * 365);
        let ping = tokio::time::sleep(ping_interval.unwrap_or(far));
        tokio::pin!(ping);
        loop {
            if self.inbox.slow.load(Ordering::Relaxed) {
                let _ = self.put(WsFrame::close(1008, b"slow consumer")).await;
                break;
            }
            if let Some((code, reason)) = self.closing.take() {
                let _ = self.put(WsFrame::close(code, reason.as_bytes())).await;
                break;
            }
            let item = if let Some(item) = self.inbox.take_now() {
                item
            } else {
                let closing = self.closing.clone();
                tokio::select! {
                    biased;
                    () = closing.wake.notified() => continue,
                    item = self.inbox.recv() => match item {
                        Some(item) => item,
                        None => {
                            let _ = self.put(WsFrame::close(1000, b"")).await;
                            break;
                        }
                    },
                    () = &mut ping => {
                        ping.as_mut().reset(tokio::time::Instant::now() + ping_interval.unwrap_or(far));
                        if self.put(WsFrame::new(true, OpCode::Ping, None, Payload::Borrowed(b""))).await.is_err() {
                            break;
                        }
                        continue;
                    }
                }
            };
            match self.write(item).await {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
        }
        self.inbox.rx.close();
    }

    /// Writes one frame, giving up after the write timeout.
    async fn put(&mut self, frame: WsFrame<'_>) -> Result<(), WebSocketError> {
        self.sent.count(frame.payload.len());
        put(&mut self.ws, &mut self.inbox, self.write_timeout, frame).await
    }

    /// Writes one queued item (and any messages queued right behind it); false once
    /// the connection should end.
    async fn write(&mut self, item: Outgoing) -> Result<bool, WebSocketError> {
        match item {
            Outgoing::Message(first) => {
                self.buf.clear();
                match self.inbox.take_now() {
                    Some(Outgoing::Message(second)) => {
                        let frames = [first.to_frame(), second.to_frame()];
                        self.write_frames(frames.into_iter().filter_map(keep_encodable))
                            .await?;
                    }
                    Some(Outgoing::Frame(second)) => {
                        self.write_frames(
                            keep_encodable(first.to_frame()).into_iter().chain([second]),
                        )
                        .await?;
                    }
                    other => {
                        if let Some(other) = other {
                            self.inbox.put_back(other);
                        }
                        match first.encode(&mut self.codec, &mut self.buf) {
                            Ok(()) => self.put_buf().await?,
                            Err(e) => drop_unencodable(&e),
                        }
                    }
                }
            }
            Outgoing::Frame(first) => self.write_frames([first].into_iter()).await?,
            // Unpacked when taken off the queue; an empty one has nothing to write.
            Outgoing::Messages(_) => {}
            Outgoing::Text(text) => {
                self.put(WsFrame::text(Payload::Owned(text.into_bytes())))
                    .await?;
            }
            Outgoing::Control(opcode, payload) => {
                self.put(WsFrame::new(true, opcode, None, Payload::Owned(payload)))
                    .await?;
                if opcode == OpCode::Close {
                    return Ok(false);
                }
            }
            Outgoing::Close(code, reason) => {
                self.put(WsFrame::close(code, reason.as_bytes())).await?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes `first` frames, with the messages already queued behind them (no delay is
    /// added to wait for more), packed into one batch frame as long as the batch stays
    /// within its byte budget (headers included). What did not fit goes next.
    async fn write_frames(
        &mut self,
        first: impl Iterator<Item = Frame>,
    ) -> Result<(), WebSocketError> {
        let now = std::time::Instant::now();
        let mut full = false;
        let mut over = Vec::new();
        for frame in first {
            if full || !self.coalescer.fits(&frame) {
                over.push(Outgoing::Frame(frame));
                full = true;
            } else {
                full = self.coalescer.push(frame, now);
            }
        }
        // What did not fit goes next, in its order.
        for item in over.into_iter().rev() {
            self.inbox.put_back(item);
        }
        while !full {
            let frame = match self.inbox.take_now() {
                Some(Outgoing::Message(m)) => match keep_encodable(m.to_frame()) {
                    Some(frame) => frame,
                    None => continue,
                },
                Some(Outgoing::Frame(frame)) => frame,
                Some(other) => {
                    self.inbox.put_back(other);
                    break;
                }
                None => break,
            };
            if !self.coalescer.fits(&frame) {
                self.inbox.put_back(Outgoing::Frame(frame));
                break;
            }
            full = self.coalescer.push(frame, now);
        }
        self.buf.clear();
        match self.coalescer.flush(&mut self.codec, &mut self.buf) {
            Ok(_) => self.put_buf().await,
            Err(e) => {
                drop_unencodable(&e);
                Ok(())
            }
        }
    }

    /// Writes what `buf` holds as one binary message.
    async fn put_buf(&mut self) -> Result<(), WebSocketError> {
        let buf = std::mem::take(&mut self.buf);
        let written = self.put(WsFrame::binary(Payload::Borrowed(&buf))).await;
        self.buf = buf;
        written
    }
}

/// Writes one frame within `limit`, taking what arrives on the queue meanwhile into
/// the inbox's backlog.
async fn put(
    ws: &mut fastwebsockets::WebSocketWrite<WriteHalf<BoxedIo>>,
    inbox: &mut Inbox,
    limit: Option<Duration>,
    frame: WsFrame<'_>,
) -> Result<(), WebSocketError> {
    let write = ws.write_frame(frame);
    tokio::pin!(write);
    let written = async {
        loop {
            tokio::select! {
                biased;
                written = &mut write => return written,
                item = inbox.recv(), if !inbox.ended => {
                    if let Some(item) = item {
                        inbox.hold(item);
                    }
                    // Past the byte limit: give up on the peer, mid-write (no close
                    // frame can follow a half-written one).
                    if inbox.bytes > inbox.limit {
                        return Err(WebSocketError::IoError(std::io::Error::other(
                            "peer too slow: send backlog over its byte limit",
                        )));
                    }
                }
            }
        }
    };
    let Some(limit) = limit else {
        return written.await;
    };
    match tokio::time::timeout(limit, written).await {
        Ok(written) => written,
        Err(_) => {
            tracing::debug!(?limit, "a write timed out: the peer does not read");
            Err(WebSocketError::IoError(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "write timed out",
            )))
        }
    }
}

/// Only a message over the wire limit fails to encode: it is dropped, the rest goes on.
fn keep_encodable(frame: Result<Frame, Error>) -> Option<Frame> {
    frame.map_err(|e| drop_unencodable(&e)).ok()
}

fn drop_unencodable(error: &Error) {
    tracing::warn!(%error, "dropping an outgoing message that cannot be encoded");
}
