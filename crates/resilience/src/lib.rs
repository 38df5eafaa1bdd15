//! Resilience for calls to the infrastructure (Kafka, PostgreSQL, Redis): retries with
//! exponential backoff and jitter, and one circuit breaker per dependency whose state
//! drives the service's readiness.
//!
//! Contract:
//! - No I/O and no clock inside the policy types: [`RetryPolicy::delay`] and every
//!   [`CircuitBreaker`] method take the time (`Instant`) and the randomness as arguments,
//!   so every transition is unit-tested without sleeping. Only [`Dependency::call`] (feature
//!   `tokio`, on by default) reads a [`Clock`] and sleeps between tries.
//! - Retries: at most [`RetryPolicy::max_tries`] tries in total (default 3); the delay
//!   before try `n+1` is `min(max, initial * 2^(n-1))` with "equal jitter" (half fixed, half
//!   random), default 100 ms up to 5 s. Only errors the caller classifies as
//!   [`Outcome::Transient`] are retried; a permanent error (a constraint, a bad request) is
//!   returned at once and counts as a *healthy* answer of the dependency.
//! - Circuit breaker: `Closed` → `Open` after `failure_threshold` consecutive transient
//!   failures; `Open` rejects every call without touching the dependency until `open_for`
//!   has passed; then `HalfOpen` lets `half_open_probes` calls through; a success closes
//!   it, a failure opens it again for another `open_for`.
//! - Readiness: [`CircuitBreaker::is_ready`] is false while the breaker is open or
//!   half-open and true once it has closed again; it is a lock-free read for `/ready`.
//!
//! Why not `backon`: it covers the retry half only, and its sleeper hides the clock; the
//! breaker and readiness need the same injected time, so both live here (≈300 lines).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How an error of a call is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency is (maybe) down or overloaded: retry, and count it against the breaker.
    Transient,
    /// The dependency answered; the request itself was refused. No retry, breaker healthy.
    Permanent,
}

/// Exponential backoff with equal jitter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in total, the first included (1 = no retry).
    pub max_tries: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_tries: 3, initial: Duration::from_millis(100), max: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// A policy that never retries (for callers that retry at a higher level).
    pub fn no_retry() -> Self {
        RetryPolicy { max_tries: 1, ..Self::default() }
    }

    /// The ceiling of the delay after failed try number `attempt` (1-based), before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let factor = 1u32 << exp;
        self.initial.checked_mul(factor).map_or(self.max, |d| d.min(self.max))
    }

    /// The delay after failed try `attempt` (1-based), given a uniformly random `rand`:
    /// half of the base delay plus a random share of the other half. Equal rather than full
    /// jitter so that a retry never comes back at once, yet a crowd of clients that failed
    /// together spreads out.
    pub fn delay(&self, attempt: u32, rand: u64) -> Duration {
        let base = self.base_delay(attempt);
        let half = base / 2;
        let spread = u64::try_from((base - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 { 0 } else { rand % (spread + 1) };
        half + Duration::from_nanos(jitter)
    }

    /// Whether another try may follow failed try `attempt` (1-based).
    pub fn should_retry(&self, attempt: u32) -> bool {
        attempt < self.max_tries
    }
}

/// A small, fast, seedable random source (SplitMix64) for jitter. Seeded per process from
/// the standard library's random hasher keys: no I/O, not for cryptography.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    pub fn seeded(seed: u64) -> Self {
        Jitter { state: seed }
    }

    pub fn from_entropy() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        Jitter::seeded(h.finish())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Settings of a circuit breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker rejects calls before it lets a probe through.
    pub open_for: Duration,
    /// Calls let through at once while half-open.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failure_threshold: 5, open_for: Duration::from_secs(5), half_open_probes: 1 }
    }
}

/// The state of a breaker, as reported to metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { in_flight: u32 },
}

/// The breaker refused the call: the dependency is considered down.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker of {dependency} is open")]
pub struct Rejected {
    pub dependency: String,
}

