//! Interop: OUR client against the Python `VOPService` of Versile Python
//! 0.8.5 (`tests/python/py_server.py`, insecure: VOP PLAIN on loopback).
//!
//! Every test starts its own py_server.py (a fresh TestGateway per link; its
//! methods are listed at the top of that script), then runs an async body in
//! a private tokio runtime with a limit for the whole body and for every
//! single await. Covered: value round trips of every entity type (`docs/protocol/vec.md`),
//! VRI resolution (`docs/protocol/vop-service.md` §4.4), the three call outcomes
//! (`docs/protocol/vol.md` §4.5), callbacks into our objects and their release (§4.6,
//! §5.2), meta calls (§4.3), concurrency (§6) and the automatic link close
//! once all references are gone (§5.3).

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use num_bigint::BigInt;
use versile::client::{ClientError, Resolved};
use versile::object::Object;
use versile::runtime::CloseReason;
use versile::vec::VFloat;
use versile::{
    CallError, Client, ClientConfig, Entity, LinkHandle, LinkShutdown, LocalObject, ObjectBuilder,
    RemoteObject, Value,
};

/// Limit for a whole test body.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Limit for one call, resolution or wait.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// How soon a link must close once nothing references the peer's objects.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// [`with_py_server_args`] without extra arguments.
fn with_py_server<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    with_py_server_args(&[], body)
}

/// `support::python::with_py_server` with [`TEST_TIMEOUT`].
fn with_py_server_args<F, Fut>(args: &[&str], body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    support::python::with_py_server(args, TEST_TIMEOUT, body)
}

/// Awaits `fut` for at most [`STEP_TIMEOUT`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {STEP_TIMEOUT:?}"))
}

fn client() -> Client {
    Client::new(ClientConfig::insecure())
}

async fn resolve(vri: &str) -> Result<Resolved, ClientError> {
    resolve_with(&client(), vri).await
}

async fn resolve_with(client: &Client, vri: &str) -> Result<Resolved, ClientError> {
    let vri = vri
        .parse()
        .unwrap_or_else(|e| panic!("bad VRI {vri}: {e:?}"));
    within(&format!("resolve {vri}"), client.resolve(&vri)).await
}

/// Resolves `base + rel` and returns the resource object and its link.
async fn resolve_object(base: &str, rel: &str) -> (RemoteObject, LinkHandle) {
    let r = resolve(&format!("{base}{rel}"))
        .await
        .unwrap_or_else(|e| panic!("resolve {base}{rel}: {e}"));
    let obj = r
        .value
        .as_remote()
        .unwrap_or_else(|| panic!("{base}{rel} resolved to {:?}", r.value))
        .clone();
    (obj, r.link)
}

async fn call(obj: &RemoteObject, method: &str, args: Vec<Value>) -> Result<Value, CallError> {
    within(&format!("{method}(...)"), obj.call(method, args)).await
}

async fn echo(obj: &RemoteObject, v: Value) -> Value {
    call(obj, "echo", vec![v.clone()])
        .await
        .unwrap_or_else(|e| panic!("echo({}) failed: {e}", describe(&v)))
}

fn describe(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 200 {
        format!("{}...({} chars)", &s[..200], s.len())
    } else {
        s
    }
}

fn big(v: BigInt) -> Value {
    Value::int(v)
}

