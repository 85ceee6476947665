//! `versile bench VRI`: echo calls against a running service (ours or
//! Versile Python's), over whatever transport the client configuration and
//! the server agree on (PLAIN, VTS or TLS).
//!
//! The VRI names the object and the method as `versile call` reads it
//! (`docs/protocol/vop-service.md` §4.4): `vop://HOST:PORT/a/b/` resolves the path with
//! the gateway's `urlget` and calls [`RemoteOptions::method`] on the result;
//! without the trailing slash the last part is the method
//! (`vop://HOST:PORT/echo` calls the gateway's `echo`). Every call is
//! `METHOD(payload)` with one bytes argument of `payload` bytes, and the
//! result must be the same bytes; anything else counts as an error.
//!
//! Phases, each on fresh links that are resolved before the clocks start:
//! 1. sequential: one link, `warmup` untimed calls, then `iterations`
//!    timed round trips (skipped when `iterations` is 0);
//! 2. concurrent: `connections` links, each keeping `in_flight` calls
//!    outstanding for `duration` (skipped when `duration` is zero); calls
//!    still outstanding at the deadline are awaited and counted.
//!
//! Latencies go into an HDR histogram ([`super::Recorder`]). CPU per call
//! is this process's CPU time over the phase (all threads) divided by the
//! calls, and the same for the server when its pid is given (read from
//! `/proc/PID`, so the server must run on this machine).

use crate::runtime::LinkShutdown;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use super::{cpu_time_of, per_call_us, process_cpu_time, round2, CallLog, Latency, Recorder};
use crate::client::{Client, ClientError};
use crate::object::{CallError, RemoteObject};
use crate::runtime::LinkHandle;
use crate::value::Value;
use crate::vec::Entity;
use crate::vri::Vri;

/// What to measure against a running service.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Bytes in the echo argument.
    pub payload: usize,
    /// Timed sequential round trips (0: no sequential phase).
    pub iterations: usize,
    /// Untimed round trips before the sequential phase.
    pub warmup: usize,
    /// Links of the concurrent phase.
    pub connections: usize,
    /// Calls kept outstanding on each link in the concurrent phase.
    pub in_flight: usize,
    /// Length of the concurrent phase (zero: no concurrent phase).
    pub duration: Duration,
    /// Method called when the VRI ends in `/` (it names an object).
    pub method: String,
    /// Limit for connecting and resolving a link, and for each call: a
    /// call over it counts as an error and ends its link's work.
    pub timeout: Duration,
    /// Server process to read CPU time from (`/proc/PID`).
    pub server_pid: Option<u32>,
    /// Keep every sequential call's start and latency
    /// ([`PhaseReport::call_log`]).
    pub log_calls: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            payload: 32,
            iterations: 20_000,
            warmup: 2_000,
            connections: 1,
            in_flight: 64,
            duration: Duration::from_secs(3),
            method: "echo".to_owned(),
            timeout: Duration::from_secs(30),
            server_pid: None,
            log_calls: false,
        }
    }
}

/// Why a remote benchmark could not run at all (call failures during a
/// phase are counted in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum RemoteBenchError {
    /// Connecting or resolving the VRI failed.
    #[error(transparent)]
    Resolve(#[from] ClientError),
    /// The VRI's path resolved to a value that has no methods.
    #[error("the VRI resolved to a value, not an object")]
    NotAnObject,
    /// The VRI carries query arguments: the benchmark sends only the payload.
    #[error("the VRI has query arguments; the benchmark calls METHOD(payload) only")]
    QueryArguments,
    /// Connecting or resolving took longer than the timeout.
    #[error("no link within {0:?}")]
    Timeout(Duration),
    /// The benchmark task panicked or was cancelled.
    #[error("benchmark task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What one phase measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseReport {
    /// Links the calls were spread over.
    pub connections: usize,
    /// Calls kept outstanding per link (1: sequential).
    pub in_flight: usize,
    /// Calls answered with the payload.
    pub calls: u64,
    /// Calls that failed, timed out or returned something else.
    pub errors: u64,
    /// The first error, for the operator.
    pub first_error: Option<String>,
    /// Wall time of the timed part.
    pub seconds: f64,
    /// Successful calls per second of wall time.
    pub calls_per_s: f64,
    /// Latency of the successful calls.
    pub latency: Latency,
    /// This process's CPU time per call.
    pub client_cpu_us_per_call: f64,
    /// The server's CPU time per call (with a server pid).
    pub server_cpu_us_per_call: Option<f64>,
    /// Every timed call, in order (sequential phases, when asked for).
    pub call_log: Option<CallLog>,
}

