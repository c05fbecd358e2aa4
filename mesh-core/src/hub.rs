//! The agent hub (feature `hub`): the `GET /ws` endpoint of the protocol, served by an
//! [`Engine`].
//!
//! Agents authenticate at upgrade time with an API key that has the `agent` scope
//! (`Authorization: Bearer`, `X-API-Key`, or the `api_key` query parameter) — refused
//! with 401/403 before the upgrade otherwise, and never logged. The first message must
//! be `hello`; the engine answers `welcome`, then routes tasks to the agent. A peer
//! that does not read is dropped by the transport's bounded queue (its tasks are
//! reassigned); `goodbye` drains an agent.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mesh_protocol::ws::{Connection, ConnectionConfig, Incoming, Sender, credential, upgrade};
use mesh_protocol::{ErrorMessage, JsonRpcError, JsonRpcMessage, Message};
use tokio::net::TcpListener;

use crate::{AgentId, Engine, Scope, TenantId};

/// Hub settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// The WebSocket connection's limits, queue size and keep-alive.
    pub connection: ConnectionConfig,
    /// How long a new connection has to send `hello`. Default 10 s.
    pub hello_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            connection: ConnectionConfig::default(),
            hello_timeout: Duration::from_secs(10),
        }
    }
}

impl HubConfig {
    /// Sets the connection settings.
    pub fn connection(mut self, connection: ConnectionConfig) -> Self {
        self.connection = connection;
        self
    }
}

/// The hub: an engine and how to serve it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    engine: Engine,
    config: Arc<HubConfig>,
}

/// An HTTP response with a full body.
pub type HttpResponse = Response<Full<Bytes>>;

fn json(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({"code": code, "message": message}).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

impl Hub {
    /// A hub serving `engine`.
    pub fn new(engine: Engine, config: HubConfig) -> Self {
        Self {
            engine,
            config: Arc::new(config),
        }
    }

    /// The engine it serves.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The settings of the WebSocket connections it accepts.
    pub fn connection_config(&self) -> ConnectionConfig {
        self.config.connection
    }

    /// Serves connections from `listener` until `shutdown` resolves.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            let _ = stream.set_nodelay(true);
            let hub = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let hub = hub.clone();
                    async move { Ok::<_, Infallible>(hub.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    /// Answers one HTTP request: `GET /ws` (the agent hub) and `GET /healthz`.
    pub async fn handle<B>(&self, mut request: Request<B>) -> HttpResponse {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => json(StatusCode::OK, "ok", "alive"),
            (&Method::GET, "/ws") => self.upgrade(&mut request).await,
            _ => json(StatusCode::NOT_FOUND, "not_found", "no such route"),
        }
    }

    async fn upgrade<B>(&self, request: &mut Request<B>) -> HttpResponse {
        let Some(key) = credential(request) else {
            return json(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an API key is required",
            );
        };
        let record = match self.engine.authenticate(&key).await {
            Ok(Some(record)) => record,
            Ok(None) => return json(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key"),
            Err(e) => {
                return json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    &e.to_string(),
                );
            }
        };
        if !record.allows(Scope::Agent) {
            return json(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the key lacks the agent scope",
            );
        }
        let (response, pending) = match upgrade(request) {
            Ok(upgraded) => upgraded,
            Err(e) => return json(StatusCode::BAD_REQUEST, "bad_upgrade", &e.to_string()),
        };
        let (engine, config, tenant) = (self.engine.clone(), self.config.clone(), record.tenant_id);
        tokio::spawn(async move {
            match pending.into_connection(config.connection).await {
                Ok(connection) => session(engine, tenant, connection, config.hello_timeout).await,
                Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
            }
        });
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, Full::new(Bytes::new()))
    }
}

/// One agent's connection, from `hello` to disconnect.
async fn session(
    engine: Engine,
    tenant: TenantId,
    mut connection: Connection,
    hello_timeout: Duration,
) {
    let sender = connection.sender();
    let hello =
        match tokio::time::timeout(hello_timeout, first_hello(&mut connection, &sender)).await {
            Ok(Some(hello)) => hello,
            Ok(None) => return,
            Err(_) => {
                let _ = sender.try_send(ErrorMessage::new("hello_timeout", "no hello in time"));
                sender.close(1008, "hello expected");
                return;
            }
        };
    let (welcome, session) = match engine
        .connect_agent(tenant, hello, Arc::new(sender.clone()))
        .await
    {
        Ok(registered) => registered,
        Err(e) => {
            let _ = sender.try_send(ErrorMessage::new("registration_refused", e.to_string()));
            sender.close(1008, "registration refused");
            return;
        }
    };
    let agent = AgentId::from_uuid(welcome.agent_id);
    tracing::debug!(%agent, "agent session started");
    while let Some(item) = connection.recv().await {
        match item {
            Ok(Incoming::Message(message)) => {
                if engine.agent_message(agent, session, message).await.is_err() {
                    break;
                }
            }
            Ok(Incoming::Text(text)) => answer_json_rpc(&sender, &text),
            Ok(_) => {}
            // The transport has already answered malformed input on the wire.
            Err(e) => tracing::debug!(error = %e, %agent, "malformed input from an agent"),
        }
    }
    engine.disconnect_agent(agent, session).await;
}

/// Reads until `hello`; other messages get an `error`.
async fn first_hello(connection: &mut Connection, sender: &Sender) -> Option<mesh_protocol::Hello> {
    loop {
        match connection.recv().await? {
            Ok(Incoming::Message(Message::Hello(hello))) => return Some(hello),
            Ok(Incoming::Text(text)) => answer_json_rpc(sender, &text),
            Ok(_) => {
                let _ = sender.try_send(ErrorMessage::new("hello_required", "send hello first"));
            }
            Err(_) => {}
        }
    }
}

/// MCP over this socket is served by the MCP server; here every request gets
/// "method not found" (-32601), unreadable text a parse error.
fn answer_json_rpc(sender: &Sender, text: &str) {
    let reply = match JsonRpcMessage::from_slice(text.as_bytes()) {
        Ok(JsonRpcMessage::Request { id, .. }) => JsonRpcMessage::Error {
            id: Some(id),
            error: JsonRpcError::new(JsonRpcError::METHOD_NOT_FOUND, "method not found"),
        },
        Ok(_) => return,
        Err(_) => JsonRpcMessage::Error {
            id: None,
            error: JsonRpcError::new(JsonRpcError::PARSE_ERROR, "parse error"),
        },
    };
    if let Ok(text) = serde_json::to_string(&reply) {
        let _ = sender.try_send_text(text);
    }
}
