//! `cargo bench --bench vts_rsa [-- rounds=N iters=N conns=N only=KIND key=PATH]`:
//! CPU µs per RSA-2048 private-key operation on this CPU, for one fresh
//! 2048-bit key, each way measured in interleaved rounds (a loaded
//! machine slows all alike within a round):
//!
//! - `ring`: `ring`'s RSA-2048 PKCS#1 v1.5 SHA-256 signature, the private
//!   operation a rustls server does per TLS handshake;
//! - `rsa`: `rsa` 0.10's blinded `rsa_decrypt_and_check`
//!   ([`RsaBackend::Generic`]: base, exponent and CRT-modulus blinding with
//!   a fresh inversion per operation);
//! - `crt`: `asym_decrypt` of a one-block M5 header with the pure-Rust
//!   [`RsaBackend::FixedCrt`] (`rsa_crt`), the default without `rsa-openssl`;
//! - `openssl`: the same with [`RsaBackend::OpenSsl`] (feature
//!   `rsa-openssl`, which `cli`, needed here, turns on), the default of the
//!   `versile` binary.
//!
//! Prints each round and the median per kind with the ratios to `ring`.
//!
//! Then full connections (`conns=N` per kind per round, 0 to skip): as
//! `versile bench` phases 5 and 6 (TCP connect, VOP, VTS or TLS with this
//! key, VOL handshake, forced close; client and server in this process on
//! one multi-thread runtime), alternating VTS with each backend above
//! (`crt`, and `openssl` when built) and TLS in rounds, with connections
//! per second and the process CPU time per connection (both ends): the
//! CPU figure is what a loaded machine distorts least.
//!
//! `only=KIND` runs just that operation `iters` times (no rounds), and
//! `only=conn-vts-crt`, `conn-vts-openssl` or `conn-tls` just `iters`
//! connections: run them under `valgrind --tool=callgrind` for
//! instructions per operation or connection (key generation and warm-up
//! are outside `Ops::run` / `connect_n`; subtract a run with `iters=0`),
//! or `perf record -e cpu-clock`; `key=PATH` loads a PEM or DER key
//! instead of generating one, so key generation stays out of a profile.

use std::time::{Duration, Instant};

use rsa::hazmat::{rsa_decrypt_and_check, rsa_encrypt};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::BoxedUint;
use versile::vts::hash::HashAlg;
use versile::vts::random::OsRandom;
use versile::vts::rsa_block::{asym_decrypt, asym_encrypt};
use versile::vts::{RsaBackend, RsaKeyPair};
use versile::{Client, ClientConfig, GatewayService, LinkShutdown, Server, StopLinks, VopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The operations on one key, ready to run.
struct Ops {
    /// The key with the pure-Rust backend, and with OpenSSL if built.
    crt: RsaKeyPair,
    openssl: Option<RsaKeyPair>,
    header: Vec<u8>,
    ring: ring::signature::RsaKeyPair,
    ring_rng: ring::rand::SystemRandom,
    rsa: rsa::PrivateKey,
    rsa_c: BoxedUint,
}

impl Ops {
    /// A fresh 2048-bit key, or the one in `path` (profiles without key
    /// generation in them).
    fn new(path: Option<String>) -> Result<Self, BoxError> {
        let key = match path {
            Some(path) => RsaKeyPair::from_file(path)?,
            None => RsaKeyPair::generate(2048)?,
        };
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
            crt: key.clone().with_rsa_backend(RsaBackend::FixedCrt)?,
            openssl: key.with_rsa_backend(RsaBackend::OpenSsl).ok(),
            header,
            ring,
            ring_rng: ring::rand::SystemRandom::new(),
            rsa,
            rsa_c,
        })
    }

    /// The kinds this build can run.
    fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = vec!["ring", "rsa", "crt"];
        if self.openssl.is_some() {
            kinds.push("openssl");
        }
        kinds
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
            "crt" => {
                asym_decrypt(&self.crt, HashAlg::Sha1, &self.header)?;
            }
            "openssl" => {
                let key = self.openssl.as_ref().ok_or("built without rsa-openssl")?;
                asym_decrypt(key, HashAlg::Sha1, &self.header)?;
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
    let conns: usize = arg("conns").map_or(Ok(50), |s| s.parse())?;
    let ops = Ops::new(arg("key"))?;
    let kinds = ops.kinds();
    for kind in &kinds {
        ops.run(kind)?;
    }
    if let Some(kind) = arg("only") {
        if kind.starts_with("conn-") {
            let rt = tokio::runtime::Runtime::new()?;
            return rt.block_on(connections(&ops, ConnPlan::Only(kind, iters)));
        }
        for _ in 0..iters {
            ops.run(&kind)?;
        }
        return Ok(());
    }
    println!("RSA-2048 private operation, CPU µs ({iters} per kind per round)");
    println!(
        "round {}",
        kinds.iter().map(|k| format!("{k:>9}")).collect::<String>()
    );
    let mut all: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for round in 0..rounds {
        let mut row = String::new();
        for (i, kind) in kinds.iter().enumerate() {
            let us = ops.time(kind, iters)?;
            all[i].push(us);
            row.push_str(&format!("{us:>9.0}"));
        }
        println!("{round:>5} {row}");
    }
    let med: Vec<f64> = all.iter_mut().map(|v| median(v)).collect();
    let ratios: String = kinds
        .iter()
        .zip(&med)
        .skip(1)
        .map(|(k, m)| format!(" {k}/ring {:.2}", m / med[0]))
        .collect();
    println!(
        "median {}  {ratios}",
        med.iter().map(|m| format!("{m:>9.0}")).collect::<String>()
    );
    if conns > 0 {
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(connections(&ops, ConnPlan::Rounds(rounds, conns)))?;
    }
    Ok(())
}