impl PhaseReport {
    /// The phase as one JSON object (rates rounded, latencies in µs).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "connections": self.connections,
            "in_flight": self.in_flight,
            "calls": self.calls,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round2(self.seconds),
            "calls_per_s": self.calls_per_s.round(),
            "latency_us": self.latency.to_json(),
            "client_cpu_us_per_call": round2(self.client_cpu_us_per_call),
            "server_cpu_us_per_call": self.server_cpu_us_per_call.map(round2),
        })
    }

    /// One table row: name, percentiles, calls/s, CPU, errors.
    pub(super) fn write_row(
        &self,
        f: &mut std::fmt::Formatter<'_>,
        name: &str,
    ) -> std::fmt::Result {
        let l = &self.latency;
        let server = self
            .server_cpu_us_per_call
            .map_or("-".to_owned(), |s| format!("{s:.1}"));
        writeln!(
            f,
            "{name:<22} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>10.0} {:>8.1} {server:>8} {:>7}",
            l.p50_us,
            l.p90_us,
            l.p99_us,
            l.p999_us,
            l.max_us,
            self.calls_per_s,
            self.client_cpu_us_per_call,
            self.errors
        )?;
        if let Some(e) = &self.first_error {
            writeln!(f, "  first error: {e}")?;
        }
        Ok(())
    }

    /// The table header matching [`write_row`](Self::write_row).
    pub(super) fn write_header(f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>8} {:>8} {:>7}",
            "µs", "p50", "p90", "p99", "p99.9", "max", "calls/s", "CPU/call", "server", "errors"
        )
    }
}

/// The result of [`run_remote`]; `Display` prints a table,
/// [`to_json`](Self::to_json) one object.
#[derive(Debug, Clone, Default)]
pub struct RemoteReport {
    /// The VRI the links were resolved from.
    pub vri: String,
    /// The method called with the payload.
    pub method: String,
    /// Transport of the links (`VTS`, `TLS` or `PLAIN`).
    pub transport: String,
    /// Bytes of the payload argument of each call.
    pub payload_bytes: usize,
    /// CPUs this process may run on.
    pub cpus: String,
    /// Runtime worker threads of this process.
    pub workers: usize,
    /// The server process whose CPU time was read, if given.
    pub server_pid: Option<u32>,
    /// One link, one call at a time (`None` if not run).
    pub sequential: Option<PhaseReport>,
    /// Several links with calls in flight (`None` if not run).
    pub concurrent: Option<PhaseReport>,
}

impl RemoteReport {
    /// Calls answered, over all phases.
    pub fn calls(&self) -> u64 {
        self.phases().map(|p| p.calls).sum()
    }

    /// Errors, over all phases.
    pub fn errors(&self) -> u64 {
        self.phases().map(|p| p.errors).sum()
    }

    fn phases(&self) -> impl Iterator<Item = &PhaseReport> {
        self.sequential.iter().chain(self.concurrent.iter())
    }

    /// The report as one JSON object, phases nested.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "vri": self.vri,
            "method": self.method,
            "transport": self.transport,
            "payload_bytes": self.payload_bytes,
            "cpus": self.cpus,
            "workers": self.workers,
            "server_pid": self.server_pid,
            "calls": self.calls(),
            "errors": self.errors(),
            "sequential": self.sequential.as_ref().map(PhaseReport::to_json),
            "concurrent": self.concurrent.as_ref().map(PhaseReport::to_json),
        })
    }
}

