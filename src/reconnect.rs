//! [`ReconnectingClient`]: one VRI kept resolved across lost links, for
//! clients of a fleet that restarts (`docs/deployment.md`, rolling
//! restarts).
//!
//! ```text
//! call(method, args)
//!   → session()        the current link if it is open; else reconnect:
//!                      attempt 1 at once, attempt n after Backoff::delay_before(n),
//!                      each attempt a full Client::resolve(vri) (TCP, VOP,
//!                      transport, VOL, urlget), until one succeeds, an
//!                      error says retrying is useless, or attempts run out
//!   → Session::call    on that link
//!   → Ok(result) | Call(exception or CALL_ERROR: the peer answered)
//!                | LinkLost(the link died before the result came)
//! ```
//!
//! A call whose link dies is **not** retried: it may have run on the
//! server, and only the application knows whether running it twice is
//! safe. It fails with [`ReconnectError::LinkLost`], the link is dropped,
//! and the next call goes on a new link. Objects obtained on the old link
//! are gone with it (`docs/protocol/vol.md` §5: references are per link); the
//! [`Session`] a call ran on says which link that was.
//!
//! The backoff schedule is a pure function ([`Backoff::delay_before`],
//! randomness passed in), so it is tested without clocks.

use crate::runtime::LinkShutdown;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::{Client, ClientError};
use crate::object::{CallError, Object, RemoteObject};
use crate::runtime::LinkHandle;
use crate::value::{IntoArgs, Value};
use crate::vec::Entity;
use crate::vol::LinkError;
use crate::vri::Vri;

/// How many connection attempts one reconnection may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// At most this many (at least 1), then [`ReconnectError::Connect`].
    AtMost(u32),
    /// Keep trying (the delay stays at [`Backoff::max_delay`]); the caller
    /// bounds the wait, e.g. with `tokio::time::timeout`.
    Unlimited,
}

impl Attempts {
    fn allows(self, attempt: u32) -> bool {
        match self {
            Attempts::AtMost(n) => attempt <= n.max(1),
            Attempts::Unlimited => true,
        }
    }
}

/// Bounded exponential backoff with jitter between connection attempts.
///
/// Attempt 1 of a reconnection starts at once; before attempt `n ≥ 2` the
/// client waits `min(max_delay, initial_delay · 2^(n-2))`, shortened by a
/// random fraction of up to `jitter` of it (so clients that lost their
/// links together do not come back together). The defaults give up after
/// 10 attempts spread over about 21 s at most (0.1 + 0.2 + … + 3.2 + 4 × 5
/// s, less jitter), plus each attempt's own
/// [`connect_timeout`](crate::ClientConfig::connect_timeout): long enough
/// for a balancer to notice a stopped instance or for a single instance to
/// restart, short enough that a caller learns of an outage.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial_delay: Duration,
    max_delay: Duration,
    jitter: f64,
    max_attempts: Attempts,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            // 100 ms: a balancer redispatches a refused connect at once,
            // so the second attempt rarely needs to wait longer.
            initial_delay: Duration::from_millis(100),
            // 5 s: retries keep coming while an instance restarts,
            // without hammering an address that is down.
            max_delay: Duration::from_secs(5),
            // Up to half of each delay: spreads a herd by a factor of 2.
            jitter: 0.5,
            max_attempts: Attempts::AtMost(10),
        }
    }
}

impl Backoff {
    /// The delay before attempt 2 (default 100 ms); it doubles for each
    /// further attempt.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest delay between two attempts (default 5 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The largest fraction of a delay that jitter takes off, in `0.0..=1.0`
    /// (default 0.5; 0 turns jitter off). Values outside are clamped.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// How many attempts one reconnection may make (default
    /// `Attempts::AtMost(10)`).
    pub fn max_attempts(mut self, attempts: Attempts) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The wait before connection attempt `attempt` (1-based) of one
    /// reconnection, with `unit` a random number in `0.0..1.0` (values
    /// outside are clamped); `None` once the attempts are used up.
    pub fn delay_before(&self, attempt: u32, unit: f64) -> Option<Duration> {
        let attempt = attempt.max(1);
        if !self.max_attempts.allows(attempt) {
            return None;
        }
        if attempt == 1 {
            return Some(Duration::ZERO);
        }
        // 2^31 × anything ≥ 1 ns already exceeds any sensible maximum.
        let doublings = (attempt - 2).min(31);
        let ceiling = self
            .initial_delay
            .checked_mul(1u32 << doublings)
            .map_or(self.max_delay, |d| d.min(self.max_delay));
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        Some(ceiling.mul_f64(1.0 - self.jitter * unit))
    }
}

