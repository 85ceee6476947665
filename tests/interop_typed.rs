//! Interop of the typed API with Versile Python 0.8.5, over VOP PLAIN on
//! loopback:
//! * a `#[versile::object]` gateway served by OUR server, called by the
//!   Python client `py_typed_client.py` (conversions, CALL_ERROR on arity
//!   and type, CALL_EXCEPTION from `Err`, meta calls from doc comments,
//!   `docs/protocol/vol.md` §4.1–4.5);
//! * `#[versile::client]` proxies calling Python's `VOPService`
//!   (`py_server.py`'s TestGateway and `versile.demo.Adder`).

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use num_bigint::BigInt;
use support::python::{run_py_checks, with_py_server};
use support::servers::ServerOnOwnRuntime;
use versile::{CallContext, CallError, Client, ClientConfig, LocalObject, ProxyError, Value};

/// Limit for one py_typed_client.py run (the client gets 5 s less).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
/// Limit for one call or resolution against py_server.py.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The gateway py_typed_client.py expects (see its docstring).
struct TypedGateway;

/// Typed gateway for the interop tests.
#[versile::object]
impl TypedGateway {
    /// Adds two integers.
    async fn add(&self, a: i64, b: i64) -> Result<i64, CallError> {
        a.checked_add(b)
            .ok_or_else(|| CallError::exception(("overflow",)))
    }

    async fn divide(&self, a: i64, b: i64) -> Result<i64, CallError> {
        a.checked_div(b)
            .ok_or_else(|| CallError::exception(("division by zero", a)))
    }

    async fn greet(&self, name: String, ctx: &CallContext) -> String {
        let host = ctx.peer_addr().map(|a| a.ip().to_string());
        format!("hello {name} from {}", host.unwrap_or_default())
    }

    async fn counter(&self) -> LocalObject {
        Counter::default().into()
    }

    async fn echo(&self, value: Value) -> Value {
        value
    }

    #[versile(hidden)]
    async fn secret(&self) -> bool {
        true
    }
}

#[derive(Default)]
struct Counter(AtomicI64);

#[versile::object]
impl Counter {
    async fn increment(&self, by: i64) -> i64 {
        self.0.fetch_add(by, Ordering::SeqCst) + by
    }
}

#[test]
fn python_client_calls_a_macro_defined_object() {
    let server = ServerOnOwnRuntime::start(|| TypedGateway);
    let report = run_py_checks("py_typed_client.py", &[&server.vri()], CLIENT_TIMEOUT);
    drop(server);
    report.assert_all_passed();
    for name in [
        "typed/wrong_arity_is_call_error",
        "typed/wrong_type_is_call_error",
        "typed/err_is_call_exception",
        "typed/meta_doc",
        "typed/object_result",
    ] {
        assert!(report.check(name).is_some(), "{name} did not run");
    }
}

/// py_server.py's TestGateway, as far as these tests use it.
#[versile::client]
trait TestGateway {
    async fn echo(&self, text: &str) -> String;
    /// `echo` declared with a result type the call will not return.
    #[versile(name = "echo")]
    async fn echo_as_int(&self, text: &str) -> i64;
    async fn echo_args(&self, a: i64, b: &str, c: Option<i64>) -> (i64, String, Option<i64>);
    async fn raise_vexc(&self, message: &str, code: i64);
    async fn fail(&self);
    async fn slow(&self, seconds: f64, tag: &str) -> String;
    /// `versile.demo`'s VRI resolution: a new Adder for ("math", "adder").
    async fn urlget(&self, path: (&str, &str)) -> AdderClient;
}

/// `versile.demo.Adder`.
#[versile::client]
trait Adder {
    async fn add(&self, n: BigInt) -> BigInt;
    async fn result(&self) -> BigInt;
    async fn reset(&self);
}

/// Runs `body` against a fresh py_server.py's gateway, in a private
/// runtime.
fn with_py_gateway<F, Fut>(body: F)
where
    F: FnOnce(TestGatewayClient) -> Fut,
    Fut: Future<Output = ()>,
{
    with_py_server(&[], CLIENT_TIMEOUT, |vri| async move {
        let client = Client::new(ClientConfig::insecure());
        let resolved = step(client.resolve(&vri.parse().expect("VRI")))
            .await
            .expect("resolve the gateway");
        let gateway = resolved
            .value
            .as_remote()
            .expect("the gateway is an object")
            .clone();
        body(TestGatewayClient::new(gateway)).await;
    })
}

async fn step<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("no answer within {STEP_TIMEOUT:?}"))
}

#[test]
fn typed_proxy_calls_python_vop_service() {
    with_py_gateway(|gw| async move {
        assert_eq!(step(gw.echo("æ 日本")).await.unwrap(), "æ 日本");
        assert_eq!(
            step(gw.echo_args(1, "two", None)).await.unwrap(),
            (1, "two".to_owned(), None)
        );
        assert_eq!(step(gw.slow(0.01, "tag")).await.unwrap(), "tag");
        // A typed sub-object from a typed call.
        let adder = step(gw.urlget(("math", "adder"))).await.unwrap();
        let big = BigInt::from(1u64) << 70usize;
        assert_eq!(
            step(adder.add(BigInt::from(5))).await.unwrap(),
            BigInt::from(5)
        );
        assert_eq!(step(adder.add(big.clone())).await.unwrap(), big.clone() + 5);
        assert_eq!(step(adder.result()).await.unwrap(), big + 5);
        step(adder.reset()).await.unwrap();
        assert_eq!(step(adder.result()).await.unwrap(), BigInt::from(0));
    });
}

#[test]
fn typed_proxy_errors_from_python() {
    with_py_gateway(|gw| async move {
        // VException → the remote exception, with its arguments.
        let e = step(gw.raise_vexc("bad", 7)).await.unwrap_err();
        assert!(
            matches!(e, ProxyError::Call(CallError::Exception(_))),
            "{e:?}"
        );
        assert_eq!(
            e.exception_args(),
            Some(&[Value::from("bad"), Value::from(7)][..])
        );
        // A Python exception that is not a VException: CALL_ERROR.
        let e = step(gw.fail()).await.unwrap_err();
        assert!(matches!(e, ProxyError::Call(CallError::Failed(_))), "{e:?}");
        // The wrong declared result type: a typed error here.
        let e = step(gw.echo_as_int("x")).await.unwrap_err();
        assert!(
            matches!(&e, ProxyError::Result { method: "echo", source } if source.found == "str"),
            "{e:?}"
        );
        // A resolution that fails in Python: CALL_ERROR.
        let e = step(gw.urlget(("no", "such"))).await.unwrap_err();
        assert!(matches!(e, ProxyError::Call(CallError::Failed(_))), "{e:?}");
        assert_eq!(step(gw.echo("still")).await.unwrap(), "still");
    });
}