fn pow2(n: u32) -> BigInt {
    BigInt::from(1) << n
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn bytes(v: &[u8]) -> Value {
    Value::from(v.to_vec())
}

/// A base-10 VFloat (Python `Decimal`): `digits × 10^exp`.
fn decimal(digits: i64, exp: i64) -> Value {
    Entity::VFloat(Box::new(VFloat {
        digits: BigInt::from(digits),
        base: BigInt::from(10),
        exp: BigInt::from(exp),
    }))
}

fn tuple(v: Vec<Value>) -> Value {
    Entity::Tuple(v)
}

/// Deterministic pseudo-random bytes (xorshift).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Every entity type, with the boundaries of the integer encodings.
fn echo_values() -> Vec<(&'static str, Value)> {
    vec![
        ("none", Value::None),
        ("true", Value::from(true)),
        ("false", Value::from(false)),
        ("int 0", Value::from(0)),
        ("int -1", Value::from(-1)),
        ("int 237", Value::from(237)),
        ("int 238", Value::from(238)),
        ("int -2", Value::from(-2)),
        ("int i64::MAX", Value::from(i64::MAX)),
        ("int i64::MIN", Value::from(i64::MIN)),
        ("int 2**63", big(pow2(63))),
        ("int 2**64", big(pow2(64))),
        ("int -(2**64)", big(-pow2(64))),
        ("int 2**200", big(pow2(200))),
        ("int -(2**300)", big(-pow2(300))),
        ("float 1.5", Value::from(1.5)),
        ("float 0.1", Value::from(0.1)),
        ("float -2.25", Value::from(-2.25)),
        ("float 1e300", Value::from(1e300)),
        ("float 5e-324", Value::from(5e-324)),
        ("float f64::MAX", Value::from(f64::MAX)),
        ("float f64::MIN_POSITIVE", Value::from(f64::MIN_POSITIVE)),
        ("decimal 1.5", decimal(15, -1)),
        ("decimal -1e-40", decimal(-1, -40)),
        ("bytes empty", bytes(b"")),
        ("bytes 0..255", bytes(&(0..=255u8).collect::<Vec<_>>())),
        ("bytes 1 MiB", bytes(&random_bytes(1 << 20))),
        ("str empty", s("")),
        ("str hello", s("Hello")),
        ("str unicode", s("æøå 日本 🎉")),
        ("str NUL", s("a\0b")),
        ("str long", s(&"versile ".repeat(10_000))),
        ("tuple empty", tuple(vec![])),
        (
            "tuple nested",
            Value::from(((1, (2, (3, tuple(vec![])))), "x")),
        ),
        (
            "tuple 1000 ints",
            tuple((-500..500).map(Value::from).collect()),
        ),
        (
            "tuple mixed",
            tuple(vec![
                Value::None,
                Value::from(true),
                Value::from(1),
                s("a"),
                bytes(b"b"),
                Value::from(1.5),
                Value::from((2,)),
            ]),
        ),
        (
            "vexception",
            Entity::Exception(vec![
                s("boom"),
                Value::from(42),
                Value::from((1, bytes(b"x"))),
            ]),
        ),
        ("vexception empty", Entity::Exception(vec![])),
    ]
}

#[test]
fn echo_every_entity_type() {
    with_py_server(|base| async move {
        let (gw, _link) = resolve_object(&base, "").await;
        let (echoer, _elink) = resolve_object(&base, "text/echo/").await;
        for target in [&gw, &echoer] {
            for (label, v) in echo_values() {
                let r = echo(target, v.clone()).await;
                assert!(
                    r == v,
                    "echo {label}: sent {}, got {}",
                    describe(&v),
                    describe(&r)
                );
            }
            // -0.0 loses its sign on the wire (`docs/protocol/vec.md` §5.3: zero is
            // digits 0, exp 0): it comes back as +0.0.
            match echo(target, Value::from(-0.0)).await {
                Entity::Float(f) => assert!(f == 0.0 && f.is_sign_positive(), "-0.0 -> {f}"),
                other => panic!("-0.0 -> {other:?}"),
            }
            // Python normalises base-10 VFloats when decoding them
            // (`docs/protocol/vec.md` §5.3: Decimal, trailing zeros removed), so 10.30
            // (1030e-2) comes back as 103e-1.
            let r = echo(target, decimal(1030, -2)).await;
            assert_eq!(r, decimal(103, -1), "Decimal('10.30')");
            // echo_args returns all arguments as one tuple.
            let r = call(target, "echo", vec![Value::from((1, "two", Value::None))]).await;
            assert_eq!(r.unwrap(), Value::from((1, "two", Value::None)));
        }
        let r = call(
            &gw,
            "echo_args",
            vec![Value::from(1), s("two"), Value::None],
        )
        .await
        .unwrap();
        assert_eq!(r, Value::from((1, "two", Value::None)));
        let r = call(&gw, "echo_args", vec![]).await.unwrap();
        assert_eq!(r, tuple(vec![]));
    });
}

#[test]
fn adders_are_independent() {
    with_py_server(|base| async move {
        let (a, _la) = resolve_object(&base, "math/adder/").await;
        let (b, _lb) = resolve_object(&base, "math/adder/").await;
        assert_eq!(call(&a, "add", vec![5.into()]).await.unwrap(), 5.into());
        assert_eq!(call(&a, "add", vec![7.into()]).await.unwrap(), 12.into());
        assert_eq!(call(&a, "result", vec![]).await.unwrap(), 12.into());
        assert_eq!(call(&b, "result", vec![]).await.unwrap(), 0.into());
        assert_eq!(call(&b, "add", vec![100.into()]).await.unwrap(), 100.into());
        assert_eq!(call(&a, "result", vec![]).await.unwrap(), 12.into());
        assert_eq!(call(&a, "reset", vec![]).await.unwrap(), Value::None);
        assert_eq!(call(&a, "result", vec![]).await.unwrap(), 0.into());
        let r = call(&b, "add", vec![big(pow2(70))]).await.unwrap();
        assert_eq!(r, big(pow2(70) + 100));

        // A VRI with a query: the method is called on the resource.
        let r = resolve(&format!("{base}math/adder/result")).await.unwrap();
        assert_eq!(r.value, Value::from(0));
        r.link.shutdown(LinkShutdown::Graceful);
    });
}

#[test]
fn text_echo_resource() {
    with_py_server(|base| async move {
        let (e, _l) = resolve_object(&base, "text/echo/").await;
        assert_eq!(echo(&e, s("Hello Versile")).await, s("Hello Versile"));
        let methods = within("meta methods", e.meta("methods", ())).await.unwrap();
        assert_eq!(methods, Value::from(("echo",)));
        let doc = within("meta doc", e.meta("doc", ())).await.unwrap();
        assert_eq!(
            doc,
            s("A simple service object for receiving and echoing a VEntity.\n")
        );
    });
}

#[test]
fn call_outcomes_and_errors() {
    with_py_server(|base| async move {
        let (gw, link) = resolve_object(&base, "").await;
        let alive = |tag: &'static str| {
            let gw = gw.clone();
            async move { assert_eq!(echo(&gw, s(tag)).await, s(tag), "link broken") }
        };

        // docs/protocol/vol.md §4.4: unknown method and wrong arity → CALL_ERROR.
        let e = call(&gw, "no_such_method", vec![1.into()])
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "unknown method: {e:?}");
        alive("after unknown").await;
        let e = call(&gw, "echo", vec![]).await.unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "echo(): {e:?}");
        let e = call(&gw, "echo", vec![1.into(), 2.into()])
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "echo(1, 2): {e:?}");
        alive("after arity").await;

        // §4.5: VException → CALL_EXCEPTION with its arguments.
        let e = call(
            &gw,
            "raise_vexc",
            vec![s("bad"), 7.into(), Value::from((bytes(b"x"),))],
        )
        .await
        .unwrap_err();
        assert!(matches!(e, CallError::Exception(_)), "raise_vexc: {e:?}");
        assert_eq!(
            e.exception_args().expect("VException"),
            &[s("bad"), 7.into(), Value::from((bytes(b"x"),))]
        );
        let e = call(&gw, "raise_vexc", vec![]).await.unwrap_err();
        assert_eq!(e.exception_args().expect("VException"), &[] as &[Value]);
        alive("after exception").await;

        // §4.5: a plain Python exception → CALL_ERROR; the link survives.
        let e = call(&gw, "fail", vec![]).await.unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "fail(): {e:?}");
        alive("after fail").await;

        // §4.3: unknown meta call → CALL_ERROR.
        let e = within("meta", gw.meta("no_such_meta", ()))
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "meta: {e:?}");

        // §4.9: urlget without a match → CALL_ERROR.
        let e = call(&gw, "urlget", vec![Value::from(("no", "such"))])
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "urlget: {e:?}");
        alive("after errors").await;
        assert!(!link.is_closed());

        // docs/protocol/vop-service.md §4.4: a path urlget does not resolve.
        for rel in ["no/such/", "text/", "text/echo/extra/"] {
            match resolve(&format!("{base}{rel}")).await {
                Err(ClientError::PathNotResolved(CallError::Failed(_))) => {}
                other => panic!("resolve {rel}: expected PathNotResolved, got {other:?}"),
            }
        }
    });
}

