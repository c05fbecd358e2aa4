//! The one credential gate every surface goes through — the agent hub, REST, MCP over
//! Streamable HTTP and MCP over WebSocket: the same credentials in the same places, one
//! cache of looked-up API keys, one rate limiter, one [`Principal`].
//!
//! A credential is an API key or an HS256 JWT, taken from `Authorization: Bearer`, then
//! `X-API-Key`, then — on WebSocket upgrades only, for clients that cannot set headers
//! (browsers, the Python MCP SDK's WebSocket client) — the `api_key` query parameter.
//! A credential is never logged.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Uri, header};
use mesh_router::{RateLimit, TokenBucket};

use super::jwt;
use tokio::sync::broadcast;
use uuid::Uuid;

pub use super::permit::{AuthError, permit};
use crate::access::Access;
use crate::domain::{Principal, TenantId, hash_key};
use crate::engine::Engine;

/// Gate settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct GateConfig {
    /// The HS256 secret JWTs are verified with; JWTs are refused without one.
    pub jwt_secret: Option<Vec<u8>>,
    /// Requests per second and burst allowed per API key or JWT subject; unlimited if
    /// `None`.
    pub rate_limit: Option<(f64, f64)>,
    /// How long a looked-up API key is trusted without asking the stores again.
    /// Default 30 s.
    pub key_ttl: Duration,
    /// How long an unknown API key is remembered as unknown (so a flood of bad keys
    /// does not reach the database). Default 5 s.
    pub unknown_key_ttl: Duration,
    /// Most API keys cached (known and unknown). Default 10,000.
    pub key_cache_size: usize,
    /// The `iss` every JWT must carry, when set.
    pub jwt_issuer: Option<String>,
    /// An `aud` every JWT must carry, when set.
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on a JWT's `exp` and `nbf`. Default 60 s.
    pub jwt_leeway: Duration,
    /// Failed credential checks allowed per client address: per second, and burst.
    /// Past it, the address gets 429 until its bucket refills — an unauthenticated
    /// flood cannot keep the gate busy. Default 10/s, bursts of 50. Applies when the
    /// server records client addresses (`ConnectInfo`, as the binaries do).
    pub failures_per_address: (f64, f64),
    /// Whether a WebSocket upgrade may carry its API key in the `api_key` query
    /// parameter (for clients that cannot set headers there: browsers, the Python MCP
    /// SDK). Off by default: URLs end up in proxy and access logs.
    pub query_keys: bool,
    /// The operator's tenant: its admins also manage tenants. `None`: nobody does.
    pub operator_tenant: Option<TenantId>,
}

impl std::fmt::Debug for GateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateConfig")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("rate_limit", &self.rate_limit)
            .field("key_ttl", &self.key_ttl)
            .field("unknown_key_ttl", &self.unknown_key_ttl)
            .field("key_cache_size", &self.key_cache_size)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_leeway", &self.jwt_leeway)
            .field("failures_per_address", &self.failures_per_address)
            .field("query_keys", &self.query_keys)
            .field("operator_tenant", &self.operator_tenant)
            .finish()
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            rate_limit: None,
            key_ttl: Duration::from_secs(30),
            unknown_key_ttl: Duration::from_secs(5),
            key_cache_size: 10_000,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway: Duration::from_secs(60),
            failures_per_address: (10.0, 50.0),
            query_keys: false,
            operator_tenant: None,
        }
    }
}

/// A gate setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateConfigError {
    /// An HS256 secret shorter than the hash is guessable.
    #[error("the JWT secret has {len} bytes; at least {min} are needed", min = jwt::MIN_SECRET_LEN)]
    ShortJwtSecret {
        /// Its length.
        len: usize,
    },
}

impl GateConfig {
    /// Checks the settings; binaries call it at start-up and refuse to start on an
    /// error. (A gate built from a config that fails it accepts no JWT at all.)
    pub fn check(&self) -> Result<(), GateConfigError> {
        match &self.jwt_secret {
            Some(secret) if secret.len() < jwt::MIN_SECRET_LEN => {
                Err(GateConfigError::ShortJwtSecret { len: secret.len() })
            }
            _ => Ok(()),
        }
    }
}

