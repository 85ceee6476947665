//! `cargo bench --bench hostile_memory [-- --json] [-- --bin PATH]`: what
//! hostile inputs make `versile serve` spend in memory (issue #7 point 1).
//!
//! Each scenario starts a fresh `versile serve --insecure --listen
//! 127.0.0.1:0` (the release binary next to this bench, or `--bin PATH`,
//! e.g. a build of an older commit for the baseline), reads the `listening
//! on vop://ADDR/` line, records the child's resident memory, attacks it
//! over loopback and reads its peak (`VmHWM` in `/proc/PID/status`, the
//! kernel's high-water mark). Growth = peak − resident before the attack.
//!
//! Scenarios and targets:
//! - `pre-handshake`: one connection sends an 8 MiB hostile entity right
//!   after the VEC hello (for each shape below) → growth ≤ 16 MiB and the
//!   connection closed.
//! - `established`: 16 connections finish the VOL handshake, then each
//!   sends a 16 MiB hostile entity (the shapes in turn), while a real client
//!   makes echo calls and checks every result → growth ≤ the process-wide
//!   budget + 64 MiB, and the client served throughout.
//!
//! Shapes: many tiny children (a tuple of one-byte integers, and the same
//! split into tuples of 1,000 to pass any per-count check), deep nesting
//! (a chain of tagged values), one huge integer, many references (distinct
//! `FC` ids), and a partial byte string held open (all but its last byte).
//!
//! Options: `--json` (also print a JSON object), `--bin PATH`, `--only
//! pre-handshake|established`, `--conns N`, `--size-mib N` (established
//! entity size), `--rss-cap-mib N` (kill the server past this resident size,
//! default 4096, so a baseline run cannot take the machine down). The child
//! is killed on every exit path (drop, panic, Ctrl-C).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use versile::vec::netbytes::encode_posint_u64;
use versile::{Client, ClientConfig, LinkShutdown, Value};

const MIB: u64 = 1024 * 1024;
/// The default process-wide budget of `versile serve` (after this change).
const PROCESS_BUDGET_MIB: u64 = versile::runtime::memory::DEFAULT_PROCESS_BUDGET as u64 / MIB;

#[path = "../tests/support/raw_peer.rs"]
mod raw_peer;

struct Options {
    json: bool,
    bin: String,
    only: Option<String>,
    conns: usize,
    size_mib: usize,
    rss_cap_mib: u64,
}

fn options() -> Options {
    let mut o = Options {
        json: false,
        bin: env!("CARGO_BIN_EXE_versile").to_owned(),
        only: None,
        conns: 16,
        size_mib: 16,
        rss_cap_mib: 4096,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--json" => o.json = true,
            "--bin" => o.bin = value(),
            "--only" => o.only = Some(value()),
            "--conns" => o.conns = value().parse().unwrap_or(16),
            "--size-mib" => o.size_mib = value().parse().unwrap_or(16),
            "--rss-cap-mib" => o.rss_cap_mib = value().parse().unwrap_or(4096),
            _ => {} // cargo passes --bench
        }
    }
    o
}

// ---------------------------------------------------------------------------
// The server child
// ---------------------------------------------------------------------------

/// Children to kill on Ctrl-C.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A running `versile serve`; killed and reaped on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Set when the sampler killed the child for passing the RSS cap.
    capped: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Largest `VmRSS` the sampler saw (KiB): the peak survives a kill.
    sampled_peak: Arc<AtomicU64>,
}

