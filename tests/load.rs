//! Load and hostile-network tests of the production stack (bounded,
//! loopback only), against `versile serve` processes and, for the link
//! registry, an in-process [`Server`] built from [`StackConfig`]:
//!
//! * 2,000 connections that never send a byte do not keep a real client
//!   from being served, and are all closed by the handshake deadline;
//! * exceeding each limit refuses new connections (counted in the
//!   metrics by reason) while existing links keep working;
//! * stopping with links open: graceful lets in-flight calls finish,
//!   forced ends them with a link error, the process exits within the
//!   drain deadline, and the link registry goes back to zero.

mod support;

use std::time::{Duration, Instant};

use futures::future::join_all;
use support::calls::{assert_echoes, try_connect_plain};
use support::http::{http_get_async, metric};
use support::procs::*;
use support::raw_peer::time_until_closed;
use support::servers::serve_stack;
use tokio::net::TcpStream;
use versile::demo::SimpleGateway;
use versile::server::StackConfig;
use versile::Value;
use versile::{CallError, LinkHandle, LinkShutdown, RemoteObject};

const T: Duration = Duration::from_secs(20);
const SILENT: usize = 2_000;
/// Silent connections opened at once.
const BATCH: usize = 200;

/// `versile serve --insecure` on ephemeral ports, with metrics: (process,
/// vop address, metrics address).
fn serve(extra: &[&str]) -> (VersileServe, String, String) {
    let p = VersileServe::start_insecure_with_metrics(extra);
    let (addr, metrics) = (p.vop_addr.clone(), p.metrics().to_owned());
    (p, addr, metrics)
}

