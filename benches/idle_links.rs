//! `cargo bench --bench idle_links [-- --json] [--plain N] [--vts N]
//! [--only plain|vts] [--bin PATH] [--concurrency N] [--hold SECS]`: server memory per
//! established idle link (issue #8 point 3: ≤ 8 KiB of RSS per PLAIN link,
//! ≤ 16 KiB per VTS link, with 15,000 links; 100,000 links projected).
//!
//! For each transport it starts a fresh `versile serve` child (the release
//! binary next to this bench, or `--bin PATH`, e.g. a build of an older
//! commit for the baseline) with no connection limits, on `127.0.0.1:0`:
//! `--insecure` for PLAIN, `--transports vts` with a key generated at start
//! for VTS. Everything else is the default configuration (keep-alive 60 s
//! asked of each client, the default link limits).
//!
//! This process is the client: it opens links with our [`Client`] (VOP, the
//! transport handshake, VEC, the VOL handshake) and makes one `echo` call on
//! each, so each link counts only once the server has completed its VOL
//! handshake and answered a call on it. The links then stay idle (their
//! keep-alive traffic aside) while the server's `VmRSS` is read from
//! `/proc/PID/status`:
//! - `base`: after one warm-up link was opened, used and closed;
//! - `half`: with N/2 links open; `full`: with N links open (each sampled
//!   after a 2 s settle).
//!
//! Reported: KiB per link as (full − base) / N and as the marginal
//! (full − half) / (N/2) (fixed costs such as runtime threads and allocator
//! arenas fall out of the second), the kernel's socket memory from
//! `/proc/net/sockstat` (not in RSS, for scale), and the projection
//! base + 100,000 × marginal. N is 15,000 for both transports by default; a
//! VTS link costs the server one RSA private operation, so VTS takes about
//! a minute on 2 cores (`--vts 5000` is quicker).
//!
//! File descriptors: N client sockets here and N in the server, each
//! process under `ulimit -n` (20,000 here). The server child is killed on
//! every exit path.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use versile::{Client, ClientConfig, LinkHandle, LinkShutdown, RemoteObject};

const PROJECTED_LINKS: u64 = 100_000;
const SETTLE: Duration = Duration::from_secs(2);
/// Attempts per link: a loaded machine may time out a handshake now and then.
const ATTEMPTS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Plain,
    Vts,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "PLAIN",
            Kind::Vts => "VTS",
        }
    }
}

struct Options {
    json: bool,
    bin: String,
    plain: usize,
    vts: usize,
    only: Option<Kind>,
    concurrency: usize,
    /// Keep the links open this long after sampling (to look at the server
    /// with other tools).
    hold: Duration,
}

fn options() -> Options {
    let mut o = Options {
        json: false,
        bin: env!("CARGO_BIN_EXE_versile").to_owned(),
        plain: 15_000,
        vts: 15_000,
        only: None,
        concurrency: 32,
        hold: Duration::ZERO,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--json" => o.json = true,
            "--bin" => o.bin = value(),
            "--plain" => o.plain = value().parse().expect("--plain N"),
            "--vts" => o.vts = value().parse().expect("--vts N"),
            "--hold" => o.hold = Duration::from_secs(value().parse().expect("--hold SECS")),
            "--concurrency" => o.concurrency = value().parse().expect("--concurrency N"),
            "--only" => {
                o.only = match value().to_ascii_lowercase().as_str() {
                    "plain" => Some(Kind::Plain),
                    "vts" => Some(Kind::Vts),
                    other => panic!("--only plain|vts, not {other:?}"),
                }
            }
            _ => {} // cargo passes --bench
        }
    }
    o
}

