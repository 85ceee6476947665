//! Soak and fault injection: an in-process server running the production
//! stack (`StackConfig::build`, default settings except the per-address
//! limits, since every client here is 127.0.0.1) and hundreds of clients
//! making random calls (object references both ways, callbacks, exceptions,
//! small and large payloads), each result checked, while faults are
//! injected (see `faults.rs`). At the end, after the clients and the
//! server are stopped, it checks: no panic, no failure counted, the links
//! registry and the active-connection and active-link gauges at zero, no
//! task left alive, and RSS back near where it started. Prints a summary;
//! exits 1 if a check fails, 3 if the watchdog fires, 4 if orphaned.
//!
//! ```sh
//! cargo run --release --example soak -- 60            # a minute
//! cargo run --example soak -- 30m --clients 300       # half an hour
//! cargo run --example soak -- --help
//! ```
//!
//! Loopback only. Every wait is bounded; a watchdog thread ends the
//! process if the whole run overstays its time by more than two minutes.
//! The program first re-runs itself with glibc malloc settings that return
//! freed memory (`MALLOC_ENV`), so the RSS check sees leaks rather than
//! the allocator's caching; the child stops if its parent goes away.
//!
//! Files: `clients.rs` (the well-behaved clients and their checked
//! operations), `gateway.rs` (the server's and the clients' objects,
//! random values), `faults.rs` (what is injected and what counts as the
//! server handling it), `fault_io.rs` (the stream that misbehaves under a
//! client link), `raw_peers.rs` (peers that never finish a handshake),
//! `stats.rs` (counters, panic hook, RSS, metrics).
#![forbid(unsafe_code)]

mod clients;
mod fault_io;
mod faults;
mod gateway;
mod raw_peers;
mod stats;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use versile::server::StackConfig;
use versile::{GatewayService, Server, VopLayer};

use clients::{run_client, Shared};
use gateway::{soak_gateway, Payloads};
use stats::{family, install_metrics, install_panic_hook, metric, mib, rss, Stats, PANICS};

/// Soak a server with clients and injected faults, then check it is clean.
#[derive(Parser, Debug)]
#[command(name = "soak")]
struct Args {
    /// How long the clients run: seconds, or with a unit (90s, 30m, 1h).
    #[arg(value_parser = parse_duration)]
    duration: Duration,
    /// Well-behaved clients (each mostly idle between calls).
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Mean pause between two calls of a client, in milliseconds.
    #[arg(long, default_value_t = 500)]
    think_ms: u64,
    /// Largest payload, in KiB (echoed whole, and piled up by clients that
    /// stop reading).
    #[arg(long, default_value_t = 1024)]
    large_kib: usize,
    /// Mean time between two injected faults, in milliseconds.
    #[arg(long, default_value_t = 250)]
    fault_interval_ms: u64,
    /// Faults running at once, at most.
    #[arg(long, default_value_t = 16)]
    max_faults: usize,
    /// Seed of the random choices (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 10)]
    report_every: u64,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Run with the environment's malloc settings instead of re-running
    /// with a fixed mmap threshold (see `MALLOC_ENV`); RSS may then stay
    /// high after the run.
    #[arg(long)]
    system_allocator_settings: bool,
}

/// Run this program again as a child with [`MALLOC_ENV`] (glibc reads it
/// at start) and pass its exit status on.
fn rerun_with_malloc_settings() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("soak: cannot find this program to re-run it: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(MALLOC_ENV)
        .env(CHILD_ENV, "1")
        .status();
    match status {
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("soak: cannot re-run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad unit in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad duration {s:?}: {e}"))
}

/// RSS may end this far above its start: allocators keep some freed
/// memory, and the first calls size buffers and tables for good.
fn rss_tolerance(start: u64) -> u64 {
    (32 << 20).max(start / 4)
}

/// Bound on each phase of the stop.
const STOP_PHASE: Duration = Duration::from_secs(30);

