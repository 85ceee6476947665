//! `cargo bench --bench vts_rsa [-- rounds=N iters=N only=ring|rsa|vts]`:
//! CPU µs per RSA-2048 private-key operation on this CPU, for one fresh
//! 2048-bit key, three ways measured in interleaved rounds (a loaded
//! machine slows all three alike within a round):
//!
//! - `ring`: `ring`'s RSA-2048 PKCS#1 v1.5 SHA-256 signature, the private
//!   operation a rustls server does per TLS handshake;
//! - `rsa`: `rsa` 0.10's blinded `rsa_decrypt_and_check`, what VTS's
//!   `AsymDec` ran per block before `rsa_crt` (base, exponent and
//!   CRT-modulus blinding with a fresh inversion per operation);
//! - `vts`: `asym_decrypt` of a one-block M5 header with our
//!   [`RsaKeyPair`], the server's private work per VTS handshake now.
//!
//! Prints each round and the median per kind with the ratios to `ring`.
//!
//! Then full connections (`conns=N` per kind per round, 0 to skip): as
//! `versile bench` phases 5 and 6 (TCP connect, VOP, VTS or TLS with this
//! key, VOL handshake, forced close; client and server in this process on
//! one multi-thread runtime), alternating VTS and TLS in rounds, with
//! connections per second and the process CPU time per connection (both
//! ends): the CPU figure is what a loaded machine distorts least.
//!
//! `only=KIND` runs just that kind (`iters` times, no rounds): run it under
//! `valgrind --tool=callgrind` for instructions per operation (the key
//! generation and one warm-up are outside the loop; subtract a run with
//! `iters=0`).

use std::time::{Duration, Instant};

use rsa::hazmat::{rsa_decrypt_and_check, rsa_encrypt};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::BoxedUint;
use versile::vts::hash::HashAlg;
use versile::vts::random::OsRandom;
use versile::vts::rsa_block::{asym_decrypt, asym_encrypt};
use versile::vts::RsaKeyPair;
use versile::{Client, ClientConfig, GatewayService, LinkShutdown, Server, StopLinks, VopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const KINDS: [&str; 3] = ["ring", "rsa", "vts"];

/// The three operations on one key, ready to run.
struct Ops {
    key: RsaKeyPair,
    header: Vec<u8>,
    ring: ring::signature::RsaKeyPair,
    ring_rng: ring::rand::SystemRandom,
    rsa: rsa::PrivateKey,
    rsa_c: BoxedUint,
}

impl Ops {
    fn new() -> Result<Self, BoxError> {
        let key = RsaKeyPair::generate(2048)?;
        let der = key.to_pkcs8_der()?;
        let ring = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
        let rsa = rsa::PrivateKey::from_pkcs8_der(&der)?;
        // A VTS M5 header: two 32-byte randoms and a SHA-1 hash, encoded.
        let header = asym_encrypt(key.public(), HashAlg::Sha1, &[7u8; 92], &mut OsRandom)?;
        let mut m = vec![0x5au8; rsa.size()];
        m[0] = 0;
        let m = BoxedUint::from_be_slice(&m, rsa.n_bits_precision())?;
        let rsa_c = rsa_encrypt(&rsa, &m)?;
        Ok(Ops {
            key,
            header,
            ring,
            ring_rng: ring::rand::SystemRandom::new(),
            rsa,
            rsa_c,
        })
    }

    fn run(&self, kind: &str) -> Result<(), BoxError> {
        match kind {
            "ring" => {
                let mut sig = vec![0u8; self.ring.public().modulus_len()];
                self.ring
                    .sign(
                        &ring::signature::RSA_PKCS1_SHA256,
                        &self.ring_rng,
                        b"handshake transcript hash",
                        &mut sig,
                    )
                    .map_err(|e| e.to_string())?;
            }
            "rsa" => {
                rsa_decrypt_and_check(&self.rsa, Some(&mut getrandom::SysRng), &self.rsa_c)?;
            }
            "vts" => {
                asym_decrypt(&self.key, HashAlg::Sha1, &self.header)?;
            }
            _ => return Err(format!("unknown kind {kind}").into()),
        }
        Ok(())
    }

    /// CPU µs per operation over `iters` operations (process CPU time:
    /// this thread is the only busy one, and unlike wall time it does not
    /// count the time other processes hold the CPU).
    fn time(&self, kind: &str, iters: usize) -> Result<f64, BoxError> {
        let start = cpu_time();
        for _ in 0..iters {
            self.run(kind)?;
        }
        Ok((cpu_time() - start).as_secs_f64() * 1e6 / iters.max(1) as f64)
    }
}

fn cpu_time() -> Duration {
    versile::bench::process_cpu_time().unwrap_or_default()
}

fn arg(name: &str) -> Option<String> {
    std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), BoxError> {
    let rounds: usize = arg("rounds").map_or(Ok(7), |s| s.parse())?;
    let iters: usize = arg("iters").map_or(Ok(100), |s| s.parse())?;
    let ops = Ops::new()?;
    for kind in KINDS {
        ops.run(kind)?;
    }
    if let Some(kind) = arg("only") {
        for _ in 0..iters {
            ops.run(&kind)?;
        }
        return Ok(());
    }
    println!("RSA-2048 private operation, CPU µs ({iters} per kind per round)");
    println!("round   ring sign   rsa 0.10   vts (rsa_crt)");
    let mut all: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
    for round in 0..rounds {
        let mut row = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            let us = ops.time(kind, iters)?;
            all[i].push(us);
            row.push(us);
        }
        println!(
            "{round:>5} {:>11.0} {:>10.0} {:>15.0}",
            row[0], row[1], row[2]
        );
    }
    let med: Vec<f64> = all.iter_mut().map(|v| median(v)).collect();
    println!(
        "median {:>8.0} {:>10.0} {:>15.0}   rsa/ring {:.2}, vts/ring {:.2}, rsa/vts {:.2}",
        med[0],
        med[1],
        med[2],
        med[1] / med[0],
        med[2] / med[0],
        med[1] / med[2]
    );
    let conns: usize = arg("conns").map_or(Ok(50), |s| s.parse())?;
    if conns > 0 {
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(connections(&ops.key, rounds, conns))?;
    }
    Ok(())
}

