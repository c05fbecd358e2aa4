//! The REST client every command goes through: one base URL, one credential, errors
//! turned into [`CliError`]s carrying the server's code and message.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::error::CliError;

/// A client of one Mesh REST API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`), sending `key`.
    pub fn new(base: &str, key: Option<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// `GET path` (with its query).
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::DELETE, path, None).await
    }

    /// Sends one request; a success's JSON body (`null` when empty), or the error the
    /// server answered with.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(json);
        }
        Err(api_error(status, &json))
    }
}

/// The error a failed response carries: `{"code", "message"}` from Mesh, or the
/// status alone from anything else on the way.
fn api_error(status: StatusCode, body: &Value) -> CliError {
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    CliError::Api {
        status: status.as_u16(),
        code: field("code").unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_lowercase()
                .replace(' ', "_")
        }),
        message: field("message")
            .or_else(|| body.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

/// The innermost cause of a transport error ("connection refused"), which says more
/// than reqwest's outer "error sending request".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}
