//! Client side: dialing a mesh with an API key, retrying with backoff.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{AUTHORIZATION, CONNECTION, HOST, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper::{Request, Uri};
use rand::Rng;
use tokio::net::TcpStream;

use super::{Backoff, Connection, ConnectionConfig, Role, Subprotocol};
use crate::Error;

/// Where and how to connect.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `ws://host:port/path`, or `wss://…` with the `tls` feature.
    pub url: String,
    /// Sent as `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Offered in `Sec-WebSocket-Protocol`. Default `mesh.v1`.
    pub subprotocols: Vec<Subprotocol>,
    /// How the connection behaves once open.
    pub connection: ConnectionConfig,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Attempts before giving up (at least 1). Default 10.
    pub max_attempts: u32,
    /// Limit on one attempt (TCP connect plus handshake). Default 10 s.
    pub connect_timeout: Duration,
    /// TLS settings for `wss://` URLs; `None` trusts the system's root certificates.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for ClientConfig {
    /// Never shows the key (nor a URL's query, which may carry one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match self.url.split_once('?') {
            Some((path, _)) => format!("{path}?<redacted>"),
            None => self.url.clone(),
        };
        f.debug_struct("ClientConfig")
            .field("url", &url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("subprotocols", &self.subprotocols)
            .field("connection", &self.connection)
            .field("backoff", &self.backoff)
            .field("max_attempts", &self.max_attempts)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl ClientConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            subprotocols: vec![Subprotocol::MeshV1],
            connection: ConnectionConfig::default(),
            backoff: Backoff::default(),
            max_attempts: 10,
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Uses these TLS settings for `wss://` (your own roots, client certificates, …).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the connection behaviour.
    pub fn connection(mut self, connection: ConnectionConfig) -> Self {
        self.connection = connection;
        self
    }

    /// Sets the backoff and how many attempts to make.
    pub fn retry(mut self, backoff: Backoff, max_attempts: u32) -> Self {
        self.backoff = backoff;
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the offered subprotocols.
    pub fn subprotocols(mut self, protocols: impl IntoIterator<Item = Subprotocol>) -> Self {
        self.subprotocols = protocols.into_iter().collect();
        self
    }
}

/// Connects, retrying errors that may pass (refused connections, 5xx, timeouts) with
/// exponential backoff and jitter; a 4xx answer (such as 401) is returned at once.
pub async fn connect(config: &ClientConfig) -> Result<Connection, Error> {
    let mut attempt = 0;
    loop {
        match connect_once(config).await {
            Ok(connection) => return Ok(connection),
            Err(e) if e.is_retryable() && attempt + 1 < config.max_attempts => {
                let delay = config.backoff.delay(attempt, rand::rng().random::<f64>());
                tracing::debug!(error = %e, attempt, ?delay, "connect failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One connection attempt.
pub async fn connect_once(config: &ClientConfig) -> Result<Connection, Error> {
    tokio::time::timeout(config.connect_timeout, handshake(config))
        .await
        .map_err(|_| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))
        })?
}

async fn handshake(config: &ClientConfig) -> Result<Connection, Error> {
    let uri: Uri = config
        .url
        .parse()
        .map_err(|e| Error::WebSocket(Box::new(e)))?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => {
            return Err(Error::WebSocket(
                "the URL must start ws:// or wss://".into(),
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| Error::WebSocket("URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    if !secure {
        return upgrade(config, &uri, host, port, stream).await;
    }
    #[cfg(feature = "tls")]
    {
        let stream = tls::connect(config, host, stream).await?;
        upgrade(config, &uri, host, port, stream).await
    }
    #[cfg(not(feature = "tls"))]
    {
        Err(Error::WebSocket(
            "wss:// needs mesh-protocol's `tls` feature".into(),
        ))
    }
}

/// The WebSocket handshake over an open stream (TCP, or TLS over TCP).
async fn upgrade<S>(
    config: &ClientConfig,
    uri: &Uri,
    host: &str,
    port: u16,
    stream: S,
) -> Result<Connection, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, format!("{host}:{port}"))
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13");
    if let Some(key) = &config.api_key {
        request = request.header(AUTHORIZATION, format!("Bearer {key}"));
    }
    if !config.subprotocols.is_empty() {
        let offered: Vec<&str> = config.subprotocols.iter().map(|p| p.as_str()).collect();
        request = request.header(SEC_WEBSOCKET_PROTOCOL, offered.join(", "));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::WebSocket(Box::new(e)))?;
    let (ws, response) = fastwebsockets::handshake::client(&SpawnExecutor, request, stream)
        .await
        .map_err(|e| match e {
            fastwebsockets::WebSocketError::InvalidStatusCode(status) => {
                Error::HandshakeRefused { status }
            }
            fastwebsockets::WebSocketError::IoError(e) => Error::Io(e),
            other => Error::WebSocket(Box::new(other)),
        })?;
    let subprotocol = response
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(Subprotocol::from_token);
    Ok(Connection::new(
        ws.into_inner(),
        Role::Client,
        subprotocol,
        config.connection,
    ))
}

/// TLS for `wss://` (feature `tls`).
#[cfg(feature = "tls")]
mod tls {
    use std::sync::{Arc, OnceLock};

    use rustls::pki_types::ServerName;
    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;

    use super::ClientConfig;
    use crate::Error;

    /// The system's root certificates, read once; an error if there are none.
    fn system_roots() -> Result<Arc<rustls::ClientConfig>, Error> {
        static ROOTS: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
        ROOTS
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(format!(
                        "no usable root certificates on this system ({} errors); give ClientConfig::tls your own",
                        found.errors.len()
                    ));
                }
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| Error::WebSocket(e.into()))
    }

    /// TLS over `stream` to `host`, its certificate checked against the roots.
    pub(super) async fn connect(
        config: &ClientConfig,
        host: &str,
        stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>, Error> {
        let tls = match &config.tls {
            Some(tls) => tls.clone(),
            None => system_roots()?,
        };
        let name =
            ServerName::try_from(host.to_owned()).map_err(|e| Error::WebSocket(Box::new(e)))?;
        tokio_rustls::TlsConnector::from(tls)
            .connect(name, stream)
            .await
            .map_err(|e| {
                // rustls reports what it refused (the certificate, the protocol) as
                // invalid data; anything else is the connection's fault and may pass.
                if e.kind() == std::io::ErrorKind::InvalidData {
                    Error::Tls(Box::new(e))
                } else {
                    Error::Io(e)
                }
            })
    }
}

/// Runs hyper's connection future on tokio.
struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening issue, item 17: `Debug` printed the API key.
    #[test]
    fn hardening_17_debug_never_shows_the_key() {
        let config = ClientConfig::new("ws://mesh/ws?api_key=from-query").api_key("from-header");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("from-query") && !shown.contains("from-header"),
            "{shown}"
        );
        assert!(shown.contains("ws://mesh/ws?<redacted>"));
    }
}
