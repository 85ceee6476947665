//! `versile bench`: five modes, chosen by the arguments.
//!
//! * no VRI: [`versile::bench::run`], everything in this process (raw TCP
//!   baseline, PLAIN and VTS echo, handshakes), and print its report;
//! * `VRI` or `--connect VRI`: [`versile::bench::run_remote`] against a
//!   running service (ours or Versile Python's), with `versile call`'s
//!   client options ([`super::call::ClientArgs`]);
//! * `--baseline-server ADDR` / `--baseline-connect ADDR`: the two ends of
//!   the two-process raw TCP ping-pong ([`versile::bench::ping_pong_server`]),
//!   for comparing with `versile serve` + `versile bench VRI` under the same
//!   CPU placement;
//! * `--hiccups`: no network at all; [`versile::bench::measure_hiccups`]
//!   spins on one thread and reports how often the machine took the CPU
//!   away, the floor under every placement's tail.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use versile::bench::{
    measure_hiccups, ping_pong_client, ping_pong_server, run_remote, BenchOptions, CallLog,
    HiccupOptions, PingPongOptions, RemoteBenchError, RemoteOptions,
};
use versile::client::Client;
use versile::vri::Vri;

use super::call::{client_config, describe_client, parse_vri, ClientArgs};
use super::{fail, parse_secs, runtime, runtime_with_threads, EXIT_FAILURE, EXIT_USAGE};

/// Benchmark echo calls: in this process against a raw TCP ping-pong
/// baseline (no VRI), or against a running service (VRI).
///
/// Without a VRI: call round trips and pipelined throughput over loopback,
/// PLAIN and VTS, and VTS and TLS connections per second, against a raw
/// TCP ping-pong baseline measured in the same run.
///
/// With a VRI: calls METHOD(payload) on the object the VRI names, where
/// payload is one bytes value of --payload bytes and the answer must be the
/// same bytes (the demo's and Versile Python's echo). `vop://H:P/echo`
/// calls the gateway's echo; `vop://H:P/text/echo/` resolves text/echo and
/// calls --method (echo) on it. First --iterations sequential round trips
/// on one link, then --connections links with --in-flight calls each for
/// --duration. Transports as for `versile call` (VTS; PLAIN with
/// --insecure; TLS with --pin).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    versile bench --json                                   # all in this process\n  \
    versile serve --insecure --gateway echo &\n  \
    versile bench --insecure vop://127.0.0.1:4433/echo      # against that server\n  \
    versile bench --insecure --connections 4 --in-flight 16 --duration 5 --iterations 0 vop://127.0.0.1:4433/text/echo/\n  \
    versile bench --baseline-server 127.0.0.1:4500 &       # two-process TCP baseline\n  \
    versile bench --baseline-connect 127.0.0.1:4500\n  \
    taskset -c 0 versile bench --hiccups --duration 2       # this CPU's interruptions\n\n\
