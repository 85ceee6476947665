//! Shared by the fuzz targets and the seed generator (`examples/seeds.rs`):
//! deterministic VTS handshakes and the input layouts the targets decode.
//!
//! A VTS handshake is made deterministic by a fixed [`RandomSource`]
//! ([`DetRandom`]) and the fixed test keys of `tests/data/spec/`: a client
//! and a server run against each other once, in memory, and what each sent
//! is recorded step by step ([`Transcript`]). Replaying one side's steps to
//! a fresh peer with the same random source reproduces the handshake
//! exactly, so a fuzz target can hand a valid prefix to the side under test
//! and let the fuzzer play the peer from there (the "deep" inputs).
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use versile::vts::cipher::{CipherAlg, Mode};
use versile::vts::handshake::{derive_keys, SessionKeys};
use versile::vts::hash::HashAlg;
use versile::vts::random::RandomSource;
use versile::vts::record::{RecordLayer, Role};
use versile::vts::{KeyPolicy, RsaKeyPair, Suite, VtsConfig, VtsConnection, VtsError};

/// The server key of `vts-vectors.json` (1024 bits).
pub const SERVER_KEY_PEM: &str = include_str!("../../tests/data/spec/vts-vector-server-key.pem");
/// The client key of `vts-vectors.json` (1024 bits).
pub const CLIENT_KEY_PEM: &str = include_str!("../../tests/data/spec/vts-vector-client-key.pem");

/// A reproducible random source (xorshift64*): never fails, never runs out.
pub struct DetRandom(u64);

impl DetRandom {
    pub fn new(seed: u64) -> Self {
        DetRandom(seed | 1)
    }
}

impl RandomSource for DetRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), VtsError> {
        for b in buf {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            // Never zero: RSA padding tails may not contain zero bytes.
            *b = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8 | 1;
        }
        Ok(())
    }
}

const CLIENT_SEED: u64 = 0x0123_4567_89AB_CDEF;
const SERVER_SEED: u64 = 0xFEDC_BA98_7654_3210;

/// Handshake variants: client key or not × one cipher suite offered.
pub const VARIANTS: usize = 8;

/// The client's offer for variant `v` (one cipher and mode, so that every
/// record-layer flavour is reachable from a handshake).
fn client_config(v: usize) -> VtsConfig {
    let (cipher, mode) = match (v >> 1) & 3 {
        0 => (CipherAlg::Aes256, Mode::Cbc),
        1 => (CipherAlg::Aes128, Mode::Ofb),
        2 => (CipherAlg::Blowfish, Mode::Cbc),
        _ => (CipherAlg::Blowfish128, Mode::Ofb),
    };
    VtsConfig {
        ciphers: vec![(cipher, vec![mode])],
        prf_hashes: vec![HashAlg::Sha256],
        mac_hashes: vec![HashAlg::Sha1],
        key_policy: KeyPolicy::default(),
        ..VtsConfig::default()
    }
}

/// The server accepts every suite the client variants offer.
fn server_config() -> VtsConfig {
    VtsConfig {
        ciphers: vec![
            (CipherAlg::Aes256, vec![Mode::Cbc, Mode::Ofb]),
            (CipherAlg::Aes128, vec![Mode::Cbc, Mode::Ofb]),
            (CipherAlg::Blowfish, vec![Mode::Cbc, Mode::Ofb]),
            (CipherAlg::Blowfish128, vec![Mode::Cbc, Mode::Ofb]),
        ],
        ..VtsConfig::default()
    }
}

fn server_key() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| RsaKeyPair::from_pem(SERVER_KEY_PEM).expect("server key"))
}

fn client_key() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| RsaKeyPair::from_pem(CLIENT_KEY_PEM).expect("client key"))
}

/// A fresh client of variant `v` with the fixed random source.
pub fn new_client(v: usize) -> VtsConnection {
    let key = (v & 1 == 1).then(|| client_key().clone());
    VtsConnection::client_with_rng(
        Arc::new(client_config(v)),
        key,
        Box::new(DetRandom::new(CLIENT_SEED)),
    )
}

/// A fresh server with the fixed random source (accepts every variant).
pub fn new_server() -> VtsConnection {
    VtsConnection::server_with_rng(
        Arc::new(server_config()),
        server_key().clone(),
        Box::new(DetRandom::new(SERVER_SEED)),
    )
}