/// Why a call through a [`ReconnectingClient`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReconnectError {
    /// The link the call was sent on closed or failed before the result
    /// came back (the server stopped, the network failed). The call may or
    /// may not have run; it is not retried. The next call reconnects.
    #[error("link {link} lost before the call's result came: {source}")]
    LinkLost {
        /// The lost link's [`LinkHandle::id`].
        link: u64,
        /// How the link ended: [`LinkError::Closed`] for an orderly close
        /// (the peer half-closed after answering what it had started).
        source: LinkError,
    },
    /// The peer answered: the method raised or the call could not be
    /// performed. The link is fine.
    #[error(transparent)]
    Call(CallError),
    /// No link could be set up: the attempts ran out, or an attempt failed
    /// in a way retrying cannot fix (no transport, the VRI does not
    /// resolve to an object).
    #[error("cannot connect after {attempts} attempt(s): {source}")]
    Connect {
        /// Connection attempts made, the failed last one included.
        attempts: u32,
        /// The last attempt's error (shared by callers that waited for the
        /// same reconnection).
        source: Arc<ClientError>,
    },
}

/// The link a call runs on, and the object the VRI resolved to on it.
/// Cheap to clone; holding it keeps the object imported, not the link open.
#[derive(Clone)]
pub struct Session {
    object: RemoteObject,
    owner: Arc<Inner>,
}

impl Session {
    /// The object the VRI resolved to, on this session's link.
    pub fn object(&self) -> &RemoteObject {
        &self.object
    }

    /// The link.
    pub fn link(&self) -> &LinkHandle {
        self.object.link()
    }

    /// Call `method` on the object. A link failure becomes
    /// [`ReconnectError::LinkLost`] and retires this session, so the
    /// client's next call reconnects.
    pub async fn call(&self, method: &str, args: impl IntoArgs) -> Result<Value, ReconnectError> {
        match self.object.call(method, args).await {
            Ok(v) => Ok(v),
            Err(CallError::Link(source)) => {
                self.owner.retire(self.link());
                Err(ReconnectError::LinkLost {
                    link: self.link().id(),
                    source,
                })
            }
            Err(e) => Err(ReconnectError::Call(e)),
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Session").field(&self.object).finish()
    }
}

/// A client for one VRI that reconnects after its link is lost.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use versile::reconnect::{ReconnectError, ReconnectingClient};
/// use versile::{Client, ClientConfig};
///
/// let vri = "vop://balancer.example:4433/text/echo/".parse()?;
/// let client = ReconnectingClient::new(Client::new(ClientConfig::default()), vri);
/// match client.call("echo", ("hello",)).await {
///     Ok(v) => println!("{v:?}"),
///     // Sent, but the link died first: it may have run. Decide whether
///     // to repeat it; the next call is made on a new link.
///     Err(ReconnectError::LinkLost { .. }) => {}
///     Err(e) => return Err(e.into()),
/// }
/// # Ok(()) }
/// ```
///
/// Clones share the link. Concurrent calls share one reconnection: while
/// it runs they wait for it, and if it fails they all get its error.
#[derive(Clone)]
pub struct ReconnectingClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    vri: Vri,
    backoff: Backoff,
    slot: Mutex<Slot>,
    /// Held while a reconnection runs, so there is one at a time.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Slot {
    current: Option<RemoteObject>,
    /// Bumped when a reconnection ends, so a caller that waited for it
    /// knows the outcome is news.
    epoch: u64,
    failure: Option<ReconnectError>,
    rng: u64,
}

impl Inner {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // The slot holds plain data: a panic elsewhere cannot leave it torn.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget `link` if it is the current one, and close it (it may still
    /// be draining its side).
    fn retire(&self, link: &LinkHandle) {
        let mut slot = self.slot();
        if slot
            .current
            .as_ref()
            .is_some_and(|o| o.link().id() == link.id())
        {
            slot.current = None;
        }
        drop(slot);
        link.shutdown(LinkShutdown::Graceful);
    }
}

