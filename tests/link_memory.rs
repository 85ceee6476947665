//! Two links over an in-memory duplex stream: the whole object protocol
//! without sockets.

use std::time::Duration;

use versile::demo::{Echoer, SimpleGateway};
use versile::object::ConnectionInfo;
use versile::runtime::{connect_link, LinkHandle, LinkOptions};
use versile::{CallError, LocalObject, ObjectBuilder, RemoteObject, Value};

async fn pair(server_gw: LocalObject, client_gw: LocalObject) -> (RemoteObject, RemoteObject) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let s = tokio::spawn(connect_link(
        a,
        server_gw,
        ConnectionInfo::default(),
        LinkOptions::default(),
    ));
    let (_client_link, server_gateway) = connect_link(
        b,
        client_gw,
        ConnectionInfo::default(),
        LinkOptions::default(),
    )
    .await
    .expect("client handshake");
    let (_server_link, client_gateway) = s.await.unwrap().expect("server handshake");
    (server_gateway, client_gateway)
}

#[tokio::test]
async fn echo_and_resolve() {
    let (gw, _) = tokio::time::timeout(
        Duration::from_secs(5),
        pair(SimpleGateway::new(), Echoer.into()),
    )
    .await
    .unwrap();
    let v = gw.call("echo", ("hi",)).await.unwrap();
    assert_eq!(v, Value::from("hi"));
    let adder = gw.call("urlget", (("math", "adder"),)).await.unwrap();
    let adder = adder.as_remote().unwrap().clone();
    assert_eq!(adder.call("add", (5,)).await.unwrap(), Value::from(5));
    assert_eq!(adder.call("add", (7,)).await.unwrap(), Value::from(12));
    let err = gw.call("nope", ()).await.unwrap_err();
    assert!(matches!(err, CallError::Failed(_)), "{err:?}");
    let methods = gw.meta("methods", ()).await.unwrap();
    assert_eq!(methods, Value::from(("echo", "urlget")));
}

#[tokio::test]
async fn callbacks_and_exceptions() {
    let server = ObjectBuilder::new(())
        .method("call_back", |_, call| async move {
            let (obj, x): (RemoteObject, i64) = call.into_args()?;
            obj.call("twice", (x,)).await
        })
        .method("raise", |_, _call| async move {
            Err(CallError::exception(("failed on purpose", 42)))
        })
        .build();
    let (gw, _) = pair(server, Echoer.into()).await;
    let local = ObjectBuilder::new(())
        .method("twice", |_, call| async move {
            let (x,): (i64,) = call.into_args()?;
            Ok(Value::from(x * 2))
        })
        .build();
    let r = gw.call("call_back", (local, 21)).await.unwrap();
    assert_eq!(r, Value::from(42));
    let e = gw.call("raise", ()).await.unwrap_err();
    let args = e.exception_args().unwrap();
    assert_eq!(args[0], Value::from("failed on purpose"));
    assert_eq!(args[1], Value::from(42));
}

#[tokio::test]
async fn dispatcher_routes_mounts_and_checks() {
    use versile::demo::{Adder, Echoer};
    use versile::dispatch::Dispatcher;
    let inner = Dispatcher::new().route("deep/echo", || Echoer);
    let gw = Dispatcher::new()
        .route("text/echo", || Echoer)
        .route_checked("math/adder", |_| false, || Adder)
        .mount("nested", inner)
        .build();
    let (gw, _) = pair(gw, Echoer.into()).await;
    let ok = gw.call("urlget", (("text", "echo"),)).await.unwrap();
    assert!(ok.as_remote().is_some());
    let nested = gw
        .call("urlget", (("nested", "deep", "echo"),))
        .await
        .unwrap();
    let nested = nested.as_remote().unwrap().clone();
    assert_eq!(nested.call("echo", (1,)).await.unwrap(), Value::from(1));
    // Refused by the check, partial match, extra components: CALL_ERROR.
    for path in [
        Value::from(("math", "adder")),
        Value::from(("text",)),
        Value::from(("text", "echo", "x")),
    ] {
        let e = gw.call("urlget", (path,)).await.unwrap_err();
        assert!(matches!(e, CallError::Failed(_)), "{e:?}");
    }
    // Not a tuple of strings: an empty VException (docs/protocol/vol.md §4.9).
    let e = gw.call("urlget", (5,)).await.unwrap_err();
    assert_eq!(e.exception_args(), Some(&[][..]));
}

