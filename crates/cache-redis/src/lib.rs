//! Redis adapters of the distributed QuantTrader: idempotency keys, hot orders, the book
//! cache, positions and a rate limiter shared by every replica.
//!
//! Keys (seed 004; `key_prefix` is prepended, empty in production):
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `idempotency:{key}` | JSON [`IdempotencyRecord`]: request hash + response once known | 24 h, claimed with `SET NX EX` |
//! | `order:{id}` | JSON of the order | 1 h |
//! | `orderbook:{symbol}` | JSON of the book snapshot | 1 s |
//! | `position:{user}:{symbol}` | JSON of the position | none (overwritten on change) |
//! | `positions:complete` | set once every position is in Redis (see [`RedisCache::positions_complete`]) | none |
//! | `ratelimit:{key}` | GCRA theoretical arrival time, µs | until the bucket is full again |
//!
//! Contract:
//! - Every call goes through one [`qt_resilience::Dependency`] (retry with backoff on
//!   connection errors and timeouts, then a circuit breaker); [`RedisCache::ready`] is
//!   false while the breaker is open and true again after a successful probe.
//! - The connection is a [`ConnectionManager`] created lazily: a service starts while
//!   Redis is down (not ready), and the manager reconnects by itself when it returns.
//! - Idempotency: [`RedisCache::claim_idempotency`] is atomic across replicas (`SET NX`):
//!   exactly one request claims a key; the others see the stored record and compare the
//!   request hash (same hash: replay or wait; other hash: 409).
//! - Rate limiting is GCRA in one Lua script using the server's clock (`TIME`), so
//!   replicas on skewed hosts share one exact budget per key.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use qt_resilience::{BreakerConfig, CallError, Dependency, Outcome, RetryPolicy};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Settings, loaded from `QT_REDIS__…` by the binary (figment).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db` (or `rediss://` for TLS).
    pub url: String,
    /// Prepended to every key (`""` in production; unique per test).
    pub key_prefix: String,
    pub connect_timeout_ms: u64,
    /// Per command: a hung server fails the call rather than the request.
    pub response_timeout_ms: u64,
    pub idempotency_ttl_s: u64,
    pub order_ttl_s: u64,
    pub orderbook_ttl_ms: u64,
    /// Retries: tries in total and backoff bounds.
    pub retry_tries: u32,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Consecutive failures that open the breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            key_prefix: String::new(),
            connect_timeout_ms: 1_000,
            response_timeout_ms: 500,
            idempotency_ttl_s: 24 * 3600,
            order_ttl_s: 3600,
            orderbook_ttl_ms: 1_000,
            retry_tries: 3,
            retry_initial_ms: 100,
            retry_max_ms: 5_000,
            breaker_failures: 5,
            breaker_open_ms: 5_000,
        }
    }
}

impl RedisConfig {
    pub fn with_url(url: impl Into<String>) -> Self {
        RedisConfig { url: url.into(), ..Self::default() }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_tries: self.retry_tries.max(1),
            initial: Duration::from_millis(self.retry_initial_ms),
            max: Duration::from_millis(self.retry_max_ms),
        }
    }

    fn breaker(&self) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: self.breaker_failures.max(1),
            open_for: Duration::from_millis(self.breaker_open_ms),
            half_open_probes: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error(transparent)]
    Unavailable(#[from] qt_resilience::Rejected),
    #[error("cache value encoding: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<CallError<RedisError>> for CacheError {
    fn from(e: CallError<RedisError>) -> Self {
        match e {
            CallError::Open(r) => CacheError::Unavailable(r),
            CallError::Failed { source, .. } => CacheError::Redis(source),
        }
    }
}

/// Connection loss, timeouts and a loading or busy server are worth a retry; a wrong
/// command or type is not (and proves the server is up).
pub fn classify(e: &RedisError) -> Outcome {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return Outcome::Transient;
    }
    match e.code() {
        Some("LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY") => Outcome::Transient,
        _ => Outcome::Permanent,
    }
}

/// A stored response of an idempotent request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    /// The response body as sent (JSON text).
    pub body: String,
}

/// The value of `idempotency:{key}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Hash of the request body as the intake computed it.
    pub request_hash: String,
    /// `None` while the first request is still in flight.
    pub response: Option<StoredResponse>,
}

/// What [`RedisCache::claim_idempotency`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: process it, then [`RedisCache::complete_idempotency`].
    Claimed,
    /// Another request with this key came first.
    Exists(IdempotencyRecord),
}

/// The answer of the rate limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests still allowed right now after this one.
    pub remaining: u64,
    /// When refused: how long until one more request fits (for `Retry-After`).
    pub retry_after: Duration,
}

/// GCRA: one key holds the theoretical arrival time (TAT) in µs of the server clock.
/// KEYS[1] bucket; ARGV[1] emission interval µs (window / limit); ARGV[2] burst tolerance
/// µs (the window: up to `limit` at once); ARGV[3] cost.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, math.ceil(allow_at - now), 0}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0, math.floor((tolerance - (new_tat - now)) / interval)}
";

