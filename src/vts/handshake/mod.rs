//! The VTS handshake as typed state machines (`docs/protocol/vts.md` §3).
//!
//! [`client::ClientHandshake`] and [`server::ServerHandshake`] consume
//! handshake bytes from a buffer and append their own messages to an output
//! vector. Each stage takes exactly one protocol line or one VEC entity
//! from the front of the buffer and leaves everything after it in place:
//! bytes that follow a handshake message belong to the next stage or to
//! the record layer (§3.7 pipelining hazard). Randomness comes from an
//! injected [`RandomSource`](crate::vts::random::RandomSource) so the vectors' randoms can be replayed.

pub mod client;
pub mod server;

use bytes::{Bytes, BytesMut};
use num_bigint::BigInt;

use super::config::{Credentials, Suite};
use super::error::VtsError;
use super::hash::HashAlg;
use super::keys::{KeyPolicy, PublicKey};
use super::prf::Prf;
use super::rsa_block::asym_ciphertext_len;
use crate::vec::{encode, Decoder, DecoderConfig, EncodeConfig, Entity};

/// `VTS_DRAFT-0.8\n` (§3.1).
pub(crate) const PROTOCOL_LINE: &[u8] = b"VTS_DRAFT-0.8\n";
/// Longest accepted protocol line, LF included (§3.1).
const MAX_LINE: usize = 32;
/// Shortest accepted random value (§6).
const MIN_RANDOM: usize = 32;
/// Length of the randoms we send.
pub(crate) const RANDOM_LEN: usize = 32;
/// Seed label of the M5 content key (§3.4 step 5).
const SENDKEY_LABEL: &[u8] = b"vts client sendkey";
/// Seed label of the session keys (§3.6).
const EXPANSION_LABEL: &[u8] = b"vts key expansion";

/// Keys of both directions (§3.6).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Client → server cipher key (`KL` bytes of the cipher).
    pub c_key: Vec<u8>,
    /// Server → client cipher key.
    pub s_key: Vec<u8>,
    /// Client → server CBC IV / OFB register (one cipher block).
    pub c_iv: Vec<u8>,
    /// Server → client IV.
    pub s_iv: Vec<u8>,
    /// Client → server VHMAC key (one cipher block: 8 or 16 bytes).
    pub c_mac: Vec<u8>,
    /// Server → client VHMAC key.
    pub s_mac: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for k in [
            &mut self.c_key,
            &mut self.s_key,
            &mut self.c_iv,
            &mut self.s_iv,
            &mut self.c_mac,
            &mut self.s_mac,
        ] {
            k.zeroize();
        }
    }
}

/// Derive the session keys (§3.6). `srand_s` is `None` in anonymous mode.
pub fn derive_keys(
    suite: &Suite,
    rand_c: &[u8],
    rand_s: &[u8],
    srand_c: &[u8],
    srand_s: Option<&[u8]>,
) -> SessionKeys {
    let mut seed = EXPANSION_LABEL.to_vec();
    let ss = srand_s.unwrap_or(&[]);
    for part in [rand_s, rand_c, ss, srand_c, rand_c, rand_s, srand_c, ss] {
        seed.extend_from_slice(part);
    }
    let mut prf = Prf::new(suite.prf_hash, b"", &seed);
    let kl = suite.cipher.key_len();
    let b = suite.cipher.block_len();
    SessionKeys {
        c_key: prf.take(kl),
        s_key: prf.take(kl),
        c_iv: prf.take(b),
        s_iv: prf.take(b),
        c_mac: prf.take(b),
        s_mac: prf.take(b),
    }
}

/// Key and IV of the M5 content (§2.7, §3.4 step 5).
fn content_key(suite: &Suite, block_rand: &[u8], srand_c: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut seed = SENDKEY_LABEL.to_vec();
    seed.extend_from_slice(block_rand);
    seed.extend_from_slice(srand_c);
    let mut prf = Prf::new(suite.prf_hash, b"", &seed);
    let key = prf.take(suite.cipher.key_len());
    let iv = prf.take(suite.cipher.block_len());
    (key, iv)
}

/// Take one protocol line from `buf` and validate it (§3.1).
/// `Ok(false)`: no LF yet.
fn take_protocol_line(buf: &mut BytesMut) -> Result<bool, VtsError> {
    let Some(pos) = buf.iter().take(MAX_LINE).position(|b| *b == b'\n') else {
        if buf.len() >= MAX_LINE {
            return Err(VtsError::BadProtocolLine);
        }
        return Ok(false);
    };
    let line = buf.split_to(pos + 1);
    let text = std::str::from_utf8(&line[..pos]).map_err(|_| VtsError::BadProtocolLine)?;
    let mut parts = text.split('-');
    let (Some(name), Some(version), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(VtsError::BadProtocolLine);
    };
    if name != "VTS_DRAFT"
        || version.is_empty()
        || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(VtsError::BadProtocolLine);
    }
    let nums: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
    if nums.as_deref() != Some(&[0, 8]) {
        return Err(VtsError::BadProtocolLine);
    }
    Ok(true)
}