/// A stream that records the largest read buffer the link offers it
/// while `armed`.
struct ReadSpy<IO> {
    inner: IO,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    max_offered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for ReadSpy<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::sync::atomic::Ordering;
        if self.armed.load(Ordering::SeqCst) {
            self.max_offered
                .fetch_max(buf.remaining(), Ordering::SeqCst);
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for ReadSpy<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A client link to a `SimpleGateway` server whose reads are spied on
/// (`ReadSpy`, disarmed).
struct SpiedLinks {
    gw: RemoteObject,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    max_offered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Both links' handles, kept so that the links stay up.
    _links: [LinkHandle; 2],
}

async fn spied_links() -> SpiedLinks {
    let (a, b) = tokio::io::duplex(1 << 16);
    let spy = ReadSpy {
        inner: a,
        armed: Default::default(),
        max_offered: Default::default(),
    };
    let (armed, max_offered) = (spy.armed.clone(), spy.max_offered.clone());
    let server = tokio::spawn(connect_link(
        spy,
        SimpleGateway::new(),
        ConnectionInfo::default(),
        LinkOptions::default(),
    ));
    let (client_link, gw) = connect_link(
        b,
        ObjectBuilder::new(()).build(),
        ConnectionInfo::default(),
        LinkOptions::default(),
    )
    .await
    .expect("client handshake");
    let (server_link, _) = server.await.unwrap().expect("server handshake");
    SpiedLinks {
        gw,
        armed,
        max_offered,
        _links: [client_link, server_link],
    }
}

impl SpiedLinks {
    /// Record the server's reads from now on.
    fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The largest read buffer the server offered while armed.
    fn max_offered(&self) -> usize {
        self.max_offered.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn read_buffer_is_released_after_a_large_message() {
    // A link that received a 4 MiB message must not keep a read buffer
    // that size while it idles (found by examples/soak: idle links held
    // the size of their largest message each).
    let spy = spied_links().await;
    let gw = &spy.gw;
    let big = Value::from(vec![7u8; 4 << 20]);
    let call = tokio::time::timeout(Duration::from_secs(30), gw.call("echo", (big.clone(),)));
    assert_eq!(call.await.unwrap().unwrap(), big);
    spy.arm();
    for _ in 0..3 {
        assert_eq!(
            gw.call("echo", ("small",)).await.unwrap(),
            Value::from("small")
        );
    }
    let offered = spy.max_offered();
    assert!(offered > 0, "the server read while armed");
    assert!(
        offered <= 256 * 1024,
        "an idle link offers a {offered}-byte read buffer after a 4 MiB message"
    );
}

#[tokio::test]
async fn a_large_entity_is_read_into_a_buffer_of_its_size() {
    // Once part of a 4 MiB entity is here, the read buffer grows to its
    // size in one step; its last bytes must not double it again (that was
    // an 8 MiB allocation and a 4 MiB copy per entity, issue #8).
    let spy = spied_links().await;
    let gw = &spy.gw;
    let big = Value::from(vec![7u8; 4 << 20]);
    spy.arm();
    for _ in 0..2 {
        let call = tokio::time::timeout(Duration::from_secs(30), gw.call("echo", (big.clone(),)));
        assert_eq!(call.await.unwrap().unwrap(), big);
    }
    let offered = spy.max_offered();
    assert!(
        offered > 1 << 20 && offered < 4 << 20,
        "the server offered a {offered}-byte read for the rest of a 4 MiB entity"
    );
}
