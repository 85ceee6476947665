//! The two-process baseline: a raw tokio TCP ping-pong between
//! `versile bench --baseline-server ADDR` and `versile bench
//! --baseline-connect ADDR`, moving per round trip exactly the bytes of an
//! echo call and its result for the same `--payload` ([`super::wire_sizes`]),
//! so it can stand beside `versile serve` + `versile bench VRI` under the
//! same CPU placement.
//!
//! Wire format: the client opens with 8 bytes, the request and response
//! sizes (two big-endian u32); then each round trip is `request` bytes from
//! the client answered by `response` bytes from the server, `TCP_NODELAY`
//! on both ends. The server serves until its caller drops the future.
//!
//! The server is a benchmark tool for loopback or a trusted network, but
//! still bounds what a client can make it hold: each size at most
//! [`MAX_MESSAGE`], at most [`MAX_CONNECTIONS`] connections at once.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::remote::PhaseReport;
use super::{
    allowed_cpus, cpu_time_of, per_call_us, process_cpu_time, wire_sizes, CallLog, Recorder,
};

/// Largest request or response the baseline server accepts: 16 MiB, room
/// for the largest payload the README measures (1 MiB) with margin, while
/// a stray client can make it allocate at most 32 MiB per connection.
pub const MAX_MESSAGE: usize = 16 << 20;
/// Connections the baseline server serves at once (more wait in the
/// accept queue): a benchmark uses one, and 16 × 32 MiB bounds memory.
pub const MAX_CONNECTIONS: usize = 16;

/// Serve ping-pong connections on `listener` until the future is dropped.
pub async fn ping_pong_server(listener: TcpListener) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            // A connection's failure ends only that connection.
            let _ = serve_one(stream).await;
            drop(permit);
        });
    }
}

async fn serve_one(mut s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut header = [0u8; 8];
    s.read_exact(&mut header).await?;
    let (request, response) = parse_header(header)?;
    let mut req = vec![0u8; request];
    let resp = vec![0xa5u8; response];
    loop {
        match s.read_exact(&mut req).await {
            Ok(_) => s.write_all(&resp).await?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The two sizes of the opening header, each checked against [`MAX_MESSAGE`].
fn parse_header(h: [u8; 8]) -> io::Result<(usize, usize)> {
    let size = |b: [u8; 4]| {
        let n = u32::from_be_bytes(b) as usize;
        if n == 0 || n > MAX_MESSAGE {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("message size {n} outside 1..={MAX_MESSAGE}"),
            ))
        } else {
            Ok(n)
        }
    };
    Ok((
        size([h[0], h[1], h[2], h[3]])?,
        size([h[4], h[5], h[6], h[7]])?,
    ))
}

/// What the baseline client measures.
#[derive(Debug, Clone)]
pub struct PingPongOptions {
    /// Echo payload whose call and result sizes the messages take.
    pub payload: usize,
    /// Timed round trips.
    pub iterations: usize,
    /// Untimed round trips first.
    pub warmup: usize,
    /// Limit for connecting and for each round trip.
    pub timeout: Duration,
    /// Server process to read CPU time from (`/proc/PID`).
    pub server_pid: Option<u32>,
    /// Keep every round trip's start and latency
    /// ([`PhaseReport::call_log`]).
    pub log_calls: bool,
}

/// The two-process baseline's result.
#[derive(Debug, Clone)]
pub struct PingPongReport {
    /// The server's address.
    pub addr: String,
    /// The echo payload the message sizes were taken from.
    pub payload_bytes: usize,
    /// Bytes sent per round trip (an echo call message's size).
    pub request_bytes: usize,
    /// Bytes answered per round trip (an echo result message's size).
    pub response_bytes: usize,
    /// CPUs this process may run on.
    pub cpus: String,
    /// The server process whose CPU time was read, if given.
    pub server_pid: Option<u32>,
    /// The sequential round trips.
    pub sequential: PhaseReport,
}

impl PingPongReport {
    /// The report as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "baseline": "tcp ping-pong",
            "addr": self.addr,
            "payload_bytes": self.payload_bytes,
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "cpus": self.cpus,
            "server_pid": self.server_pid,
            "calls": self.sequential.calls,
            "errors": self.sequential.errors,
            "sequential": self.sequential.to_json(),
        })
    }
}

impl std::fmt::Display for PingPongReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "versile bench --baseline-connect {}: TCP ping-pong, {} B out / {} B back \
             (echo of {} B), CPUs {}",
            self.addr, self.request_bytes, self.response_bytes, self.payload_bytes, self.cpus
        )?;
        PhaseReport::write_header(f)?;
        self.sequential.write_row(f, "sequential")
    }
}

