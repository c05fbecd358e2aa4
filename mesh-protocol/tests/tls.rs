//! `wss://`: the client over TLS (feature `tls`) to a TLS server on loopback whose
//! certificate a test CA signed (`tests/tls/`, valid until 2126).

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mesh_protocol::ws::{ClientConfig, Incoming, connect, credential, upgrade};
use mesh_protocol::{Error, Heartbeat, Message};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

const KEY: &str = "secret";

fn pem(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A TLS WebSocket server that echoes; its `wss://` URL (host `localhost`).
async fn tls_echo_server() -> String {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pem("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pem("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|mut req: Request<Body>| async move {
                    if credential(&req).as_deref() != Some(KEY) {
                        let refused = Response::builder().status(401);
                        return Ok::<_, Infallible>(refused.body(Empty::<Bytes>::new()).unwrap());
                    }
                    let (response, pending) = upgrade(&mut req).unwrap();
                    tokio::spawn(async move {
                        let mut connection =
                            pending.into_connection(Default::default()).await.unwrap();
                        let sender = connection.sender();
                        while let Some(Ok(Incoming::Message(m))) = connection.recv().await {
                            let _ = sender.send(m).await;
                        }
                    });
                    Ok(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    format!("wss://localhost:{port}/ws")
}

/// Client TLS settings trusting only the test CA.
fn trusting_the_test_ca() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pem("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Hardening issue, item 19: the client refused `wss://` URLs outright.
#[tokio::test]
async fn hardening_19_the_client_speaks_wss_to_a_trusted_server() {
    let url = tls_echo_server().await;
    let config = ClientConfig::new(&url)
        .api_key(KEY)
        .tls(trusting_the_test_ca());
    let mut connection = connect(&config).await.unwrap();
    let ping = Message::from(Heartbeat::new(Some(1), Some(0.5)));
    connection.send(ping.clone()).await.unwrap();
    match connection.recv().await {
        Some(Ok(Incoming::Message(echoed))) => assert_eq!(echoed, ping),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error_and_not_retried() {
    let url = tls_echo_server().await;
    // The system's roots do not include the test CA.
    let config = ClientConfig::new(&url).api_key(KEY);
    let started = std::time::Instant::now();
    let err = connect(&config).await.unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(err.code(), "tls");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "it was retried"
    );
}
