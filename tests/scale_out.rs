//! Scale-out over several `versile serve` processes.
//!
//! Behind a real load balancer: HAProxy (TCP mode, roundrobin,
//! `send-proxy-v2`) in front of two `versile serve --proxy-protocol`
//! processes on loopback. Checks that calls work through it, that both
//! instances serve clients, and that each server sees the client's real
//! address (the PROXY header's source), not HAProxy's.
//!
//! HAProxy must be installed (`.ci/run` installs the Debian package); the
//! test fails, not skips, without it.
//!
//! On one host without a balancer: two processes on the same port with
//! `--reuse-port` (SO_REUSEPORT); the kernel spreads clients over both.

mod support;

use std::time::{Duration, Instant};

use support::calls::connect_plain;
use support::http::{http_get, metric};
use support::procs::*;
use versile::{LinkShutdown, Value};

const T: Duration = Duration::from_secs(20);
const CLIENTS: usize = 8;

/// A `versile serve` instance behind the balancer, with its metrics address.
fn instance() -> VersileServe {
    VersileServe::start_insecure_with_metrics(&["--proxy-protocol", "--proxy-trusted", "127.0.0.1"])
}

fn start_haproxy(front: &str, backends: &[&str]) -> (Proc, TempDir) {
    let dir = TempDir::new("haproxy");
    let mut cfg = format!(
        "global\n    maxconn 512\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
         frontend vop\n    bind {front}\n    default_backend versile\n\
         backend versile\n    balance roundrobin\n"
    );
    for (i, b) in backends.iter().enumerate() {
        cfg.push_str(&format!("    server s{i} {b} send-proxy-v2\n"));
    }
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("write haproxy.cfg");
    let p = Proc::spawn(haproxy_bin(), &["-db", "-f", path.to_str().unwrap()]);
    (p, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_send_proxy_v2_balances_and_passes_real_addresses() {
    let (mut s1, mut s2) = (instance(), instance());
    let (a1, m1) = (s1.vop_addr.clone(), s1.metrics().to_owned());
    let (a2, m2) = (s2.vop_addr.clone(), s2.metrics().to_owned());
    let front = format!("127.0.0.1:{}", free_port());
    let (mut haproxy, _dir) = start_haproxy(&front, &[&a1, &a2]);

    // Wait until HAProxy listens.
    let deadline = Instant::now() + T;
    while tokio::net::TcpStream::connect(&front).await.is_err() {
        assert!(
            haproxy.running(),
            "haproxy exited: {:?}",
            haproxy.wait_exit(T)
        );
        assert!(Instant::now() < deadline, "haproxy did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Clients through the balancer, all connected at once.
    let mut links = Vec::new();
    for i in 0..CLIENTS {
        let (link, gw) = connect_plain(&front).await;
        let local = link.context().local_addr().expect("client local address");
        let seen = tokio::time::timeout(T, gw.call("peer", ()))
            .await
            .expect("call timed out")
            .expect("peer()");
        assert_eq!(
            seen,
            Value::from(local.to_string()),
            "server must see the client's own address via PROXY v2"
        );
        let echo = gw.call("echo", (i as i64,)).await.expect("echo");
        assert_eq!(echo, Value::from(i as i64));
        links.push((link, gw));
    }

    // Both instances served clients, and every client is one live link on
    // one of them. Not exactly half each: HAProxy's roundrobin is not strict
    // across its threads, and the listening probe above may or may not take
    // a turn (CI saw 5 and 3).
    let mut total = 0.0;
    for (name, m) in [("first", &m1), ("second", &m2)] {
        let (code, page) = http_get(m, "/metrics");
        assert_eq!(code, 200);
        let links_active = metric(&page, "versile_links_active");
        assert!(
            links_active >= 1.0,
            "{name} instance served no client\n{page}"
        );
        total += links_active;
        assert!(
            metric(&page, "versile_calls_received_total") >= 2.0 * links_active,
            "{name} instance: every client made two calls\n{page}"
        );
    }
    assert_eq!(total, CLIENTS as f64, "every client is one live link");

    // A direct connection without the header is refused and counted.
    let (ok, _, _) = versile_call(&[&format!("vop://{a1}/"), "echo", "1"]);
    assert!(!ok, "a connection without a PROXY header must be refused");
    // (Recorded as the refused connection's task ends: poll briefly.)
    let series = "versile_connections_rejected_total{reason=\"proxy_header\"}";
    let deadline = Instant::now() + T;
    loop {
        let (_, page) = http_get(&m1, "/metrics");
        if metric(&page, series) >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{series} not counted:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for (link, _) in &links {
        link.shutdown(LinkShutdown::Graceful);
    }
    for (link, _) in &links {
        tokio::time::timeout(T, link.closed())
            .await
            .expect("link close");
    }
    for s in [&mut s1, &mut s2] {
        s.terminate_expect_success();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_port_spreads_clients_over_two_processes() {
    const N: usize = 16;
    let listen = format!("127.0.0.1:{}", free_port());
    let start = || {
        let mut p = VersileServe::start_on(
            &listen,
            &["--insecure", "--reuse-port", "--metrics", "127.0.0.1:0"],
        );
        assert_eq!(p.vop_addr, listen);
        let m = p.wait_metrics_addr();
        (p, m)
    };
    let (mut s1, m1) = start();
    let (mut s2, m2) = start();
    let mut links = Vec::new();
    for _ in 0..N {
        let (link, gw) = connect_plain(&listen).await;
        let local = link.context().local_addr().expect("local address");
        let seen = gw.call("peer", ()).await.expect("peer()");
        assert_eq!(seen, Value::from(local.to_string()));
        links.push((link, gw));
    }
    let mut total = 0.0;
    for m in [&m1, &m2] {
        let (_, page) = http_get(m, "/metrics");
        let n = metric(&page, "versile_links_active");
        // All 16 on one process has probability 2^-15.
        assert!(n >= 1.0, "a process got no client:\n{page}");
        total += n;
    }
    assert_eq!(total, N as f64);
    drop(links);
    for s in [&mut s1, &mut s2] {
        s.terminate_expect_success();
    }
}
