//! VTS interop with Versile Python 0.8.5 (`docs/protocol/vts.md`): a Python `VUrl`
//! client (default `VOPUrlConfig`, VTS only; anonymous and with a client
//! key) against our VTS server, and our VTS client against a Python
//! `VOPService` (VTS only). Script: `tests/python/py_vts_peer.py`.
//! The keys are the 1024-bit vector keys (accepted by the default policy;
//! some tests use `KeyPolicy::legacy()` to be explicit).
//!
//! Rejections: our client with a wrong pin against Python; a Python client
//! whose key our `CredentialCheckLayer` refuses; a Python client with a
//! 512-bit key, refused by the default policy (our log names the option)
//! and accepted with `KeyPolicy::legacy()`.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use support::keys::{legacy_vts_config, spec_key, spec_key_path};
use support::python::*;
use support::servers::serve_vts_with_key;
use versile::client::{ClientError, TransportError};
use versile::demo::SimpleGateway;
use versile::server::{CredentialCheckLayer, PeerInfo};
use versile::vts::{KeyPolicy, RsaBackend};
use versile::{
    Client, ClientConfig, GatewayService, LinkShutdown, RsaKeyPair, Server, Value,
    VtsClientTransport, VtsLayer, VtsServerTransport,
};

const T: Duration = Duration::from_secs(120);

