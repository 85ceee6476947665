//! `cargo bench --bench call_profile -- MODE [name=value...]`: a fixed,
//! small workload for counting what one call costs, made to run under
//! `valgrind --tool=callgrind`, `valgrind --tool=dhat` and `strace -c -f`
//! (`scripts/profile-call.sh` runs them and prints per-call figures; see
//! `docs/performance.md`).
//!
//! Modes (all over loopback, both ends in this process):
//! - `baseline`: raw tokio TCP ping-pong of the bytes an echo call and its
//!   result take on the wire (`versile::bench::wire_sizes`);
//! - `plain`: sequential `echo(payload)` calls over one PLAIN link;
//! - `pipelined`: `in_flight` echo calls outstanding on one PLAIN link;
//! - `setup`: the `plain` setup and teardown with no calls, so that a
//!   profile of `plain` minus this one leaves the calls alone.
//!
//! Options: `calls` (default 2000), `payload` (bytes, default 32),
//! `in_flight` (default 64), `flavor` (`current` (default) or `multi`, a
//! two-worker multi-thread runtime as `versile bench` uses), `check=1`
//! (time the workload and compare with the issue-8 targets; not for use
//! under valgrind).
//!
//! Without `check`, nothing is timed: instruction and syscall counts are
//! the measurement, so that the figures hold on a loaded machine.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use versile::{
    Client, ClientConfig, GatewayService, LinkShutdown, Server, StopLinks, Value, VopLayer,
};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Baseline,
    Plain,
    Pipelined,
    Setup,
}

struct Options {
    mode: Mode,
    calls: usize,
    payload: usize,
    in_flight: usize,
    multi: bool,
    check: bool,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        mode: Mode::Plain,
        calls: 2000,
        payload: 32,
        in_flight: 64,
        multi: false,
        check: false,
    };
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            None => {
                o.mode = match arg.as_str() {
                    "baseline" => Mode::Baseline,
                    "plain" => Mode::Plain,
                    "pipelined" => Mode::Pipelined,
                    "setup" => Mode::Setup,
                    // cargo bench passes `--bench`.
                    a if a.starts_with("--") => continue,
                    other => return Err(format!("unknown mode {other}")),
                }
            }
            Some(("flavor", v)) => o.multi = v == "multi",
            Some((name, v)) => {
                let n: usize = v.parse().map_err(|_| format!("bad number in {arg}"))?;
                match name {
                    "calls" => o.calls = n,
                    "payload" => o.payload = n,
                    "in_flight" => o.in_flight = n,
                    "check" => o.check = n != 0,
                    _ => return Err(format!("unknown option {name}")),
                }
            }
        }
    }
    Ok(o)
}

fn main() -> std::io::Result<()> {
    let o = parse().map_err(std::io::Error::other)?;
    let rt = if o.multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    // As `versile bench`: the workload runs in a task of the runtime.
    rt.block_on(async move { tokio::spawn(run(o)).await.map_err(std::io::Error::other)? })
}

async fn run(o: Options) -> std::io::Result<()> {
    let payload = Bytes::from((0..o.payload).map(|i| i as u8).collect::<Vec<u8>>());
    if o.check {
        return check(&o, &payload).await;
    }
    match o.mode {
        Mode::Baseline => {
            baseline(&payload, o.calls).await?;
        }
        Mode::Plain | Mode::Pipelined | Mode::Setup => {
            plain(&o, &payload).await?;
        }
    }
    Ok(())
}

