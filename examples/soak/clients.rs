//! The well-behaved clients: each connects with [`Client`], then makes
//! random calls with pauses in between (mostly idle), checks every result,
//! now and then closes and reconnects, and stops when told to.
//!
//! A link a client did not close may only be lost because the fault
//! injector stopped it on the server (it records the client's port and
//! when); any other loss, a wrong result, an unexpected error or a call
//! that does not finish in time is a failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use versile::object::Object;
use versile::{
    CallError, Client, ClientConfig, Entity, LinkShutdown, LocalObject, RemoteObject, Value,
};

use crate::gateway::{callback_object, Payloads, Rng, RAISED};
use crate::stats::Stats;

/// Server-side stops by client port, with when they happened.
pub type Kills = Arc<Mutex<HashMap<u16, Instant>>>;

/// What every client and fault task shares.
pub struct Shared {
    pub addr: String,
    pub stats: Stats,
    pub payloads: Arc<Payloads>,
    pub kills: Kills,
    pub stop: CancellationToken,
    /// Mean pause between two operations of one client.
    pub think: Duration,
    /// Bound on one call (a normal call exceeding it is a failure).
    pub call_timeout: Duration,
    /// The server's handshake deadline: a connect that took this long may
    /// be cut by it (a starved machine), which is not a failure.
    pub handshake_deadline: Duration,
}

impl Shared {
    /// Whether the server stopped the link of our `port` (through the
    /// registry) after `since`.
    pub fn stopped_by_server(&self, port: u16, since: Instant) -> bool {
        self.kills
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&port)
            .is_some_and(|at| *at >= since)
    }

    /// Count a failed connect: a failure, unless it took as long as the
    /// server's handshake deadline (which then legitimately cut it).
    pub fn connect_failed(&self, what: &str, started: Instant, error: String) {
        if started.elapsed() >= self.handshake_deadline {
            self.stats
                .add(format!("{what}.connect_cut_by_handshake_deadline"));
        } else {
            let took = started.elapsed();
            self.stats.fail(
                &format!("{what}_connect"),
                format!("{error} (after {took:.1?})"),
            );
        }
    }
}

/// Why an operation did not complete.
#[derive(Debug)]
pub enum OpError {
    /// The link went away (expected only after a server-side stop).
    Link(CallError),
    /// CALL_ERROR where a result or an exception was due. Expected only
    /// when the server stops the link gracefully during a callback: its
    /// pending calls to us fail at once (`docs/protocol/vol.md` §7.2 step 2), so the
    /// method calling back fails.
    CallFailed(String),
    /// Wrong result, other unexpected error, or no answer in time.
    Wrong(String),
}

impl OpError {
    /// Count an operation that did not complete on a link the client
    /// still has: a failure unless the server stopped that link.
    pub fn count(self, shared: &Shared, op: &str, port: u16, since: Instant) {
        match self {
            OpError::CallFailed(_) if shared.stopped_by_server(port, since) => {
                shared.stats.add("calls.failed.callback_cut_by_server_stop")
            }
            OpError::CallFailed(detail) | OpError::Wrong(detail) => {
                shared.stats.fail("wrong_result", format!("{op}: {detail}"))
            }
            OpError::Link(e) => shared.stats.fail("link_lost", format!("{op}: {e}")),
        }
    }
}

type OpResult = Result<(), OpError>;

/// Operations and their weights.
const OPS: &[(&str, u64)] = &[
    ("echo_small", 30),
    ("sum", 10),
    ("raise", 8),
    ("counter", 8),
    ("call_back", 10),
    ("call_back_raise", 5),
    ("echo_object", 5),
    ("unknown_method", 3),
    ("sleep", 5),
    ("echo_medium", 3),
    ("echo_large", 2),
    ("concurrent", 8),
];

pub fn pick_op(rng: &mut Rng) -> &'static str {
    let total: u64 = OPS.iter().map(|(_, w)| w).sum();
    let mut r = rng.below(total);
    for (name, w) in OPS {
        if r < *w {
            return name;
        }
        r -= w;
    }
    OPS[0].0
}

