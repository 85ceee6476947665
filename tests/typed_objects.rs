//! `#[versile::object]` and `#[versile::client]` over loopback TCP: a
//! macro-defined object served by our server, called by our client through
//! a macro-generated typed proxy and through the dynamic `RemoteObject`
//! API (to see exactly what goes on the wire: arity and type errors as
//! CALL_ERROR, `Err` as CALL_EXCEPTION, meta calls, `docs/protocol/vol.md` §4.1–4.5).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tower::ServiceBuilder;
use versile::{
    CallContext, CallError, GatewayService, LocalObject, ProxyError, Publish, Server, Value,
    VopLayer,
};

/// Limit for every await on the network.
mod support;
use support::calls::{connect_plain, within};
use support::servers::serve_plain;

/// The failure of `divide`: sent as a VException("division by zero", a).
#[derive(Debug)]
struct DivideByZero(i64);

impl From<DivideByZero> for CallError {
    fn from(e: DivideByZero) -> Self {
        CallError::exception(("division by zero", e.0))
    }
}

#[derive(Default)]
struct Calculator {
    /// Appended to by `push`: state is the struct, behind a lock.
    items: Mutex<Vec<String>>,
}

/// A calculator for the tests.
///
/// Second paragraph.
#[versile::object]
impl Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Divides; raises on zero.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
        if b == 0 {
            return Err(DivideByZero(a));
        }
        Ok(a / b)
    }

    async fn push(&self, item: String) -> usize {
        let mut items = self.items.lock().unwrap();
        items.push(item);
        items.len()
    }

    async fn nothing(&self) {}

    /// Takes the link's context in the middle of the arguments.
    async fn greet(&self, greeting: String, ctx: &CallContext, name: Option<String>) -> String {
        let peer = ctx.peer_addr().map(|a| a.ip().to_string());
        format!(
            "{greeting}, {} from {}",
            name.as_deref().unwrap_or("nobody"),
            peer.unwrap_or_default()
        )
    }

    #[versile(name = "type")]
    async fn kind(&self) -> &'static str {
        "calculator"
    }

    /// Callable, not listed.
    #[versile(hidden)]
    async fn secret(&self) -> bool {
        true
    }

    /// A new counter object on each call.
    async fn counter(&self) -> LocalObject {
        Counter::default().into()
    }

    /// A child object that keeps this one (`self: Arc<Self>`).
    async fn child(self: Arc<Self>) -> LocalObject {
        Child { parent: self }.into()
    }

    /// Not published: a helper.
    #[versile(skip)]
    fn item_count(&self) -> usize {
        self.items.lock().unwrap().len()
    }
}

struct Child {
    parent: Arc<Calculator>,
}

#[versile::object]
impl Child {
    /// Pushes onto the parent's items.
    async fn push(&self, item: String) -> usize {
        self.parent.push(item).await
    }
}

#[derive(Default)]
struct Counter {
    count: AtomicI64,
}

#[versile::object]
impl Counter {
    async fn increment(&self, by: i64) -> i64 {
        self.count.fetch_add(by, Ordering::SeqCst) + by
    }