Exit status: 0 success, 1 failure (or, with a VRI, any call that failed), 2 usage error.")]
pub struct BenchArgs {
    /// Print one line of JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Payload size in bytes for echo calls and the baseline ping-pong.
    #[arg(long, value_name = "BYTES", default_value_t = BenchOptions::default().payload)]
    payload: usize,
    /// Sequential round trips to time (with a VRI, 0 skips the phase).
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().iterations)]
    iterations: usize,
    /// Calls kept in flight for the pipelined measurement (with a VRI: on
    /// each connection).
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().in_flight)]
    in_flight: usize,
    /// Untimed round trips before each sequential phase.
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().warmup)]
    warmup: usize,
    /// Duration of the pipelined measurement, in seconds (with a VRI: of
    /// the concurrent phase; 0 skips it).
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = parse_secs)]
    duration: Duration,
    /// Run each server half on its own thread and the client on a
    /// current-thread runtime, so `taskset -c 0,1` can put the two ends on
    /// different CPUs (and `taskset -c 0` on the same one). Without a VRI.
    #[arg(long, conflicts_with_all = ["target", "connect", "baseline_server", "baseline_connect"])]
    split: bool,
    /// Alternate the baseline and the PLAIN sequential phase this many
    /// times, each round on new connections with its own --warmup and an
    /// equal share of --iterations, so both sample the same machine states
    /// (large payloads: the kernel's copies vary from one connection to
    /// the next); the VTS sequential phase alternates with its cipher+MAC
    /// floor likewise, on one link. Without a VRI
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().rounds,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
          conflicts_with_all = ["target", "connect", "baseline_server", "baseline_connect"])]
    rounds: usize,
    /// Full VTS connections to time (bounded by --duration too). Without a
    /// VRI.
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().handshakes)]
    handshakes: usize,

    /// The service to benchmark, e.g. vop://127.0.0.1:4433/echo
    #[arg(value_name = "VRI", value_parser = parse_vri, conflicts_with = "connect")]
    target: Option<Vri>,
    /// The service to benchmark (same as the positional VRI).
    #[arg(long, value_name = "VRI", value_parser = parse_vri)]
    connect: Option<Vri>,
    /// With a VRI ending in `/`: the method to call on the object.
    #[arg(long, value_name = "NAME", default_value = "echo")]
    method: String,
    /// With a VRI: links of the concurrent phase.
    #[arg(long, value_name = "N", default_value_t = 1)]
    connections: usize,
    /// With a VRI or --baseline-connect: limit in seconds for connecting
    /// and resolving, and for each call.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    timeout: Duration,
    /// With a VRI or --baseline-connect: the server's process id, to
    /// report its CPU time per call too (read from /proc/PID; same machine).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// With a VRI or a --baseline-* mode: runtime worker threads of this
    /// process (1: a current-thread runtime).
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    /// Transports, server key pinning and our key (with a VRI).
    #[command(flatten)]
    client: ClientArgs,

    /// Run the two-process baseline's server: a raw TCP ping-pong on ADDR
    /// (prints `listening on tcp://ADDR`), until SIGINT/SIGTERM.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["target", "connect", "baseline_connect"])]
    baseline_server: Option<String>,
    /// Run the two-process baseline's client against a --baseline-server
    /// at ADDR: sequential round trips of an echo call's and result's
    /// sizes for --payload.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["target", "connect"])]
    baseline_connect: Option<String>,

    /// Measure this machine instead: spin on one thread for --duration and
    /// report how often and how long the CPU was taken away (gaps between
    /// clock readings above --hiccup-threshold). Run it under the same
    /// `taskset` as the benchmark whose tails it explains.
    #[arg(long, conflicts_with_all = ["target", "connect", "baseline_server", "baseline_connect", "split"])]
    hiccups: bool,
    /// With a VRI or --baseline-connect: write every timed sequential call
    /// to FILE, `start_us latency_us` a line, to see *when* the slow ones
    /// came (`scripts/tail-timeline.py FILE` looks for a period). Kept in
    /// memory until the phase ends (32 bytes a call), so no file I/O is timed.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["baseline_server", "hiccups"])]
    latency_log: Option<std::path::PathBuf>,
    /// With --hiccups: the shortest gap, in µs, that counts.
    #[arg(long, value_name = "MICROS", default_value_t = 5, requires = "hiccups",
          value_parser = clap::value_parser!(u64).range(1..))]
    hiccup_threshold: u64,
}

pub fn run(args: BenchArgs) -> ExitCode {
    if args.hiccups {
        return hiccups(&args);
    }
    let remote_mode = args.target.is_some() || args.connect.is_some();
    if args.latency_log.is_some() && !remote_mode && args.baseline_connect.is_none() {
        return fail(
            EXIT_USAGE,
            "--latency-log needs a VRI or --baseline-connect (two-process runs)",
        );
    }
    if let Some(addr) = args.baseline_server.clone() {
        return with_runtime(args.threads, baseline_server(addr));
    }
    if let Some(addr) = args.baseline_connect.clone() {
        return with_runtime(args.threads, baseline_connect(addr, args));
    }
    if let Some(vri) = args.target.clone().or_else(|| args.connect.clone()) {
        return with_runtime(args.threads, remote(vri, args));
    }
    let rt = match runtime(!args.split) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = BenchOptions {
        payload: args.payload,
        iterations: args.iterations,
        in_flight: args.in_flight,
        warmup: args.warmup,
        duration: args.duration,
        handshakes: args.handshakes,
        split: args.split,
        rounds: args.rounds,
    };
    match rt.block_on(versile::bench::run(options)) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(EXIT_FAILURE, format!("benchmark failed: {e}")),
    }
}