#[test]
fn meta_calls() {
    with_py_server(|base| async move {
        let (gw, _l) = resolve_object(&base, "").await;
        let methods = within("methods", gw.meta("methods", ())).await.unwrap();
        let expected = [
            "call_back",
            "call_kept",
            "drop_kept",
            "echo",
            "echo_args",
            "fail",
            "keep",
            "raise_vexc",
            "slow",
            "urlget",
        ];
        assert_eq!(
            methods,
            tuple(expected.iter().map(|n| s(n)).collect()),
            "meta methods"
        );
        let doc = within("doc", gw.meta("doc", ())).await.unwrap();
        assert_eq!(doc, s("Interop test gateway (versile-rs py_server.py).\n"));
        let doc = within("doc echo", gw.meta("doc", ("echo",))).await.unwrap();
        assert_eq!(doc, s("Returns the received argument.\n"));
        let doc = within("doc fail", gw.meta("doc", ("fail",))).await.unwrap();
        assert_eq!(doc, Value::None);
        let e = within("doc unknown", gw.meta("doc", ("nope",)))
            .await
            .unwrap_err();
        assert_eq!(
            e.exception_args().expect("VException"),
            &[s("Not an exposed method")]
        );
        let e = within("methods(1)", gw.meta("methods", (1,)))
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "methods(1): {e:?}");
    });
}

