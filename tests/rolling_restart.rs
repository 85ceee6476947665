//! A rolling restart that loses no call (issue 10, point 3), for real.
//!
//! ```text
//!  steady clients (links kept, echo + sleep calls) ─┐                ┌─▶ versile serve #0 (--proxy-protocol)
//!  churn clients (a new link per round)  ───────────┼─▶ HAProxy ─────┤     /readyz on its --metrics port
//!  a probe link per instance (a long call at SIGTERM)┘  httpchk       └─▶ versile serve #1
//!                                                       GET /readyz
//! ```
//!
//! Two `versile serve` processes behind HAProxy (TCP mode, `send-proxy-v2`,
//! health checks on each instance's `/readyz`, `retries` with
//! `redispatch`). While clients (`ReconnectingClient`) keep calling, each
//! instance in turn gets SIGTERM, drains, exits, and is started again on
//! the same ports; then the other. Checked:
//!
//! * every call completes with its correct result, or ends with
//!   `LinkLost` after an orderly close (`LinkError::Closed`: the server
//!   half-closed after answering what it had started) on a link that was on
//!   the instance that got SIGTERM; nothing else (no wrong result, no call
//!   error, no call left hanging, no failed reconnection);
//! * a call running when SIGTERM arrives completes with its result (the
//!   probe), and a call sent on that link afterwards fails with a clean
//!   link error;
//! * no link that was asked for after the instance reported draining
//!   (`/readyz` 503) lands on it (each link asks the hidden `pid()` of the
//!   demo gateway which process serves it);
//! * afterwards both (new) instances are UP in HAProxy and get new links.
//!
//! It prints the counts. HAProxy must be installed; the test fails, not
//! skips, without it. Every wait is bounded; nothing asserts on elapsed
//! time; every process is killed on drop.

mod support;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use support::http::try_http_get;
use support::procs::*;
use versile::reconnect::{ReconnectError, ReconnectingClient, Session};
use versile::vol::LinkError;
use versile::vri::Vri;
use versile::{Client, ClientConfig, Value};

/// Bound of each wait (a process to start or exit, HAProxy to see a state).
const T: Duration = Duration::from_secs(30);
/// Bound of the whole test.
const WHOLE: Duration = Duration::from_secs(300);
const STEADY_CLIENTS: usize = 4;
const TASKS_PER_STEADY_CLIENT: usize = 2;
const CHURN_TASKS: usize = 2;
/// The probe's call that is running when SIGTERM comes (well inside the
/// drain timeout below).
const PROBE_SLEEP_MS: u64 = 1_500;
const DRAIN_TIMEOUT: &str = "10";

/// One backend: its fixed ports (kept across restarts) and its process.
struct Instance {
    name: &'static str,
    vop: String,
    metrics: String,
    proc: Option<VersileServe>,
}

impl Instance {
    fn start(&mut self) -> u32 {
        let mut p = VersileServe::start_on(
            &self.vop,
            &[
                "--insecure",
                "--proxy-protocol",
                "--proxy-trusted",
                "127.0.0.1",
                "--metrics",
                &self.metrics,
                "--drain-timeout",
                DRAIN_TIMEOUT,
            ],
        );
        assert_eq!(p.vop_addr, self.vop, "{} listens", self.name);
        p.wait_metrics_addr();
        let pid = p.pid();
        self.proc = Some(p);
        pid
    }

    fn pid(&self) -> u32 {
        self.proc.as_ref().expect("running").pid()
    }
}