/// Our log output (warnings and up), shared by the tests of this binary.
fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_writer(move || LogWriter(b.clone()))
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        std::io::stderr().write_all(data)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Python client → our VTS server with `server_key`; returns the number of passed checks.
async fn python_client_against_us(server_key: RsaKeyPair, client_key: Option<&str>) {
    let server = serve_vts_with_key(server_key, SimpleGateway::new).await;
    let vri = format!("vop://{}/", server.local_addr());
    let ck = client_key.map(spec_key_path);
    let (status, out, err) = tokio::task::spawn_blocking(move || {
        let mut args = vec!["client", vri.as_str()];
        if let Some(k) = &ck {
            args.push(k.as_str());
        }
        PyProcess::spawn("py_vts_peer.py", &args).wait_exit(T)
    })
    .await
    .unwrap();
    assert!(
        status.success() && out.contains("\"failed\": 0"),
        "python client failed:\n{out}\n{err}"
    );
    for check in ["echo_types", "echo_1mib", "echo_concurrent", "second_link"] {
        assert!(
            out.contains(&format!("\"check\": \"{check}\", \"ok\": true")),
            "{check}:\n{out}"
        );
    }
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_anonymous_client_to_rust_vts_server() {
    tokio::time::timeout(T, python_client_against_us(spec_key("server"), None))
        .await
        .unwrap();
}

/// The same with the server's private operation on each RSA backend this
/// build has (the default is `OpenSsl` with feature `rsa-openssl`, else
/// `FixedCrt`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_to_rust_vts_server_on_each_rsa_backend() {
    let mut backends = vec![RsaBackend::FixedCrt, RsaBackend::Generic];
    if cfg!(feature = "rsa-openssl") {
        backends.push(RsaBackend::OpenSsl);
    }
    for backend in backends {
        let server_key = spec_key("server").with_rsa_backend(backend).unwrap();
        assert_eq!(server_key.rsa_backend(), backend);
        tokio::time::timeout(T, python_client_against_us(server_key, None))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_key_to_rust_vts_server() {
    tokio::time::timeout(
        T,
        python_client_against_us(spec_key("server"), Some("client")),
    )
    .await
    .unwrap();
}

/// `py_vts_peer.py server` (Python `VOPService`, VTS only) with the spec
/// server key, and the port it announced.
fn start_py_vts_server() -> (PyProcess, u16) {
    let mut p = PyProcess::spawn("py_vts_peer.py", &["server", &spec_key_path("server")]);
    let line = p.wait_line("listening", Duration::from_secs(60));
    let port = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    (p, port)
}

/// Our VTS client → Python `VOPService` (VTS only).
async fn rust_client_against_python(client_key: Option<RsaKeyPair>) {
    let mut py = tokio::task::spawn_blocking(start_py_vts_server)
        .await
        .unwrap();
    let port = py.1;
    let has_key = client_key.is_some();
    let t = VtsClientTransport::with_config(client_key, (*legacy_vts_config()).clone())
        .pin_server_key(spec_key("server").fingerprint());
    let client = Client::new(ClientConfig::default().transport(t));
    let (link, gw) = client
        .connect(&format!("127.0.0.1:{port}"))
        .await
        .expect("connect over VTS");
    let ctx = link.context();
    assert_eq!(ctx.protocol(), Some(versile::vop::Transport::Vts));
    let fp = ctx.peer_identity().and_then(|p| p.key_fingerprint.clone());
    assert_eq!(fp, Some(spec_key("server").fingerprint()));
    let peer = ctx
        .extensions()
        .get::<versile::vts::PeerCredentials>()
        .unwrap()
        .clone();
    assert_eq!(peer.key.as_ref(), Some(spec_key("server").public()));
    eprintln!(
        "negotiated with Python (client key: {has_key}): {:?}",
        peer.suite
    );

    // Echo of assorted values.
    for v in [
        Value::from("hello VTS"),
        Value::from(-5),
        Value::from(bytes::Bytes::from_static(b"\x00\xff")),
        Value::from((1, "two", None::<i64>)),
    ] {
        let r = gw.call("echo", (v.clone(),)).await.unwrap();
        assert_eq!(format!("{r:?}"), format!("{v:?}"));
    }
    // 1 MiB (pure-Python Blowfish: ~1 MiB/s per direction).
    let big = bytes::Bytes::from(
        (0..1024 * 1024)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<u8>>(),
    );
    let t0 = std::time::Instant::now();
    let r = gw.call("echo", (big.clone(),)).await.unwrap();
    assert_eq!(bytes::Bytes::try_from(r).unwrap(), big);
    eprintln!("1 MiB echo via Python VTS: {:?}", t0.elapsed());
    // Concurrency.
    let calls = (0..20i64).map(|i| {
        let gw = gw.clone();
        async move { gw.call("echo", (i,)).await }
    });
    let res = futures::future::join_all(calls).await;
    for (i, r) in res.into_iter().enumerate() {
        assert_eq!(i64::try_from(r.unwrap()).unwrap(), i as i64);
    }
    // Big integers, outcomes, resolution and a callback, as over PLAIN.
    let big_int = Value::from(num_bigint::BigInt::from(2).pow(200));
    assert_eq!(gw.call("echo", (big_int.clone(),)).await.unwrap(), big_int);
    let e = gw.call("raise_vexc", ("boom", 7)).await.unwrap_err();
    assert_eq!(
        e.exception_args(),
        Some(&[Value::from("boom"), Value::from(7)][..])
    );
    assert!(matches!(
        gw.call("fail", ()).await.unwrap_err(),
        versile::CallError::Failed(_)
    ));
    let adder = gw.call("urlget", (("math", "adder"),)).await.unwrap();
    let adder = adder.as_remote().unwrap().clone();
    assert_eq!(adder.call("add", (5,)).await.unwrap(), Value::from(5));
    assert_eq!(adder.call("add", (7,)).await.unwrap(), Value::from(12));
    let local = versile::ObjectBuilder::new(())
        .method("twice", |_, call| async move {
            let (x,): (i64,) = call.into_args()?;
            Ok(Value::from(x * 2))
        })
        .build();
    let r = gw.call("call_back", (local, "twice", 21)).await.unwrap();
    assert_eq!(r, Value::from(42));
    drop(adder);
    link.shutdown(LinkShutdown::Graceful);
    drop(gw);
    let _ = tokio::time::timeout(Duration::from_secs(10), link.closed()).await;
    tokio::task::spawn_blocking(move || {
        py.0.close_stdin();
        py.0.stop(Duration::from_secs(20))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_anonymous_client_to_python_vts_server() {
    tokio::time::timeout(T, rust_client_against_python(None))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_with_key_to_python_vts_server() {
    tokio::time::timeout(T, rust_client_against_python(Some(spec_key("client"))))
        .await
        .unwrap();
}

/// Our client with a wrong pin → the Python server's key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_with_wrong_pin_rejects_python_server() {
    tokio::time::timeout(T, async {
        let mut py = tokio::task::spawn_blocking(start_py_vts_server)
            .await
            .unwrap();
        let port = py.1;
        let addr = format!("127.0.0.1:{port}");
        // Pinned to another key.
        let t = VtsClientTransport::new(None).pin_server_key(spec_key("client").fingerprint());
        let err = Client::new(ClientConfig::default().transport(t))
            .connect(&addr)
            .await
            .expect_err("the wrong pin must fail");
        assert!(
            matches!(
                err,
                ClientError::Transport(TransportError::Vts(versile::vts::VtsError::Unauthorized))
            ),
            "{err}"
        );
        // A client hook refusing the key.
        let t = VtsClientTransport::new(None).authorizer(|p| p.key.as_ref().is_none());
        assert!(Client::new(ClientConfig::default().transport(t))
            .connect(&addr)
            .await
            .is_err());
        // A minimum size above the server key's 1024 bits.
        let t = VtsClientTransport::new(None).key_policy(KeyPolicy::default().with_min_bits(2048));
        let err = Client::new(ClientConfig::default().transport(t))
            .connect(&addr)
            .await
            .expect_err("a 1024-bit key below a 2048 minimum");
        assert!(err.to_string().contains("--min-peer-key-bits"), "{err}");
        // The right pin still works against the same server.
        let t = VtsClientTransport::new(None).pin_server_key(spec_key("server").fingerprint());
        let (link, gw) = Client::new(ClientConfig::default().transport(t))
            .connect(&addr)
            .await
            .expect("the right pin");
        assert_eq!(
            i64::try_from(gw.call("echo", (3,)).await.unwrap()).unwrap(),
            3
        );
        link.shutdown(LinkShutdown::Graceful);
        drop(gw);
        let _ = tokio::time::timeout(Duration::from_secs(10), link.closed()).await;
        tokio::task::spawn_blocking(move || {
            py.0.close_stdin();
            py.0.stop(Duration::from_secs(20))
        })
        .await
        .unwrap();
    })
    .await
    .unwrap();
}

/// `py_vts_peer.py connect VRI [KEY]` against `server`: did Python get a
/// working link?
async fn python_connects(server: &Server, client_key: Option<String>) -> (bool, String) {
    let vri = format!("vop://{}/", server.local_addr());
    let (_, out, err) = tokio::task::spawn_blocking(move || {
        let mut args = vec!["connect", vri.as_str()];
        if let Some(k) = &client_key {
            args.push(k.as_str());
        }
        PyProcess::spawn("py_vts_peer.py", &args).wait_exit(Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(out.contains("\"connected\""), "no result:\n{out}\n{err}");
    (out.contains("\"connected\": true"), out)
}

async fn vts_server(transport: VtsServerTransport, check: Option<CredentialCheckLayer>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = GatewayService::new(SimpleGateway::new);
    match check {
        Some(c) => Server::serve(
            listener,
            tower::ServiceBuilder::new()
                .layer(VtsLayer::with_transport(transport))
                .layer(c)
                .service(gw),
        ),
        None => Server::serve(
            listener,
            tower::ServiceBuilder::new()
                .layer(VtsLayer::with_transport(transport))
                .service(gw),
        ),
    }
    .unwrap()
}

/// A Python client whose key our credential check refuses sees a failed
/// link; the allowed key works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_refused_by_credential_check() {
    tokio::time::timeout(T, async {
        let allowed = spec_key("client").fingerprint();
        let check = CredentialCheckLayer::new(move |p: &PeerInfo| {
            p.key_fingerprint.as_ref() == Some(&allowed)
        });
        let server = vts_server(VtsServerTransport::new(spec_key("server")), Some(check)).await;
        let (ok, out) = python_connects(&server, Some(spec_key_path("ca"))).await;
        assert!(!ok, "a refused key connected: {out}");
        let (ok, out) = python_connects(&server, None).await;
        assert!(!ok, "an anonymous client connected: {out}");
        let (ok, out) = python_connects(&server, Some(spec_key_path("client"))).await;
        assert!(ok, "the allowed key failed: {out}");
        server.shutdown(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
}

/// A 512-bit Python client key (as in Versile Python's examples): refused
/// by the default policy, with our log naming the option; accepted with
/// `KeyPolicy::legacy()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_512_bit_key() {
    let logs = log_buffer();
    tokio::time::timeout(T, async {
        let dir = std::env::temp_dir().join(format!("versile-vts-512-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let weak = dir.join("weak.pem");
        let st = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&weak)
            .arg("512")
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(st.success());
        let weak_path = weak.to_str().unwrap().to_owned();
        let weak_fp = RsaKeyPair::from_file(&weak).unwrap().fingerprint();

        let server = vts_server(VtsServerTransport::new(spec_key("server")), None).await;
        let (ok, out) = python_connects(&server, Some(weak_path.clone())).await;
        assert!(!ok, "a 512-bit key passed the default policy: {out}");
        server.shutdown(Duration::from_secs(5)).await;
        let log = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        assert!(
            log.contains("peer key has 512 bits, below the minimum of 1024")
                && log.contains("--min-peer-key-bits"),
            "log:\n{log}"
        );

        let transport = VtsServerTransport::new(spec_key("server")).key_policy(KeyPolicy::legacy());
        let seen = Arc::new(Mutex::new(None));
        let seen2 = seen.clone();
        let check = CredentialCheckLayer::new(move |p: &PeerInfo| {
            let vts = p.extensions.get::<versile::vts::PeerCredentials>();
            *seen2.lock().unwrap() = vts
                .and_then(|c| c.key.as_ref())
                .map(|k| (k.bits(), k.fingerprint()));
            true
        });
        let server = vts_server(transport, Some(check)).await;
        let (ok, out) = python_connects(&server, Some(weak_path)).await;
        assert!(ok, "legacy policy refused a 512-bit key: {out}");
        assert_eq!(*seen.lock().unwrap(), Some((512, weak_fp)));
        server.shutdown(Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .unwrap();
}

/// The whole PLAIN interop scenario set of `py_client.py` (every entity
/// type, 1 MiB, adders, errors, callbacks, concurrency) again over VTS:
/// the Python client with its default configuration (VTS only, anonymous)
/// against our `VtsLayer` serving the interop test gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_all_scenarios_over_vts() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let svc = tower::ServiceBuilder::new()
        .layer(VtsLayer::new(spec_key("server")))
        .service(GatewayService::new(support::interop_gateway::test_gateway));
    let server = Server::serve(listener, svc).unwrap();
    let vri = format!("vop://{}/", server.local_addr());
    let report = tokio::task::spawn_blocking(move || {
        run_py_client_with(&["--vts"], "all", &vri, Duration::from_secs(300))
    })
    .await
    .unwrap();
    report.assert_all_passed();
    assert!(report.checks.len() >= 100, "{} checks", report.checks.len());
    // Every link closes once the client is gone.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !server.links().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("links drain");
}
