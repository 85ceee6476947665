//! `versile bench`: round-trip and throughput measurements of PLAIN echo
//! calls against a raw tokio TCP ping-pong baseline measured in the same
//! run (`docs/design.md`, performance principles).
//!
//! Everything runs in one process on loopback (127.0.0.1). By default on
//! the caller's runtime: the baseline's two ends, our server and our client
//! are all tasks of that runtime; with `split` every server half runs on its
//! own thread with its own current-thread runtime (the `split` module), so
//! the two ends of a round trip can sit on different CPUs (the CLI uses a multi-thread runtime with the default
//! number of workers; the report records the flavour, the workers and the
//! CPUs the process may use, so run it under `taskset -c 0` and
//! `taskset -c 0,1` to compare placements).
//!
//! Phases, in order:
//! 1. baseline: sequential ping-pong with `TCP_NODELAY`; the client sends
//!    exactly as many bytes as an echo *call* message takes on the wire and
//!    the server answers with as many bytes as the echo *result* message
//!    ([`wire_sizes`]), so both measurements move the same bytes;
//! 2. PLAIN echo: `Server` + `VopLayer::insecure()` + an `Echoer` gateway,
//!    `Client` over one link, sequential `echo(payload)` calls;
//!    (with `rounds` above 1, phases 1 and 2 alternate that many times,
//!    each round on new connections with its own warm-up, and their
//!    samples are merged);
//! 3. pipelined: `in_flight` echo calls outstanding on that one link (the
//!    last round's) for `duration`;
//! 4. VTS echo: phases 2 and 3 again over VTS (`VtsLayer` with a 2048-bit
//!    key generated before the phase, the client pinning it; the suite is
//!    the default preference, AES-256-CBC with SHA-1 VHMAC);
//! 5. VTS handshakes: sequential full connections (TCP connect, VOP, VTS
//!    with the 2048-bit server key, VOL handshake, forced close), up to
//!    `handshakes` or `duration`;
//! 6. TLS handshakes: as phase 5 over TLS (rustls, self-signed
//!    certificate for the same 2048-bit RSA key, client pinning it).
//!
//! Each phase has an untimed warm-up (not for 3) and is bracketed by
//! readings of process CPU time (the `cpu` module); CPU µs per call counts both ends
//! (client and server live in this process in both measurements).
//!
//! Hidden from the crate docs (`#[doc(hidden)]`, feature `cli`): it is
//! public only because its users, the binary (`src/cli/bench.rs`) and
//! `benches/`, are other crates. It cannot move into the binary: the VTS
//! crypto phase keys a record layer directly (`vts_crypto`), which is
//! crate-internal.

mod baseline;
mod cpu;
mod echo;
mod hiccups;
mod latency;
mod remote;
mod split;
mod tcp_remote;
mod vts_crypto;

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::vec::{encode, EncodeConfig, Entity, WireRef};
use crate::vol::message::{code, envelope};

pub use cpu::{allowed_cpus, cpu_time_of, process_cpu_time};
pub use hiccups::{measure_hiccups, HiccupOptions, HiccupReport};
pub use latency::{CallLog, Latency, Recorder};
pub use remote::{run_remote, PhaseReport, RemoteBenchError, RemoteOptions, RemoteReport};
pub use tcp_remote::{ping_pong_client, ping_pong_server, PingPongOptions, PingPongReport};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Payload size in bytes for echo calls (the baseline sends the same
    /// number of bytes as the encoded call and result messages).
    pub payload: usize,
    /// Sequential round trips to time.
    pub iterations: usize,
    /// Untimed round trips before each sequential phase.
    pub warmup: usize,
    /// Calls kept in flight for the pipelined measurement.
    pub in_flight: usize,
    /// Duration of the pipelined measurement (and the upper bound of the
    /// handshake measurement).
    pub duration: Duration,
    /// Connections for the handshake measurement.
    pub handshakes: usize,
    /// Run each server half on its own thread (own current-thread
    /// runtime) instead of as tasks of the caller's runtime, so the two
    /// ends can be placed on different CPUs.
    pub split: bool,
    /// Rounds the baseline and PLAIN sequential phases alternate in, each
    /// round on new connections with its own warm-up and an equal share
    /// of `iterations` (1: baseline, then PLAIN). Default 5: a phase that
    /// runs first in a cold process, or on one unlucky connection, would
    /// otherwise decide the ratio (issue #8).
    pub rounds: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            payload: 32,
            iterations: 20_000,
            warmup: 2_000,
            in_flight: 64,
            duration: Duration::from_secs(3),
            handshakes: 200,
            split: false,
            rounds: 5,
        }
    }
}