/// The Redis adapter. Cheap to clone; clones share the connection and the breaker.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    dep: Arc<Dependency>,
    cfg: Arc<RedisConfig>,
    gcra: Arc<Script>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("dep", &self.dep)
            .field("key_prefix", &self.cfg.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A cache whose connection opens on first use (succeeds while Redis is down).
    pub fn new(cfg: &RedisConfig) -> Result<Self, CacheError> {
        let dep = Arc::new(Dependency::new("redis", cfg.retry(), cfg.breaker()));
        Self::with_dependency(cfg, dep)
    }

    /// As [`RedisCache::new`] with a given dependency (shared breaker, injected clock).
    pub fn with_dependency(cfg: &RedisConfig, dep: Arc<Dependency>) -> Result<Self, CacheError> {
        let client = redis::Client::open(cfg.url.as_str())?;
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(cfg.response_timeout_ms)))
            // Our breaker decides about retries; the manager reconnects once per failure.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(cfg.retry_max_ms));
        let conn = ConnectionManager::new_lazy_with_config(client, mcfg)?;
        Ok(RedisCache { conn, dep, cfg: Arc::new(cfg.clone()), gcra: Arc::new(Script::new(GCRA_LUA)) })
    }

    /// Readiness of Redis as the breaker sees it.
    pub fn ready(&self) -> bool {
        self.dep.is_ready()
    }

    pub fn dependency(&self) -> &Arc<Dependency> {
        &self.dep
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.cfg.key_prefix, suffix)
    }

    /// Runs one command through the breaker with retries.
    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, CacheError> {
        let conn = self.conn.clone();
        Ok(self
            .dep
            .call(classify, || {
                let mut c = conn.clone();
                let cmd = cmd.clone();
                async move { cmd.query_async::<T>(&mut c).await }
            })
            .await?)
    }

    /// A round trip (`PING`), for readiness probes; it also closes a half-open breaker.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let _: String = self.run(redis::cmd("PING")).await?;
        Ok(())
    }

    // ---- idempotency ---------------------------------------------------------------

    /// Claims `idempotency:{key}` for a request with `request_hash` (`SET NX EX 24h`).
    pub async fn claim_idempotency(&self, key: &str, request_hash: &str) -> Result<Claim, CacheError> {
        let k = self.key(&format!("idempotency:{key}"));
        let value =
            serde_json::to_string(&IdempotencyRecord { request_hash: request_hash.to_string(), response: None })?;
        // A key that expires between SET and GET is claimed again; expiry takes 24 h, so
        // this loops at most once or twice.
        loop {
            let mut set = redis::cmd("SET");
            set.arg(&k).arg(&value).arg("NX").arg("EX").arg(self.cfg.idempotency_ttl_s);
            let ok: Option<String> = self.run(set).await?;
            if ok.is_some() {
                return Ok(Claim::Claimed);
            }
            if let Some(rec) = self.get_idempotency(key).await? {
                return Ok(Claim::Exists(rec));
            }
        }
    }

    /// Stores the response of a claimed key, keeping its remaining TTL (`SET XX KEEPTTL`).
    /// Returns false when the key is gone (expired, or released).
    pub async fn complete_idempotency(
        &self,
        key: &str,
        request_hash: &str,
        response: StoredResponse,
    ) -> Result<bool, CacheError> {
        let k = self.key(&format!("idempotency:{key}"));
        let value = serde_json::to_string(&IdempotencyRecord {
            request_hash: request_hash.to_string(),
            response: Some(response),
        })?;
        let mut set = redis::cmd("SET");
        set.arg(&k).arg(&value).arg("XX").arg("KEEPTTL");
        let ok: Option<String> = self.run(set).await?;
        Ok(ok.is_some())
    }

    /// Releases a claim whose request failed before reaching the engine, so a retry of
    /// the client can proceed.
    pub async fn release_idempotency(&self, key: &str) -> Result<(), CacheError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(&format!("idempotency:{key}")));
        let _: i64 = self.run(del).await?;
        Ok(())
    }

    pub async fn get_idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, CacheError> {
        self.get_json(self.key(&format!("idempotency:{key}"))).await
    }

    /// Remaining TTL of `idempotency:{key}` (None when absent or without TTL).
    pub async fn idempotency_ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let mut ttl = redis::cmd("PTTL");
        ttl.arg(self.key(&format!("idempotency:{key}")));
        let ms: i64 = self.run(ttl).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    // ---- hot data ------------------------------------------------------------------

    async fn get_json<T: DeserializeOwned>(&self, key: String) -> Result<Option<T>, CacheError> {
        let mut get = redis::cmd("GET");
        get.arg(key);
        let v: Option<String> = self.run(get).await?;
        v.map(|s| serde_json::from_str(&s)).transpose().map_err(CacheError::from)
    }

    async fn set_json<T: Serialize>(&self, key: String, value: &T, ttl: Option<Duration>) -> Result<(), CacheError> {
        let mut set = redis::cmd("SET");
        set.arg(key).arg(serde_json::to_string(value)?);
        if let Some(ttl) = ttl {
            set.arg("PX").arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        let _: Option<String> = self.run(set).await?;
        Ok(())
    }

    /// `order:{id}` for 1 h.
    pub async fn put_order<T: Serialize>(&self, order_id: u64, order: &T) -> Result<(), CacheError> {
        let ttl = Duration::from_secs(self.cfg.order_ttl_s);
        self.set_json(self.key(&format!("order:{order_id}")), order, Some(ttl)).await
    }

    pub async fn get_order<T: DeserializeOwned>(&self, order_id: u64) -> Result<Option<T>, CacheError> {
        self.get_json(self.key(&format!("order:{order_id}"))).await
    }

    /// `orderbook:{symbol}` for 1 s: a cache in front of the market-data role, stale
    /// for at most that long.
    pub async fn put_orderbook<T: Serialize>(&self, symbol: &str, book: &T) -> Result<(), CacheError> {
        let ttl = Duration::from_millis(self.cfg.orderbook_ttl_ms);
        self.set_json(self.key(&format!("orderbook:{symbol}")), book, Some(ttl)).await
    }

    pub async fn get_orderbook<T: DeserializeOwned>(&self, symbol: &str) -> Result<Option<T>, CacheError> {
        self.get_json(self.key(&format!("orderbook:{symbol}"))).await
    }

    /// `position:{user}:{symbol}`, overwritten on every change.
    pub async fn put_position<T: Serialize>(&self, user: u64, symbol: &str, position: &T) -> Result<(), CacheError> {
        self.set_json(self.key(&format!("position:{user}:{symbol}")), position, None).await
    }

    pub async fn get_position<T: DeserializeOwned>(&self, user: u64, symbol: &str) -> Result<Option<T>, CacheError> {
        self.get_json(self.key(&format!("position:{user}:{symbol}"))).await
    }

    /// Whether `positions:complete` is set: the writer of the positions sets it
    /// ([`RedisCache::mark_positions_complete`]) once it has written every position. Redis
    /// keeps no data over a restart (and may lose it on a failover): absent means the
    /// positions must be rebuilt from the system of record.
    pub async fn positions_complete(&self) -> Result<bool, CacheError> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.key("positions:complete"));
        let n: i64 = self.run(exists).await?;
        Ok(n > 0)
    }

    pub async fn mark_positions_complete(&self) -> Result<(), CacheError> {
        let mut set = redis::cmd("SET");
        set.arg(self.key("positions:complete")).arg("1");
        let _: Option<String> = self.run(set).await?;
        Ok(())
    }

    // ---- rate limiting -------------------------------------------------------------

    /// One request of `key` against a budget of `limit` per `window` (bursts up to
    /// `limit`), shared by every client of this Redis.
    pub async fn rate_limit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision, CacheError> {
        let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).max(1);
        let interval = (window_us / u64::from(limit.max(1))).max(1);
        let k = self.key(&format!("ratelimit:{key}"));
        let conn = self.conn.clone();
        let gcra = Arc::clone(&self.gcra);
        let (allowed, retry_us, remaining): (i64, i64, i64) = self
            .dep
            .call(classify, || {
                let mut c = conn.clone();
                let gcra = Arc::clone(&gcra);
                let k = k.clone();
                async move { gcra.key(k).arg(interval).arg(window_us).arg(1).invoke_async(&mut c).await }
            })
            .await
            .map_err(CacheError::from)?;
        Ok(RateDecision {
            allowed: allowed == 1,
            remaining: u64::try_from(remaining).unwrap_or(0),
            retry_after: Duration::from_micros(u64::try_from(retry_us).unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ErrorKind;

    #[test]
    fn config_defaults_follow_the_seed() {
        let c = RedisConfig::default();
        assert_eq!(c.idempotency_ttl_s, 86_400);
        assert_eq!(c.order_ttl_s, 3_600);
        assert_eq!(c.orderbook_ttl_ms, 1_000);
        assert_eq!(c.retry(), RetryPolicy::default());
        let c: RedisConfig = serde_json::from_str(r#"{"url":"redis://h:1/0","breaker_failures":2}"#).unwrap();
        assert_eq!(c.breaker().failure_threshold, 2);
    }

    #[test]
    fn connection_errors_are_transient_and_command_errors_permanent() {
        let io = RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
        assert_eq!(classify(&io), Outcome::Transient);
        let wrong = RedisError::from((ErrorKind::Client, "bad"));
        assert_eq!(classify(&wrong), Outcome::Permanent);
    }

    #[tokio::test]
    async fn a_cache_builds_while_redis_is_down_and_reports_not_ready_after_failures() {
        let cfg = RedisConfig {
            retry_tries: 1,
            breaker_failures: 1,
            connect_timeout_ms: 200,
            response_timeout_ms: 200,
            ..RedisConfig::with_url("redis://127.0.0.1:1/0")
        };
        let cache = RedisCache::new(&cfg).unwrap();
        assert!(cache.ready());
        assert!(cache.ping().await.is_err());
        assert!(!cache.ready());
        assert!(matches!(cache.ping().await, Err(CacheError::Unavailable(_))));
    }
}