/// A decoder for one handshake entity: bare context, size-limited (§6).
fn entity_decoder(limit: usize) -> Decoder {
    Decoder::new(DecoderConfig {
        max_entity_size: limit,
        max_depth: 16,
        str_decoding: None,
        allow_refs: false,
        // Handshake entities are a few byte strings and integers, which cost
        // about their wire size; a tuple of tiny integers costs far more.
        max_decoded_bytes: limit.saturating_mul(2).saturating_add(64 * 1024),
    })
}

/// Reads the handshake entities M3…M6 one after the other with one decoder
/// kept across reads, so a message that arrives a byte per segment is
/// parsed once (linear), not again from its start on every read.
pub(crate) struct EntityReader {
    decoder: Decoder,
    /// Header bytes parsed by calls that found the entity incomplete.
    parsed_while_incomplete: u64,
}

impl EntityReader {
    pub(crate) fn new(limit: usize) -> Self {
        EntityReader {
            decoder: entity_decoder(limit),
            parsed_while_incomplete: 0,
        }
    }

    /// The next entity from the front of `buf`; `Ok(None)`: incomplete.
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Entity>, VtsError> {
        let before = self.decoder.header_bytes_parsed();
        let entity = self.decoder.decode(buf)?;
        if entity.is_none() {
            let after = self.decoder.header_bytes_parsed();
            self.parsed_while_incomplete += after.saturating_sub(before) as u64;
        }
        Ok(entity)
    }

    /// Parsing work done on incomplete messages so far (bytes); at most the
    /// size of the messages when state is kept across reads.
    pub(crate) fn parse_work(&self) -> u64 {
        self.parsed_while_incomplete
    }
}

/// Largest M5 `enc_header` a real client sends to a key of `k` bytes:
/// the header of §3.4 step 4 with 32-byte `srand_c` and `block_rand` (what
/// Python and we send, §6) and the negotiated MAC hash, as RSA blocks (§2.6).
/// One block for any key of 1024 bits or more with SHA-1.
fn max_enc_header(k: usize, mac_hash: HashAlg) -> Result<usize, VtsError> {
    let digest = vec![0u8; mac_hash.output_len()];
    let random = [0u8; RANDOM_LEN];
    let header = tuple(vec![by(&random), by(&random), by(&digest)]);
    Ok(asym_ciphertext_len(
        k,
        mac_hash,
        encode_bare(&header)?.len(),
    ))
}

/// Largest M6 a real server sends to a key of `k` bytes: `VBytes(srand_s)`
/// with 32 bytes (§3.5), as RSA blocks (§2.6).
fn max_enc_secret(k: usize, mac_hash: HashAlg) -> Result<usize, VtsError> {
    let secret = by(&[0u8; RANDOM_LEN]);
    Ok(asym_ciphertext_len(
        k,
        mac_hash,
        encode_bare(&secret)?.len(),
    ))
}

/// Refuse an RSA ciphertext longer than a real peer sends, before any
/// private-key operation: each extra block would cost us one (§2.6).
fn check_ciphertext_len(len: usize, max: usize) -> Result<(), VtsError> {
    if len <= max {
        return Ok(());
    }
    tracing::debug!(
        len,
        max,
        "VTS: oversized RSA ciphertext refused before decryption"
    );
    crate::limits::limit_exceeded("vts_rsa_ciphertext");
    Err(VtsError::CiphertextTooLarge { len, max })
}

/// Decode exactly one entity from a complete byte string.
fn decode_exact(data: &[u8], limit: usize) -> Result<Entity, VtsError> {
    let mut buf = BytesMut::from(data);
    match entity_decoder(limit.max(data.len())).decode(&mut buf)? {
        Some(e) if buf.is_empty() => Ok(e),
        _ => Err(VtsError::BadHandshake("not exactly one entity")),
    }
}

/// Canonical VEC encoding with a bare context (§1.3: `F5` strings).
fn encode_bare(e: &Entity) -> Result<Vec<u8>, VtsError> {
    let mut out = BytesMut::new();
    encode(e, &EncodeConfig::PLAIN, &mut out)?;
    Ok(out.to_vec())
}

fn st(s: &str) -> Entity {
    Entity::String(s.to_owned())
}

fn by(b: &[u8]) -> Entity {
    Entity::Bytes(Bytes::copy_from_slice(b))
}

fn tuple(v: Vec<Entity>) -> Entity {
    Entity::Tuple(v)
}

fn as_tuple<'a>(e: &'a Entity, what: &'static str) -> Result<&'a [Entity], VtsError> {
    match e {
        Entity::Tuple(v) => Ok(v),
        _ => Err(VtsError::BadHandshake(what)),
    }
}

fn as_tuple_n<'a>(e: &'a Entity, n: usize, what: &'static str) -> Result<&'a [Entity], VtsError> {
    let v = as_tuple(e, what)?;
    if v.len() == n {
        Ok(v)
    } else {
        Err(VtsError::BadHandshake(what))
    }
}

fn as_str<'a>(e: &'a Entity, what: &'static str) -> Result<&'a str, VtsError> {
    match e {
        Entity::String(s) => Ok(s),
        _ => Err(VtsError::BadHandshake(what)),
    }
}