/// Results; `Display` prints a table, [`to_json`](Self::to_json) one object.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    /// Payload bytes of each echo call.
    pub payload_bytes: usize,
    /// Bytes of one echo call message on the wire (= baseline request).
    pub request_bytes: usize,
    /// Bytes of one echo result message on the wire (= baseline response).
    pub response_bytes: usize,
    /// Timed sequential round trips per phase ([`BenchOptions::iterations`]).
    pub iterations: usize,
    /// Rounds the baseline and PLAIN sequential phases alternated in
    /// ([`BenchOptions::rounds`]).
    pub rounds: usize,
    /// Untimed round trips before each sequential phase.
    pub warmup: usize,
    /// Calls kept outstanding in the pipelined phases.
    pub in_flight: usize,
    /// `"multi_thread"` or `"current_thread"`.
    pub runtime: String,
    /// Runtime worker threads.
    pub workers: usize,
    /// CPUs the process may run on (`taskset`), e.g. `"0"` or `"0-1"`.
    pub cpus: String,
    /// Servers on their own threads (`--split`).
    pub split: bool,
    /// Median raw TCP ping-pong round trip, µs.
    pub baseline_rtt_us_p50: f64,
    /// 99th percentile of the raw TCP round trip, µs.
    pub baseline_rtt_us_p99: f64,
    /// Every percentile of the sequential round trips (HDR histogram).
    pub baseline_rtt: Latency,
    /// Process CPU time (both ends) per baseline round trip.
    pub baseline_cpu_us_per_call: f64,
    /// Median sequential PLAIN echo call round trip, µs.
    pub plain_rtt_us_p50: f64,
    /// 99th percentile of the PLAIN echo round trip, µs.
    pub plain_rtt_us_p99: f64,
    /// Every percentile of the sequential round trips (HDR histogram).
    pub plain_rtt: Latency,
    /// Process CPU time (client + server) per sequential echo call.
    pub plain_cpu_us_per_call: f64,
    /// PLAIN echo calls answered per second with `in_flight` outstanding.
    pub plain_pipelined_calls_per_s: f64,
    /// Process CPU time per call in the pipelined phase.
    pub plain_pipelined_cpu_us_per_call: f64,
    /// `plain_rtt_us_p50 / baseline_rtt_us_p50`.
    pub ratio_plain_baseline_p50: f64,
    /// `plain_rtt_us_p99 / baseline_rtt_us_p99`.
    pub ratio_plain_baseline_p99: f64,
    /// Median sequential VTS echo call round trip, µs.
    pub vts_rtt_us_p50: f64,
    /// 99th percentile of the VTS echo round trip, µs.
    pub vts_rtt_us_p99: f64,
    /// Every percentile of the sequential round trips (HDR histogram).
    pub vts_rtt: Latency,
    /// Process CPU time (client + server) per sequential VTS echo call.
    pub vts_cpu_us_per_call: f64,
    /// VTS echo calls answered per second with `in_flight` outstanding.
    pub vts_pipelined_calls_per_s: f64,
    /// Process CPU time per call in the pipelined VTS phase.
    pub vts_pipelined_cpu_us_per_call: f64,
    /// `vts_rtt_us_p50 / baseline_rtt_us_p50` (target ≤ 2).
    pub ratio_vts_baseline_p50: f64,
    /// `vts_rtt_us_p99 / baseline_rtt_us_p99`.
    pub ratio_vts_baseline_p99: f64,
    /// Median µs of sealing and opening one echo's call and result with
    /// the VTS suite, no I/O: the floor under a VTS echo on this CPU
    /// (`vts_crypto` module).
    pub vts_crypto_floor_us: f64,
    /// `vts_rtt_us_p50 / vts_crypto_floor_us` (target for 1 MiB: ≤ 1.2).
    pub ratio_vts_crypto_floor_p50: f64,
    /// Full VTS connections per second, 2048-bit server key.
    pub vts_handshakes_per_s: f64,
    /// Median time of one full VTS connection, µs.
    pub vts_handshake_us_p50: f64,
    /// Full TLS connections per second, same 2048-bit RSA key (`None` if
    /// not measured).
    pub tls_handshakes_per_s: Option<f64>,
}