#[test]
fn concurrent_calls() {
    with_py_server(|base| async move {
        const TASKS: i64 = 16;
        const CALLS: i64 = 50;

        // One link shared by all tasks.
        let (gw, _l) = resolve_object(&base, "").await;
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let gw = gw.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..CALLS {
                    let v =
                        Value::from((i, j, "x".repeat((j % 7) as usize), vec![i as u8, j as u8]));
                    assert_eq!(echo(&gw, v.clone()).await, v);
                }
            }));
        }
        for t in tasks {
            within("same-link task", t).await.expect("task panicked");
        }

        // One link per task.
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let (gw, link) = resolve_object(&base, "").await;
                for j in 0..CALLS {
                    let v = Value::from((j, format!("link {i}")));
                    assert_eq!(echo(&gw, v.clone()).await, v);
                }
                link.shutdown(LinkShutdown::Graceful);
            }));
        }
        for t in tasks {
            within("separate-link task", t)
                .await
                .expect("task panicked");
        }

        // Pipelining (docs/protocol/vol.md §6.1): a fast call overtakes a slow one.
        let slow = {
            let gw = gw.clone();
            tokio::spawn(async move { gw.call("slow", (1.0, "slow done")).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let start = Instant::now();
        assert_eq!(echo(&gw, s("fast")).await, s("fast"));
        assert!(
            !slow.is_finished(),
            "slow call finished before the fast one"
        );
        assert!(start.elapsed() < Duration::from_millis(900));
        let r = within("slow", slow).await.expect("task");
        assert_eq!(r.unwrap(), s("slow done"));

        // Many outstanding calls at once.
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let gw = gw.clone();
                tokio::spawn(async move { (i, gw.call("echo", (i,)).await) })
            })
            .collect();
        for c in calls {
            let (i, r) = within("outstanding", c).await.expect("task");
            assert_eq!(r.unwrap(), Value::from(i));
        }
    });
}