/// Poll the metrics page until `series` reaches `at_least`.
async fn wait_metric(metrics: &str, series: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + T;
    loop {
        let (_, page) = http_get_async(metrics, "/metrics").await;
        let v = metric(&page, series);
        if v >= at_least {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{series} = {v}, expected >= {at_least}\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scrape(metrics: &str, series: &str) -> f64 {
    let (_, page) = http_get_async(metrics, "/metrics").await;
    metric(&page, series)
}

/// The soft open-files limit of this process (inherited by the server).
fn nofile_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_stop_a_real_client_and_hit_the_deadline() {
    // Each silent connection costs a descriptor here and one in the server.
    let n = match nofile_limit() {
        Some(limit) if limit < SILENT + 200 => {
            eprintln!(
                "open-files limit {limit}: using {} connections",
                limit - 200
            );
            limit - 200
        }
        _ => SILENT,
    };
    let deadline = Duration::from_secs(3);
    // All from 127.0.0.1: the per-address cap (default 64) is lifted so
    // that the flood reaches the handshake deadline and the global cap.
    let (mut server, addr, metrics) =
        serve(&["--handshake-timeout", "3", "--max-connections-per-ip", "0"]);

    let opened = Instant::now();
    let mut silent = Vec::with_capacity(n);
    let mut first = None;
    for _ in 0..n.div_ceil(BATCH) {
        let batch = (silent.len()..n.min(silent.len() + BATCH)).map(|_| TcpStream::connect(&addr));
        for s in join_all(batch).await {
            silent.push(s.expect("silent connect"));
        }
        // Let the server accept the batch before sending the next: an
        // overflowing kernel accept queue drops connections that the
        // client believes open (they would then never be closed, by
        // anyone), which would test the kernel, not the server.
        wait_metric(
            &metrics,
            "versile_connections_accepted_total",
            silent.len() as f64,
        )
        .await;
        if first.is_none() && silent.len() >= n / 2 {
            // Halfway through the flood, a new real client is served
            // promptly.
            first = Some(real_client(&addr).await);
        }
    }
    eprintln!("{n} silent connections opened in {:?}", opened.elapsed());
    // And once they are all open (those not yet past their deadline are
    // held), another one.
    let active = scrape(&metrics, "versile_connections_active").await;
    eprintln!("{active} connections held by the server");
    if opened.elapsed() < Duration::from_secs(2) {
        // Opened well within the deadline: the server holds them all.
        assert!(active > n as f64, "only {active} of {n} held");
    }
    let (link, gw) = real_client(&addr).await;

    // Every silent connection is closed by the deadline (plus slack).
    let closes = join_all(silent.into_iter().map(time_until_closed)).await;
    let slowest = closes.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < deadline + Duration::from_secs(3),
        "slowest close after {slowest:?}"
    );
    wait_metric(
        &metrics,
        "versile_connections_rejected_total{reason=\"handshake_timeout\"}",
        n as f64,
    )
    .await;
    // The real links outlived them all.
    assert_echoes(&gw, 43).await;
    let (first_link, first_gw) = first.expect("halfway client");
    assert_echoes(&first_gw, 44).await;
    assert_eq!(scrape(&metrics, "versile_connections_active").await, 2.0);
    for l in [link, first_link] {
        l.shutdown(LinkShutdown::Graceful);
        tokio::time::timeout(T, l.closed()).await.unwrap();
    }
    server.signal("-TERM");
    let (status, stderr) = server.wait_exit(T);
    assert!(status.success(), "{status}: {stderr}");
}

/// Connect and call, asserting it is prompt.
async fn real_client(addr: &str) -> (LinkHandle, RemoteObject) {
    let start = Instant::now();
    let (link, gw) = try_connect_plain(addr).await.expect("real client");
    assert_echoes(&gw, 42).await;
    let took = start.elapsed();
    eprintln!("real client served in {took:?}");
    assert!(took < Duration::from_secs(2), "real client took {took:?}");
    (link, gw)
}

/// One limit: `existing` links fill it, the next connection is refused
/// and counted under `reason`, the existing links keep working.
async fn limit_case(args: &[&str], reason: &str, existing: usize) {
    let (mut server, addr, metrics) = serve(args);
    let mut links = Vec::new();
    for i in 0..existing {
        let (link, gw) = try_connect_plain(&addr)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: link {i}: {e}"));
        assert_echoes(&gw, i as i64).await;
        links.push((link, gw));
    }
    let refused = try_connect_plain(&addr).await;
    assert!(
        refused.is_err(),
        "{args:?}: connection over the limit admitted"
    );
    let series = format!("versile_connections_rejected_total{{reason=\"{reason}\"}}");
    wait_metric(&metrics, &series, 1.0).await;
    for (i, (_, gw)) in links.iter().enumerate() {
        assert_echoes(gw, 100 + i as i64).await;
    }
    assert_eq!(
        scrape(&metrics, "versile_links_active").await,
        existing as f64,
        "{args:?}"
    );
    server.signal("-TERM");
    let (status, stderr) = server.wait_exit(T);
    assert!(status.success(), "{args:?}: {status}: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_refuses_new_connections_counted_while_links_work() {
    join_all([
        Box::pin(limit_case(
            &["--max-connections", "2"],
            "max_connections",
            2,
        )) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        Box::pin(limit_case(
            &["--max-connections-per-ip", "2"],
            "per_ip_concurrent",
            2,
        )),
        Box::pin(limit_case(
            &["--rate-per-ip", "0.001", "--burst-per-ip", "3"],
            "per_ip_rate",
            3,
        )),
        Box::pin(limit_case(&["--deny", "127.0.0.0/8"], "host_filter", 0)),
        Box::pin(limit_case(&["--allow", "192.0.2.0/24"], "host_filter", 0)),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_lets_in_flight_calls_finish() {
    let (mut server, addr, _) = serve(&["--drain-timeout", "8"]);
    let (busy, gw) = try_connect_plain(&addr).await.expect("busy client");
    let (idle, _idle_gw) = try_connect_plain(&addr).await.expect("idle client");
    let call = tokio::spawn(async move { gw.call("sleep", (1_500u64,)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    server.signal("-TERM");
    // The idle link closes at once; the running call completes.
    tokio::time::timeout(T, idle.closed())
        .await
        .expect("idle link closed");
    let r = tokio::time::timeout(T, call).await.unwrap().unwrap();
    assert_eq!(r.expect("in-flight call finished"), Value::from(1_500u64));
    tokio::time::timeout(T, busy.closed())
        .await
        .expect("busy link closed");
    let (status, stderr) = tokio::task::spawn_blocking(move || server.wait_exit(T))
        .await
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    // Exited once drained, well before the 8 s drain deadline.
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_stop_ends_calls_with_a_link_error_within_the_drain_deadline() {
    let (mut server, addr, _) = serve(&["--drain-timeout", "0.5"]);
    let (link, gw) = try_connect_plain(&addr).await.expect("client");
    let call = tokio::spawn(async move { gw.call("sleep", (30_000u64,)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    server.signal("-TERM");
    let r = tokio::time::timeout(T, call).await.unwrap().unwrap();
    assert!(matches!(r, Err(CallError::Link(_))), "{r:?}");
    tokio::time::timeout(T, link.closed())
        .await
        .expect("link closed");
    let (status, stderr) = tokio::task::spawn_blocking(move || server.wait_exit(T))
        .await
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    // Drain deadline 0.5 s, plus the bounded forced close.
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_stack_drains_its_registry_to_zero() {
    let stack = StackConfig {
        max_connections_per_ip: Some(10),
        idle_timeout: Some(Duration::from_secs(60)),
        ..StackConfig::default()
    };
    let server = serve_stack(&stack, SimpleGateway::new);
    let addr = server.local_addr().to_string();
    let mut links = Vec::new();
    for i in 0..5 {
        let (link, gw) = try_connect_plain(&addr).await.expect("client");
        assert_echoes(&gw, i).await;
        links.push((link, gw));
    }
    // A silent connection too: it holds no link, but a task.
    let _silent = TcpStream::connect(&addr).await.unwrap();
    let short = {
        let gw = links[0].1.clone();
        tokio::spawn(async move { gw.call("sleep", (200u64,)).await })
    };
    let long = {
        let gw = links[1].1.clone();
        tokio::spawn(async move { gw.call("sleep", (30_000u64,)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.links().len(), 5);

    // Graceful for 1 s: the short call finishes, the long one is then
    // forced; `shutdown` reports that it had to force.
    let start = Instant::now();
    let drained = server.shutdown(Duration::from_secs(1)).await;
    assert!(!drained, "the 30 s call cannot drain in 1 s");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        short.await.unwrap().expect("short call"),
        Value::from(200u64)
    );
    let long = long.await.unwrap();
    assert!(matches!(long, Err(CallError::Link(_))), "{long:?}");
    for (link, _) in &links {
        tokio::time::timeout(T, link.closed())
            .await
            .expect("closed");
    }
    assert!(server.links().is_empty());
    assert_eq!(*server.links().watch_count().borrow(), 0);
}