impl BenchReport {
    /// One JSON object with every figure.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "payload_bytes": self.payload_bytes,
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "iterations": self.iterations,
            "rounds": self.rounds,
            "warmup": self.warmup,
            "in_flight": self.in_flight,
            "runtime": self.runtime,
            "workers": self.workers,
            "cpus": self.cpus,
            "split": self.split,
            "baseline_rtt_us_p50": round2(self.baseline_rtt_us_p50),
            "baseline_rtt_us_p99": round2(self.baseline_rtt_us_p99),
            "baseline_rtt_us": self.baseline_rtt.to_json(),
            "baseline_cpu_us_per_call": round2(self.baseline_cpu_us_per_call),
            "plain_rtt_us_p50": round2(self.plain_rtt_us_p50),
            "plain_rtt_us_p99": round2(self.plain_rtt_us_p99),
            "plain_rtt_us": self.plain_rtt.to_json(),
            "plain_cpu_us_per_call": round2(self.plain_cpu_us_per_call),
            "plain_pipelined_calls_per_s": self.plain_pipelined_calls_per_s.round(),
            "plain_pipelined_cpu_us_per_call": round2(self.plain_pipelined_cpu_us_per_call),
            "ratio_plain_baseline_p50": round2(self.ratio_plain_baseline_p50),
            "ratio_plain_baseline_p99": round2(self.ratio_plain_baseline_p99),
            "vts_rtt_us_p50": round2(self.vts_rtt_us_p50),
            "vts_rtt_us_p99": round2(self.vts_rtt_us_p99),
            "vts_rtt_us": self.vts_rtt.to_json(),
            "vts_cpu_us_per_call": round2(self.vts_cpu_us_per_call),
            "vts_pipelined_calls_per_s": self.vts_pipelined_calls_per_s.round(),
            "vts_pipelined_cpu_us_per_call": round2(self.vts_pipelined_cpu_us_per_call),
            "ratio_vts_baseline_p50": round2(self.ratio_vts_baseline_p50),
            "ratio_vts_baseline_p99": round2(self.ratio_vts_baseline_p99),
            "vts_crypto_floor_us": round2(self.vts_crypto_floor_us),
            "ratio_vts_crypto_floor_p50": round2(self.ratio_vts_crypto_floor_p50),
            "vts_handshakes_per_s": round2(self.vts_handshakes_per_s),
            "vts_handshake_us_p50": round2(self.vts_handshake_us_p50),
            "tls_handshakes_per_s": self.tls_handshakes_per_s.map(round2),
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "versile bench: loopback, payload {} B (call {} B, result {} B on the wire), \
             {} iterations after {} warm-up, in {} round(s)",
            self.payload_bytes,
            self.request_bytes,
            self.response_bytes,
            self.iterations,
            self.warmup,
            self.rounds
        )?;
        writeln!(
            f,
            "runtime {} ({} workers), CPUs {}, servers {}",
            self.runtime,
            self.workers,
            self.cpus,
            if self.split {
                "on their own threads (--split)"
            } else {
                "on the same runtime"
            }
        )?;
        writeln!(
            f,
            "{:<26} {:>9} {:>9} {:>12} {:>12}",
            "", "p50 µs", "p99 µs", "CPU µs/call", "calls/s"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, p50: f64, p99: f64, cpu: f64| {
            writeln!(
                f,
                "{name:<26} {p50:>9.1} {p99:>9.1} {cpu:>12.1} {:>12.0}",
                if p50 > 0.0 { 1e6 / p50 } else { 0.0 }
            )
        };
        row(
            f,
            "baseline TCP ping-pong",
            self.baseline_rtt_us_p50,
            self.baseline_rtt_us_p99,
            self.baseline_cpu_us_per_call,
        )?;
        row(
            f,
            "PLAIN echo (sequential)",
            self.plain_rtt_us_p50,
            self.plain_rtt_us_p99,
            self.plain_cpu_us_per_call,
        )?;
        writeln!(
            f,
            "{:<26} {:>9} {:>9} {:>12.1} {:>12.0}",
            format!("PLAIN echo ({} in flight)", self.in_flight),
            "-",
            "-",
            self.plain_pipelined_cpu_us_per_call,
            self.plain_pipelined_calls_per_s
        )?;
        row(
            f,
            "VTS echo (sequential)",
            self.vts_rtt_us_p50,
            self.vts_rtt_us_p99,
            self.vts_cpu_us_per_call,
        )?;
        writeln!(
            f,
            "{:<26} {:>9} {:>9} {:>12.1} {:>12.0}",
            format!("VTS echo ({} in flight)", self.in_flight),
            "-",
            "-",
            self.vts_pipelined_cpu_us_per_call,
            self.vts_pipelined_calls_per_s
        )?;
        writeln!(
            f,
            "PLAIN / baseline: p50 {:.2}x, p99 {:.2}x",
            self.ratio_plain_baseline_p50, self.ratio_plain_baseline_p99
        )?;
        writeln!(
            f,
            "VTS / baseline:   p50 {:.2}x, p99 {:.2}x",
            self.ratio_vts_baseline_p50, self.ratio_vts_baseline_p99
        )?;
        writeln!(
            f,
            "VTS connections (2048-bit key): {:.1}/s, p50 {:.0} µs",
            self.vts_handshakes_per_s, self.vts_handshake_us_p50
        )?;
        match self.tls_handshakes_per_s {
            Some(t) => writeln!(f, "TLS connections (2048-bit key):  {t:.1}/s"),
            None => writeln!(f, "TLS connections: not measured"),
        }
    }
}