/// Plaintext each side writes once it may: two records per side.
pub const CLIENT_DATA: [&[u8]; 2] = [b"VEC_DRAFT-0.8-utf8\n", b"client record two"];
pub const SERVER_DATA: [&[u8]; 2] = [b"VEC_DRAFT-0.8-utf8\n", b"server record two"];

/// What each side sent, one entry per exchange step (a step is everything
/// a side had to send after taking in the other's last step).
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub client: Vec<Vec<u8>>,
    pub server: Vec<Vec<u8>>,
}

/// Run variant `v` to completion in memory, including two records each way.
pub fn transcript(v: usize) -> &'static Transcript {
    static ALL: OnceLock<Vec<Transcript>> = OnceLock::new();
    &ALL.get_or_init(|| (0..VARIANTS).map(run_handshake).collect())[v % VARIANTS]
}

fn run_handshake(v: usize) -> Transcript {
    let mut c = new_client(v);
    let mut s = new_server();
    for d in CLIENT_DATA {
        c.write_plaintext(d).expect("client write");
    }
    for d in SERVER_DATA {
        s.write_plaintext(d).expect("server write");
    }
    let mut t = Transcript::default();
    let mut got_c = BytesMut::new();
    let mut got_s = BytesMut::new();
    for _ in 0..16 {
        let out = c.pending_output().to_vec();
        c.consume_output(out.len());
        if !out.is_empty() {
            s.receive(&mut BytesMut::from(&out[..]))
                .expect("server accepts");
            t.client.push(out);
        }
        let out = s.pending_output().to_vec();
        s.consume_output(out.len());
        if !out.is_empty() {
            c.receive(&mut BytesMut::from(&out[..]))
                .expect("client accepts");
            t.server.push(out);
        }
        s.read_plaintext(&mut got_s);
        c.read_plaintext(&mut got_c);
        if c.pending_output().is_empty() && s.pending_output().is_empty() {
            break;
        }
    }
    assert_eq!(&got_s[..], CLIENT_DATA.concat(), "variant {v}: server got");
    assert_eq!(&got_c[..], SERVER_DATA.concat(), "variant {v}: client got");
    t
}

/// The VTS handshake targets' input: `[sel, chunk, data...]`.
///
/// `sel` bits 0–2: the variant; bits 3–5: how many of the valid peer's
/// steps come first; `chunk`: feed size (0: everything at once). Then
/// `data`, the fuzzer's own bytes.
pub struct HandshakeInput<'a> {
    pub variant: usize,
    pub steps: usize,
    pub chunk: usize,
    pub data: &'a [u8],
}

impl<'a> HandshakeInput<'a> {
    pub fn parse(input: &'a [u8]) -> Option<Self> {
        let (&[sel, chunk], data) = input.split_first_chunk::<2>()?;
        Some(HandshakeInput {
            variant: usize::from(sel & 7),
            steps: usize::from((sel >> 3) & 7),
            chunk: usize::from(chunk),
            data,
        })
    }

    pub fn encode(variant: usize, steps: usize, chunk: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![(variant as u8 & 7) | ((steps as u8 & 7) << 3), chunk];
        v.extend_from_slice(data);
        v
    }
}

/// Drive `conn` with `steps` valid peer steps then `data`, in `chunk`-sized
/// pieces; write plaintext once open and read what arrives. Must never
/// panic; checks that an error is final.
pub fn drive(conn: &mut VtsConnection, peer_steps: &[Vec<u8>], input: &HandshakeInput) {
    let mut stream = Vec::new();
    for step in peer_steps.iter().take(input.steps) {
        stream.extend_from_slice(step);
    }
    stream.extend_from_slice(input.data);
    let chunk = if input.chunk == 0 {
        stream.len().max(1)
    } else {
        input.chunk
    };
    let mut buf = BytesMut::new();
    let mut plain = BytesMut::new();
    let mut wrote = false;
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        if conn.receive(&mut buf).is_err() {
            assert!(conn.is_failed());
            assert!(conn.receive(&mut BytesMut::from(&b"x"[..])).is_err());
            assert!(conn.write_plaintext(b"after error").is_err());
            return;
        }
        conn.read_plaintext(&mut plain);
        if !conn.is_handshaking() && !wrote {
            conn.write_plaintext(b"reply").expect("write when open");
            wrote = true;
        }
        let n = conn.pending_output().len();
        conn.consume_output(n);
    }
    let _ = conn.has_partial_record();
    let _ = conn.peer();
}

