//! Server side: upgrading a hyper request and reading the credential it carries.

use std::fmt;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{AUTHORIZATION, HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::{Connection, ConnectionConfig, Role};
use crate::Error;

/// The WebSocket subprotocols of the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subprotocol {
    /// `mesh.v1`: binary mesh frames (and JSON-RPC text).
    MeshV1,
    /// `mcp`: JSON-RPC text messages for MCP clients.
    Mcp,
}

impl Subprotocol {
    /// The token in `Sec-WebSocket-Protocol`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MeshV1 => "mesh.v1",
            Self::Mcp => "mcp",
        }
    }

    /// Parses a token (case-sensitive, as RFC 6455 requires).
    pub fn from_token(token: &str) -> Option<Self> {
        match token {
            "mesh.v1" => Some(Self::MeshV1),
            "mcp" => Some(Self::Mcp),
            _ => None,
        }
    }

    /// The first protocol the client offered that the mesh speaks.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a HeaderValue>) -> Option<Self> {
        offered
            .into_iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|token| Self::from_token(token.trim()))
    }
}

impl fmt::Display for Subprotocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An accepted upgrade: send its response, then await [`into_connection`](Self::into_connection).
#[derive(Debug)]
pub struct Upgrade {
    fut: fastwebsockets::upgrade::UpgradeFut,
    subprotocol: Option<Subprotocol>,
}

impl Upgrade {
    /// The subprotocol echoed to the client.
    pub fn subprotocol(&self) -> Option<Subprotocol> {
        self.subprotocol
    }

    /// Waits for hyper to hand over the upgraded stream and wraps it in a [`Connection`].
    pub async fn into_connection(self, config: ConnectionConfig) -> Result<Connection, Error> {
        let ws = self.fut.await.map_err(|e| Error::WebSocket(Box::new(e)))?;
        let io: TokioIo<hyper::upgrade::Upgraded> = ws.into_inner();
        Ok(Connection::new(io, Role::Server, self.subprotocol, config))
    }
}

/// Accepts a WebSocket upgrade request: checks the handshake headers, picks the
/// subprotocol (`mesh.v1` or `mcp`) the client offered and echoes it, and returns the
/// `101 Switching Protocols` response to send plus the pending [`Upgrade`].
///
/// Authenticate before calling this (see [`credential`]); refuse with 401 otherwise.
pub fn upgrade<B>(request: &mut Request<B>) -> Result<(Response<Empty<Bytes>>, Upgrade), Error> {
    if !fastwebsockets::upgrade::is_upgrade_request(request) {
        return Err(Error::WebSocket("not a WebSocket upgrade request".into()));
    }
    let subprotocol = Subprotocol::negotiate(request.headers().get_all(SEC_WEBSOCKET_PROTOCOL));
    let (mut response, fut) = fastwebsockets::upgrade::upgrade(&mut *request)
        .map_err(|e| Error::WebSocket(Box::new(e)))?;
    if let Some(p) = subprotocol {
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p.as_str()));
    }
    Ok((response, Upgrade { fut, subprotocol }))
}

/// The credential a client presented at upgrade: `Authorization: Bearer …`, then
/// `X-API-Key`, then the `api_key` query parameter (for browsers, which cannot set
/// upgrade headers). Never log it.
pub fn credential<B>(request: &Request<B>) -> Option<String> {
    let headers = request.headers();
    if let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    {
        return Some(token.trim().to_owned());
    }
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    request.uri().query()?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "api_key").then(|| percent_decode(value)).flatten()
    })
}

/// Decodes `%XX` escapes and `+`; `None` when the result is not UTF-8 or an escape is cut.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        f: impl FnOnce(hyper::http::request::Builder) -> hyper::http::request::Builder,
    ) -> Request<()> {
        f(Request::builder().uri("/ws")).body(()).unwrap()
    }

    #[test]
    fn reads_the_credential_from_header_or_query() {
        assert_eq!(
            credential(&request(|r| r.header("Authorization", "Bearer k1"))).as_deref(),
            Some("k1")
        );
        assert_eq!(
            credential(&request(|r| r.header("X-API-Key", "k2"))).as_deref(),
            Some("k2")
        );
        assert_eq!(
            credential(&request(|r| r.uri("/ws?x=1&api_key=a%2Bb%3D"))).as_deref(),
            Some("a+b=")
        );
        assert_eq!(credential(&request(|r| r.uri("/ws?api_key=%zz"))), None);
        assert_eq!(
            credential(&request(|r| r.header("Authorization", "Basic xyz"))),
            None
        );
    }

    #[test]
    fn negotiates_the_first_known_subprotocol() {
        let offered = [
            HeaderValue::from_static("chat, mcp"),
            HeaderValue::from_static("mesh.v1"),
        ];
        assert_eq!(Subprotocol::negotiate(&offered), Some(Subprotocol::Mcp));
        assert_eq!(
            Subprotocol::negotiate(&[HeaderValue::from_static("chat")]),
            None
        );
    }
}