/// Run every measurement on the current runtime.
///
/// The phases run in a task spawned on the runtime, not in the caller's
/// future: under `Runtime::block_on` that future would run on the calling
/// thread, outside the worker pool, and every round trip would pay a
/// cross-thread wake-up that a server's tasks do not pay.
pub async fn run(options: BenchOptions) -> std::io::Result<BenchReport> {
    tokio::spawn(run_phases(options))
        .await
        .map_err(std::io::Error::other)?
}

/// Round `round`'s part of `n` split over `rounds` rounds (the parts add
/// up to `n`).
fn round_share(n: usize, round: usize, rounds: usize) -> usize {
    n * (round + 1) / rounds - n * round / rounds
}

async fn run_phases(options: BenchOptions) -> std::io::Result<BenchReport> {
    let iterations = options.iterations.max(1);
    let payload = Bytes::from(
        (0..options.payload)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    // Baseline and PLAIN sequential round trips alternate in rounds, each
    // on a new connection (and a new link), so that both sample the same
    // states of the machine: with large payloads the kernel's copies
    // dominate, and their speed changes from one connection to the next
    // (docs/performance.md, "Large messages").
    let split = options.split;
    let rounds = options.rounds.clamp(1, iterations);
    // A msg_id from the middle of a round sizes the messages (ids grow,
    // from 1 on each new link).
    let (request_bytes, response_bytes) =
        wire_sizes(&payload, (options.warmup + iterations / rounds / 2) as i64);
    let (mut base, mut seq) = (Phase::paused(), Phase::paused());
    let mut last_setup = None;
    for round in 0..rounds {
        let timed = round_share(iterations, round, rounds);
        baseline::ping_pong(
            request_bytes,
            response_bytes,
            options.warmup,
            timed,
            split,
            &mut base,
        )
        .await?;
        let setup = echo::EchoSetup::start(split).await?;
        let done =
            echo::sequential(&setup.gateway, &payload, options.warmup, timed, &mut seq).await;
        if done.is_err() || round + 1 < rounds {
            setup.stop().await;
            done?;
        } else {
            last_setup = Some(setup);
        }
    }
    let (base, seq) = (
        base.finish(iterations as u64),
        seq.finish(iterations as u64),
    );

    // Pipelined on the last round's link.
    let Some(setup) = last_setup else {
        return Err(std::io::Error::other("no sequential round ran"));
    };
    let pipe = echo::pipelined(
        &setup.gateway,
        &payload,
        options.in_flight,
        options.duration,
    )
    .await;
    setup.stop().await;
    let pipe = pipe?;

    // VTS: key generation is not timed.
    let key = tokio::task::spawn_blocking(crate::vts::RsaKeyPair::generate_default)
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    // The VTS echo's floor, its cipher and MAC alone, is timed in turns
    // with its sequential round trips (on one link), for the same reason.
    let floor_rounds = iterations.min(1000);
    let mut floor = vts_crypto::EchoCryptoFloor::new(request_bytes, response_bytes)
        .map_err(std::io::Error::other)?;
    let setup = echo::EchoSetup::start_vts(key.clone(), split).await?;
    let result = async {
        let mut seq = Phase::paused();
        for round in 0..rounds {
            let timed = round_share(iterations, round, rounds);
            echo::sequential(&setup.gateway, &payload, options.warmup, timed, &mut seq).await?;
            floor
                .measure(round_share(floor_rounds, round, rounds))
                .map_err(std::io::Error::other)?;
        }
        let seq = seq.finish(iterations as u64);
        let pipe = echo::pipelined(
            &setup.gateway,
            &payload,
            options.in_flight,
            options.duration,
        )
        .await?;
        let hs = setup
            .connections(options.handshakes, options.duration)
            .await?;
        Ok::<_, std::io::Error>((seq, pipe, hs))
    }
    .await;
    setup.stop().await;
    let (vts_seq, vts_pipe, vts_hs) = result?;
    let vts_crypto_floor_us = floor
        .median_us()
        .ok_or_else(|| std::io::Error::other("no floor round ran"))?;

    let setup = echo::EchoSetup::start_tls(key, split).await?;
    let result = setup
        .connections(options.handshakes, options.duration)
        .await;
    setup.stop().await;
    let tls_hs = result?;

    let handle = tokio::runtime::Handle::current();
    let runtime = match handle.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => "current_thread",
        _ => "multi_thread",
    };
    Ok(BenchReport {
        payload_bytes: options.payload,
        request_bytes,
        response_bytes,
        iterations,
        rounds,
        warmup: options.warmup,
        in_flight: options.in_flight,
        runtime: runtime.to_owned(),
        workers: handle.metrics().num_workers(),
        cpus: allowed_cpus().unwrap_or_else(|| "?".to_owned()),
        split,
        baseline_rtt_us_p50: base.latency.p50_us,
        baseline_rtt_us_p99: base.latency.p99_us,
        baseline_rtt: base.latency,
        baseline_cpu_us_per_call: base.cpu_us_per_call,
        plain_rtt_us_p50: seq.latency.p50_us,
        plain_rtt_us_p99: seq.latency.p99_us,
        plain_rtt: seq.latency,
        plain_cpu_us_per_call: seq.cpu_us_per_call,
        plain_pipelined_calls_per_s: pipe.calls_per_s,
        plain_pipelined_cpu_us_per_call: pipe.cpu_us_per_call,
        ratio_plain_baseline_p50: seq.latency.p50_us / base.latency.p50_us,
        ratio_plain_baseline_p99: seq.latency.p99_us / base.latency.p99_us,
        vts_rtt_us_p50: vts_seq.latency.p50_us,
        vts_rtt_us_p99: vts_seq.latency.p99_us,
        vts_rtt: vts_seq.latency,
        vts_cpu_us_per_call: vts_seq.cpu_us_per_call,
        vts_pipelined_calls_per_s: vts_pipe.calls_per_s,
        vts_pipelined_cpu_us_per_call: vts_pipe.cpu_us_per_call,
        ratio_vts_baseline_p50: vts_seq.latency.p50_us / base.latency.p50_us,
        ratio_vts_baseline_p99: vts_seq.latency.p99_us / base.latency.p99_us,
        vts_crypto_floor_us,
        ratio_vts_crypto_floor_p50: vts_seq.latency.p50_us / vts_crypto_floor_us,
        vts_handshakes_per_s: vts_hs.calls_per_s,
        vts_handshake_us_p50: vts_hs.latency.p50_us,
        tls_handshakes_per_s: Some(tls_hs.calls_per_s),
    })
}