impl std::fmt::Display for RemoteReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "versile bench {}: {}(<{} bytes>) over {}, CPUs {}, {} worker(s){}",
            self.vri,
            self.method,
            self.payload_bytes,
            self.transport,
            self.cpus,
            self.workers,
            self.server_pid
                .map_or(String::new(), |p| format!(", server pid {p}"))
        )?;
        PhaseReport::write_header(f)?;
        if let Some(p) = &self.sequential {
            p.write_row(f, "sequential")?;
        }
        if let Some(p) = &self.concurrent {
            p.write_row(
                f,
                &format!("{} conn × {} in flight", p.connections, p.in_flight),
            )?;
        }
        Ok(())
    }
}

/// Run the phases of `options` against `vri` with `client`'s transports.
///
/// Runs in a task spawned on the current runtime (see [`super::run`] for
/// why); each link is shut down before the next phase.
pub async fn run_remote(
    client: Client,
    vri: Vri,
    options: RemoteOptions,
) -> Result<RemoteReport, RemoteBenchError> {
    tokio::spawn(remote_phases(client, vri, options)).await?
}

/// The object and method a VRI names, with the link to shut down after.
struct Target {
    link: LinkHandle,
    object: RemoteObject,
}

async fn remote_phases(
    client: Client,
    vri: Vri,
    options: RemoteOptions,
) -> Result<RemoteReport, RemoteBenchError> {
    let (object_vri, method) = split_method(&vri, &options.method)?;
    let payload = Bytes::from(
        (0..options.payload)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let call = EchoCall {
        method,
        payload,
        timeout: options.timeout,
    };
    let handle = tokio::runtime::Handle::current();
    let mut report = RemoteReport {
        vri: vri.to_string(),
        method: call.method.clone(),
        payload_bytes: options.payload,
        cpus: super::allowed_cpus().unwrap_or_else(|| "?".to_owned()),
        workers: handle.metrics().num_workers(),
        server_pid: options.server_pid,
        ..RemoteReport::default()
    };

    if options.iterations > 0 {
        let target = connect(&client, &object_vri, options.timeout).await?;
        report.transport = transport_name(&target.link);
        let phase = sequential(&target.object, &call, &options).await;
        close(target.link).await;
        report.sequential = Some(phase);
    }
    if !options.duration.is_zero() {
        let connections = options.connections.max(1);
        let targets = futures::future::join_all(
            (0..connections).map(|_| connect(&client, &object_vri, options.timeout)),
        )
        .await;
        let mut links = Vec::with_capacity(connections);
        let mut objects = Vec::with_capacity(connections);
        let mut failed = None;
        for t in targets {
            match t {
                Ok(t) => {
                    links.push(t.link);
                    objects.push(t.object);
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(link) = links.first() {
            report.transport = transport_name(link);
        }
        let phase = match failed {
            Some(e) => Err(e),
            None => Ok(concurrent(objects, &call, &options).await),
        };
        futures::future::join_all(links.into_iter().map(close)).await;
        report.concurrent = Some(phase?);
    }
    Ok(report)
}

/// The VRI without its method part, and the method to call.
fn split_method(vri: &Vri, default: &str) -> Result<(Vri, String), RemoteBenchError> {
    let mut object_vri = vri.clone();
    let method = match object_vri.query.take() {
        None => default.to_owned(),
        Some(q) if q.args.is_empty() && q.kwargs.is_empty() => q.name,
        Some(_) => return Err(RemoteBenchError::QueryArguments),
    };
    Ok((object_vri, method))
}

async fn connect(client: &Client, vri: &Vri, limit: Duration) -> Result<Target, RemoteBenchError> {
    let resolved = tokio::time::timeout(limit, client.resolve(vri))
        .await
        .map_err(|_| RemoteBenchError::Timeout(limit))??;
    match resolved.value.as_remote() {
        Some(object) => Ok(Target {
            object: object.clone(),
            link: resolved.link,
        }),
        None => {
            close(resolved.link).await;
            Err(RemoteBenchError::NotAnObject)
        }
    }
}

fn transport_name(link: &LinkHandle) -> String {
    link.context()
        .protocol()
        .map_or("PLAIN".to_owned(), |t| t.to_string())
}

/// Shut a link down gracefully, by force after 2 s.
async fn close(link: LinkHandle) {
    link.shutdown(LinkShutdown::Graceful);
    if tokio::time::timeout(Duration::from_secs(2), link.closed())
        .await
        .is_err()
    {
        link.shutdown(LinkShutdown::Forced);
    }
}

/// `method(payload)`, expecting the payload back.
struct EchoCall {
    method: String,
    payload: Bytes,
    timeout: Duration,
}

/// How one call ended.
enum Outcome {
    Echoed,
    /// The call failed or answered something else; the link goes on.
    Failed(String),
    /// The link failed or the call timed out; stop using this link.
    Lost(String),
}

impl EchoCall {
    /// The call, made at `start`: its outcome and how long its answer
    /// took, timed when the answer arrives, before it is compared with the
    /// payload (the raw TCP baseline does not compare either).
    async fn once(&self, object: &RemoteObject, start: Instant) -> (Outcome, Duration) {
        let call = object.call(&self.method, (Value::Bytes(self.payload.clone()),));
        let answer = tokio::time::timeout(self.timeout, call).await;
        let took = start.elapsed();
        let outcome = match answer {
            Ok(Ok(Entity::Bytes(b))) if b == self.payload => Outcome::Echoed,
            Ok(Ok(other)) => Outcome::Failed(format!(
                "{} returned {}, not the payload",
                self.method,
                describe(&other)
            )),
            Ok(Err(e @ CallError::Link(_))) => Outcome::Lost(e.to_string()),
            Ok(Err(e)) => Outcome::Failed(e.to_string()),
            Err(_) => Outcome::Lost(format!("no answer within {:?}", self.timeout)),
        };
        (outcome, took)
    }
}

/// A short description of an unexpected result (never the whole value).
fn describe(v: &Value) -> String {
    match v {
        Entity::Bytes(b) => format!("{} other bytes", b.len()),
        other => {
            let s = format!("{other:?}");
            s.chars().take(80).collect()
        }
    }
}

/// Counts of one link's (or one phase's) calls.
#[derive(Default)]
struct Tally {
    latency: Recorder,
    calls: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    fn merge(&mut self, other: Tally) {
        self.latency.merge(&other.latency);
        self.calls += other.calls;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// CPU clocks of this process and of the server at a phase's start.
struct Clocks {
    wall: Instant,
    client: Option<Duration>,
    server: Option<Duration>,
    server_pid: Option<u32>,
}

impl Clocks {
    fn start(server_pid: Option<u32>) -> Clocks {
        Clocks {
            server: server_pid.and_then(cpu_time_of),
            client: process_cpu_time(),
            wall: Instant::now(),
            server_pid,
        }
    }

    fn finish(self, tally: Tally, connections: usize, in_flight: usize) -> PhaseReport {
        let wall = self.wall.elapsed();
        let calls = tally.calls;
        let used = |start: Option<Duration>, end: Option<Duration>| match (start, end) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let client = used(self.client, process_cpu_time()).unwrap_or_default();
        let server = used(self.server, self.server_pid.and_then(cpu_time_of));
        PhaseReport {
            connections,
            in_flight,
            calls,
            errors: tally.errors,
            first_error: tally.first_error,
            seconds: wall.as_secs_f64(),
            calls_per_s: calls as f64 / wall.as_secs_f64(),
            latency: tally.latency.summary(),
            client_cpu_us_per_call: per_call_us(client, calls),
            server_cpu_us_per_call: server.map(|s| per_call_us(s, calls)),
            call_log: None,
        }
    }
}

async fn sequential(
    object: &RemoteObject,
    call: &EchoCall,
    options: &RemoteOptions,
) -> PhaseReport {
    let mut tally = Tally::default();
    let mut log = options
        .log_calls
        .then(|| CallLog::with_capacity(options.iterations));
    let mut clocks = Clocks::start(options.server_pid);
    let total = options.warmup + options.iterations;
    for i in 0..total {
        if i == options.warmup {
            tally = Tally::default();
            clocks = Clocks::start(options.server_pid);
        }
        let t = Instant::now();
        match call.once(object, t).await {
            (Outcome::Echoed, took) => {
                tally.latency.record(took);
                tally.calls += 1;
                if let Some(log) = log.as_mut().filter(|_| i >= options.warmup) {
                    log.push(t, took);
                }
            }
            (Outcome::Failed(e), _) => tally.error(e),
            (Outcome::Lost(e), _) => {
                tally.error(e);
                break;
            }
        }
    }
    PhaseReport {
        call_log: log,
        ..clocks.finish(tally, 1, 1)
    }
}

async fn concurrent(
    objects: Vec<RemoteObject>,
    call: &EchoCall,
    options: &RemoteOptions,
) -> PhaseReport {
    let connections = objects.len();
    let in_flight = options.in_flight.max(1);
    let call = std::sync::Arc::new(EchoCall {
        method: call.method.clone(),
        payload: call.payload.clone(),
        timeout: call.timeout,
    });
    let clocks = Clocks::start(options.server_pid);
    let deadline = Instant::now() + options.duration;
    // One task per link, so a multi-thread runtime spreads the links.
    let tasks: Vec<_> = objects
        .into_iter()
        .map(|object| {
            let call = call.clone();
            tokio::spawn(async move { keep_in_flight(&object, &call, in_flight, deadline).await })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => tally.merge(t),
            Err(e) => tally.error(format!("link task failed: {e}")),
        }
    }
    clocks.finish(tally, connections, in_flight)
}

/// Keep `in_flight` calls outstanding on one link until `deadline`, then
/// wait for the rest; a lost link stops new calls.
async fn keep_in_flight(
    object: &RemoteObject,
    call: &EchoCall,
    in_flight: usize,
    deadline: Instant,
) -> Tally {
    let timed = |object: RemoteObject| async move { call.once(&object, Instant::now()).await };
    let mut tally = Tally::default();
    let mut running = FuturesUnordered::new();
    for _ in 0..in_flight {
        running.push(timed(object.clone()));
    }
    let mut lost = false;
    while let Some((outcome, took)) = running.next().await {
        match outcome {
            Outcome::Echoed => {
                tally.latency.record(took);
                tally.calls += 1;
            }
            Outcome::Failed(e) => tally.error(e),
            Outcome::Lost(e) => {
                tally.error(e);
                lost = true;
            }
        }
        if !lost && Instant::now() < deadline {
            running.push(timed(object.clone()));
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_from_vri() {
        let vri: Vri = "vop://127.0.0.1:1/text/echo/".parse().unwrap();
        let (v, m) = split_method(&vri, "echo").unwrap();
        assert_eq!(
            (v.path.clone(), m.as_str()),
            (vec!["text".into(), "echo".into()], "echo")
        );
        let vri: Vri = "vop://127.0.0.1:1/ping".parse().unwrap();
        let (v, m) = split_method(&vri, "echo").unwrap();
        assert!(v.path.is_empty() && v.query.is_none());
        assert_eq!(m, "ping");
        let vri: Vri = "vop://127.0.0.1:1/echo?x".parse().unwrap();
        assert!(matches!(
            split_method(&vri, "echo"),
            Err(RemoteBenchError::QueryArguments)
        ));
    }
}