/// glibc malloc settings for the run (set by re-running ourselves): a
/// fixed mmap threshold, so that freed large buffers go back to the
/// system instead of raising the threshold and staying in the heap, and
/// few arenas. Without them RSS after a run stays near its peak (glibc
/// keeps what it freed), which would hide whether memory is really
/// released; the summary says which settings were in force.
const MALLOC_ENV: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "32768"),
    ("MALLOC_ARENA_MAX", "2"),
];
/// Marks the re-run child.
const CHILD_ENV: &str = "VERSILE_SOAK_CHILD";

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.system_allocator_settings && std::env::var_os(CHILD_ENV).is_none() {
        return rerun_with_malloc_settings();
    }
    install_panic_hook();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let done = Arc::new(AtomicBool::new(false));
    start_watchdog(args.duration + Duration::from_secs(120), done.clone());

    let prometheus = match install_metrics() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = rt.block_on(run(&args, seed, &prometheus));
    rt.shutdown_timeout(Duration::from_secs(5));
    done.store(true, Ordering::SeqCst);
    let ok = report.print();
    if ok {
        println!("soak: PASS");
        ExitCode::SUCCESS
    } else {
        println!("soak: FAIL");
        ExitCode::FAILURE
    }
}

/// Ends the process (exit 3) if the soak is still running after `limit`,
/// and (exit 4) if the parent that started it is gone.
fn start_watchdog(limit: Duration, done: Arc<AtomicBool>) {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if done.load(Ordering::SeqCst) {
                return;
            }
            if std::env::var_os(CHILD_ENV).is_some()
                && std::os::unix::process::parent_id() != parent
            {
                eprintln!("soak: the parent process is gone; stopping");
                std::process::exit(4);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("soak: WATCHDOG: still running after {limit:?}; the soak or the server hangs");
        std::process::exit(3);
    });
}

/// What the end-of-run checks found.
struct Report {
    stats: Stats,
    seed: u64,
    elapsed: Duration,
    rss_start: u64,
    rss_peak: u64,
    rss_end: u64,
    tasks_start: usize,
    tasks_end: usize,
    links_left: usize,
    connections_gauge: f64,
    links_gauge: f64,
    /// `versile_calls_in_flight` and the sum of
    /// `versile_method_calls_in_flight` over methods.
    calls_gauges: (f64, f64),
    limits: Vec<(String, f64)>,
    server_page: String,
}