impl Server {
    fn start(bin: &str, rss_cap_mib: u64) -> Server {
        let mut child = Command::new(bin)
            .args(["serve", "--insecure", "--listen", "127.0.0.1:0"])
            .args(["--max-connections-per-ip", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        CHILDREN.lock().unwrap().push(child.id());
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("listening on vop://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let capped = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        // Safety net: kill the child if it grows past the cap.
        let sampled_peak = Arc::new(AtomicU64::new(0));
        let (pid, c, s, peak) = (
            child.id(),
            capped.clone(),
            stop.clone(),
            sampled_peak.clone(),
        );
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let rss = status_kib(pid, "VmRSS:").unwrap_or(0);
                peak.fetch_max(rss, Ordering::Relaxed);
                if rss > rss_cap_mib * 1024 {
                    c.store(true, Ordering::Relaxed);
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Server {
            child,
            addr,
            capped,
            stop,
            sampled_peak,
        }
    }

    fn rss_kib(&self) -> u64 {
        status_kib(self.child.id(), "VmRSS:").unwrap_or(0)
    }

    /// Peak resident size: the kernel's high-water mark, or what the
    /// sampler saw if the child is gone.
    fn hwm_kib(&self) -> u64 {
        let hwm = status_kib(self.child.id(), "VmHWM:").unwrap_or(0);
        hwm.max(self.sampled_peak.load(Ordering::Relaxed))
    }

    fn capped(&self) -> bool {
        self.capped.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
        CHILDREN.lock().unwrap().retain(|p| *p != self.child.id());
    }
}

/// A field of `/proc/PID/status` in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------
// Hostile entities
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Shape {
    TinyInts,
    NestedTinyInts,
    DeepNesting,
    HugeInteger,
    ManyRefs,
    PartialHeldOpen,
}

const SHAPES: [Shape; 6] = [
    Shape::TinyInts,
    Shape::NestedTinyInts,
    Shape::DeepNesting,
    Shape::HugeInteger,
    Shape::ManyRefs,
    Shape::PartialHeldOpen,
];

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::TinyInts => "tiny ints",
            Shape::NestedTinyInts => "nested tiny ints",
            Shape::DeepNesting => "deep nesting",
            Shape::HugeInteger => "huge integer",
            Shape::ManyRefs => "many refs",
            Shape::PartialHeldOpen => "partial held open",
        }
    }

    /// About `size` bytes of this shape.
    fn bytes(self, size: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(size + 16);
        match self {
            Shape::TinyInts => {
                b.push(0xF6);
                encode_posint_u64(size as u64, &mut b);
                b.resize(b.len() + size, 0x01);
            }
            Shape::NestedTinyInts => {
                let outer = size / 1003;
                b.push(0xF6);
                encode_posint_u64(outer as u64, &mut b);
                for _ in 0..outer {
                    b.push(0xF6);
                    encode_posint_u64(1000, &mut b);
                    b.resize(b.len() + 1000, 0x01);
                }
            }
            Shape::DeepNesting => {
                for _ in 0..size / 2 {
                    b.extend_from_slice(&[0xFE, 0x01]);
                }
            }
            Shape::HugeInteger => {
                b.push(0xEF);
                let mut mag = vec![0x5A; size];
                mag[0] = 0x7F;
                versile::vec::netbytes::encode_posint(
                    &num_bigint::BigUint::from_bytes_be(&mag),
                    &mut b,
                );
            }
            Shape::ManyRefs => {
                let n = size / 4;
                b.push(0xF6);
                encode_posint_u64(n as u64, &mut b);
                for id in 0..n {
                    b.push(0xFC);
                    versile::vec::netbytes::encode_signed_i64(1000 + id as i64, &mut b);
                }
            }
            Shape::PartialHeldOpen => {
                b.push(0xF3);
                encode_posint_u64(size as u64, &mut b);
                b.resize(b.len() + size - 1, 0x33);
            }
        }
        b
    }
}

/// Send `bytes`; returns how many the server took before closing on us.
async fn send(stream: &mut TcpStream, bytes: &[u8]) -> usize {
    let mut sent = 0;
    for chunk in bytes.chunks(256 * 1024) {
        let w = tokio::time::timeout(Duration::from_secs(20), stream.write_all(chunk)).await;
        if !matches!(w, Ok(Ok(()))) {
            break;
        }
        sent += chunk.len();
    }
    sent
}

/// Whether the server closes within `within` (EOF or reset).
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

struct Row {
    scenario: String,
    growth_mib: f64,
    target_mib: f64,
    closed: String,
    served: String,
    ok: bool,
}

async fn pre_handshake(o: &Options, shape: Shape) -> Row {
    let size = 8 * MIB as usize;
    let bytes = shape.bytes(size);
    let server = Server::start(&o.bin, o.rss_cap_mib);
    let base = server.rss_kib();
    let mut p = raw_peer::RawPeer::vec_hello(server.addr).await;
    let _server_vol_hello = p.recv().await;
    let start = Instant::now();
    let sent = send(&mut p.stream, &bytes).await;
    let was_closed = closed(&mut p.stream, Duration::from_secs(15)).await;
    let took = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let growth = server.hwm_kib().saturating_sub(base) as f64 / 1024.0;
    let capped = server.capped();
    Row {
        scenario: format!("pre-handshake 8 MiB {}", shape.name()),
        growth_mib: growth,
        target_mib: 16.0,
        closed: format!(
            "{} in {took:.1} s, {} KiB sent{}",
            if was_closed { "yes" } else { "no" },
            sent / 1024,
            if capped {
                ", server killed at the RSS cap"
            } else {
                ""
            }
        ),
        served: "-".into(),
        ok: was_closed && growth <= 16.0 && !capped,
    }
}

/// Echo calls until `stop`; counts successes and failures, and the longest
/// time without a completed call.
async fn real_client(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
) -> Duration {
    let client = Client::new(ClientConfig::insecure());
    let (_link, gw) = match client.connect(&addr.to_string()).await {
        Ok(v) => v,
        Err(_) => {
            bad.fetch_add(1, Ordering::Relaxed);
            return Duration::MAX;
        }
    };
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let text = format!("echo {i} {}", "x".repeat((i % 64) as usize * 16));
        let r =
            tokio::time::timeout(Duration::from_secs(10), gw.call("echo", (text.as_str(),))).await;
        match r {
            Ok(Ok(v)) if v == Value::from(text.as_str()) => {
                ok.fetch_add(1, Ordering::Relaxed);
                worst = worst.max(last.elapsed());
                last = Instant::now();
            }
            _ => {
                bad.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worst.max(last.elapsed())
}

async fn established(o: &Options) -> Row {
    let size = o.size_mib * MIB as usize;
    let server = Server::start(&o.bin, o.rss_cap_mib);
    let addr = server.addr;
    // Let the server settle, then take the baseline.
    let warm = Client::new(ClientConfig::insecure());
    if let Ok((link, gw)) = warm.connect(&addr.to_string()).await {
        let _ = gw.call("echo", ("warm",)).await;
        link.shutdown(LinkShutdown::Graceful);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base = server.rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let client = tokio::spawn(real_client(addr, stop.clone(), ok.clone(), bad.clone()));

    // All hostile links first finish the handshake, then attack together.
    let mut peers = Vec::new();
    for _ in 0..o.conns {
        peers.push(raw_peer::RawPeer::handshake(addr).await);
    }
    let mut attacks = Vec::new();
    for (i, mut p) in peers.into_iter().enumerate() {
        let shape = SHAPES[i % SHAPES.len()];
        attacks.push(tokio::spawn(async move {
            let bytes = shape.bytes(size);
            let _sent = send(&mut p.stream, &bytes).await;
            drop(bytes);
            // Held-open partial entities stay; the others should be closed.
            let c = closed(&mut p.stream, Duration::from_secs(5)).await;
            (shape, c, p)
        }));
    }
    let mut n_closed = 0;
    let mut held = Vec::new();
    let mut open_shapes = Vec::new();
    for a in attacks {
        let (shape, c, p) = a.await.expect("attack task");
        n_closed += usize::from(c);
        if !c {
            open_shapes.push(shape.name());
        }
        held.push(p);
    }
    if !open_shapes.is_empty() {
        println!("still open after the attack: {open_shapes:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let worst_gap = client.await.unwrap_or(Duration::MAX);
    let growth = server.hwm_kib().saturating_sub(base) as f64 / 1024.0;
    let capped = server.capped();
    drop(held);
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    let target = (PROCESS_BUDGET_MIB + 64) as f64;
    Row {
        scenario: format!("established {} × {} MiB", o.conns, o.size_mib),
        growth_mib: growth,
        target_mib: target,
        closed: format!(
            "{n_closed}/{}{}",
            o.conns,
            if capped {
                ", server killed at the RSS cap"
            } else {
                ""
            }
        ),
        served: format!(
            "{ok} echoes ok, {bad} failed, longest gap {:.1} s",
            worst_gap.as_secs_f64()
        ),
        ok: growth <= target && bad == 0 && ok > 0 && !capped,
    }
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Ctrl-C: kill the children before exiting (drop does not run then).
    rt.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            for pid in CHILDREN.lock().unwrap().iter() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            std::process::exit(130);
        }
    });
    let mut rows = Vec::new();
    rt.block_on(async {
        if o.only.as_deref().is_none_or(|s| s == "pre-handshake") {
            for shape in SHAPES {
                rows.push(pre_handshake(&o, shape).await);
            }
        }
        if o.only.as_deref().is_none_or(|s| s == "established") {
            rows.push(established(&o).await);
        }
    });
    println!("server: {}", o.bin);
    println!(
        "{:<40} {:>12} {:>10}  {:<28} {:<44} ok",
        "scenario", "growth MiB", "target", "closed", "real client"
    );
    for r in &rows {
        println!(
            "{:<40} {:>12.1} {:>10.0}  {:<28} {:<44} {}",
            r.scenario,
            r.growth_mib,
            r.target_mib,
            r.closed,
            r.served,
            if r.ok { "yes" } else { "NO" }
        );
    }
    if o.json {
        let items: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "scenario": r.scenario,
                    "peak_rss_growth_mib": (r.growth_mib * 10.0).round() / 10.0,
                    "target_mib": r.target_mib,
                    "closed": r.closed,
                    "real_client": r.served,
                    "ok": r.ok,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "server": o.bin, "results": items })
        );
    }
}
