//! The dashboard (feature `ui`), served at `/ui`: three static files compiled into the
//! binary — plain HTML, CSS and JavaScript, no framework and no build step — that sign
//! in with an API key or JWT and read everything through the REST API and its live
//! event feed. The files hold no data: without credentials there is nothing to see.
//! `docs/dashboard.md` shows the pages.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::http::AppState;

/// One file of the dashboard, with its gzipped form made on first use.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    gzipped: OnceLock<Vec<u8>>,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            gzipped: OnceLock::new(),
        }
    }

    fn gzipped(&self) -> &[u8] {
        self.gzipped.get_or_init(|| {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let _ = encoder.write_all(self.body.as_bytes());
            encoder.finish().unwrap_or_default()
        })
    }

    /// The file, gzipped when the client takes it, with headers that keep the page to
    /// its own origin.
    fn serve(&self, request: &HeaderMap) -> Response {
        let gzip = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let mut response = if gzip {
            let mut response = self.gzipped().to_vec().into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        } else {
            self.body.into_response()
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}

static INDEX: Asset = Asset::new(include_str!("../ui/index.html"), "text/html; charset=utf-8");
static SCRIPT: Asset = Asset::new(
    include_str!("../ui/app.js"),
    "text/javascript; charset=utf-8",
);
static STYLE: Asset = Asset::new(include_str!("../ui/app.css"), "text/css; charset=utf-8");

/// The dashboard's routes: `/ui` (and `/ui/`), its script and style sheet, and `/`
/// sending a browser there.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { INDEX.serve(&headers) }),
        )
        .route(
            "/ui/app.js",
            get(|headers: HeaderMap| async move { SCRIPT.serve(&headers) }),
        )
        .route(
            "/ui/app.css",
            get(|headers: HeaderMap| async move { STYLE.serve(&headers) }),
        )
        .route("/ui/{*rest}", get(|| async { StatusCode::NOT_FOUND }))
}

/// Bytes a first load transfers (the three files, gzipped): what `docs/dashboard.md`
/// reports.
pub fn first_load_bytes() -> usize {
    [&INDEX, &SCRIPT, &STYLE]
        .iter()
        .map(|asset| asset.gzipped().len())
        .sum()
}