/// Encoded sizes of an `echo(payload)` call message and of its result
/// message (`docs/protocol/vol.md` §3.1, §3.3, §3.4), for a msg_id of `msg_id`.
pub fn wire_sizes(payload: &Bytes, msg_id: i64) -> (usize, usize) {
    let call: Entity<WireRef> = envelope(
        msg_id,
        code::METHOD_CALL,
        Entity::Tuple(vec![
            Entity::Ref(WireRef::ReceiverOwned(1)),
            Entity::Tuple(vec![
                Entity::String("echo".into()),
                Entity::Bytes(payload.clone()),
            ]),
        ]),
    );
    let result: Entity<WireRef> = envelope(
        msg_id,
        code::CALL_RESULT,
        Entity::Tuple(vec![Entity::Int(msg_id), Entity::Bytes(payload.clone())]),
    );
    let size = |e: &Entity<WireRef>| {
        let mut buf = bytes::BytesMut::new();
        // These entities are always encodable in a link context.
        encode(e, &EncodeConfig::LINK, &mut buf).map_or(0, |_| buf.len())
    };
    (size(&call), size(&result))
}

/// One phase in progress: latency samples, and the CPU and wall time of
/// the stretches it was running (a phase measured in rounds pauses between
/// them, for the set-up and warm-up of the next round).
struct Phase {
    latency: Recorder,
    cpu: Duration,
    wall: Duration,
    /// Wall clock and process CPU time when the running stretch began.
    running: Option<(Instant, Option<Duration>)>,
}