/// One circuit breaker for one dependency. Cheap to share: clone the `Arc` it lives in.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
    ready: AtomicBool,
    opened: AtomicU64,
}

impl CircuitBreaker {
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        CircuitBreaker {
            name: name.into(),
            config,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
            ready: AtomicBool::new(true),
            opened: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves a consistent enum behind: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Readiness of the dependency: false while open or half-open.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// How many times the breaker has opened since it was made (for metrics).
    pub fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// The state at `now` (an open breaker whose time is up reports half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make a call at `now`. On `Ok`, the caller must report the call's end with
    /// [`Self::on_success`] or [`Self::on_failure`].
    pub fn try_acquire(&self, now: Instant) -> Result<(), Rejected> {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Ok(()),
            Inner::Open { until } if now >= until => {
                *inner = Inner::HalfOpen { in_flight: 1 };
                Ok(())
            }
            Inner::Open { .. } => Err(self.rejected()),
            Inner::HalfOpen { ref mut in_flight } if *in_flight < self.config.half_open_probes => {
                *in_flight += 1;
                Ok(())
            }
            Inner::HalfOpen { .. } => Err(self.rejected()),
        }
    }

    fn rejected(&self) -> Rejected {
        Rejected { dependency: self.name.clone() }
    }

    /// The dependency answered (a permanent error counts as an answer).
    pub fn on_success(&self, _now: Instant) {
        let mut inner = self.lock();
        *inner = Inner::Closed { failures: 0 };
        self.ready.store(true, Ordering::Release);
    }

    /// The dependency did not answer, or answered that it is unavailable.
    pub fn on_failure(&self, now: Instant) {
        let mut inner = self.lock();
        let open = match *inner {
            Inner::Closed { ref mut failures } => {
                *failures += 1;
                *failures >= self.config.failure_threshold
            }
            // A probe failed: back to open for another full period.
            Inner::HalfOpen { .. } => true,
            // A call that started before the breaker opened ends late: keep the deadline.
            Inner::Open { .. } => false,
        };
        if open {
            *inner = Inner::Open { until: now + self.config.open_for };
            self.ready.store(false, Ordering::Release);
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A source of the current time; [`SystemClock`] in production, a manual one in tests.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Instant;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The error of a call made through a [`Dependency`].
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker is open: the dependency was not called.
    #[error(transparent)]
    Open(#[from] Rejected),
    /// The last error of the call, after `tries` tries.
    #[error("{source} (after {tries} tries)")]
    Failed {
        #[source]
        source: E,
        tries: u32,
    },
}

impl<E> CallError<E> {
    /// The dependency's own error, when it was called.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Open(_) => None,
            CallError::Failed { source, .. } => Some(source),
        }
    }
}

/// A dependency: its name, retry policy and breaker. Share it (`Arc`) between every client
/// of the same dependency in a process so that they open and close together.
#[derive(Debug)]
pub struct Dependency {
    pub retry: RetryPolicy,
    breaker: CircuitBreaker,
    clock: Arc<dyn Clock>,
    jitter: Mutex<Jitter>,
}

impl Dependency {
    pub fn new(name: impl Into<String>, retry: RetryPolicy, breaker: BreakerConfig) -> Self {
        Self::with_clock(name, retry, breaker, Arc::new(SystemClock))
    }

    pub fn with_clock(
        name: impl Into<String>,
        retry: RetryPolicy,
        breaker: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Dependency {
            retry,
            breaker: CircuitBreaker::new(name, breaker),
            clock,
            jitter: Mutex::new(Jitter::from_entropy()),
        }
    }