/// One client until `stop`.
pub async fn run_client(shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let stats = &shared.stats;
    // Spread the first connects over a second.
    tokio::select! {
        _ = shared.stop.cancelled() => return,
        _ = tokio::time::sleep(Duration::from_millis(rng.below(1000))) => {}
    }
    while !shared.stop.is_cancelled() {
        let connect_started = Instant::now();
        let cb = callback_object();
        let client = Client::new(ClientConfig::insecure().gateway(cb.clone()));
        let (link, gw) = match client.connect(&shared.addr).await {
            Ok(c) => c,
            Err(e) => {
                shared.connect_failed("client", connect_started, e.to_string());
                tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        };
        stats.add("client.connects");
        let port = link.context().local_addr().map_or(0, |a| a.port());
        let churn_after = rng.range(20, 300);
        let mut lost = None;
        for _ in 0..churn_after {
            let pause = Duration::from_millis(rng.below(2 * shared.think.as_millis() as u64 + 1));
            tokio::select! {
                _ = shared.stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
            let op = pick_op(&mut rng);
            stats.add("calls.started");
            match run_op(op, &mut rng, &gw, &cb, &shared).await {
                Ok(()) => stats.add(format!("calls.ok.{op}")),
                Err(OpError::Link(e)) => {
                    lost = Some(e);
                    break;
                }
                Err(e) => e.count(&shared, op, port, connect_started),
            }
        }
        drop(gw);
        if let Some(e) = lost {
            if shared.stopped_by_server(port, connect_started) {
                stats.add("calls.failed.link_stopped_by_server");
            } else {
                stats.fail("link_lost", format!("port {port}: {e}"));
            }
            link.shutdown(LinkShutdown::Forced);
            continue;
        }
        // Churn or stop: close gracefully, in bounded time.
        link.shutdown(LinkShutdown::Graceful);
        if timeout(Duration::from_secs(15), link.closed())
            .await
            .is_err()
        {
            stats.fail("client_close", format!("port {port}: graceful close hung"));
            link.shutdown(LinkShutdown::Forced);
        }
        stats.add("client.closes");
    }
}

/// A call bounded by the call timeout; link failures are `OpError::Link`,
/// the method's outcome (exceptions included) is returned.
async fn call(
    shared: &Shared,
    obj: &RemoteObject,
    method: &str,
    args: Vec<Value>,
) -> Result<Result<Value, CallError>, OpError> {
    match timeout(shared.call_timeout, obj.call(method, args)).await {
        Err(_) => Err(OpError::Wrong(format!(
            "{method}: no result within {:?}",
            shared.call_timeout
        ))),
        Ok(Err(CallError::Link(e))) => Err(OpError::Link(CallError::Link(e))),
        Ok(r) => Ok(r),
    }
}

/// `method(args)` must return `want`.
async fn expect(
    shared: &Shared,
    obj: &RemoteObject,
    method: &str,
    args: Vec<Value>,
    want: &Value,
) -> OpResult {
    match call(shared, obj, method, args).await? {
        Ok(v) if v == *want => Ok(()),
        Ok(v) => Err(OpError::Wrong(format!(
            "{method}: got {}, want {}",
            short(&v),
            short(want)
        ))),
        Err(e @ CallError::Failed(_)) => Err(OpError::CallFailed(format!("{method}: {e}"))),
        Err(e) => Err(OpError::Wrong(format!("{method}: unexpected error {e}"))),
    }
}

/// `method(args)` must raise a VException with `want_args`.
async fn expect_raise(
    shared: &Shared,
    obj: &RemoteObject,
    method: &str,
    args: Vec<Value>,
    want_args: Vec<Value>,
) -> OpResult {
    match call(shared, obj, method, args).await? {
        Err(CallError::Exception(Entity::Exception(got))) if got == want_args => Ok(()),
        Err(e @ CallError::Failed(_)) => Err(OpError::CallFailed(format!("{method}: {e}"))),
        other => Err(OpError::Wrong(format!(
            "{method}: got {}, want an exception",
            match other {
                Ok(v) => short(&v),
                Err(e) => e.to_string(),
            }
        ))),
    }
}

/// A bounded description of a value for failure notes.
fn short(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 200 {
        format!(
            "{}... ({} chars)",
            s.chars().take(200).collect::<String>(),
            s.len()
        )
    } else {
        s
    }
}

/// Run one operation and check its results.
pub async fn run_op(
    op: &str,
    rng: &mut Rng,
    gw: &RemoteObject,
    cb: &LocalObject,
    shared: &Shared,
) -> OpResult {
    match op {
        "concurrent" => {
            // A few operations at once on the same link (multiplexing).
            let n = rng.range(2, 4);
            let mut rngs: Vec<Rng> = (0..n).map(|_| Rng::new(rng.next_u64())).collect();
            let results = join_all(rngs.iter_mut().map(|r| {
                let op = match r.below(4) {
                    0 => "echo_small",
                    1 => "call_back",
                    2 => "counter",
                    _ => "sleep",
                };
                Box::pin(simple_op(op, r, gw, cb, shared))
            }))
            .await;
            results.into_iter().collect()
        }
        op => simple_op(op, rng, gw, cb, shared).await,
    }
}

async fn simple_op(
    op: &str,
    rng: &mut Rng,
    gw: &RemoteObject,
    cb: &LocalObject,
    shared: &Shared,
) -> OpResult {
    match op {
        "echo_small" => {
            let v = rng.value(3);
            expect(shared, gw, "echo", vec![v.clone()], &v).await
        }
        "echo_medium" => {
            let n = rng.range(1000, 5000) as usize;
            let v = Entity::Tuple((0..n).map(|_| Value::Int(rng.next_u64() as i64)).collect());
            expect(shared, gw, "echo", vec![v.clone()], &v).await
        }
        "echo_large" => {
            let large = shared.payloads.large;
            let len = rng.range(large as u64 / 2, large as u64) as usize;
            let v = Value::Bytes(shared.payloads.pool.slice(rng, len));
            expect(shared, gw, "echo", vec![v.clone()], &v).await
        }
        "sum" => {
            let n = rng.range(1, 50) as usize;
            let items: Vec<i64> = (0..n).map(|_| rng.next_u64() as i64).collect();
            let want = Value::int(
                items
                    .iter()
                    .map(|&i| num_bigint::BigInt::from(i))
                    .sum::<num_bigint::BigInt>(),
            );
            let args = Entity::Tuple(items.into_iter().map(Value::Int).collect());
            expect(shared, gw, "sum", vec![args], &want).await
        }
        "raise" => {
            let tag = rng.value(1);
            expect_raise(
                shared,
                gw,
                "raise",
                vec![tag.clone()],
                vec![tag, RAISED.into()],
            )
            .await
        }
        "counter" => {
            // An object of the server's, used, passed back, released.
            let start = rng.next_u64() as i32 as i64;
            let counter = match call(shared, gw, "new_counter", vec![start.into()]).await? {
                Ok(Entity::Ref(Object::Remote(r))) => r,
                other => return Err(OpError::Wrong(format!("new_counter: {other:?}"))),
            };
            let mut total = start;
            for _ in 0..rng.range(1, 4) {
                let n = rng.next_u64() as i32 as i64;
                total += n;
                expect(shared, &counter, "add", vec![n.into()], &total.into()).await?;
            }
            expect(shared, &counter, "value", vec![], &total.into()).await?;
            expect(shared, gw, "is_mine", vec![counter.into()], &true.into()).await
        }
        "call_back" => {
            // Our object goes to the server, which calls it.
            let x = rng.next_u64() as i32 as i64;
            expect(
                shared,
                gw,
                "call_back",
                vec![cb.clone().into(), x.into()],
                &(2 * x + 1).into(),
            )
            .await
        }
        "call_back_raise" => {
            let tag = rng.value(1);
            expect_raise(
                shared,
                gw,
                "call_back_raise",
                vec![cb.clone().into(), tag.clone()],
                vec![tag],
            )
            .await
        }
        "echo_object" => {
            // Ours comes back as ours; a fresh one too (then released).
            let fresh = callback_object();
            let obj = if rng.chance(0.5) { cb.clone() } else { fresh };
            let want = Value::from(obj.clone());
            expect(shared, gw, "echo", vec![obj.into()], &want).await?;
            expect(shared, gw, "is_mine", vec![want], &false.into()).await
        }
        "unknown_method" => match call(shared, gw, "no_such_method", vec![]).await? {
            Err(CallError::Failed(_)) => Ok(()),
            other => Err(OpError::Wrong(format!("no_such_method: {other:?}"))),
        },
        "sleep" => {
            let ms = rng.below(100);
            expect(shared, gw, "sleep", vec![ms.into()], &ms.into()).await
        }
        other => Err(OpError::Wrong(format!("unknown op {other}"))),
    }
}