fn hiccups(args: &BenchArgs) -> ExitCode {
    if args.duration.is_zero() {
        return fail(EXIT_USAGE, "--hiccups needs a --duration above 0");
    }
    let report = measure_hiccups(HiccupOptions {
        duration: args.duration,
        threshold: Duration::from_micros(args.hiccup_threshold),
    });
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    ExitCode::SUCCESS
}

fn with_runtime(threads: usize, work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match runtime_with_threads(threads) {
        Ok(rt) => rt.block_on(work),
        Err(code) => code,
    }
}

async fn remote(vri: Vri, args: BenchArgs) -> ExitCode {
    let config = match client_config(&args.client) {
        Ok(c) => c,
        Err(msg) => return fail(EXIT_USAGE, msg),
    };
    let options = RemoteOptions {
        payload: args.payload,
        iterations: args.iterations,
        warmup: args.warmup,
        connections: args.connections,
        in_flight: args.in_flight,
        duration: args.duration,
        method: args.method.clone(),
        timeout: args.timeout,
        server_pid: args.server_pid,
        log_calls: args.latency_log.is_some(),
    };
    let log_file = match LatencyLogFile::create(args.latency_log.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    match run_remote(Client::new(config), vri, options).await {
        Ok(report) => {
            let log = report.sequential.as_ref().and_then(|s| s.call_log.as_ref());
            if let Err(code) = log_file.write(log) {
                return code;
            }
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            if report.errors() > 0 {
                return fail(EXIT_FAILURE, format!("{} call(s) failed", report.errors()));
            }
            ExitCode::SUCCESS
        }
        Err(RemoteBenchError::Resolve(e)) => {
            fail(EXIT_FAILURE, describe_client(e, args.client.insecure()))
        }
        Err(e @ RemoteBenchError::QueryArguments) => fail(EXIT_USAGE, e),
        Err(e) => fail(EXIT_FAILURE, e),
    }
}

async fn baseline_server(addr: String) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => return fail(EXIT_FAILURE, format!("cannot listen on {addr}: {e}")),
    };
    let Ok(local) = listener.local_addr() else {
        return fail(EXIT_FAILURE, "cannot read the bound address");
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on tcp://{local}");
        let _ = out.flush();
    }
    tokio::select! {
        r = ping_pong_server(listener) => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(EXIT_FAILURE, format!("baseline server failed: {e}")),
        },
        () = stop_signal() => ExitCode::SUCCESS,
    }
}

/// SIGINT or SIGTERM (Ctrl-C elsewhere).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn baseline_connect(addr: String, args: BenchArgs) -> ExitCode {
    let options = PingPongOptions {
        payload: args.payload,
        iterations: args.iterations.max(1),
        warmup: args.warmup,
        timeout: args.timeout,
        server_pid: args.server_pid,
        log_calls: args.latency_log.is_some(),
    };
    let log_file = match LatencyLogFile::create(args.latency_log.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    match ping_pong_client(&addr, options).await {
        Ok(report) => {
            if let Err(code) = log_file.write(report.sequential.call_log.as_ref()) {
                return code;
            }
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(EXIT_FAILURE, format!("baseline against {addr} failed: {e}")),
    }
}

/// The `--latency-log` file, created before the run so that a bad path
/// fails at once rather than after the measurement.
struct LatencyLogFile(Option<(std::path::PathBuf, std::fs::File)>);

impl LatencyLogFile {
    fn create(path: Option<&std::path::Path>) -> Result<Self, ExitCode> {
        let Some(path) = path else {
            return Ok(LatencyLogFile(None));
        };
        match std::fs::File::create(path) {
            Ok(f) => Ok(LatencyLogFile(Some((path.to_owned(), f)))),
            Err(e) => Err(fail(
                EXIT_FAILURE,
                format!("cannot create {}: {e}", path.display()),
            )),
        }
    }

    fn write(self, log: Option<&CallLog>) -> Result<(), ExitCode> {
        let (Some((path, file)), Some(log)) = (self.0, log) else {
            return Ok(());
        };
        log.write_to(std::io::BufWriter::new(file)).map_err(|e| {
            fail(
                EXIT_FAILURE,
                format!("cannot write {}: {e}", path.display()),
            )
        })
    }
}