/// Sequential round trips against a `--baseline-server` at `addr`.
pub async fn ping_pong_client(addr: &str, options: PingPongOptions) -> io::Result<PingPongReport> {
    let payload = Bytes::from(vec![0u8; options.payload]);
    let (request, response) =
        wire_sizes(&payload, (options.warmup + options.iterations / 2) as i64);
    let timeout = |what: &str| io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"));
    let mut c = tokio::time::timeout(options.timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| timeout("connect"))??;
    c.set_nodelay(true)?;
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&(request as u32).to_be_bytes());
    header[4..].copy_from_slice(&(response as u32).to_be_bytes());
    c.write_all(&header).await?;

    let req = vec![0x5au8; request];
    let mut resp = vec![0u8; response];
    let mut latency = Recorder::new();
    let mut log = options
        .log_calls
        .then(|| CallLog::with_capacity(options.iterations));
    let mut start = (Instant::now(), process_cpu_time(), server_cpu(&options));
    for i in 0..options.warmup + options.iterations {
        if i == options.warmup {
            latency = Recorder::new();
            start = (Instant::now(), process_cpu_time(), server_cpu(&options));
        }
        let t = Instant::now();
        let round_trip = async {
            c.write_all(&req).await?;
            c.read_exact(&mut resp).await
        };
        tokio::time::timeout(options.timeout, round_trip)
            .await
            .map_err(|_| timeout("round trip"))??;
        let took = t.elapsed();
        latency.record(took);
        if let Some(log) = log.as_mut().filter(|_| i >= options.warmup) {
            log.push(t, took);
        }
    }
    let wall = start.0.elapsed();
    let calls = options.iterations as u64;
    let used = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
    let client = used(start.1, process_cpu_time()).unwrap_or_default();
    let server = used(start.2, server_cpu(&options));
    Ok(PingPongReport {
        addr: addr.to_owned(),
        payload_bytes: options.payload,
        request_bytes: request,
        response_bytes: response,
        cpus: allowed_cpus().unwrap_or_else(|| "?".to_owned()),
        server_pid: options.server_pid,
        sequential: PhaseReport {
            connections: 1,
            in_flight: 1,
            calls,
            errors: 0,
            first_error: None,
            seconds: wall.as_secs_f64(),
            calls_per_s: calls as f64 / wall.as_secs_f64(),
            latency: latency.summary(),
            client_cpu_us_per_call: per_call_us(client, calls),
            server_cpu_us_per_call: server.map(|s| per_call_us(s, calls)),
            call_log: log,
        },
    })
}

fn server_cpu(options: &PingPongOptions) -> Option<Duration> {
    options.server_pid.and_then(cpu_time_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes_are_bounded() {
        let h = |a: u32, b: u32| {
            let mut h = [0u8; 8];
            h[..4].copy_from_slice(&a.to_be_bytes());
            h[4..].copy_from_slice(&b.to_be_bytes());
            h
        };
        assert_eq!(parse_header(h(40, 30)).unwrap(), (40, 30));
        assert!(parse_header(h(MAX_MESSAGE as u32, 1)).is_ok());
        assert!(parse_header(h(MAX_MESSAGE as u32 + 1, 1)).is_err());
        assert!(parse_header(h(1, u32::MAX)).is_err());
        assert!(parse_header(h(0, 1)).is_err());
    }

    #[tokio::test]
    async fn ping_pong_across_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(ping_pong_server(listener));
        let report = ping_pong_client(
            &addr,
            PingPongOptions {
                payload: 64,
                iterations: 50,
                warmup: 5,
                timeout: Duration::from_secs(10),
                server_pid: Some(std::process::id()),
                log_calls: true,
            },
        )
        .await
        .unwrap();
        server.abort();
        assert_eq!(report.sequential.calls, 50);
        let log = report.sequential.call_log.as_ref().expect("asked for");
        assert_eq!(log.len(), 50, "the timed calls only, not the warm-up");
        assert!(report.request_bytes > 64 && report.response_bytes > 64);
        assert!(report.sequential.latency.p50_us > 0.0);
        assert!(report.sequential.server_cpu_us_per_call.is_some());
        let json = report.to_json();
        assert_eq!(json["calls"], 50);
        assert!(json["sequential"]["latency_us"]["p99_9"].as_f64().is_some());
    }

    #[tokio::test]
    async fn oversized_header_closes_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(ping_pong_server(listener));
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut h = [0u8; 8];
        h[..4].copy_from_slice(&(MAX_MESSAGE as u32 + 1).to_be_bytes());
        h[4..].copy_from_slice(&1u32.to_be_bytes());
        c.write_all(&h).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "the server closes instead of answering");
        server.abort();
    }
}