/// Interleaved rounds of `conns` connections per kind, or one kind only.
enum ConnPlan {
    Rounds(usize, usize),
    Only(String, usize),
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

/// One kind of connection: a running server and a client for it.
struct Target {
    name: String,
    server: Server,
    client: Client,
    addr: String,
}

async fn vts_target(name: &str, key: &RsaKeyPair) -> Result<Target, BoxError> {
    let server = serve(versile::VtsLayer::new(key.clone()).into()).await?;
    let client = Client::new(
        ClientConfig::default()
            .transport(versile::VtsClientTransport::new(None).pin_server_key(key.fingerprint())),
    );
    let addr = server.local_addr().to_string();
    Ok(Target {
        name: name.to_owned(),
        server,
        client,
        addr,
    })
}

async fn tls_target(key: &RsaKeyPair) -> Result<Target, BoxError> {
    use versile::tls::{TlsClientConfig, TlsClientTransport, TlsServerConfig, TlsServerTransport};
    let der = key.to_pkcs8_der()?;
    let tls = TlsServerConfig::self_signed_with_key(vec!["localhost".to_owned()], &der)
        .and_then(TlsServerTransport::new)?;
    let server = serve(VopLayer::builder().transport(tls).build()?).await?;
    let client = Client::new(ClientConfig::default().transport(TlsClientTransport::new(
        TlsClientConfig::pinned_key(&key.fingerprint())?,
    )?));
    let addr = server.local_addr().to_string();
    Ok(Target {
        name: "conn-tls".to_owned(),
        server,
        client,
        addr,
    })
}

async fn connections(ops: &Ops, plan: ConnPlan) -> Result<(), BoxError> {
    let mut targets = vec![vts_target("conn-vts-crt", &ops.crt).await?];
    if let Some(key) = &ops.openssl {
        targets.push(vts_target("conn-vts-openssl", key).await?);
    }
    targets.push(tls_target(&ops.crt).await?);
    for t in &targets {
        connect_n(&t.client, &t.addr, 5).await?;
    }
    let result = match plan {
        ConnPlan::Only(kind, count) => match targets.iter().find(|t| t.name == kind) {
            Some(t) => connect_n(&t.client, &t.addr, count).await.map(drop),
            None => Err(format!("unknown or unavailable kind {kind}").into()),
        },
        ConnPlan::Rounds(rounds, count) => connection_rounds(&targets, rounds, count).await,
    };
    for t in targets {
        t.server.stop(StopLinks::Force);
        let _ = t.server.shutdown(Duration::from_secs(2)).await;
    }
    result
}

/// Alternate the targets in `rounds` batches of `count`; print conn/s and
/// CPU per connection, and each VTS backend's ratio to TLS.
async fn connection_rounds(
    targets: &[Target],
    rounds: usize,
    count: usize,
) -> Result<(), BoxError> {
    println!();
    println!("full connections, {count} per kind per round: conn/s (CPU µs per conn)");
    println!(
        "round {}",
        targets
            .iter()
            .map(|t| format!("{:>24}", t.name))
            .collect::<String>()
    );
    let tls = targets.len() - 1;
    let mut rates = vec![Vec::new(); targets.len()];
    let mut cpus = vec![Vec::new(); targets.len()];
    let mut ratios = vec![Vec::new(); tls];
    for round in 0..rounds {
        let mut row = String::new();
        let mut this = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let (rate, cpu) = connect_n(&t.client, &t.addr, count).await?;
            rates[i].push(rate);
            cpus[i].push(cpu);
            this.push(rate);
            row.push_str(&format!("{:>24}", format!("{rate:.0} ({cpu:.0})")));
        }
        for (i, r) in ratios.iter_mut().enumerate() {
            r.push(this[i] / this[tls]);
        }
        println!("{round:>5} {row}");
    }
    let tls_cpu = median(&mut cpus[tls]);
    for (i, t) in targets.iter().enumerate().take(tls) {
        let cpu = median(&mut cpus[i]);
        println!(
            "median {}: {:.0} conn/s, {cpu:.0} µs CPU per conn; ÷ TLS conn/s (same round) {:.2}, TLS÷VTS CPU {:.2}",
            t.name,
            median(&mut rates[i]),
            median(&mut ratios[i]),
            tls_cpu / cpu
        );
    }
    println!(
        "median conn-tls: {:.0} conn/s, {tls_cpu:.0} µs CPU per conn",
        median(&mut rates[tls])
    );
    Ok(())
}
