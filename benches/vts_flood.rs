//! `cargo bench --bench vts_flood [-- --json] [duration=SECS] [flooders=N]
//! [max_conn_per_ip=N] [rate_per_ip=N] [no_rsa=1]` (`VERSILE_BIN=path`
//! runs another build of the server, e.g. a baseline commit's):
//! good VTS handshakes per second against a `versile serve` child process
//! (VTS only, its own 2048-bit key), first unloaded, then while flooders
//! send bogus key exchanges as fast as they can (issue #7 point 2: target
//! loaded ≥ 50 % of unloaded). Also reports RSA private operations per
//! second on this CPU, single-threaded, for scale.
//!
//! A good handshake: TCP connect from 127.0.0.1, the VOP line, the VTS
//! handshake as an anonymous client, and the server's first record (its VEC
//! hello: proof the server did its private-key operation); then close.
//! One at a time, sequentially.
//!
//! The flood is the cheapest input that costs the server a private-key
//! operation: in one write, the VOP line, M1, a valid M3 and an M5 whose
//! encrypted header is one RSA block of garbage below the modulus (M1…M5
//! may arrive together, `docs/protocol/vts.md` §3.1). No crypto on the attacker's side,
//! the server does one 2048-bit private operation and closes. Each flooder
//! connects from 127.0.0.2 (another address, as a remote attacker has),
//! writes, waits for the close, and starts over. The flooders run in a
//! child process of this program (its own scheduler, as a remote attacker
//! would be); they still share this machine's CPUs with the server and the
//! good client, which a remote attacker would not.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use versile::vec::{encode, EncodeConfig, Entity};
use versile::vop::{client_hello, Transport, TransportSet};
use versile::vts::rsa_block::{asym_decrypt, asym_encrypt};
use versile::vts::{RsaKeyPair, VtsConfig, VtsConnection, VtsStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    duration: Duration,
    flooders: usize,
    json: bool,
    /// Child mode: flood this address for `duration`, print the count.
    flood_child: Option<SocketAddr>,
    /// `versile serve --max-connections-per-ip` (none: the default).
    max_conn_per_ip: Option<u64>,
    /// `versile serve --rate-per-ip` (none: the default).
    rate_per_ip: Option<u64>,
    /// Flood without the M5 (no RSA work asked): the cost of the
    /// connections alone, for comparison.
    no_rsa: bool,
}

fn options() -> Result<Options, BoxError> {
    let mut o = Options {
        duration: Duration::from_secs(5),
        flooders: 32,
        json: false,
        flood_child: None,
        max_conn_per_ip: None,
        rate_per_ip: None,
        no_rsa: false,
    };
    for arg in std::env::args().skip(1) {
        if arg == "--json" {
            o.json = true;
            continue;
        }
        let Some((name, value)) = arg.split_once('=') else {
            continue; // cargo passes --bench
        };
        let n: u64 = value.parse()?;
        let ms = |n: u64| Duration::from_millis(n);
        if name == "duration_ms" {
            o.duration = ms(n);
            continue;
        }
        match name {
            "duration" => o.duration = Duration::from_secs(n),
            "flooders" => o.flooders = n as usize,
            "max_conn_per_ip" => o.max_conn_per_ip = Some(n),
            "rate_per_ip" => o.rate_per_ip = Some(n),
            "no_rsa" => o.no_rsa = n != 0,
            "flood_child" => o.flood_child = Some(SocketAddr::from(([127, 0, 0, 1], n as u16))),
            _ => return Err(format!("unknown option {name}").into()),
        }
    }
    Ok(o)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `versile serve` on a free port, VTS only; returns it and its address.
fn start_server(o: &Options) -> Result<(Child, SocketAddr), BoxError> {
    // VERSILE_BIN: another build of the server (e.g. a baseline commit).
    let bin = std::env::var("VERSILE_BIN").unwrap_or(env!("CARGO_BIN_EXE_versile").into());
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    if let Some(n) = o.max_conn_per_ip {
        cmd.args(["--max-connections-per-ip", &n.to_string()]);
    }
    if let Some(n) = o.rate_per_ip {
        cmd.args(["--rate-per-ip", &n.to_string()]);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on vop://")
        .and_then(|s| s.strip_suffix('/'))
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .parse()?;
    Ok((child, addr))
}

/// Read the VOP answer line byte by byte (the server sends nothing after
/// it before our M1).
async fn read_line(tcp: &mut TcpStream) -> Result<(), BoxError> {
    let mut b = [0u8; 1];
    for _ in 0..64 {
        if tcp.read(&mut b).await? == 0 {
            return Err("EOF in VOP answer".into());
        }
        if b[0] == b'\n' {
            return Ok(());
        }
    }
    Err("VOP answer too long".into())
}

async fn good_handshake(addr: SocketAddr, cfg: Arc<VtsConfig>) -> Result<(), BoxError> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(&client_hello(TransportSet::empty().with(Transport::Vts))?)
        .await?;
    read_line(&mut tcp).await?;
    let mut vts = VtsStream::connect(tcp, cfg, None).await?;
    let mut b = [0u8; 1];
    if vts.read(&mut b).await? == 0 {
        return Err("no record from the server".into());
    }
    Ok(())
}

/// Sequential good handshakes for `d`: (completed, failed, per second).
async fn measure(addr: SocketAddr, d: Duration) -> (u64, u64, f64) {
    let cfg = Arc::new(VtsConfig::default());
    let (mut ok, mut failed) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < d {
        match tokio::time::timeout(Duration::from_secs(10), good_handshake(addr, cfg.clone())).await
        {
            Ok(Ok(())) => ok += 1,
            _ => failed += 1,
        }
    }
    (ok, failed, ok as f64 / start.elapsed().as_secs_f64())
}

fn enc(e: &Entity) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(e, &EncodeConfig::PLAIN, &mut out).expect("encodable");
    out.to_vec()
}