async fn run(args: &Args, seed: u64, prometheus: &PrometheusHandle) -> Report {
    let stats = Stats::default();
    let handle = tokio::runtime::Handle::current();
    let tasks_start = handle.metrics().num_alive_tasks();
    let (rss_start, _) = rss();

    // `versile serve`'s stack; the per-address limits are off because all
    // clients share 127.0.0.1 (other defaults, deadlines and keep-alive
    // included, stay).
    let stack = StackConfig {
        max_connections_per_ip: None,
        rate_per_ip: None,
        ..StackConfig::default()
    };
    let service = match stack.build(VopLayer::insecure(), GatewayService::new(soak_gateway)) {
        Ok(s) => s,
        Err(e) => {
            stats.fail("server_start", e.to_string());
            return Report::empty(stats, seed, rss_start, tasks_start);
        }
    };
    let server = match Server::builder().listen("127.0.0.1:0").serve(service) {
        Ok(s) => s,
        Err(e) => {
            stats.fail("server_start", e.to_string());
            return Report::empty(stats, seed, rss_start, tasks_start);
        }
    };
    let addr = server.local_addr().to_string();
    println!(
        "soak: server on vop://{addr}/ ({stack}); {} clients for {:?}; seed {seed}",
        args.clients, args.duration
    );

    let shared = Arc::new(Shared {
        addr,
        stats: stats.clone(),
        payloads: Payloads::new(seed, args.large_kib.max(1) * 1024),
        kills: Default::default(),
        stop: CancellationToken::new(),
        think: Duration::from_millis(args.think_ms),
        call_timeout: Duration::from_secs(60),
        handshake_deadline: stack.handshake_timeout.unwrap_or(Duration::MAX),
    });
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for i in 0..args.clients {
        let seed = seed.wrapping_add((i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
        clients.spawn(run_client(shared.clone(), seed));
    }
    let injector = tokio::spawn(faults::inject(
        shared.clone(),
        server.links().clone(),
        Duration::from_millis(args.fault_interval_ms),
        args.max_faults,
        seed.rotate_left(17),
    ));

    let end = started + args.duration;
    let mut tick = tokio::time::interval(Duration::from_secs(args.report_every.max(1)));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = tick.tick() => progress(&stats, &server, started),
        }
    }

    println!("soak: stopping clients and faults");
    shared.stop.cancel();
    let deadline = Instant::now() + shared.call_timeout + STOP_PHASE;
    while !clients.is_empty() {
        if tokio::time::timeout_at(deadline, clients.join_next())
            .await
            .is_err()
        {
            stats.fail(
                "client_task_hung",
                format!("{} clients did not stop", clients.len()),
            );
            clients.abort_all();
        }
    }
    match tokio::time::timeout(Duration::from_secs(90), injector).await {
        Ok(_) => {}
        Err(_) => stats.fail("injector_hung", "the fault injector did not stop"),
    }
    let elapsed = started.elapsed();

    println!("soak: stopping the server");
    match tokio::time::timeout(STOP_PHASE, server.shutdown(Duration::from_secs(10))).await {
        Ok(true) => stats.add("server.stopped_gracefully"),
        Ok(false) => stats.add("server.stop_forced_after_drain_deadline"),
        Err(_) => stats.fail(
            "server_stop_hung",
            "server did not drain after a forced stop",
        ),
    }
    // The registry and gauges settle as connection tasks end.
    let registry = server.links().clone();
    let settle = Instant::now() + Duration::from_secs(10);
    let mut page = prometheus.render();
    while Instant::now() < settle
        && (!registry.is_empty()
            || metric(&page, "versile_connections_active") != 0.0
            || metric(&page, "versile_links_active") != 0.0
            || calls_gauges(&page) != (0.0, 0.0))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = prometheus.render();
    }
    let links_left = registry.len();
    drop(registry);
    drop(server);
    drop(shared);
    let settle = Instant::now() + Duration::from_secs(10);
    while handle.metrics().num_alive_tasks() > tasks_start && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tasks_end = handle.metrics().num_alive_tasks();
    // Let the allocator return what it will.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_end, rss_peak) = rss();
    Report {
        seed,
        elapsed,
        rss_start,
        rss_peak,
        rss_end,
        tasks_start,
        tasks_end,
        links_left,
        connections_gauge: metric(&page, "versile_connections_active"),
        links_gauge: metric(&page, "versile_links_active"),
        calls_gauges: calls_gauges(&page),
        limits: family(&page, "versile_limits_exceeded_total"),
        server_page: page,
        stats,
    }
}

/// The link-level and per-method calls-in-flight gauges.
fn calls_gauges(page: &str) -> (f64, f64) {
    let per_method = family(page, "versile_method_calls_in_flight")
        .iter()
        .map(|(_, v)| v)
        .sum();
    (metric(page, "versile_calls_in_flight"), per_method)
}

fn progress(stats: &Stats, server: &Server, started: Instant) {
    let (rss_now, _) = rss();
    println!(
        "soak: {:>6.0}s calls ok {} failed {} | faults {} | failures {} | links {} | rss {:.1} MiB | tasks {}",
        started.elapsed().as_secs_f64(),
        stats.sum("calls.ok."),
        stats.sum("calls.failed."),
        stats.sum("fault.") - stats.sum("fault.skipped") ,
        stats.sum("failure."),
        server.links().len(),
        mib(rss_now),
        tokio::runtime::Handle::current().metrics().num_alive_tasks(),
    );
}

impl Report {
    fn empty(stats: Stats, seed: u64, rss_start: u64, tasks_start: usize) -> Self {
        Report {
            stats,
            seed,
            elapsed: Duration::ZERO,
            rss_start,
            rss_peak: rss_start,
            rss_end: rss_start,
            tasks_start,
            tasks_end: tasks_start,
            links_left: 0,
            connections_gauge: 0.0,
            links_gauge: 0.0,
            calls_gauges: (0.0, 0.0),
            limits: Vec::new(),
            server_page: String::new(),
        }
    }