    /// Named like `Clone::clone` (which the state's `Arc` has): the
    /// expansion must still call this method.
    async fn clone(&self) -> i64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// The client side of `Calculator`, with some methods declared wrongly on
/// purpose (to see the typed errors).
#[versile::client]
trait Calc {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn divide(&self, a: i64, b: i64) -> i64;
    async fn push(&self, item: &str) -> u32;
    async fn nothing(&self);
    async fn greet(&self, greeting: &str, name: Option<String>) -> String;
    #[versile(name = "type")]
    async fn kind(&self) -> String;
    async fn secret(&self) -> bool;
    async fn counter(&self) -> CounterClient;
    async fn child(&self) -> CalcClient;
    /// Declared with the wrong result type.
    #[versile(name = "add")]
    async fn add_as_text(&self, a: i64, b: i64) -> String;
    /// Declared with the wrong arity.
    #[versile(name = "add")]
    async fn add_one(&self, a: i64) -> i64;
    /// Declared with a wrong argument type.
    #[versile(name = "add")]
    async fn add_text(&self, a: &str, b: i64) -> i64;
    /// Not a method of the object.
    async fn missing(&self) -> i64;
}

/// Same name as the served struct: the trait itself is not emitted.
#[versile::client]
trait Counter {
    async fn increment(&self, by: i64) -> i64;
    async fn clone(&self) -> i64;
}

fn is_call_error(e: &ProxyError) -> bool {
    matches!(e, ProxyError::Call(CallError::Failed(_)))
}

#[tokio::test]
async fn typed_calls_convert_arguments_and_results() {
    let server = serve_plain(Calculator::default).await;
    let (_link, gateway) = connect_plain(server.local_addr()).await;
    let calc = CalcClient::new(gateway);
    assert_eq!(within(calc.add(2, 3)).await.unwrap(), 5);
    assert_eq!(within(calc.divide(7, 2)).await.unwrap(), 3);
    assert_eq!(within(calc.push("a")).await.unwrap(), 1);
    assert_eq!(within(calc.push("b")).await.unwrap(), 2);
    within(calc.nothing()).await.unwrap();
    assert_eq!(
        within(calc.greet("hello", Some("ann".into())))
            .await
            .unwrap(),
        "hello, ann from 127.0.0.1"
    );
    assert_eq!(
        within(calc.greet("hi", None)).await.unwrap(),
        "hi, nobody from 127.0.0.1"
    );
    assert_eq!(within(calc.kind()).await.unwrap(), "calculator");
    assert!(within(calc.secret()).await.unwrap());
    // An object as a result, called through its own typed client.
    let counter = within(calc.counter()).await.unwrap();
    assert_eq!(within(counter.increment(2)).await.unwrap(), 2);
    assert_eq!(within(counter.increment(3)).await.unwrap(), 5);
    assert_eq!(within(counter.clone()).await.unwrap(), 5);
    let other = within(calc.counter()).await.unwrap();
    assert_eq!(within(other.increment(1)).await.unwrap(), 1);
    // A child holding its parent: pushes land in the parent's items.
    let child = within(calc.child()).await.unwrap();
    assert_eq!(within(child.push("c")).await.unwrap(), 3);
    assert_eq!(within(calc.push("d")).await.unwrap(), 4);
}

#[tokio::test]
async fn typed_errors() {
    let server = serve_plain(Calculator::default).await;
    let (_link, gateway) = connect_plain(server.local_addr()).await;
    let calc = CalcClient::new(gateway);
    // Err → CALL_EXCEPTION with the error's arguments.
    let e = within(calc.divide(1, 0)).await.unwrap_err();
    assert!(
        matches!(e, ProxyError::Call(CallError::Exception(_))),
        "{e:?}"
    );
    assert_eq!(
        e.exception_args(),
        Some(&[Value::from("division by zero"), Value::from(1)][..])
    );
    // A result of another type than declared: a typed error on our side.
    let e = within(calc.add_as_text(1, 2)).await.unwrap_err();
    match &e {
        ProxyError::Result { method, source } => {
            assert_eq!(*method, "add");
            assert_eq!((source.expected, source.found), ("str", "int"));
        }
        other => panic!("expected a result error, got {other:?}"),
    }
    // Wrong arity, wrong argument type, unknown method: CALL_ERROR.
    for e in [
        within(calc.add_one(1)).await.unwrap_err(),
        within(calc.add_text("1", 2)).await.unwrap_err(),
        within(calc.missing()).await.unwrap_err(),
    ] {
        assert!(is_call_error(&e), "{e:?}");
    }
    // The link still works.
    assert_eq!(within(calc.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn arity_and_types_on_the_wire() {
    let server = serve_plain(Calculator::default).await;
    let (_link, gateway) = connect_plain(server.local_addr()).await;
    let failed = |r: Result<Value, CallError>| matches!(r, Err(CallError::Failed(_)));
    assert!(failed(within(gateway.call("add", (1,))).await));
    assert!(failed(within(gateway.call("add", (1, 2, 3))).await));
    assert!(failed(within(gateway.call("add", (1, "2"))).await));
    assert!(failed(within(gateway.call("nothing", (1,))).await));
    // i64 from a big integer: out of range is a type error too.
    assert!(failed(
        within(gateway.call("add", (1, Value::from(u64::MAX)))).await
    ));
    // `()` is VNone; `Option` takes None.
    assert_eq!(
        within(gateway.call("nothing", ())).await.unwrap(),
        Value::None
    );
    assert_eq!(
        within(gateway.call("greet", ("hey", Value::None)))
            .await
            .unwrap(),
        Value::from("hey, nobody from 127.0.0.1")
    );
}

#[tokio::test]
async fn doc_comments_are_the_meta_documentation() {
    let server = serve_plain(Calculator::default).await;
    let (_link, gateway) = connect_plain(server.local_addr()).await;
    let methods = within(gateway.meta("methods", ())).await.unwrap();
    let names: Vec<Value> = [
        "add", "child", "counter", "divide", "greet", "nothing", "push", "type",
    ]
    .into_iter()
    .map(Value::from)
    .collect();
    // Sorted, hidden and skipped methods left out.
    assert_eq!(methods, Value::Tuple(names));
    assert_eq!(
        within(gateway.meta("doc", ())).await.unwrap(),
        Value::from("A calculator for the tests.\n\nSecond paragraph.\n")
    );
    assert_eq!(
        within(gateway.meta("doc", ("add",))).await.unwrap(),
        Value::from("Adds two numbers.\n")
    );
    assert_eq!(
        within(gateway.meta("doc", ("secret",))).await.unwrap(),
        Value::from("Callable, not listed.\n")
    );
    // No doc comment: None.
    assert_eq!(
        within(gateway.meta("doc", ("push",))).await.unwrap(),
        Value::None
    );
}

#[tokio::test]
async fn publish_builder_and_shared_state() {
    // Shared state: two objects over one Calculator.
    let shared = Arc::new(Calculator::default());
    let a = Calculator::shared_object(shared.clone());
    let b = Calculator::shared_object(shared.clone());
    // The builder stays open for dynamic additions.
    let extended = Calculator::default()
        .into_builder()
        .method("extra", |calc, _call| async move {
            Ok(Value::from(calc.item_count()))
        })
        .build();
    let svc = ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(move || {
            versile::ObjectBuilder::new(())
                .method("a", {
                    let a = a.clone();
                    move |_, _| {
                        let a = a.clone();
                        async move { Ok(Value::from(a)) }
                    }
                })
                .method("b", {
                    let b = b.clone();
                    move |_, _| {
                        let b = b.clone();
                        async move { Ok(Value::from(b)) }
                    }
                })
                .method("extended", {
                    let e = extended.clone();
                    move |_, _| {
                        let e = e.clone();
                        async move { Ok(Value::from(e)) }
                    }
                })
                .build()
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::serve(listener, svc).unwrap();
    let (_link, gateway) = connect_plain(server.local_addr()).await;
    let get = |name: &'static str| {
        let gateway = gateway.clone();
        async move {
            let v = within(gateway.call(name, ())).await.unwrap();
            CalcClient::new(v.as_remote().unwrap().clone())
        }
    };
    let (a, b) = (get("a").await, get("b").await);
    assert_eq!(within(a.push("x")).await.unwrap(), 1);
    assert_eq!(within(b.push("y")).await.unwrap(), 2);
    assert_eq!(shared.items.lock().unwrap().len(), 2);
    let extended = get("extended").await;
    assert_eq!(within(extended.push("z")).await.unwrap(), 1);
    let extra = within(extended.remote().call("extra", ())).await.unwrap();
    assert_eq!(extra, Value::from(1));
}

/// A generic impl block: the type parameters carry over to the expansion.
struct Fixed<T>(T);

#[versile::object]
impl<T> Fixed<T>
where
    T: Into<Value> + versile::FromValue + Clone + PartialEq + Send + Sync + 'static,
{
    async fn get(&self) -> T {
        self.0.clone()
    }

    async fn is(&self, other: T) -> bool {
        other == self.0
    }
}

#[tokio::test]
async fn generic_impl_blocks_are_served() {
    let server = serve_plain(|| Fixed(String::from("x"))).await;
    let (_link, gateway) = connect_plain(server.local_addr()).await;
    assert_eq!(
        within(gateway.call("get", ())).await.unwrap(),
        Value::from("x")
    );
    assert_eq!(
        within(gateway.call("is", ("x",))).await.unwrap(),
        Value::from(true)
    );
    assert!(matches!(
        within(gateway.call("is", (1,))).await,
        Err(CallError::Failed(_))
    ));
}
