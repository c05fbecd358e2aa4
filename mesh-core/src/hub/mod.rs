//! The agent hub (feature `hub`): the `GET /ws` endpoint of the protocol, served by an
//! [`Engine`].
//!
//! Agents authenticate at upgrade time through the [credential gate](Gate) (an API key
//! or a JWT with the `agent` scope, in `Authorization: Bearer`, `X-API-Key` or the
//! `api_key` query parameter) — refused with 401/403 before the upgrade otherwise. The
//! first message must be `hello`; the engine answers `welcome`, then routes tasks to
//! the agent. A peer that does not read is dropped by the transport's bounded queue
//! (its tasks are reassigned); `goodbye` drains an agent. Agents open, edit and follow
//! shared documents on the same connection (`docs.rs`).

mod docs;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mesh_protocol::ws::{Connection, ConnectionConfig, Incoming, Sender, upgrade};
use mesh_protocol::{ErrorMessage, JsonRpcError, JsonRpcMessage, Message};
use tokio::net::TcpListener;

use crate::domain::{Action, AgentId, AuditEntry, Decision, Resource, TenantId};
use crate::engine::Engine;
use crate::http::{ApiError, Gate, GateConfig, permit};
use crate::shared_docs::{DocLimits, SharedDocs};

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

/// The hub: an engine, the gate agents pass, and how to serve them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    engine: Engine,
    gate: Arc<Gate>,
    config: Arc<HubConfig>,
    docs: SharedDocs,
}

impl Hub {
    /// A hub serving `engine`, with a gate of its own that takes API keys.
    pub fn new(engine: Engine, config: HubConfig) -> Self {
        let gate = Arc::new(Gate::new(engine.clone(), GateConfig::default()));
        Self::with_gate(engine, gate, config)
    }

    /// A hub serving `engine` behind `gate` (the one the other surfaces share).
    pub fn with_gate(engine: Engine, gate: Arc<Gate>, config: HubConfig) -> Self {
        Self {
            docs: SharedDocs::new(&engine, DocLimits::default()),
            engine,
            gate,
            config: Arc::new(config),
        }
    }

    /// Serves `docs` to agents (the ones the other surfaces share; by default the hub
    /// has its own).
    pub fn with_docs(mut self, docs: SharedDocs) -> Self {
        self.docs = docs;
        self
    }

    /// The engine it serves.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// `GET /ws` (the hub) and `GET /healthz`, on their own.
    pub fn router(&self) -> Router {
        let hub = self.clone();
        Router::new()
            .route(
                "/ws",
                get(move |request: Request| async move { hub.upgrade(request).await }),
            )
            .route("/healthz", get(crate::http::healthz))
    }

    /// Serves [`router`](Self::router) on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    }

    /// Answers `GET /ws` for an agent: authenticates, upgrades, and runs the session.
    pub async fn upgrade(&self, mut request: Request) -> Response {
        let who = match self.gate.check(&request).await {
            Ok(who) => who,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let connect = |decision| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            AuditEntry::new(who.subject.clone(), "agent.connect", "hub", decision, id)
        };
        let audit = &self.gate.access().audit;
        if let Err(e) = permit(&who, Action::Connect, Resource::Agents, None) {
            audit.record_later(&who.tenant.to_string(), connect(Decision::Refused));
            return ApiError::from(e).into_response();
        }
        audit.record_later(&who.tenant.to_string(), connect(Decision::Allowed));
        let (response, pending) = match upgrade(&mut request) {
            Ok(upgraded) => upgraded,
            Err(e) => {
                return ApiError::new(StatusCode::BAD_REQUEST, "bad_upgrade", e.to_string())
                    .into_response();
            }
        };
        let (engine, config, tenant) = (self.engine.clone(), self.config.clone(), who.tenant);
        let docs = self.docs.clone();
        let gate = self.gate.clone();
        tokio::spawn(async move {
            match pending.into_connection(config.connection).await {
                Ok(connection) => {
                    let _open = crate::observe::Open::connection("hub");
                    let closer = connection.sender();
                    let revoked =
                        gate.on_revoked(&who, move || closer.close(1008, "API key revoked"));
                    let docs = docs::DocSession::new(docs, tenant, connection.sender());
                    session(engine, tenant, connection, config.hello_timeout, docs).await;
                    revoked.abort();
                }
                Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
            }
        });
        response.map(|_| axum::body::Body::empty())
    }
}

/// One agent's connection, from `hello` to disconnect.
async fn session(
    engine: Engine,
    tenant: TenantId,
    mut connection: Connection,
    hello_timeout: Duration,
    mut docs: docs::DocSession,
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
            Ok(Incoming::Message(message)) if docs::DocSession::takes(&message) => {
                docs.handle(message).await;
            }
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
    docs.close_all();
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

/// MCP over this socket is served by the MCP server (subprotocol `mcp`); on an agent
/// connection every request gets "method not found" (-32601), unreadable text a parse
/// error.
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