/// A connection of variant `v` on side `we_are_server`, brought to the
/// open state by replaying the valid peer's handshake steps; returns it
/// and the peer's remaining steps (its records), concatenated.
pub fn established(v: usize, we_are_server: bool) -> (VtsConnection, Vec<u8>) {
    let t = transcript(v);
    let (mut conn, steps) = if we_are_server {
        (new_server(), &t.client)
    } else {
        (new_client(v), &t.server)
    };
    let mut rest = Vec::new();
    for step in steps {
        if conn.is_handshaking() {
            conn.receive(&mut BytesMut::from(&step[..]))
                .expect("valid step");
            let n = conn.pending_output().len();
            conn.consume_output(n);
        } else {
            rest.extend_from_slice(step);
        }
    }
    assert!(!conn.is_handshaking(), "variant {v}: handshake completes");
    (conn, rest)
}

/// Every suite the record layer supports: 5 ciphers × 2 modes × 5 MAC hashes.
pub const SUITES: usize = 50;

/// Suite number `i` (mod [`SUITES`]).
pub fn suite(i: usize) -> Suite {
    let ciphers = [
        CipherAlg::Blowfish,
        CipherAlg::Blowfish128,
        CipherAlg::Aes128,
        CipherAlg::Aes192,
        CipherAlg::Aes256,
    ];
    let hashes = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];
    let i = i % SUITES;
    Suite {
        prf_hash: HashAlg::Sha256,
        cipher: ciphers[i % 5],
        mode: if (i / 5).is_multiple_of(2) {
            Mode::Cbc
        } else {
            Mode::Ofb
        },
        mac_hash: hashes[i / 10],
    }
}

/// Session keys for `suite` from fixed randoms (§3.6).
pub fn session_keys(suite: &Suite) -> SessionKeys {
    derive_keys(suite, &[1; 32], &[2; 32], &[3; 32], Some(&[4; 32]))
}

/// The direct record-layer input of `vts_record`: `[sel, opts, data...]`
/// with `sel` < 0x80 (bit 7 set selects the connection mode:
/// `[0x80 | variant | server << 3, chunk, data...]`).
///
/// `sel`: the suite; `opts` bit 0: we are the server; bits 1–2: the
/// largest record accepted (65536, 16384, 100, 1); bit 3: a 64-byte limit
/// per direction for 64-bit-block ciphers; bits 4–7: chunk size / 3
/// (0: all at once).
pub struct RecordInput<'a> {
    pub suite: Suite,
    pub we_are_server: bool,
    pub max_recv: usize,
    pub limit_64bit: Option<u64>,
    pub chunk: usize,
    pub data: &'a [u8],
}

impl<'a> RecordInput<'a> {
    pub fn parse(input: &'a [u8]) -> Option<Self> {
        let (&[sel, opts], data) = input.split_first_chunk::<2>()?;
        if sel & 0x80 != 0 {
            return None;
        }
        Some(RecordInput {
            suite: suite(usize::from(sel)),
            we_are_server: opts & 1 == 1,
            max_recv: [65536, 16384, 100, 1][usize::from((opts >> 1) & 3)],
            limit_64bit: (opts & 8 != 0).then_some(64),
            chunk: usize::from(opts >> 4) * 3,
            data,
        })
    }

    /// The layer under test and the peer's (which seals the seeds).
    pub fn layers(&self) -> Result<(RecordLayer, RecordLayer), VtsError> {
        let keys = session_keys(&self.suite);
        let (ours, theirs) = if self.we_are_server {
            (Role::Server, Role::Client)
        } else {
            (Role::Client, Role::Server)
        };
        let me = RecordLayer::new(
            ours,
            &self.suite,
            &keys,
            16384,
            self.max_recv,
            self.limit_64bit,
        )?;
        let peer = RecordLayer::new(theirs, &self.suite, &keys, 16384, 65536, None)?;
        Ok((me, peer))
    }
}