fn haproxy_config(front: &str, stats: &str, backends: &[&Instance]) -> String {
    let mut cfg = format!(
        "global\n    maxconn 512\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n\
         \x20   retries 3\n    option redispatch 1\n\
         frontend vop\n    bind {front}\n    default_backend versile\n\
         backend versile\n    balance roundrobin\n    option httpchk GET /readyz\n\
         \x20   default-server inter 100ms fall 1 rise 2\n"
    );
    for (i, b) in backends.iter().enumerate() {
        let check_port = b.metrics.rsplit_once(':').expect("host:port").1;
        cfg.push_str(&format!(
            "    server s{i} {} send-proxy-v2 check port {check_port}\n",
            b.vop
        ));
    }
    cfg.push_str(&format!(
        "listen stats\n    mode http\n    bind {stats}\n    stats enable\n    stats uri /stats\n"
    ));
    cfg
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    started: AtomicU64,
    completed: AtomicU64,
    /// `LinkLost` after an orderly close, on an instance that got SIGTERM.
    lost_orderly: AtomicU64,
    /// `LinkLost` on a link whose instance is unknown (its `pid()` call
    /// was the one lost).
    lost_unidentified: AtomicU64,
    /// Everything that must not happen, as messages.
    failures: Mutex<Vec<String>>,
    /// Link id → the pid of the process serving it.
    links: Mutex<HashMap<u64, u32>>,
    /// Pid → links seen on it.
    links_per_pid: Mutex<HashMap<u32, u64>>,
    /// Pids that were sent SIGTERM.
    signalled: Mutex<HashSet<u32>>,
    /// Pid → when `/readyz` was seen answering 503.
    draining: Mutex<HashMap<u32, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tally {
    fn fail(&self, msg: String) {
        eprintln!("FAILURE: {msg}");
        lock(&self.failures).push(msg);
    }

    /// Run one call on `session` and classify its outcome; `expect`
    /// `None` accepts any result (and returns it).
    async fn call(
        &self,
        session: &Session,
        method: &str,
        args: Vec<Value>,
        expect: Option<Value>,
    ) -> Option<Value> {
        self.started.fetch_add(1, Ordering::Relaxed);
        let link = session.link().id();
        match tokio::time::timeout(T, session.call(method, args)).await {
            Err(_) => self.fail(format!("{method} on link {link} never ended")),
            Ok(Ok(v)) => match &expect {
                Some(want) if *want != v => {
                    self.fail(format!("{method}: got {v:?}, expected {want:?}"))
                }
                _ => {
                    self.completed.fetch_add(1, Ordering::Relaxed);
                    return Some(v);
                }
            },
            Ok(Err(ReconnectError::LinkLost { link, source })) => self.lost(method, link, source),
            Ok(Err(e)) => self.fail(format!("{method} on link {link}: {e}")),
        }
        None
    }

    fn lost(&self, method: &str, link: u64, source: LinkError) {
        if !matches!(source, LinkError::Closed) {
            self.fail(format!("{method}: link {link} ended uncleanly: {source:?}"));
            return;
        }
        let pid = lock(&self.links).get(&link).copied();
        match pid {
            None => {
                self.lost_unidentified.fetch_add(1, Ordering::Relaxed);
            }
            Some(pid) if lock(&self.signalled).contains(&pid) => {
                self.lost_orderly.fetch_add(1, Ordering::Relaxed);
            }
            Some(pid) => self.fail(format!(
                "{method}: link {link} lost on pid {pid}, which was not stopped"
            )),
        }
    }

    /// Ask which process serves the session's link (once per link), and
    /// check that it was not draining when the link was asked for.
    async fn identify(&self, session: &Session, requested: Instant) -> Option<u32> {
        let link = session.link().id();
        if let Some(pid) = lock(&self.links).get(&link) {
            return Some(*pid);
        }
        let v = self.call(session, "pid", vec![], None).await?;
        let Some(pid) = v.as_bigint().and_then(|i| u32::try_from(i).ok()) else {
            self.fail(format!("pid() returned {v:?}"));
            return None;
        };
        if lock(&self.links).insert(link, pid).is_none() {
            *lock(&self.links_per_pid).entry(pid).or_default() += 1;
        }
        if let Some(since) = lock(&self.draining).get(&pid) {
            if requested > *since {
                self.fail(format!(
                    "link {link} was asked for after pid {pid} reported draining, and landed on it"
                ));
            }
        }
        Some(pid)
    }

    fn links_on(&self, pid: u32) -> u64 {
        lock(&self.links_per_pid).get(&pid).copied().unwrap_or(0)
    }
}

fn client(vri: &Vri) -> ReconnectingClient {
    ReconnectingClient::new(Client::new(ClientConfig::insecure()), vri.clone())
}

/// Calls on one long-lived link (re-made after a loss): echo, and sleeps
/// of 100–490 ms so some are always running.
async fn steady(rc: ReconnectingClient, tally: Arc<Tally>, stop: Arc<AtomicBool>, seed: u64) {
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        let requested = Instant::now();
        let session = match tokio::time::timeout(T, rc.session()).await {
            Ok(Ok(s)) => s,
            other => {
                tally.fail(format!("steady client cannot connect: {other:?}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tally.identify(&session, requested).await.is_none() {
            continue;
        }
        n += 1;
        if n.is_multiple_of(2) {
            let v = Value::from(n);
            tally.call(&session, "echo", vec![v.clone()], Some(v)).await;
        } else {
            let ms = 100 + (n * 37) % 400;
            let v = Value::from(ms);
            tally
                .call(&session, "sleep", vec![v.clone()], Some(v))
                .await;
        }
    }
}

/// A new link per round: connect, identify, echo, close.
async fn churn(vri: Vri, tally: Arc<Tally>, stop: Arc<AtomicBool>, seed: u64) {
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let rc = client(&vri);
        let requested = Instant::now();
        match tokio::time::timeout(T, rc.session()).await {
            Ok(Ok(session)) => {
                if tally.identify(&session, requested).await.is_some() {
                    let v = Value::from(format!("churn {n}"));
                    tally.call(&session, "echo", vec![v.clone()], Some(v)).await;
                }
            }
            other => tally.fail(format!("churn client cannot connect: {other:?}")),
        }
        rc.shutdown();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Poll `check` every 50 ms until it holds, at most [`T`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + T;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// HAProxy's status of backend server `sN` (`UP`, `DOWN`, ...).
async fn haproxy_status(stats: &str, server: &str) -> String {
    let (stats, server) = (stats.to_owned(), server.to_owned());
    blocking(move || {
        let Some((200, body)) = try_http_get(&stats, "/stats;csv") else {
            return String::new();
        };
        let csv = dechunk(&body);
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
            return String::new();
        };
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f.get(px) == Some(&"versile") && f.get(sv) == Some(&server.as_str()))
            .and_then(|f| f.get(st).map(|s| s.to_string()))
            .unwrap_or_default()
    })
    .await
}

/// The payload of a chunked HTTP body (HAProxy chunks its stats page even
/// for HTTP/1.0); a body that is not chunked comes back as it is.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

async fn readyz(metrics: &str) -> Option<u16> {
    let metrics = metrics.to_owned();
    blocking(move || try_http_get(&metrics, "/readyz").map(|(code, _)| code)).await
}

/// A link on the process `pid`, with `sleep(PROBE_SLEEP_MS)` running on
/// it: new links until one lands there (roundrobin alternates).
async fn probe_on(
    vri: &Vri,
    pid: u32,
    tally: &Arc<Tally>,
) -> (
    ReconnectingClient,
    Session,
    impl Future<Output = Option<Value>> + 'static,
) {
    for _ in 0..40 {
        let rc = client(vri);
        let session = tokio::time::timeout(T, rc.session())
            .await
            .expect("probe connect timed out")
            .expect("probe connect");
        if tally.identify(&session, Instant::now()).await == Some(pid) {
            let v = Value::from(PROBE_SLEEP_MS);
            let (running, t) = (session.clone(), tally.clone());
            let mut long =
                Box::pin(async move { t.call(&running, "sleep", vec![v.clone()], Some(v)).await });
            assert!((&mut long).now_or_never().is_none(), "probe call sent");
            // The server reads a link in order: once this echo is
            // answered, the sleep before it is running.
            let e = Value::from("probe");
            let echoed = tally.call(&session, "echo", vec![e.clone()], Some(e)).await;
            assert!(echoed.is_some(), "probe echo");
            return (rc, session, long);
        }
        rc.shutdown();
    }
    panic!("no link landed on pid {pid} in 40 tries");
}

/// SIGTERM one instance while clients call, check the drain, start it
/// again on the same ports, and wait until HAProxy sends it new links.
async fn roll(inst: &mut Instance, index: usize, stats: &str, vri: &Vri, tally: &Arc<Tally>) {
    let old = inst.pid();
    let (_probe_client, probe, long) = probe_on(vri, old, tally).await;

    lock(&tally.signalled).insert(old);
    inst.proc.as_ref().expect("running").signal("-TERM");
    let metrics = inst.metrics.clone();
    until(&format!("{} /readyz answers 503", inst.name), || {
        let m = metrics.clone();
        async move { readyz(&m).await == Some(503) }
    })
    .await;
    lock(&tally.draining).insert(old, Instant::now());
    println!("{}: pid {old} draining", inst.name);

    // The call that was running at SIGTERM completes with its result...
    let done = tokio::time::timeout(T, long).await.expect("probe call");
    assert_eq!(
        done,
        Some(Value::from(PROBE_SLEEP_MS)),
        "a call running at SIGTERM completes"
    );
    // ...and one sent after the drain began ends with a clean link error.
    let started = tally.lost_orderly.load(Ordering::Relaxed);
    let e = Value::from("late");
    let late = tally.call(&probe, "echo", vec![e.clone()], Some(e)).await;
    assert_eq!(late, None, "a call after the drain began is not run");
    assert!(
        tally.lost_orderly.load(Ordering::Relaxed) > started,
        "the late call ends with LinkLost(Closed)"
    );

    let mut p = inst.proc.take().expect("running");
    let (p, status, stderr) = blocking(move || {
        let (status, stderr) = p.wait_exit(T);
        (p, status, stderr)
    })
    .await;
    drop(p);
    assert!(status.success(), "{} exit: {status}\n{stderr}", inst.name);

    let new = inst.start();
    println!("{}: restarted as pid {new}", inst.name);
    let server = format!("s{index}");
    until(&format!("HAProxy sees {server} UP"), || {
        let (s, server) = (stats.to_owned(), server.clone());
        async move { haproxy_status(&s, &server).await == "UP" }
    })
    .await;
    until(&format!("new links reach pid {new}"), || {
        let n = tally.links_on(new);
        async move { n > 0 }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_behind_haproxy_loses_no_call() {
    tokio::time::timeout(WHOLE, rolling_restart())
        .await
        .expect("the rolling restart test took too long");
}

async fn rolling_restart() {
    let mut instances = ["first", "second"].map(|name| Instance {
        name,
        vop: format!("127.0.0.1:{}", free_port()),
        metrics: format!("127.0.0.1:{}", free_port()),
        proc: None,
    });
    for inst in &mut instances {
        inst.start();
    }
    let front = format!("127.0.0.1:{}", free_port());
    let stats = format!("127.0.0.1:{}", free_port());
    let dir = TempDir::new("rolling-haproxy");
    let cfg_path = dir.path().join("haproxy.cfg");
    let cfg = haproxy_config(&front, &stats, &[&instances[0], &instances[1]]);
    std::fs::write(&cfg_path, &cfg).expect("write haproxy.cfg");
    let mut haproxy = Proc::spawn(haproxy_bin(), &["-db", "-f", cfg_path.to_str().unwrap()]);
    for server in ["s0", "s1"] {
        until(&format!("HAProxy sees {server} UP"), || {
            let s = stats.clone();
            async move { haproxy_status(&s, server).await == "UP" }
        })
        .await;
    }
    assert!(haproxy.running(), "haproxy runs");

    let vri: Vri = format!("vop://{front}/").parse().expect("vri");
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..STEADY_CLIENTS {
        let rc = client(&vri);
        for t in 0..TASKS_PER_STEADY_CLIENT {
            let seed = (c * 1000 + t * 100) as u64;
            tasks.push(tokio::spawn(steady(
                rc.clone(),
                tally.clone(),
                stop.clone(),
                seed,
            )));
        }
    }
    for c in 0..CHURN_TASKS {
        let seed = 1_000_000 * (c as u64 + 1);
        tasks.push(tokio::spawn(churn(
            vri.clone(),
            tally.clone(),
            stop.clone(),
            seed,
        )));
    }
    // Traffic on both before the first stop.
    for inst in &instances {
        let pid = inst.pid();
        until(&format!("links on {}", inst.name), || {
            let n = tally.links_on(pid);
            async move { n > 0 }
        })
        .await;
    }

    for (index, inst) in instances.iter_mut().enumerate() {
        roll(inst, index, &stats, &vri, &tally).await;
    }

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        tokio::time::timeout(T, t)
            .await
            .expect("client task ends")
            .expect("client task");
    }

    let failures = lock(&tally.failures).clone();
    let per_pid = lock(&tally.links_per_pid).clone();
    println!(
        "rolling restart: calls started {}, completed {}, failed: link lost after an orderly \
         close on a stopped instance {}, link lost before its instance was known {}, other {}; \
         links per pid {per_pid:?}",
        tally.started.load(Ordering::Relaxed),
        tally.completed.load(Ordering::Relaxed),
        tally.lost_orderly.load(Ordering::Relaxed),
        tally.lost_unidentified.load(Ordering::Relaxed),
        failures.len(),
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        tally.started.load(Ordering::Relaxed),
        tally.completed.load(Ordering::Relaxed)
            + tally.lost_orderly.load(Ordering::Relaxed)
            + tally.lost_unidentified.load(Ordering::Relaxed),
        "every call started ended as completed or lost"
    );
    for (index, inst) in instances.iter().enumerate() {
        assert_eq!(
            haproxy_status(&stats, &format!("s{index}")).await,
            "UP",
            "{} serves at the end",
            inst.name
        );
    }

    for inst in &mut instances {
        let mut p = inst.proc.take().expect("running");
        p.signal("-TERM");
        let (status, stderr) = blocking(move || p.wait_exit(T)).await;
        assert!(status.success(), "{} exit: {status}\n{stderr}", inst.name);
    }
    assert!(haproxy.running(), "haproxy ran throughout");
}