/// What a phase measured.
struct Measured {
    latency: Latency,
    cpu_us_per_call: f64,
    calls_per_s: f64,
}

impl Phase {
    /// A phase that is not running yet ([`resume`](Self::resume) starts it).
    fn paused() -> Phase {
        Phase {
            latency: Recorder::new(),
            cpu: Duration::ZERO,
            wall: Duration::ZERO,
            running: None,
        }
    }

    fn start() -> Phase {
        let mut phase = Phase::paused();
        phase.resume();
        phase
    }

    fn resume(&mut self) {
        if self.running.is_none() {
            self.running = Some((Instant::now(), process_cpu_time()));
        }
    }

    fn pause(&mut self) {
        if let Some((started, cpu)) = self.running.take() {
            self.wall += started.elapsed();
            if let (Some(a), Some(b)) = (cpu, process_cpu_time()) {
                self.cpu += b.saturating_sub(a);
            }
        }
    }

    fn sample(&mut self, d: Duration) {
        self.latency.record(d);
    }

    fn finish(mut self, calls: u64) -> Measured {
        self.pause();
        Measured {
            latency: self.latency.summary(),
            cpu_us_per_call: per_call_us(self.cpu, calls),
            calls_per_s: calls as f64 / self.wall.as_secs_f64(),
        }
    }
}

/// CPU µs per call (0 calls count as 1, so a failed phase reads 0 calls).
fn per_call_us(cpu: Duration, calls: u64) -> f64 {
    cpu.as_secs_f64() * 1e6 / calls.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_run() {
        small_run_with(false).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn small_split_run() {
        let report = small_run_with(true).await;
        assert_eq!(report.to_json()["split"], true);
        assert_eq!(report.runtime, "current_thread");
    }

    async fn small_run_with(split: bool) -> BenchReport {
        let report = tokio::time::timeout(
            Duration::from_secs(60),
            run(BenchOptions {
                payload: 16,
                iterations: 200,
                warmup: 20,
                in_flight: 8,
                duration: Duration::from_millis(200),
                handshakes: 3,
                split,
                rounds: 3,
            }),
        )
        .await
        .expect("bench finishes")
        .expect("bench runs");
        assert!(report.baseline_rtt_us_p50 > 0.0);
        assert!(report.plain_rtt_us_p50 > 0.0);
        assert!(report.plain_pipelined_calls_per_s > 0.0);
        assert!(report.request_bytes > 16 && report.response_bytes > 16);
        let json = report.to_json();
        assert_eq!(json["iterations"], 200);
        assert_eq!(json["rounds"], 3);
        assert!(report.to_string().contains("PLAIN echo"));
        assert!(report.vts_rtt_us_p50 > 0.0);
        assert!(report.vts_pipelined_calls_per_s > 0.0);
        assert!(report.vts_handshakes_per_s > 0.0);
        assert!(json["vts_rtt_us_p99"].as_f64().is_some());
        assert!(json["tls_handshakes_per_s"]
            .as_f64()
            .is_some_and(|t| t > 0.0));
        assert!(report.to_string().contains("VTS echo"));
        report
    }
}
