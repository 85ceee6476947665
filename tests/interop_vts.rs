//! VTS interop with Versile Python 0.8.5 (`vts.md`): a Python `VUrl`
//! client (default `VOPUrlConfig`, VTS only; anonymous and with a client
//! key) against our VTS server, and our VTS client against a Python
//! `VOPService` (VTS only). Script: `tests/python/py_vts_peer.py`.
//! The keys are the 1024-bit vector keys, so both sides of ours use
//! `KeyPolicy::legacy()`.

mod support;

use std::time::Duration;

use support::*;
use versile::demo::SimpleGateway;
use versile::vts::KeyPolicy;
use versile::{
    Client, ClientConfig, GatewayService, RsaKeyPair, Server, Value, VopLayer, VtsClientTransport,
    VtsConfig, VtsServerTransport,
};

const T: Duration = Duration::from_secs(120);

fn key_path(name: &str) -> String {
    format!(
        "{}/tests/data/spec/vts-vector-{name}-key.pem",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn key(name: &str) -> RsaKeyPair {
    RsaKeyPair::from_file(key_path(name)).expect("key")
}

fn legacy() -> VtsConfig {
    VtsConfig {
        key_policy: KeyPolicy::legacy(),
        ..VtsConfig::default()
    }
}

/// Python client → our VTS server; returns the number of passed checks.
async fn python_client_against_us(client_key: Option<&str>) {
    let layer = VopLayer::builder()
        .transport(VtsServerTransport::with_config(key("server"), legacy()))
        .build()
        .unwrap();
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service(GatewayService::new(SimpleGateway::new));
    let server = Server::serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        svc,
    )
    .unwrap();
    let vri = format!("vop://{}/", server.local_addr());
    let ck = client_key.map(key_path);
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
    tokio::time::timeout(T, python_client_against_us(None))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_key_to_rust_vts_server() {
    tokio::time::timeout(T, python_client_against_us(Some("client")))
        .await
        .unwrap();
}

/// Our VTS client → Python `VOPService` (VTS only).
async fn rust_client_against_python(client_key: Option<RsaKeyPair>) {
    let mut py = tokio::task::spawn_blocking(|| {
        let mut p = PyProcess::spawn("py_vts_peer.py", &["server", &key_path("server")]);
        let line = p.wait_line("listening", Duration::from_secs(60));
        (p, line)
    })
    .await
    .unwrap();
    let port: u16 = py.1.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let has_key = client_key.is_some();
    let t = VtsClientTransport::with_config(client_key, legacy())
        .pin_server_key(key("server").fingerprint());
    let client = Client::new(ClientConfig::default().transport(t));
    let (link, gw) = client
        .connect(&format!("127.0.0.1:{port}"))
        .await
        .expect("connect over VTS");
    let ctx = link.context();
    assert_eq!(ctx.protocol(), Some(versile::vop::Transport::Vts));
    let peer = ctx.peer_credentials().unwrap().clone();
    assert_eq!(peer.key.as_ref(), Some(key("server").public()));
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
    link.shutdown(false);
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
    tokio::time::timeout(T, rust_client_against_python(Some(key("client"))))
        .await
        .unwrap();
}
