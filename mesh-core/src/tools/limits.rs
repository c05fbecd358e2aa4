//! Tool call rate limits (per tenant, per key, per tool) and the result cache of
//! idempotent tools: in this process, or shared by every instance through Redis
//! (feature `redis`) when one is configured.
//!
//! Limits are GCRA (a token bucket kept as one timestamp per bucket): `per_second`
//! calls on average, `burst` at once. All of a call's buckets are checked and charged
//! together (one Lua script on Redis), so a refused call charges none of them. If
//! Redis cannot be reached, the instance falls back to its own counters and says so
//! in the log, rather than refusing or waving every call through.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A rate: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    /// Calls per second on average.
    pub per_second: f64,
    /// Calls allowed at once (the bucket's size).
    pub burst: u32,
}

impl Rate {
    /// `per_second` on average, `burst` at once.
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// Milliseconds between calls at the average rate.
    fn interval_ms(self) -> f64 {
        1_000.0 / self.per_second.max(1e-6)
    }
}

/// The limits on tool calls; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ToolLimits {
    /// All of one tenant's calls.
    pub per_tenant: Option<Rate>,
    /// One API key's (or JWT subject's) calls.
    pub per_key: Option<Rate>,
    /// One tenant's calls of one tool.
    pub per_tool: Option<Rate>,
    /// How long an idempotent tool's result is reused.
    pub cache_ttl: Duration,
}

impl Default for ToolLimits {
    /// 200/s (burst 400) per tenant, 100/s (burst 200) per key, 100/s (burst 200) per
    /// tool; results of idempotent tools reused for 60 s.
    fn default() -> Self {
        Self {
            per_tenant: Some(Rate::new(200.0, 400)),
            per_key: Some(Rate::new(100.0, 200)),
            per_tool: Some(Rate::new(100.0, 200)),
            cache_ttl: Duration::from_secs(60),
        }
    }
}

impl ToolLimits {
    /// No rate limits (the cache TTL stays).
    pub fn unlimited() -> Self {
        Self {
            per_tenant: None,
            per_key: None,
            per_tool: None,
            ..Self::default()
        }
    }

    /// Sets every rate limit.
    pub fn rates(mut self, tenant: Option<Rate>, key: Option<Rate>, tool: Option<Rate>) -> Self {
        self.per_tenant = tenant;
        self.per_key = key;
        self.per_tool = tool;
        self
    }

    /// Sets how long an idempotent tool's result is reused (zero: never).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }
}

/// The most cached results one instance keeps in memory.
pub const MAX_CACHED_RESULTS: usize = 10_000;

/// Where buckets and cached results live.
pub(super) struct Counters {
    local: Mutex<Local>,
    #[cfg(feature = "redis")]
    redis: Option<redis::aio::ConnectionManager>,
}

struct Local {
    /// Each bucket's theoretical arrival time.
    buckets: HashMap<String, Instant>,
    results: lru::LruCache<String, (Value, Instant)>,
}