/// State of a client object: records calls; sets `dropped` when the object
/// (its last `LocalObject` handle, including the link's export) is gone.
struct Probe {
    calls: Mutex<Vec<Value>>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// A client object like py_client.py's `ClientObject`: `twice(x)`,
/// `concat(*strings)`, `refuse(*args)` → VException.
fn client_object() -> (LocalObject, Arc<AtomicBool>, ProbeCalls) {
    let dropped = Arc::new(AtomicBool::new(false));
    let calls = ProbeCalls::default();
    let recorded = calls.clone();
    let obj = ObjectBuilder::new(Probe {
        calls: Mutex::new(Vec::new()),
        dropped: dropped.clone(),
    })
    .method("twice", move |state, call| {
        let recorded = recorded.clone();
        async move {
            let (x,): (Value,) = call.into_args()?;
            state.calls.lock().unwrap().push(x.clone());
            recorded.0.lock().unwrap().push(x.clone());
            match x {
                Entity::Int(i) => Ok(Value::int(BigInt::from(i) * 2)),
                Entity::String(s) => Ok(Value::from(s.repeat(2))),
                other => Err(CallError::exception(("cannot double", other))),
            }
        }
    })
    .method("concat", |_, call| async move {
        let mut out = String::new();
        for a in &call.args {
            out.push_str(
                a.as_str()
                    .ok_or_else(|| CallError::failed("not a string"))?,
            );
        }
        Ok(Value::from(out))
    })
    .method("refuse", |_, call| async move {
        let mut args = vec![s("refused by client")];
        args.extend(call.args);
        Err(CallError::Exception(Entity::Exception(args)))
    })
    .build();
    (obj, dropped, calls)
}

/// Calls seen by `twice`, visible after the object is gone.
#[derive(Clone, Default)]
struct ProbeCalls(Arc<Mutex<Vec<Value>>>);

async fn wait_for(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn callbacks_and_release() {
    with_py_server(|base| async move {
        let (gw, link) = resolve_object(&base, "").await;
        let (obj, _obj_dropped, obj_calls) = client_object();

        // §4.6: Python calls our object while our call is running.
        let r = call(
            &gw,
            "call_back",
            vec![obj.clone().into(), s("twice"), 21.into()],
        )
        .await;
        assert_eq!(r.unwrap(), Value::from(42));
        assert_eq!(*obj_calls.0.lock().unwrap(), vec![Value::from(21)]);
        let r = call(
            &gw,
            "call_back",
            vec![obj.clone().into(), s("concat"), s("a"), s("b")],
        )
        .await;
        assert_eq!(r.unwrap(), s("ab"));

        // Our VException travels through Python back to us unchanged.
        let e = call(
            &gw,
            "call_back",
            vec![obj.clone().into(), s("refuse"), 5.into()],
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.exception_args().expect("VException"),
            &[s("refused by client"), 5.into()]
        );
        // Unknown method on our object: CALL_ERROR to Python → Python's
        // call_back raises VCallError → CALL_ERROR to us.
        let e = call(&gw, "call_back", vec![obj.clone().into(), s("nope")])
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "call_back(nope): {e:?}");

        // Identity: our object comes back as our object (FC out, FD back),
        // Python's gateway comes back as the same remote reference.
        let r = echo(&gw, obj.clone().into()).await;
        assert!(
            matches!(&r, Entity::Ref(Object::Local(l)) if l.same(&obj)),
            "echo(own object) -> {r:?}"
        );
        let r = echo(&gw, gw.clone().into()).await;
        assert_eq!(r.as_remote(), Some(&gw), "echo(gateway) -> {r:?}");

        // keep / call_kept / drop_kept: Python holds a reference to an
        // object we no longer hold ourselves; once Python drops it, it sends
        // NOTIFY_DEREF, we confirm and remove the export (§5.2), and the
        // object itself is freed.
        let (kept, kept_dropped, kept_calls) = client_object();
        let r = call(&gw, "keep", vec![kept.into()]).await;
        assert_eq!(r.unwrap(), Value::None);
        let r = call(&gw, "call_kept", vec![s("twice"), 5.into()]).await;
        assert_eq!(r.unwrap(), Value::from(10));
        let r = call(&gw, "call_kept", vec![s("twice"), s("ab")]).await;
        assert_eq!(r.unwrap(), s("abab"));
        assert_eq!(kept_calls.0.lock().unwrap().len(), 2);
        assert!(
            !kept_dropped.load(Ordering::SeqCst),
            "object released while Python still holds it"
        );
        let r = call(&gw, "drop_kept", vec![]).await;
        assert_eq!(r.unwrap(), Value::from(true));
        wait_for("release of the kept object", CLOSE_TIMEOUT, || {
            kept_dropped.load(Ordering::SeqCst)
        })
        .await;
        let r = call(&gw, "drop_kept", vec![]).await;
        assert_eq!(r.unwrap(), Value::from(false));
        let e = call(&gw, "call_kept", vec![s("twice"), 1.into()])
            .await
            .unwrap_err();
        assert_eq!(
            e.exception_args().expect("VException"),
            &[s("nothing kept")]
        );

        assert_eq!(echo(&gw, s("still here")).await, s("still here"));
        assert!(!link.is_closed());
    });
}

async fn assert_closes(link: &LinkHandle, what: &str) {
    let reason = tokio::time::timeout(CLOSE_TIMEOUT, link.closed())
        .await
        .unwrap_or_else(|_| panic!("{what}: link still open after {CLOSE_TIMEOUT:?}"));
    assert!(
        matches!(reason, CloseReason::Idle | CloseReason::PeerClosed),
        "{what}: link closed with {reason:?}"
    );
}

#[test]
fn releasing_everything_closes_the_link() {
    with_py_server(|base| async move {
        // The root gateway: once we drop it, Python confirms the release,
        // both tables are empty and the link closes (docs/protocol/vol.md §5.3).
        let (gw, link) = resolve_object(&base, "").await;
        assert_eq!(echo(&gw, s("hi")).await, s("hi"));
        let r = echo(&gw, gw.clone().into()).await;
        drop(r);
        drop(gw);
        assert_closes(&link, "after dropping the gateway").await;

        // A resource: resolve() has already released the gateway; the
        // link lives as long as the resource is referenced.
        let (adder, link) = resolve_object(&base, "math/adder/").await;
        assert_eq!(call(&adder, "add", vec![3.into()]).await.unwrap(), 3.into());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!link.is_closed(), "link closed while the adder is held");
        assert_eq!(call(&adder, "result", vec![]).await.unwrap(), 3.into());
        drop(adder);
        assert_closes(&link, "after dropping the adder").await;
    });
}