/// The raw ping-pong; returns the wall time of the calls.
async fn baseline(payload: &Bytes, calls: usize) -> std::io::Result<Duration> {
    let (req_len, resp_len) = versile::bench::wire_sizes(payload, calls as i64);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut req = vec![0u8; req_len];
        let resp = vec![0xa5u8; resp_len];
        while s.read_exact(&mut req).await.is_ok() {
            s.write_all(&resp).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut c = TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let req = vec![0x5au8; req_len];
    let mut resp = vec![0u8; resp_len];
    let t = Instant::now();
    for _ in 0..calls {
        c.write_all(&req).await?;
        c.read_exact(&mut resp).await?;
    }
    let wall = t.elapsed();
    drop(c);
    server.await.map_err(std::io::Error::other)??;
    Ok(wall)
}

/// PLAIN echo calls (sequential or pipelined, as `o.mode` says); returns
/// the wall time of the calls.
async fn plain(o: &Options, payload: &Bytes) -> std::io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let svc = tower::ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(|| versile::demo::Echoer));
    let server = Server::serve(listener, svc)?;
    let client = Client::new(ClientConfig::insecure());
    let (link, gateway) = client
        .connect(&server.local_addr().to_string())
        .await
        .map_err(std::io::Error::other)?;
    let t = Instant::now();
    match o.mode {
        Mode::Plain => {
            for _ in 0..o.calls {
                echo(&gateway, payload).await?;
            }
        }
        Mode::Pipelined => {
            let mut running = FuturesUnordered::new();
            let mut started = 0;
            while started < o.in_flight.min(o.calls) {
                running.push(echo(&gateway, payload));
                started += 1;
            }
            while let Some(r) = running.next().await {
                r?;
                if started < o.calls {
                    running.push(echo(&gateway, payload));
                    started += 1;
                }
            }
        }
        Mode::Setup | Mode::Baseline => {}
    }
    let wall = t.elapsed();
    drop(gateway);
    link.shutdown(LinkShutdown::Forced);
    let _ = tokio::time::timeout(Duration::from_secs(2), link.closed()).await;
    server.stop(StopLinks::Force);
    let _ = server.shutdown(Duration::from_secs(2)).await;
    Ok(wall)
}

async fn echo(gateway: &versile::RemoteObject, payload: &Bytes) -> std::io::Result<()> {
    match gateway.call("echo", (Value::Bytes(payload.clone()),)).await {
        Ok(Value::Bytes(b)) if b.len() == payload.len() => Ok(()),
        Ok(other) => Err(std::io::Error::other(format!("echo returned {other:?}"))),
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Time the workload against the baseline and print the issue-8 targets
/// with PASS/MISS. Wall-clock and CPU time: only meaningful on a quiet
/// machine (the lead re-measures there).
async fn check(o: &Options, payload: &Bytes) -> std::io::Result<()> {
    let cpu = versile::bench::process_cpu_time;
    let per_call = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n.max(1) as f64;
    let measure = |mode: Mode| {
        let opts = Options {
            mode,
            calls: o.calls,
            payload: o.payload,
            in_flight: o.in_flight,
            multi: o.multi,
            check: false,
        };
        async move {
            let c0 = cpu().unwrap_or_default();
            let wall = match mode {
                Mode::Baseline => baseline(payload, opts.calls).await?,
                _ => plain(&opts, payload).await?,
            };
            let c1 = cpu().unwrap_or_default();
            Ok::<_, std::io::Error>((wall, c1.saturating_sub(c0)))
        }
    };
    let (bw, bc) = measure(Mode::Baseline).await?;
    let (_, sc) = measure(Mode::Setup).await?;
    let (pw, pc) = measure(Mode::Plain).await?;
    let (qw, qc) = measure(Mode::Pipelined).await?;
    let base_cpu = per_call(bc, o.calls);
    let plain_cpu = per_call(pc.saturating_sub(sc), o.calls);
    let pipe_cpu = per_call(qc.saturating_sub(sc), o.calls);
    let pipe_rate = o.calls as f64 / qw.as_secs_f64();
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "payload {} B, {} calls, runtime {}",
        o.payload,
        o.calls,
        if o.multi {
            "multi_thread(2)"
        } else {
            "current_thread"
        }
    );
    println!(
        "baseline: {:.2} µs wall/call, {base_cpu:.2} µs CPU/call",
        per_call(bw, o.calls)
    );
    println!(
        "sequential PLAIN: {:.2} µs wall/call, {plain_cpu:.2} µs CPU/call, {:.2}x baseline CPU (target ≤ 1.3x): {}",
        per_call(pw, o.calls),
        plain_cpu / base_cpu,
        verdict(plain_cpu <= 1.3 * base_cpu)
    );
    println!(
        "pipelined {}: {pipe_rate:.0} calls/s (target ≥ 250000: {}), {pipe_cpu:.2} µs CPU/call (target ≤ 4: {})",
        o.in_flight,
        verdict(pipe_rate >= 250_000.0),
        verdict(pipe_cpu <= 4.0)
    );
    Ok(())
}