/// VOP line, M1, a real M3 and a bogus M5 for a `k`-byte server key.
fn flood_blob(k: usize, with_m5: bool) -> Result<Vec<u8>, BoxError> {
    let mut blob = client_hello(TransportSet::empty().with(Transport::Vts))?;
    let mut c = VtsConnection::client(Arc::new(VtsConfig::default()), None);
    blob.extend_from_slice(c.pending_output()); // M1
    let n = c.pending_output().len();
    c.consume_output(n);
    c.receive(&mut BytesMut::from(&b"VTS_DRAFT-0.8\n"[..]))?;
    blob.extend_from_slice(c.pending_output()); // M3
    if !with_m5 {
        return Ok(blob);
    }
    // One block below any modulus of k bytes: a full private operation.
    let mut header = vec![0xa5u8; k];
    header[0] = 0;
    let m5 = Entity::Tuple(vec![
        Entity::Bytes(header.into()),
        Entity::Bytes(vec![0u8; 32].into()),
    ]);
    blob.extend_from_slice(&enc(&m5));
    Ok(blob)
}

async fn flooder(
    addr: SocketAddr,
    blob: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    read_until: usize,
) {
    let mut sink = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let attempt = async {
            let sock = TcpSocket::new_v4()?;
            sock.bind("127.0.0.2:0".parse()?)?;
            let mut tcp = sock.connect(addr).await?;
            tcp.write_all(&blob).await?;
            sent.fetch_add(1, Ordering::Relaxed);
            // Until the server closes, or (no M5) until its M4 is in.
            let mut got = 0;
            while got < read_until {
                match tcp.read(&mut sink).await? {
                    0 => break,
                    n => got += n,
                }
            }
            Ok::<_, BoxError>(())
        };
        if tokio::time::timeout(Duration::from_secs(5), attempt)
            .await
            .is_err()
        {
            continue;
        }
    }
}

/// Single-thread RSA private operations per second (2048-bit, one block).
fn rsa_ops_per_sec(key: &RsaKeyPair) -> Result<f64, BoxError> {
    struct Rng;
    impl versile::vts::random::RandomSource for Rng {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), versile::vts::VtsError> {
            buf.fill(0x42);
            Ok(())
        }
    }
    let h = versile::vts::hash::HashAlg::Sha1;
    let ct = asym_encrypt(key.public(), h, &[7u8; 92], &mut Rng)?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        asym_decrypt(key, h, &ct)?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Child mode: `flooders` flooders against `addr` for `duration`; prints