/// A running `versile serve`; killed and reaped on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(bin: &str, kind: Kind) -> Server {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        match kind {
            Kind::Plain => cmd.arg("--insecure"),
            Kind::Vts => cmd.args(["--transports", "vts"]),
        };
        cmd.args(["--max-connections", "0", "--max-connections-per-ip", "0"])
            .args(["--rate-per-ip", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The first line that says where (a wrapper such as a profiler
        // given as --bin may print lines of its own before).
        let addr = lines
            .by_ref()
            .take(50)
            .map_while(Result::ok)
            .find_map(|l| {
                l.trim()
                    .strip_prefix("listening on vop://")
                    .map(|a| a.trim_end_matches('/').to_owned())
            })
            .expect("the server's `listening on` line");
        // Keep reading stdout so that the child never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    fn rss_kib(&self) -> u64 {
        status_kib(self.child.id(), "VmRSS:").expect("server VmRSS")
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/PID/status` in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// TCP socket memory of the whole machine (`/proc/net/sockstat`, pages → KiB).
fn sockstat_tcp_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|w| *w == "mem")?;
            f.get(i + 1)?.parse::<u64>().ok()
        })
        .map_or(0, |pages| pages * 4)
}

fn client(kind: Kind) -> Client {
    Client::new(match kind {
        Kind::Plain => ClientConfig::insecure(),
        // Anonymous, any server key: the server does its private operation.
        Kind::Vts => ClientConfig::default(),
    })
}

/// One established link with one echo answered, retried a few times.
async fn open_link(client: &Client, addr: &str) -> (LinkHandle, RemoteObject) {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match client.connect(addr).await {
            Ok((link, gw)) => {
                match tokio::time::timeout(Duration::from_secs(30), gw.call("echo", ("idle",)))
                    .await
                {
                    Ok(Ok(_)) => return (link, gw),
                    Ok(Err(e)) => last = e.to_string(),
                    Err(_) => last = "echo timed out".into(),
                }
                link.shutdown(LinkShutdown::Forced);
            }
            Err(e) => last = e.to_string(),
        }
    }
    panic!("cannot open a link after {ATTEMPTS} attempts: {last}");
}

/// Open `n` links, `concurrency` at a time, printing progress.
async fn open_links(
    client: &Client,
    addr: &str,
    n: usize,
    concurrency: usize,
) -> Vec<(LinkHandle, RemoteObject)> {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    stream::iter(0..n)
        .map(|_| {
            let done = done.clone();
            async move {
                let l = open_link(client, addr).await;
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d.is_multiple_of(5000) {
                    eprintln!("  {d} links ({:.1} s)", start.elapsed().as_secs_f64());
                }
                l
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

struct Figures {
    kind: Kind,
    links: usize,
    base_kib: u64,
    half_kib: u64,
    full_kib: u64,
    server_fds: usize,
    sockstat_kib: i64,
    open_secs: f64,
}

impl Figures {
    fn per_link_kib(&self) -> f64 {
        (self.full_kib - self.base_kib) as f64 / self.links as f64
    }

    fn marginal_kib(&self) -> f64 {
        let half = self.links / 2;
        (self.full_kib as f64 - self.half_kib as f64) / (self.links - half) as f64
    }

    fn projected_mib(&self) -> f64 {
        (self.base_kib as f64 + PROJECTED_LINKS as f64 * self.marginal_kib()) / 1024.0
    }
}

async fn measure(o: &Options, kind: Kind, n: usize) -> Figures {
    assert!(n >= 2, "at least 2 links");
    let server = Server::start(&o.bin, kind);
    let client = client(kind);
    eprintln!(
        "{}: server at {}, opening {n} links",
        kind.name(),
        server.addr
    );
    // Warm-up: runtime threads, allocator arenas, the first handshake's
    // lazily built state.
    let (link, _gw) = open_link(&client, &server.addr).await;
    link.shutdown(LinkShutdown::Forced);
    link.closed().await;
    drop(_gw);
    tokio::time::sleep(SETTLE).await;
    let base_kib = server.rss_kib();
    let sock_before = sockstat_tcp_kib() as i64;

    let started = Instant::now();
    let half = n / 2;
    let mut links = open_links(&client, &server.addr, half, o.concurrency).await;
    tokio::time::sleep(SETTLE).await;
    let half_kib = server.rss_kib();
    links.extend(open_links(&client, &server.addr, n - half, o.concurrency).await);
    let open_secs = started.elapsed().as_secs_f64() - SETTLE.as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let full_kib = server.rss_kib();
    let server_fds = server.fds();
    let sockstat_kib = sockstat_tcp_kib() as i64 - sock_before;
    assert!(
        links.iter().all(|(l, _)| !l.is_closed()),
        "a link closed while idle"
    );
    if !o.hold.is_zero() {
        eprintln!("  holding {} links for {:?}", links.len(), o.hold);
        tokio::time::sleep(o.hold).await;
    }
    for (l, _) in &links {
        l.shutdown(LinkShutdown::Forced);
    }
    drop(links);
    drop(server);
    Figures {
        kind,
        links: n,
        base_kib,
        half_kib,
        full_kib,
        server_fds,
        sockstat_kib,
        open_secs,
    }
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut results = Vec::new();
    for (kind, n) in [(Kind::Plain, o.plain), (Kind::Vts, o.vts)] {
        if o.only.is_some_and(|k| k != kind) || n == 0 {
            continue;
        }
        results.push(rt.block_on(measure(&o, kind, n)));
    }

    println!(
        "| transport | links | server RSS base → N/2 → N (MiB) | KiB/link (N) | KiB/link (marginal) | kernel TCP mem (KiB/link) | 100k links projected |"
    );
    println!("|---|---|---|---|---|---|---|");
    for f in &results {
        println!(
            "| {} | {} | {:.1} → {:.1} → {:.1} | {:.1} | {:.1} | {:.1} | {:.0} MiB |",
            f.kind.name(),
            f.links,
            f.base_kib as f64 / 1024.0,
            f.half_kib as f64 / 1024.0,
            f.full_kib as f64 / 1024.0,
            f.per_link_kib(),
            f.marginal_kib(),
            f.sockstat_kib as f64 / f.links as f64,
            f.projected_mib(),
        );
        eprintln!(
            "  {}: {} server fds, links opened in {:.1} s",
            f.kind.name(),
            f.server_fds,
            f.open_secs
        );
    }
    if o.json {
        let items: Vec<serde_json::Value> = results
            .iter()
            .map(|f| {
                serde_json::json!({
                    "transport": f.kind.name(),
                    "links": f.links,
                    "rss_base_kib": f.base_kib,
                    "rss_half_kib": f.half_kib,
                    "rss_full_kib": f.full_kib,
                    "kib_per_link": f.per_link_kib(),
                    "kib_per_link_marginal": f.marginal_kib(),
                    "kernel_tcp_kib": f.sockstat_kib,
                    "projected_100k_mib": f.projected_mib(),
                    "server_fds": f.server_fds,
                    "open_secs": f.open_secs,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
    }
}