    pub fn name(&self) -> &str {
        self.breaker.name()
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub fn is_ready(&self) -> bool {
        self.breaker.is_ready()
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The delay before the try after failed try `attempt`.
    pub fn next_delay(&self, attempt: u32) -> Duration {
        let rand = self.jitter.lock().unwrap_or_else(|e| e.into_inner()).next_u64();
        self.retry.delay(attempt, rand)
    }

    /// Runs `op` through the breaker, retrying transient errors (`classify`) with backoff.
    /// A breaker that opens between tries ends the retries with [`CallError::Open`].
    #[cfg(feature = "tokio")]
    pub async fn call<T, E, F, Fut>(&self, classify: impl Fn(&E) -> Outcome, mut op: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.breaker.try_acquire(self.clock.now())?;
            match op().await {
                Ok(v) => {
                    self.breaker.on_success(self.clock.now());
                    return Ok(v);
                }
                Err(e) => match classify(&e) {
                    Outcome::Permanent => {
                        self.breaker.on_success(self.clock.now());
                        return Err(CallError::Failed { source: e, tries: attempt });
                    }
                    Outcome::Transient => {
                        self.breaker.on_failure(self.clock.now());
                        if !self.retry.should_retry(attempt) {
                            return Err(CallError::Failed { source: e, tries: attempt });
                        }
                        tokio::time::sleep(self.next_delay(attempt)).await;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_from_100ms_and_caps_at_5s() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_tries, 3);
        let bases: Vec<_> = (1..=8).map(|a| p.base_delay(a)).collect();
        assert_eq!(bases, vec![ms(100), ms(200), ms(400), ms(800), ms(1600), ms(3200), ms(5000), ms(5000)]);
        assert_eq!(p.base_delay(1000), ms(5000), "no overflow on absurd attempts");
        assert!(p.should_retry(1) && p.should_retry(2) && !p.should_retry(3));
    }

    #[test]
    fn jitter_stays_within_half_and_full_base() {
        let p = RetryPolicy::default();
        let mut j = Jitter::seeded(42);
        for attempt in 1..=7 {
            let base = p.base_delay(attempt);
            let mut seen_low = false;
            let mut seen_high = false;
            for _ in 0..2000 {
                let d = p.delay(attempt, j.next_u64());
                assert!(d >= base / 2 && d <= base, "{d:?} outside [{:?}, {base:?}]", base / 2);
                seen_low |= d < base / 2 + base / 8;
                seen_high |= d > base - base / 8;
            }
            assert!(seen_low && seen_high, "jitter spreads over the range");
        }
        assert_eq!(p.delay(1, 0), ms(50));
        assert_eq!(p.delay(1, u64::try_from(ms(50).as_nanos()).unwrap()), ms(100));
    }

    #[test]
    fn breaker_opens_after_threshold_then_half_opens_and_closes() {
        let b = CircuitBreaker::new(
            "redis",
            BreakerConfig { failure_threshold: 3, open_for: ms(1000), half_open_probes: 1 },
        );
        let t0 = Instant::now();
        assert!(b.is_ready());
        for i in 0..2 {
            b.try_acquire(t0).unwrap();
            b.on_failure(t0 + ms(i));
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert!(b.is_ready(), "two failures do not open a breaker of threshold 3");
        b.try_acquire(t0).unwrap();
        b.on_failure(t0 + ms(10));
        assert_eq!(b.state(t0 + ms(10)), BreakerState::Open);
        assert!(!b.is_ready());
        assert_eq!(b.times_opened(), 1);
        assert_eq!(b.try_acquire(t0 + ms(500)), Err(Rejected { dependency: "redis".into() }));
        // Time is up: one probe goes through, a second concurrent one does not.
        assert_eq!(b.state(t0 + ms(1010)), BreakerState::HalfOpen);
        b.try_acquire(t0 + ms(1010)).unwrap();
        assert!(b.try_acquire(t0 + ms(1011)).is_err());
        assert!(!b.is_ready(), "half-open is not ready yet");
        b.on_success(t0 + ms(1020));
        assert_eq!(b.state(t0 + ms(1020)), BreakerState::Closed);
        assert!(b.is_ready());
    }

    #[test]
    fn failed_probe_reopens_for_a_full_period() {
        let b =
            CircuitBreaker::new("pg", BreakerConfig { failure_threshold: 1, open_for: ms(100), half_open_probes: 1 });
        let t0 = Instant::now();
        b.try_acquire(t0).unwrap();
        b.on_failure(t0);
        b.try_acquire(t0 + ms(100)).unwrap();
        b.on_failure(t0 + ms(150));
        assert_eq!(b.state(t0 + ms(200)), BreakerState::Open, "reopened at 150 until 250");
        assert_eq!(b.state(t0 + ms(250)), BreakerState::HalfOpen);
        assert_eq!(b.times_opened(), 2);
    }

    #[test]
    fn success_resets_the_consecutive_count() {
        let b = CircuitBreaker::new("k", BreakerConfig { failure_threshold: 2, ..BreakerConfig::default() });
        let t = Instant::now();
        b.on_failure(t);
        b.on_success(t);
        b.on_failure(t);
        assert_eq!(b.state(t), BreakerState::Closed);
        b.on_failure(t);
        assert_eq!(b.state(t), BreakerState::Open);
    }

    #[test]
    fn late_failure_of_an_old_call_keeps_the_open_deadline() {
        let b =
            CircuitBreaker::new("k", BreakerConfig { failure_threshold: 1, open_for: ms(100), half_open_probes: 1 });
        let t = Instant::now();
        b.on_failure(t);
        b.on_failure(t + ms(90));
        assert_eq!(b.state(t + ms(100)), BreakerState::HalfOpen);
    }

    #[derive(Debug)]
    struct Fixed(Instant);
    impl Clock for Fixed {
        fn now(&self) -> Instant {
            self.0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn call_retries_transient_errors_three_times_then_fails() {
        let dep = Dependency::new("redis", RetryPolicy::default(), BreakerConfig::default());
        let mut calls = 0;
        let started = tokio::time::Instant::now();
        let r: Result<(), _> = dep
            .call(
                |_: &&str| Outcome::Transient,
                || {
                    calls += 1;
                    async { Err("down") }
                },
            )
            .await;
        assert_eq!(calls, 3);
        match r {
            Err(CallError::Failed { source, tries }) => assert_eq!((source, tries), ("down", 3)),
            other => panic!("{other:?}"),
        }
        // Two sleeps: [50,100] ms and [100,200] ms.
        let waited = started.elapsed();
        assert!(waited >= ms(150) && waited <= ms(300), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn call_does_not_retry_permanent_errors_and_keeps_breaker_closed() {
        let dep = Dependency::with_clock(
            "pg",
            RetryPolicy::default(),
            BreakerConfig { failure_threshold: 1, ..BreakerConfig::default() },
            Arc::new(Fixed(Instant::now())),
        );
        let mut calls = 0;
        let r: Result<(), _> = dep
            .call(
                |_: &&str| Outcome::Permanent,
                || {
                    calls += 1;
                    async { Err("unique violation") }
                },
            )
            .await;
        assert_eq!(calls, 1);
        assert!(matches!(r, Err(CallError::Failed { tries: 1, .. })));
        assert!(dep.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn open_breaker_short_circuits_without_calling() {
        let dep = Dependency::new(
            "kafka",
            RetryPolicy::default(),
            BreakerConfig { failure_threshold: 2, open_for: Duration::from_secs(60), half_open_probes: 1 },
        );
        let mut calls = 0;
        let r: Result<(), _> = dep
            .call(
                |_: &&str| Outcome::Transient,
                || {
                    calls += 1;
                    async { Err("timeout") }
                },
            )
            .await;
        // The second failure opened the breaker; the third try is refused by it.
        assert_eq!(calls, 2);
        assert!(matches!(r, Err(CallError::Open(_))));
        assert!(!dep.is_ready());
        let r2: Result<(), CallError<&str>> = dep.call(|_| Outcome::Transient, || async { Ok(()) }).await;
        assert!(matches!(r2, Err(CallError::Open(_))));
    }
}