impl ReconnectingClient {
    /// A client for `vri` with the default [`Backoff`]. Nothing connects
    /// until the first call.
    pub fn new(client: Client, vri: Vri) -> Self {
        Self::with_backoff(client, vri, Backoff::default())
    }

    /// A client for `vri` that reconnects with `backoff`.
    pub fn with_backoff(client: Client, vri: Vri, backoff: Backoff) -> Self {
        let slot = Slot {
            rng: seed(),
            ..Slot::default()
        };
        ReconnectingClient {
            inner: Arc::new(Inner {
                client,
                vri,
                backoff,
                slot: Mutex::new(slot),
                connecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The VRI this client resolves.
    pub fn vri(&self) -> &Vri {
        &self.inner.vri
    }

    /// Call `method` on the current session (connecting first if there is
    /// none). See [`Session::call`].
    pub async fn call(&self, method: &str, args: impl IntoArgs) -> Result<Value, ReconnectError> {
        self.session().await?.call(method, args).await
    }

    /// The current link, without connecting.
    pub fn current_link(&self) -> Option<LinkHandle> {
        self.live().map(|o| o.link().clone())
    }

    /// The current session, or a new one if the link was lost (or never
    /// set up), reconnecting with backoff.
    pub async fn session(&self) -> Result<Session, ReconnectError> {
        let seen = {
            let slot = self.inner.slot();
            if let Some(o) = live(&slot) {
                return Ok(self.session_of(o));
            }
            slot.epoch
        };
        let _one_at_a_time = self.inner.connecting.lock().await;
        {
            let slot = self.inner.slot();
            if let Some(o) = live(&slot) {
                return Ok(self.session_of(o));
            }
            if slot.epoch != seen {
                // A reconnection ended while we waited, and failed.
                if let Some(e) = &slot.failure {
                    return Err(e.clone());
                }
            }
        }
        let outcome = self.reconnect().await;
        let mut slot = self.inner.slot();
        slot.epoch += 1;
        match outcome {
            Ok(object) => {
                slot.current = Some(object.clone());
                slot.failure = None;
                Ok(self.session_of(object))
            }
            Err(e) => {
                slot.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Shut the current link down gracefully (`docs/protocol/vol.md` §7.2). A later call
    /// connects again.
    pub fn shutdown(&self) {
        let current = self.inner.slot().current.take();
        if let Some(o) = current {
            o.link().shutdown(LinkShutdown::Graceful);
        }
    }

    fn live(&self) -> Option<RemoteObject> {
        live(&self.inner.slot())
    }

    fn session_of(&self, object: RemoteObject) -> Session {
        Session {
            object,
            owner: self.inner.clone(),
        }
    }

    /// Attempts with backoff until one resolves the VRI to an object.
    async fn reconnect(&self) -> Result<RemoteObject, ReconnectError> {
        let backoff = &self.inner.backoff;
        let mut attempt = 1;
        let mut delay = Duration::ZERO;
        loop {
            tokio::time::sleep(delay).await;
            let error = match self.inner.client.resolve(&self.inner.vri).await {
                Ok(resolved) => match resolved.value {
                    Entity::Ref(Object::Remote(object)) => return Ok(object),
                    _ => {
                        resolved.link.shutdown(LinkShutdown::Graceful);
                        ClientError::PathNotResolved(CallError::failed(
                            "the VRI resolved to a value, not an object",
                        ))
                    }
                },
                Err(e) => e,
            };
            let unit = next_unit(&mut self.inner.slot().rng);
            let next = backoff
                .delay_before(attempt + 1, unit)
                .filter(|_| retryable(&error));
            tracing::debug!(
                vri = %self.inner.vri, attempt, %error, retry_in = ?next,
                "connect attempt failed"
            );
            match next {
                Some(d) => {
                    delay = d;
                    attempt += 1;
                }
                None => {
                    return Err(ReconnectError::Connect {
                        attempts: attempt,
                        source: Arc::new(error),
                    })
                }
            }
        }
    }
}

impl std::fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingClient")
            .field("vri", &self.inner.vri.to_string())
            .field("link", &self.current_link().map(|l| l.id()))
            .field("backoff", &self.inner.backoff)
            .finish()
    }
}

fn live(slot: &Slot) -> Option<RemoteObject> {
    slot.current
        .as_ref()
        .filter(|o| !o.link().is_closed())
        .cloned()
}

/// Whether another attempt may succeed where `error` failed. The server
/// answering "no such path", or us having no transport to offer, will not
/// change by retrying; everything on the way there (refused, reset, timed
/// out, a handshake cut short by a stopping instance) may.
fn retryable(error: &ClientError) -> bool {
    !matches!(
        error,
        ClientError::NoTransport | ClientError::PathNotResolved(_) | ClientError::Call(_)
    )
}

/// A per-client seed for the jitter (not secret: it only spreads retries).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish() | 1
}

/// xorshift64*: a uniform number in `0.0..1.0`.
fn next_unit(state: &mut u64) -> f64 {
    let mut x = (*state).max(1);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (r >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn default_schedule_doubles_up_to_the_cap_then_gives_up() {
        let b = Backoff::default();
        let ceilings: Vec<Option<Duration>> = (1..=11).map(|n| b.delay_before(n, 0.0)).collect();
        let expect = [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(|n| Some(ms(n)));
        assert_eq!(ceilings[..10], expect);
        assert_eq!(ceilings[10], None, "the 11th attempt is refused");
        let total: Duration = ceilings.iter().flatten().sum();
        assert_eq!(total, ms(21_300), "the documented worst-case wait");
    }

    #[test]
    fn jitter_takes_off_at_most_its_fraction() {
        let b = Backoff::default();
        assert_eq!(b.delay_before(3, 0.0), Some(ms(200)));
        assert_eq!(b.delay_before(3, 0.5), Some(ms(150)));
        assert_eq!(b.delay_before(3, 1.0), Some(ms(100)));
        // Out-of-range randomness is clamped, never stretches the delay.
        assert_eq!(b.delay_before(3, 7.0), Some(ms(100)));
        assert_eq!(b.delay_before(3, -1.0), Some(ms(200)));
        assert_eq!(b.delay_before(3, f64::NAN), Some(ms(200)));
        let none = b.clone().jitter(0.0);
        assert_eq!(none.delay_before(3, 0.9), Some(ms(200)));
        let all = b.jitter(9.0);
        assert_eq!(all.delay_before(3, 1.0), Some(Duration::ZERO));
    }

    #[test]
    fn unlimited_attempts_stay_bounded_by_the_maximum() {
        let b = Backoff::default()
            .initial_delay(ms(250))
            .max_delay(ms(2_000))
            .max_attempts(Attempts::Unlimited);
        for attempt in [2, 5, 40, 1_000, u32::MAX] {
            let d = b.delay_before(attempt, 0.0).expect("unlimited");
            assert!(d <= ms(2_000), "attempt {attempt}: {d:?}");
        }
        assert_eq!(b.delay_before(u32::MAX, 0.0), Some(ms(2_000)));
        // A huge initial delay does not overflow either.
        let huge = Backoff::default().initial_delay(Duration::MAX);
        assert_eq!(huge.delay_before(10, 0.0), Some(Duration::from_secs(5)));
    }

    #[test]
    fn at_most_counts_attempts_and_zero_means_one() {
        let b = Backoff::default().max_attempts(Attempts::AtMost(3));
        assert!(b.delay_before(3, 0.0).is_some());
        assert_eq!(b.delay_before(4, 0.0), None);
        let one = Backoff::default().max_attempts(Attempts::AtMost(0));
        assert_eq!(one.delay_before(1, 0.0), Some(Duration::ZERO));
        assert_eq!(one.delay_before(2, 0.0), None);
        // Attempt 0 is read as attempt 1.
        assert_eq!(one.delay_before(0, 0.0), Some(Duration::ZERO));
    }

    #[test]
    fn jitter_source_is_uniform_enough_and_in_range() {
        let mut s = seed();
        let draws: Vec<f64> = (0..10_000).map(|_| next_unit(&mut s)).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let below_half = draws.iter().filter(|u| **u < 0.5).count();
        assert!((4_000..6_000).contains(&below_half), "{below_half}");
        let mut zero = 0;
        assert!(
            (0.0..1.0).contains(&next_unit(&mut zero)),
            "a zero state recovers"
        );
    }

    #[test]
    fn only_answers_from_the_server_stop_retrying() {
        assert!(!retryable(&ClientError::NoTransport));
        assert!(!retryable(&ClientError::PathNotResolved(
            CallError::failed("x")
        )));
        assert!(retryable(&ClientError::Timeout));
        assert!(retryable(&ClientError::Link(LinkError::UnexpectedEof)));
        assert!(retryable(&ClientError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
    }
}
