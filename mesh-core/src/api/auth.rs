//! Who is calling: API keys (`Authorization: Bearer` or `X-API-Key`, stored hashed)
//! and HS256 JWTs (`tenant_id`, `scopes`, `exp`), then a token bucket per caller.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use mesh_router::{RateLimit, TokenBucket};
use serde::Deserialize;
use sha2::Sha256;

use super::{ApiError, AppState};
use crate::{Scope, TenantId};

/// The authenticated caller, put in the request's extensions for handlers (and MCP
/// tools) to read.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The tenant every record it touches belongs to.
    pub tenant: TenantId,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Who it is, for rate limiting and logs: `key:<id>` or `jwt:<tenant>:<sub>`.
    pub subject: String,
}

impl Principal {
    /// Whether it may do what `scope` allows (admin allows everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// 403 unless it [`allows`](Self::allows) `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs the {} scope", scope_name(scope)),
            ))
        }
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "read",
        Scope::Write => "write",
        Scope::Admin => "admin",
        _ => "agent",
    }
}

/// The claims a Mesh JWT carries.
#[derive(Debug, Deserialize)]
struct Claims {
    tenant_id: TenantId,
    #[serde(default)]
    scopes: Vec<Scope>,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    sub: Option<String>,
}

/// Verifies an HS256 JWT with `secret`; the reason it is refused otherwise.
fn verify_jwt(token: &str, secret: &[u8]) -> Result<Claims, &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a JWT has three parts");
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "a JWT part is not base64url")
    };
    let head: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| "unreadable JWT header")?;
    if head.alg != "HS256" {
        return Err("only HS256 JWTs are accepted");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "bad JWT secret")?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&decode(signature)?)
        .map_err(|_| "the JWT signature does not match")?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?)
        .map_err(|_| "the JWT needs tenant_id, scopes and exp")?;
    let now = chrono::Utc::now().timestamp();
    if claims.exp <= now {
        return Err("the JWT has expired");
    }
    if claims.nbf.is_some_and(|nbf| nbf > now) {
        return Err("the JWT is not valid yet");
    }
    Ok(claims)
}

/// Signs HS256 claims (for tests, tools and admins minting tokens).
pub fn sign_jwt(claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// The credential a request carries: a bearer token or an `X-API-Key`.
pub(crate) fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// How long an API key's record is trusted without asking the engine again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most cached API keys (the cache is cleared when full).
const KEY_CACHE_SIZE: usize = 10_000;

/// Rate limits, JWT settings, and recently seen API keys.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) jwt_secret: Option<Vec<u8>>,
    pub(crate) limit: Option<RateLimit>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
    /// Key hash → its caller, and when it was looked up: saves a trip to the engine
    /// (and maybe the database) per request.
    keys: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Gate {
    pub(crate) fn new(jwt_secret: Option<Vec<u8>>, limit: Option<RateLimit>) -> Self {
        Self {
            jwt_secret,
            limit,
            buckets: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn cached_key(&self, hash: &str) -> Option<Principal> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    fn cache_key(&self, hash: String, principal: &Principal) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= KEY_CACHE_SIZE {
            keys.clear();
        }
        keys.insert(hash, (principal.clone(), Instant::now()));
    }

    /// Whether `subject` may make one more request now.
    fn admit(&self, subject: &str) -> bool {
        let Some(limit) = self.limit else { return true };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .entry(subject.to_owned())
            .or_insert_with(|| TokenBucket::new(limit, now))
            .try_take(now)
    }
}

/// Resolves the caller of a request: 401 without valid credentials.
pub(crate) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let Some(token) = credential(headers).filter(|t| !t.is_empty()) else {
        return Err(unauthorized(
            "credentials required: Authorization: Bearer <key or JWT>, or X-API-Key",
        ));
    };
    if token.matches('.').count() == 2
        && let Some(secret) = &state.gate.jwt_secret
    {
        let claims = verify_jwt(token, secret).map_err(unauthorized)?;
        let sub = claims.sub.unwrap_or_default();
        return Ok(Principal {
            tenant: claims.tenant_id,
            scopes: claims.scopes,
            subject: format!("jwt:{}:{sub}", claims.tenant_id),
        });
    }
    let hash = crate::hash_key(token);
    if let Some(principal) = state.gate.cached_key(&hash) {
        return Ok(principal);
    }
    match state.services.engine.authenticate(token).await {
        Ok(Some(key)) => {
            let principal = Principal {
                tenant: key.tenant_id,
                scopes: key.scopes,
                subject: format!("key:{}", key.id),
            };
            state.gate.cache_key(hash, &principal);
            Ok(principal)
        }
        Ok(None) => Err(unauthorized("unknown API key")),
        Err(e) => Err(e.into()),
    }
}

/// Middleware: authenticates, rate-limits, and hands the [`Principal`] on.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match principal(&state, request.headers()).await {
        Ok(p) => p,
        Err(e) => {
            let mut response = e.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    };
    if !state.gate.admit(&principal.subject) {
        let mut response =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
                .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return response;
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_verify_only_with_the_right_secret_and_in_time() {
        let tenant = TenantId::new();
        let later = chrono::Utc::now().timestamp() + 60;
        let token = sign_jwt(
            &serde_json::json!({"tenant_id": tenant, "scopes": ["read"], "exp": later}),
            b"secret",
        );
        let claims = verify_jwt(&token, b"secret").unwrap();
        assert_eq!(claims.tenant_id, tenant);
        assert_eq!(claims.scopes, vec![Scope::Read]);
        assert_eq!(
            verify_jwt(&token, b"other").unwrap_err(),
            "the JWT signature does not match"
        );
        let expired = sign_jwt(
            &serde_json::json!({"tenant_id": tenant, "scopes": [], "exp": 1}),
            b"secret",
        );
        assert_eq!(
            verify_jwt(&expired, b"secret").unwrap_err(),
            "the JWT has expired"
        );
        let no_tenant = sign_jwt(&serde_json::json!({"exp": later}), b"secret");
        assert!(verify_jwt(&no_tenant, b"secret").is_err());
        assert!(verify_jwt("a.b", b"secret").is_err());
        assert!(verify_jwt("!!.??.**", b"secret").is_err());
        // alg=none is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"tenant_id":"{tenant}","exp":{later}}}"#))
        );
        assert_eq!(
            verify_jwt(&none, b"secret").unwrap_err(),
            "only HS256 JWTs are accepted"
        );
    }
}