/// Keep-alive (`docs/protocol/vol.md` §8). We request 150 ms: the default Python service
/// grants its minimum of 300 s, which must be accepted (≥ the request);
/// a service allowing 100 ms grants 150 ms and then sends KEEP_ALIVE
/// whenever idle, which we must accept indefinitely (Python's own receiver
/// would die on the 6th), and our expiry (1.5 × 150 ms) must not fire.
#[test]
fn keep_alive_requested_from_python() {
    fn keepalive_client() -> Client {
        let mut config = ClientConfig::insecure();
        config.link.protocol.keep_alive_request = Some(Duration::from_millis(150));
        Client::new(config)
    }
    with_py_server(|base| async move {
        let r = resolve_with(&keepalive_client(), &base).await.unwrap();
        let gw = r.value.as_remote().unwrap().clone();
        assert_eq!(echo(&gw, s("granted 300 s")).await, s("granted 300 s"));
        r.link.shutdown(LinkShutdown::Forced);
    });
    with_py_server_args(&["--min-send", "100"], |base| async move {
        let r = resolve_with(&keepalive_client(), &base).await.unwrap();
        let gw = r.value.as_remote().unwrap().clone();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !r.link.is_closed(),
            "link closed while idling with keep-alive: {:?}",
            r.link.closed().await
        );
        assert_eq!(echo(&gw, s("still alive")).await, s("still alive"));
        r.link.shutdown(LinkShutdown::Forced);
    });
}

/// A graceful shutdown with a call in flight (`docs/protocol/vol.md` §7.2): our pending
/// call fails at once with a link error, and the link closes.
#[test]
fn shutdown_with_call_in_flight() {
    with_py_server(|base| async move {
        let (gw, link) = resolve_object(&base, "").await;
        let slow = {
            let gw = gw.clone();
            tokio::spawn(async move { gw.call("slow", (3, "late")).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = Instant::now();
        link.shutdown(LinkShutdown::Graceful);
        let r = within("pending call", slow).await.expect("task");
        assert!(
            matches!(r, Err(CallError::Link(_))),
            "pending call after shutdown: {r:?}"
        );
        let reason = within("closed", link.closed()).await;
        assert!(
            matches!(reason, CloseReason::Shutdown(_)),
            "closed with {reason:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        let e = within("call after shutdown", gw.call("echo", ("x",)))
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Link(_)), "{e:?}");
    });
}

/// The gateway a client offers: a Python service does not hold it
/// (`hold_peer=False`, `docs/protocol/vol.md` §9.2 step 2) and releases it right after
/// the handshake; we must confirm and drop our export, freeing the object.
#[test]
fn offered_gateway_is_released_by_python() {
    with_py_server(|base| async move {
        let (gateway, dropped, _calls) = client_object();
        let client = Client::new(ClientConfig::insecure().gateway(gateway));
        let r = resolve_with(&client, &base).await.unwrap();
        drop(client);
        wait_for("release of our gateway", CLOSE_TIMEOUT, || {
            dropped.load(Ordering::SeqCst)
        })
        .await;
        let gw = r.value.as_remote().unwrap().clone();
        assert_eq!(echo(&gw, s("after release")).await, s("after release"));
    });
}