/// The credential gate. Cheap to share (`Arc`).
pub struct Gate {
    engine: Engine,
    access: Access,
    config: GateConfig,
    /// The JWT secret, if one fit to use was configured.
    jwt: Option<(Vec<u8>, jwt::Rules)>,
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
    /// Failed credential checks by client address.
    failures: Mutex<HashMap<IpAddr, TokenBucket>>,
    /// Key hash → its caller (`None`: no such key) and when it was looked up.
    keys: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
    /// Revoked keys not yet dropped from `keys`.
    revocations: Mutex<broadcast::Receiver<Uuid>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("config", &self.config)
            .finish()
    }
}

impl Gate {
    /// A gate that looks API keys up through `engine`, with roles and an audit log of
    /// its own on the engine's stores.
    pub fn new(engine: Engine, config: GateConfig) -> Self {
        let access = Access::new(&engine);
        Self::with_access(engine, access, config)
    }

    /// A gate that looks API keys up through `engine` and roles through `access`
    /// (whose audit log it and the surfaces write to).
    pub fn with_access(engine: Engine, access: Access, config: GateConfig) -> Self {
        let limit = config
            .rate_limit
            .map(|(per_second, burst)| RateLimit::new(per_second, burst));
        let usable = config.check();
        if let Err(e) = &usable {
            tracing::error!(error = %e, "JWTs are refused");
        }
        let jwt = config
            .jwt_secret
            .clone()
            .filter(|_| usable.is_ok())
            .map(|secret| {
                let rules = jwt::Rules {
                    issuer: config.jwt_issuer.clone(),
                    audience: config.jwt_audience.clone(),
                    leeway: i64::try_from(config.jwt_leeway.as_secs()).unwrap_or(i64::MAX),
                };
                (secret, rules)
            });
        Self {
            revocations: Mutex::new(engine.revocations()),
            access,
            engine,
            config,
            jwt,
            limit,
            buckets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The credential of a request: `Authorization: Bearer`, `X-API-Key`, and — when
    /// [`GateConfig::query_keys`] allows it — on a WebSocket upgrade the `api_key`
    /// query parameter.
    pub fn credential(&self, headers: &HeaderMap, uri: &Uri) -> Option<String> {
        if let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            return value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .map(|t| t.trim().to_owned());
        }
        if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            return Some(key.trim().to_owned());
        }
        let upgrade = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if !upgrade || !self.config.query_keys {
            return None;
        }
        let axum::extract::Query(mut query) =
            axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri).ok()?;
        query.remove("api_key")
    }

    /// The caller a credential stands for, rate limit included.
    pub async fn authenticate(&self, credential: Option<&str>) -> Result<Principal, AuthError> {
        let token = credential
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let principal = if token.matches('.').count() == 2
            && let Some((secret, rules)) = &self.jwt
        {
            jwt::verify(token, secret, rules)
                .map_err(AuthError::InvalidJwt)?
                .into_principal()
        } else {
            self.key(token).await?
        };
        if !self.admit(&principal.subject) {
            return Err(AuthError::RateLimited);
        }
        if principal.roles.is_empty() {
            return Ok(principal);
        }
        let roles = principal.roles.clone();
        let grants = self.access.roles.grants(principal.tenant, &roles).await?;
        Ok(principal.with_roles(roles, grants))
    }

    /// The tenant whose audit log records refusals of callers with no tenant (bad
    /// credentials): the operator's, else the engine's own.
    pub fn refusals_tenant(&self) -> String {
        self.config.operator_tenant.map_or_else(
            || crate::domain::SYSTEM_TENANT.to_owned(),
            |t| t.to_string(),
        )
    }

    /// Roles and the audit log.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The caller of a request: its credential checked, its client address (when the
    /// server records it) limited in failed checks. Reads the request before it
    /// awaits, so the future holds no borrow of it.
    pub fn check<B>(
        &self,
        request: &axum::http::Request<B>,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send + '_ {
        let address = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let credential = self.credential(request.headers(), request.uri());
        async move {
            if let Some(ip) = address
                && !self.may_try(ip)
            {
                return Err(AuthError::RateLimited);
            }
            let result = self.authenticate(credential.as_deref()).await;
            if let (
                Some(ip),
                Err(AuthError::Missing | AuthError::InvalidJwt(_) | AuthError::UnknownKey),
            ) = (address, &result)
            {
                self.failed(ip);
            }
            result
        }
    }

    /// Whether `ip` has failed credential checks left.
    fn may_try(&self, ip: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .get(&ip)
            .is_none_or(|bucket| bucket.has_token(Instant::now()))
    }

    /// Charges a failed credential check to `ip`.
    fn failed(&self, ip: IpAddr) {
        let (per_second, burst) = self.config.failures_per_address;
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= self.config.key_cache_size {
            // Forget the addresses whose buckets are full again.
            failures.retain(|_, bucket| !bucket.has_token(now));
        }
        failures
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(RateLimit::new(per_second, burst), now))
            .try_take(now);
    }

    /// Whether `who` administers the operator's tenant (and so manages tenants).
    pub fn is_operator(&self, who: &Principal) -> bool {
        who.grants.is_everything() && self.config.operator_tenant == Some(who.tenant)
    }

    /// Resolves when the API key `who` authenticated with is revoked — here or on
    /// another instance on the same database — so a session opened with it can end;
    /// never for a JWT. Also resolves if revocations came too fast to follow: the
    /// session's client connects again and is checked afresh.
    pub fn until_revoked(&self, who: &Principal) -> impl Future<Output = ()> + Send + 'static {
        let mut revocations = self.engine.revocations();
        let key = who.key;
        async move {
            let Some(key) = key else {
                return std::future::pending().await;
            };
            loop {
                match revocations.recv().await {
                    Ok(id) if id == key => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// Runs `then` when the API key `who` authenticated with is revoked (see
    /// [`until_revoked`](Self::until_revoked)); abort the handle when the session ends.
    pub fn on_revoked(
        &self,
        who: &Principal,
        then: impl FnOnce() + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let revoked = self.until_revoked(who);
        tokio::spawn(async move {
            revoked.await;
            then();
        })
    }

    /// Drops the keys revoked since the last look from the cache (all of them if too
    /// many were revoked to follow): a revoked key is refused at once.
    fn forget_revoked(&self) {
        let mut revoked = Vec::new();
        let mut lagged = false;
        {
            let mut revocations = self.revocations.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                match revocations.try_recv() {
                    Ok(id) => revoked.push(id),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                    Err(_) => break,
                }
            }
        }
        if revoked.is_empty() && !lagged {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if lagged {
            keys.clear();
        } else {
            keys.retain(|_, (principal, _)| {
                principal
                    .as_ref()
                    .and_then(|p| p.key)
                    .is_none_or(|id| !revoked.contains(&id))
            });
        }
    }

    async fn key(&self, token: &str) -> Result<Principal, AuthError> {
        self.forget_revoked();
        let hash = hash_key(token);
        if let Some(cached) = self.cached(&hash) {
            return cached.ok_or(AuthError::UnknownKey);
        }
        let found = self
            .engine
            .authenticate(token)
            .await?
            .map(|key| Principal::from_key(&key));
        self.remember(hash, found.clone());
        found.ok_or(AuthError::UnknownKey)
    }

    fn cached(&self, hash: &str) -> Option<Option<Principal>> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let (principal, at) = keys.get(hash)?;
        let ttl = if principal.is_some() {
            self.config.key_ttl
        } else {
            self.config.unknown_key_ttl
        };
        (at.elapsed() < ttl).then(|| principal.clone())
    }

    fn remember(&self, hash: String, principal: Option<Principal>) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= self.config.key_cache_size {
            keys.clear();
        }
        keys.insert(hash, (principal, Instant::now()));
    }

    /// Whether `subject` may make one more request now.
    fn admit(&self, subject: &str) -> bool {
        let Some(limit) = self.limit else { return true };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = buckets.get_mut(subject) {
            return bucket.try_take(now);
        }
        let mut bucket = TokenBucket::new(limit, now);
        let admitted = bucket.try_take(now);
        buckets.insert(subject.to_owned(), bucket);
        admitted
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::{EngineError, Scope};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[tokio::test]
    async fn credentials_come_from_bearer_then_x_api_key_then_the_query_of_upgrades() {
        let engine = crate::Engine::in_memory().await;
        let config = GateConfig {
            query_keys: true,
            ..GateConfig::default()
        };
        let gate = Gate::new(engine.clone(), config);
        let uri: Uri = "/ws?api_key=from%2Bquery&x=1".parse().unwrap();
        let plain: Uri = "/ws".parse().unwrap();
        let both = headers(&[("authorization", "Bearer  tok "), ("x-api-key", "k")]);
        assert_eq!(gate.credential(&both, &uri).as_deref(), Some("tok"));
        let key = headers(&[("x-api-key", "k")]);
        assert_eq!(gate.credential(&key, &uri).as_deref(), Some("k"));
        // The query counts only on a WebSocket upgrade.
        assert_eq!(gate.credential(&HeaderMap::new(), &uri), None);
        let upgrade = headers(&[("upgrade", "WebSocket")]);
        assert_eq!(
            gate.credential(&upgrade, &uri).as_deref(),
            Some("from+query")
        );
        assert_eq!(gate.credential(&upgrade, &plain), None);
        // Another scheme is no credential at all.
        let basic = headers(&[("authorization", "Basic abc")]);
        assert_eq!(gate.credential(&basic, &uri), None);
        // And by default the query is never read: URLs land in logs.
        let default = Gate::new(engine, GateConfig::default());
        assert_eq!(default.credential(&upgrade, &uri), None);
    }

    #[tokio::test]
    async fn unknown_keys_are_remembered_and_known_keys_cached() {
        let engine = Engine::in_memory().await;
        let tenant = crate::domain::TenantId::new();
        let (key, _) = engine
            .create_api_key(tenant, "k", vec![Scope::Read], None)
            .await
            .unwrap();
        let gate = Gate::new(engine.clone(), GateConfig::default());
        let who = gate.authenticate(Some(&key)).await.unwrap();
        assert_eq!(
            (who.tenant, who.scopes.clone()),
            (tenant, vec![Scope::Read])
        );
        assert!(matches!(
            gate.authenticate(Some("mesh_unknown")).await,
            Err(AuthError::UnknownKey)
        ));
        assert!(matches!(
            gate.authenticate(None).await,
            Err(AuthError::Missing)
        ));
        // Asked again, both answers come from the cache, which holds both.
        assert_eq!(gate.authenticate(Some(&key)).await.unwrap(), who);
        assert!(matches!(
            gate.authenticate(Some("mesh_unknown")).await,
            Err(AuthError::UnknownKey)
        ));
        let cached = gate.keys.lock().unwrap_or_else(|e| e.into_inner()).len();
        assert_eq!(cached, 2);
    }

    #[tokio::test]
    async fn a_revoked_key_is_refused_at_once_despite_the_cache() {
        let engine = Engine::in_memory().await;
        let tenant = crate::domain::TenantId::new();
        let (key, record) = engine
            .create_api_key(tenant, "k", vec![Scope::Agent], None)
            .await
            .unwrap();
        let (other, _) = engine
            .create_api_key(tenant, "other", vec![Scope::Read], None)
            .await
            .unwrap();
        let gate = Gate::new(engine.clone(), GateConfig::default());
        let who = gate.authenticate(Some(&key)).await.unwrap();
        gate.authenticate(Some(&other)).await.unwrap();
        let session = tokio::spawn(gate.until_revoked(&who));
        engine.revoke_api_key(tenant, record.id).await.unwrap();
        assert!(matches!(
            gate.authenticate(Some(&key)).await,
            Err(AuthError::UnknownKey)
        ));
        // The other key stays cached and accepted; the session opened with the
        // revoked one is told.
        gate.authenticate(Some(&other)).await.unwrap();
        session.await.unwrap();
        // Another tenant cannot revoke it, nor anything unknown.
        let stranger = crate::domain::TenantId::new();
        assert!(matches!(
            engine.revoke_api_key(stranger, record.id).await,
            Err(EngineError::KeyNotFound(_))
        ));
    }
}