/// the number of bogus key exchanges sent.
fn flood_child(addr: SocketAddr, o: &Options) -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sent = rt.block_on(async {
        let blob = Arc::new(flood_blob(256, !o.no_rsa)?);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let flood: Vec<_> = (0..o.flooders)
            .map(|_| {
                let until = if o.no_rsa { 300 } else { usize::MAX };
                tokio::spawn(flooder(
                    addr,
                    blob.clone(),
                    stop.clone(),
                    sent.clone(),
                    until,
                ))
            })
            .collect();
        tokio::time::sleep(o.duration).await;
        stop.store(true, Ordering::Relaxed);
        let total = sent.load(Ordering::Relaxed);
        for f in flood {
            f.abort();
        }
        Ok::<_, BoxError>(total)
    })?;
    println!("{sent}");
    Ok(())
}

/// Start the flood child for `d`.
fn start_flood(
    addr: SocketAddr,
    flooders: usize,
    no_rsa: bool,
    d: Duration,
) -> Result<Child, BoxError> {
    Ok(Command::new(std::env::current_exe()?)
        .arg(format!("flood_child={}", addr.port()))
        .arg(format!("flooders={flooders}"))
        .arg(format!("duration_ms={}", d.as_millis()))
        .arg(format!("no_rsa={}", u8::from(no_rsa)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?)
}

fn main() -> Result<(), BoxError> {
    let o = options()?;
    if let Some(addr) = o.flood_child {
        return flood_child(addr, &o);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let key = RsaKeyPair::generate_default()?;
    let rsa_ops = rsa_ops_per_sec(&key)?;
    let (mut child, addr) = start_server(&o)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        // Warm up (connection setup paths, server allocations).
        measure(addr, Duration::from_millis(500)).await;
        let unloaded = measure(addr, o.duration).await;
        // The flood runs 1 s before and 0.5 s after the measurement.
        let flood_time = o.duration + Duration::from_millis(1500);
        let flood = start_flood(addr, o.flooders, o.no_rsa, flood_time)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let loaded = measure(addr, o.duration).await;
        let out = tokio::task::spawn_blocking(move || {
            let out = flood.wait_with_output();
            out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
        .await??;
        let sent: u64 = out
            .parse()
            .map_err(|_| format!("flood child said {out:?}"))?;
        let flood_rate = sent as f64 / flood_time.as_secs_f64();
        Ok::<_, BoxError>((unloaded, loaded, flood_rate))
    });
    let _ = child.kill();
    let _ = child.wait();
    let (unloaded, loaded, flood_rate) = result?;
    let ratio = loaded.2 / unloaded.2.max(f64::MIN_POSITIVE);
    if o.json {
        println!(
            "{{\"cpu_model\":{:?},\"cpus\":{cpus},\"max_conn_per_ip\":{},\"rate_per_ip\":{},\"flood_asks_rsa\":{},\"rsa2048_private_ops_per_sec\":{rsa_ops:.0},\
             \"unloaded_handshakes_per_sec\":{:.1},\"unloaded_failed\":{},\
             \"loaded_handshakes_per_sec\":{:.1},\"loaded_failed\":{},\"ratio\":{ratio:.3},\
             \"flooders\":{},\"flood_attempts_per_sec\":{flood_rate:.0},\"duration_s\":{}}}",
            cpu_model(),
            o.max_conn_per_ip.map_or("null".into(), |n| n.to_string()),
            o.rate_per_ip.map_or("null".into(), |n| n.to_string()),
            !o.no_rsa,
            unloaded.2,
            unloaded.1,
            loaded.2,
            loaded.1,
            o.flooders,
            o.duration.as_secs()
        );
    } else {
        println!("CPU: {} ({cpus} CPUs available)", cpu_model());
        println!("RSA-2048 private ops/s (one thread):  {rsa_ops:.0}");
        println!(
            "good VTS handshakes/s, unloaded:      {:.1} ({} failed)",
            unloaded.2, unloaded.1
        );
        println!(
            "good VTS handshakes/s, under flood:   {:.1} ({} failed)",
            loaded.2, loaded.1
        );
        println!(
            "flood: {} flooders from 127.0.0.2, {flood_rate:.0} bogus handshakes/s sent \
             ({}; server --max-connections-per-ip {:?} --rate-per-ip {:?})",
            o.flooders,
            if o.no_rsa {
                "M1+M3 only, no RSA asked"
            } else {
                "M1+M3+bogus M5"
            },
            o.max_conn_per_ip,
            o.rate_per_ip
        );
        println!("loaded / unloaded:                    {ratio:.2} (target >= 0.50)");
    }
    Ok(())
}