impl Counters {
    /// In this process only.
    pub(super) fn local() -> Self {
        Self {
            local: Mutex::new(Local {
                buckets: HashMap::new(),
                results: lru::LruCache::new(
                    NonZeroUsize::new(MAX_CACHED_RESULTS).unwrap_or(NonZeroUsize::MIN),
                ),
            }),
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// Shared through the Redis at `url`.
    #[cfg(feature = "redis")]
    pub(super) async fn redis(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let manager = redis::aio::ConnectionManager::new(client).await?;
        Ok(Self {
            redis: Some(manager),
            ..Self::local()
        })
    }

    /// Whether they are shared through Redis.
    pub(super) fn shared(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Charges one call to every bucket, or none: `Err(wait)` when one is empty.
    pub(super) async fn take(&self, buckets: &[(String, Rate)]) -> Result<(), Duration> {
        if buckets.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            match take_shared(redis.clone(), buckets).await {
                Ok(answer) => return answer,
                Err(e) => {
                    tracing::warn!(error = %e, "Redis unreachable: this instance's own rate limits apply")
                }
            }
        }
        self.take_local(buckets)
    }

    fn take_local(&self, buckets: &[(String, Rate)]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if local.buckets.len() > 100_000 {
            local.buckets.retain(|_, tat| *tat > now);
        }
        let mut next = Vec::with_capacity(buckets.len());
        let mut wait = Duration::ZERO;
        for (key, rate) in buckets {
            let interval = Duration::from_secs_f64(rate.interval_ms() / 1_000.0);
            let tat = local.buckets.get(key).copied().unwrap_or(now).max(now);
            let new = tat + interval;
            let allowance = interval * rate.burst.max(1);
            if new - now > allowance {
                wait = wait.max(new - now - allowance);
            }
            next.push((key.clone(), new));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        local.buckets.extend(next);
        Ok(())
    }

    /// A cached result under `key`, if fresh.
    pub(super) async fn cached(&self, key: &str) -> Option<Value> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            let mut redis = redis.clone();
            let got: redis::RedisResult<Option<String>> = redis::cmd("GET")
                .arg(format!("mesh:tools:result:{key}"))
                .query_async(&mut redis)
                .await;
            if let Ok(found) = got {
                return found.and_then(|text| serde_json::from_str(&text).ok());
            }
        }
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        match local.results.get(key) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value` under `key` for `ttl`.
    pub(super) async fn keep(&self, key: &str, value: &Value, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            let mut redis = redis.clone();
            let set: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("mesh:tools:result:{key}"))
                .arg(value.to_string())
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query_async(&mut redis)
                .await;
            if set.is_ok() {
                return;
            }
        }
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local
            .results
            .put(key.to_owned(), (value.clone(), Instant::now() + ttl));
    }
}

/// Every bucket checked and charged in one step on the Redis server's clock.
#[cfg(feature = "redis")]
const TAKE: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000
local wait = 0
local next = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new = tat + interval
  local over = new - now - burst * interval
  if over > wait then wait = over end
  next[i] = new
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(next[i]), 'PX', math.ceil(next[i] - now) + 1000)
end
return '0'
";

#[cfg(feature = "redis")]
async fn take_shared(
    mut redis: redis::aio::ConnectionManager,
    buckets: &[(String, Rate)],
) -> redis::RedisResult<Result<(), Duration>> {
    let script = redis::Script::new(TAKE);
    let mut call = script.prepare_invoke();
    for (key, rate) in buckets {
        call.key(format!("mesh:tools:limit:{key}"))
            .arg(rate.interval_ms())
            .arg(rate.burst.max(1));
    }
    let wait: String = call.invoke_async(&mut redis).await?;
    let wait: f64 = wait.parse().unwrap_or(0.0);
    Ok(if wait > 0.0 {
        Err(Duration::from_secs_f64(wait / 1_000.0))
    } else {
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_gives_its_burst_then_its_rate() {
        let counters = Counters::local();
        let bucket = [("t".to_owned(), Rate::new(10.0, 5))];
        for _ in 0..5 {
            assert!(counters.take(&bucket).await.is_ok());
        }
        let wait = counters.take(&bucket).await.unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
    }

    #[tokio::test]
    async fn a_refused_call_charges_no_bucket() {
        let counters = Counters::local();
        let roomy = ("roomy".to_owned(), Rate::new(1.0, 2));
        let tight = ("tight".to_owned(), Rate::new(1.0, 1));
        assert!(counters.take(&[roomy.clone(), tight.clone()]).await.is_ok());
        assert!(counters.take(&[roomy.clone(), tight]).await.is_err());
        // The roomy bucket still has its second call.
        assert!(counters.take(&[roomy]).await.is_ok());
    }

    #[tokio::test]
    async fn results_are_kept_for_their_ttl() {
        let counters = Counters::local();
        counters
            .keep("k", &serde_json::json!(1), Duration::from_secs(60))
            .await;
        counters
            .keep("gone", &serde_json::json!(2), Duration::ZERO)
            .await;
        assert_eq!(counters.cached("k").await, Some(serde_json::json!(1)));
        assert_eq!(counters.cached("gone").await, None);
    }
}