    /// Print the summary; `true` if every check passed.
    fn print(&self) -> bool {
        let counts = self.stats.snapshot();
        println!(
            "soak: summary (seed {}, ran {:.0?} with the stop of the faults, CPU used {:.0?}, {} build)",
            self.seed,
            self.elapsed,
            stats::cpu_time(),
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
        let section = |title: &str, prefix: &str| {
            println!("  {title}:");
            for (k, v) in counts.iter().filter(|(k, _)| k.starts_with(prefix)) {
                println!("    {:<48} {v}", &k[prefix.len()..]);
            }
        };
        section("calls", "calls.");
        section("clients", "client.");
        section("faults injected (kind, then kind.outcome)", "fault.");
        section("server", "server.");
        println!("  server metrics:");
        for name in [
            "versile_connections_accepted_total",
            "versile_connections_failed_total",
            "versile_calls_received_total",
            "versile_calls_sent_total",
            "versile_call_errors_total",
        ] {
            println!("    {name:<48} {}", metric(&self.server_page, name));
        }
        for (k, v) in family(&self.server_page, "versile_connections_rejected_total")
            .into_iter()
            .chain(self.limits.iter().cloned())
        {
            println!("    {k:<48} {v}");
        }
        println!(
            "  rss: start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB (allowed end: start + {:.0} MiB)",
            mib(self.rss_start),
            mib(self.rss_peak),
            mib(self.rss_end),
            mib(rss_tolerance(self.rss_start)),
        );
        let malloc: Vec<String> = MALLOC_ENV
            .iter()
            .filter_map(|(k, _)| Some(format!("{k}={}", std::env::var(k).ok()?)))
            .collect();
        println!(
            "  malloc settings: {}",
            if malloc.is_empty() {
                "glibc defaults".into()
            } else {
                malloc.join(" ")
            }
        );
        println!(
            "  tasks alive: start {}, end {}",
            self.tasks_start, self.tasks_end
        );

        let mut checks: Vec<(String, bool)> = Vec::new();
        let panics = PANICS.load(Ordering::SeqCst);
        checks.push((format!("no panic ({panics})"), panics == 0));
        let failures = self.stats.sum("failure.");
        checks.push((format!("no failure counted ({failures})"), failures == 0));
        let completed = self.stats.sum("calls.ok.");
        checks.push((format!("calls completed ({completed})"), completed > 0));
        checks.push((
            format!("links registry empty ({})", self.links_left),
            self.links_left == 0,
        ));
        checks.push((
            format!(
                "gauges at zero (versile_connections_active {}, versile_links_active {})",
                self.connections_gauge, self.links_gauge
            ),
            self.connections_gauge == 0.0 && self.links_gauge == 0.0,
        ));
        checks.push((
            format!(
                "calls in flight at zero (versile_calls_in_flight {}, versile_method_calls_in_flight {})",
                self.calls_gauges.0, self.calls_gauges.1
            ),
            self.calls_gauges == (0.0, 0.0),
        ));
        checks.push((
            format!(
                "no task left ({} alive, {} at start)",
                self.tasks_end, self.tasks_start
            ),
            self.tasks_end <= self.tasks_start,
        ));
        checks.push((
            format!(
                "rss back near start ({:+.1} MiB)",
                (self.rss_end as f64 - self.rss_start as f64) / (1024.0 * 1024.0)
            ),
            self.rss_end <= self.rss_start + rss_tolerance(self.rss_start),
        ));
        println!("  checks:");
        for (what, ok) in &checks {
            println!("    [{}] {what}", if *ok { "ok" } else { "FAIL" });
        }
        for (k, v) in counts.iter().filter(|(k, _)| k.starts_with("failure.")) {
            println!("    failure {k}: {v}");
        }
        for note in self.stats.notes() {
            println!("    note: {note}");
        }
        if let Some(p) = stats::first_panic() {
            println!("    first panic: {p}");
        }
        checks.iter().all(|(_, ok)| *ok)
    }
}