/// A server for `layer` with an `Echoer` gateway, and a client for it.
async fn serve(layer: VopLayer) -> Result<Server, BoxError> {
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service(GatewayService::new(|| versile::demo::Echoer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(Server::serve(listener, svc)?)
}

/// `(connections/s, CPU µs per connection)` for `count` sequential
/// connections.
async fn connect_n(client: &Client, addr: &str, count: usize) -> Result<(f64, f64), BoxError> {
    let cpu = cpu_time();
    let start = Instant::now();
    for _ in 0..count {
        let (link, gateway) = client.connect(addr).await?;
        drop(gateway);
        link.shutdown(LinkShutdown::Forced);
        let _ = tokio::time::timeout(Duration::from_secs(2), link.closed()).await;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_time() - cpu;
    let n = count.max(1) as f64;
    Ok((n / wall, cpu.as_secs_f64() * 1e6 / n))
}

async fn connections(key: &RsaKeyPair, rounds: usize, count: usize) -> Result<(), BoxError> {
    use versile::tls::{TlsClientConfig, TlsClientTransport, TlsServerConfig, TlsServerTransport};
    let vts_server = serve(versile::VtsLayer::new(key.clone()).into()).await?;
    let vts_client = Client::new(
        ClientConfig::default()
            .transport(versile::VtsClientTransport::new(None).pin_server_key(key.fingerprint())),
    );
    let der = key.to_pkcs8_der()?;
    let tls = TlsServerConfig::self_signed_with_key(vec!["localhost".to_owned()], &der)
        .and_then(TlsServerTransport::new)?;
    let tls_server = serve(VopLayer::builder().transport(tls).build()?).await?;
    let tls_client = Client::new(ClientConfig::default().transport(TlsClientTransport::new(
        TlsClientConfig::pinned_key(&key.fingerprint())?,
    )?));
    let vts_addr = vts_server.local_addr().to_string();
    let tls_addr = tls_server.local_addr().to_string();
    connect_n(&vts_client, &vts_addr, 5).await?;
    connect_n(&tls_client, &tls_addr, 5).await?;
    println!();
    println!("full connections, {count} per kind per round");
    println!("round   VTS conn/s   TLS conn/s   VTS÷TLS   CPU µs/conn VTS   TLS");
    let (mut ratios, mut vts_cpu, mut tls_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (v, vc) = connect_n(&vts_client, &vts_addr, count).await?;
        let (t, tc) = connect_n(&tls_client, &tls_addr, count).await?;
        println!(
            "{round:>5} {v:>12.0} {t:>12.0} {:>9.2} {vc:>17.0} {tc:>5.0}",
            v / t
        );
        ratios.push(v / t);
        vts_cpu.push(vc);
        tls_cpu.push(tc);
    }
    let (vc, tc) = (median(&mut vts_cpu), median(&mut tls_cpu));
    println!(
        "median VTS÷TLS conn/s {:.2}; CPU per connection VTS {vc:.0} µs, TLS {tc:.0} µs, TLS÷VTS {:.2}",
        median(&mut ratios),
        tc / vc
    );
    for server in [vts_server, tls_server] {
        server.stop(StopLinks::Force);
        let _ = server.shutdown(Duration::from_secs(2)).await;
    }
    Ok(())
}