fn as_bytes<'a>(e: &'a Entity, what: &'static str) -> Result<&'a [u8], VtsError> {
    match e {
        Entity::Bytes(b) => Ok(b),
        _ => Err(VtsError::BadHandshake(what)),
    }
}

fn as_random<'a>(e: &'a Entity, what: &'static str) -> Result<&'a [u8], VtsError> {
    let b = as_bytes(e, what)?;
    if b.len() < MIN_RANDOM {
        return Err(VtsError::BadHandshake(what));
    }
    Ok(b)
}

fn as_int(e: &Entity) -> Option<BigInt> {
    match e {
        Entity::Int(i) => Some(BigInt::from(*i)),
        Entity::BigInt(b) => Some(b.clone()),
        _ => None,
    }
}

/// `None` or an integer > 0 (Python also lets `True` pass) (§3.2, §3.3).
fn check_limit(e: &Entity, what: &'static str) -> Result<(), VtsError> {
    match e {
        Entity::None | Entity::Bool(true) => Ok(()),
        Entity::Int(i) if *i > 0 => Ok(()),
        Entity::BigInt(b) if b.sign() == num_bigint::Sign::Plus => Ok(()),
        _ => Err(VtsError::BadHandshake(what)),
    }
}

/// Names in a tuple of strings (§3.2 elements 0 and 2).
fn str_list<'a>(e: &'a Entity, what: &'static str) -> Result<Vec<&'a str>, VtsError> {
    as_tuple(e, what)?.iter().map(|s| as_str(s, what)).collect()
}

/// `('rsa', (n, e, None, None, None))` for our public key (§3.3).
fn key_entity(key: &PublicKey) -> Entity {
    tuple(vec![
        st("rsa"),
        tuple(vec![
            Entity::int(key.n()),
            Entity::int(key.e()),
            Entity::None,
            Entity::None,
            Entity::None,
        ]),
    ])
}

/// Parse and check a peer key entity (§3.3 step 4–5, §3.4 step 6).
fn parse_key(e: &Entity, policy: &KeyPolicy) -> Result<PublicKey, VtsError> {
    let v = as_tuple_n(e, 2, "key entry")?;
    if as_str(&v[0], "key name")? != "rsa" {
        return Err(VtsError::KeyRefused("not an RSA key".into()));
    }
    let parts = as_tuple_n(&v[1], 5, "key tuple")?;
    let mut nums = Vec::with_capacity(5);
    for p in parts {
        match p {
            Entity::None => nums.push(None),
            other => match as_int(other) {
                Some(i) if i.sign() != num_bigint::Sign::Minus => nums.push(Some(i)),
                _ => return Err(VtsError::BadHandshake("key tuple element")),
            },
        }
    }
    // We only ever use (n, e); a peer must not send its private numbers,
    // but Python would accept them, so they are ignored, not refused.
    let (Some(n), Some(e)) = (&nums[0], &nums[1]) else {
        return Err(VtsError::KeyRefused("key without n or e".into()));
    };
    PublicKey::from_wire(n, e, policy)
}

fn credentials_entity(c: Option<&Credentials>) -> Entity {
    match c {
        None => Entity::None,
        Some(Credentials::Identity(der)) => tuple(vec![Entity::Bool(false), by(der)]),
        Some(Credentials::Certificates(chain)) => tuple(vec![
            Entity::Bool(true),
            tuple(chain.iter().map(|c| by(c)).collect()),
        ]),
    }
}

fn parse_credentials(e: &Entity) -> Result<Option<Credentials>, VtsError> {
    match e {
        Entity::None => Ok(None),
        other => {
            let v = as_tuple_n(other, 2, "credentials")?;
            match &v[0] {
                Entity::Bool(false) => Ok(Some(Credentials::Identity(
                    as_bytes(&v[1], "identity")?.to_vec(),
                ))),
                Entity::Bool(true) => {
                    let chain = as_tuple(&v[1], "certificate chain")?;
                    if chain.is_empty() {
                        return Err(VtsError::BadHandshake("empty certificate chain"));
                    }
                    let chain = chain
                        .iter()
                        .map(|c| as_bytes(c, "certificate").map(<[u8]>::to_vec))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Some(Credentials::Certificates(chain)))
                }
                _ => Err(VtsError::BadHandshake("credentials flag")),
            }
        }
    }
}

/// Content hash of M5: the plain MAC hash over the canonical encoding (§3.4).
fn content_hash(hash: HashAlg, content: &[u8]) -> Vec<u8> {
    hash.digest(&[content])
}

/// What a finished handshake hands to the record layer.
pub struct Established {
    /// The negotiated algorithms.
    pub suite: Suite,
    /// Both directions' keys, from which the record layer is keyed.
    pub keys: SessionKeys,
    /// The peer's key and (unverified) credentials.
    pub peer: super::config::PeerCredentials,
    /// Records must not be sent before the first peer record arrived
    /// (§3.7: anonymous client, client-key server).
    pub wait_for_peer_record: bool,
}
