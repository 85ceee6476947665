//! The server side of the VTS handshake (`docs/protocol/vts.md` §3, §8 "Server").
//!
//! States: [`ExpectClientLine`] → [`ExpectClientHello`] →
//! [`ExpectKeyExchange`] → [`DecryptHeader`] → done (sending M6 in
//! client-key mode).
//!
//! CPU bounds: M3 and M5 are read by one decoder kept across reads
//! (`EntityReader`); the M5 header is refused by its length before any
//! private-key operation if a real client could not have sent it, so a
//! handshake costs at most the private operations of a real one (one block
//! for keys ≥ 1024 bits); that operation is a [`PrivateOp`] that the driver
//! may run elsewhere ([`PrivateOps::Offload`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use subtle::ConstantTimeEq;

use super::*;
use crate::vts::cipher::{symmetric, CipherAlg, Direction, Mode};
use crate::vts::config::{PeerCredentials, Suite, VtsConfig};
use crate::vts::keys::RsaKeyPair;
use crate::vts::message::Opener;
use crate::vts::private_op::{PendingOp, PrivateOp, PrivateOpResult, PrivateOps};
use crate::vts::random::RandomSource;
use crate::vts::rsa_block::asym_encrypt;

/// Waiting for M1.
pub struct ExpectClientLine;

/// M2 sent; waiting for M3.
pub struct ExpectClientHello;

/// M4 sent; waiting for M5.
pub struct ExpectKeyExchange {
    suite: Suite,
    rand_c: Vec<u8>,
    rand_s: Vec<u8>,
}

/// M5 received; waiting for the private-key operation on its header.
pub struct DecryptHeader {
    exchange: ExpectKeyExchange,
    enc_content: Bytes,
    op: PendingOp,
}

enum State {
    Line(ExpectClientLine),
    Hello(ExpectClientHello),
    Exchange(Box<ExpectKeyExchange>),
    Decrypt(Box<DecryptHeader>),
    Done,
    Failed,
}

/// A server handshake in progress.
pub struct ServerHandshake {
    config: Arc<VtsConfig>,
    key: RsaKeyPair,
    rng: Box<dyn RandomSource>,
    state: State,
    reader: EntityReader,
    private_ops: PrivateOps,
}

/// The server's choice for a client offer (§3.2 "Negotiation").
pub fn negotiate(
    config: &VtsConfig,
    prf_offer: &[&str],
    cipher_offer: &[(&str, Vec<&str>)],
    mac_offer: &[&str],
) -> Result<Suite, VtsError> {
    let prf_hash = config
        .prf_hashes
        .iter()
        .find(|h| prf_offer.contains(&h.name()))
        .copied()
        .ok_or(VtsError::NoCommonAlgorithm("PRF hash"))?;
    let mac_hash = config
        .mac_hashes
        .iter()
        .find(|h| mac_offer.contains(&h.name()))
        .copied()
        .ok_or(VtsError::NoCommonAlgorithm("MAC hash"))?;
    let mut chosen: Option<(CipherAlg, Mode)> = None;
    'ciphers: for (alg, modes) in &config.ciphers {
        for (name, offered_modes) in cipher_offer {
            if *name != alg.name() {
                continue;
            }
            for m in modes {
                if offered_modes.contains(&m.name()) {
                    chosen = Some((*alg, *m));
                    break 'ciphers;
                }
            }
        }
    }
    let (cipher, mode) = chosen.ok_or(VtsError::NoCommonAlgorithm("cipher"))?;
    Ok(Suite {
        prf_hash,
        cipher,
        mode,
        mac_hash,
    })
}

impl ServerHandshake {
    /// A handshake waiting for the client's M1, answering with `key`;
    /// `rng` supplies its randoms (`rand_s`, `srand_s`, RSA block padding).
    pub fn new(config: Arc<VtsConfig>, key: RsaKeyPair, rng: Box<dyn RandomSource>) -> Self {
        let reader = EntityReader::new(config.handshake_limit);
        ServerHandshake {
            config,
            key,
            rng,
            state: State::Line(ExpectClientLine),
            reader,
            private_ops: PrivateOps::Inline,
        }
    }

    /// Run private-key operations inline or hand them out.
    pub fn set_private_ops(&mut self, mode: PrivateOps) {
        self.private_ops = mode;
    }

    /// The private-key operation the handshake waits for, once.
    pub fn take_private_op(&mut self) -> Option<PrivateOp> {
        match &mut self.state {
            State::Decrypt(d) => d.op.take_job(),
            _ => None,
        }
    }

    /// Give back the result of [`take_private_op`](Self::take_private_op)'s job.
    pub fn complete_private_op(&mut self, result: PrivateOpResult) {
        if let State::Decrypt(d) = &mut self.state {
            d.op.complete(result);
        }
    }

    /// Parsing work spent on incomplete handshake messages (bytes).
    pub fn parse_work(&self) -> u64 {
        self.reader.parse_work()
    }

    /// Consume what is possible from `buf`, append our messages to `out`.
    /// `Ok(Some(_))` once the handshake is complete.
    pub fn advance(
        &mut self,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<Established>, VtsError> {
        loop {
            let state = std::mem::replace(&mut self.state, State::Failed);
            match state {
                State::Line(s) => {
                    if !take_protocol_line(buf)? {
                        self.state = State::Line(s);
                        return Ok(None);
                    }
                    out.extend_from_slice(PROTOCOL_LINE);
                    self.state = State::Hello(ExpectClientHello);
                }
                State::Hello(s) => match self.on_hello(buf, out)? {
                    Some(next) => self.state = State::Exchange(Box::new(next)),
                    None => {
                        self.state = State::Hello(s);
                        return Ok(None);
                    }
                },
                State::Exchange(s) => {
                    let Some(m5) = self.reader.next(buf)? else {
                        self.state = State::Exchange(s);
                        return Ok(None);
                    };
                    self.state = State::Decrypt(Box::new(self.on_exchange(*s, &m5)?));
                }
                State::Decrypt(mut d) => {
                    let Some(header) = d.op.poll(self.private_ops) else {
                        self.state = State::Decrypt(d);
                        return Ok(None);
                    };
                    let done = self.on_header(*d, header?, out)?;
                    self.state = State::Done;
                    return Ok(Some(done));
                }
                State::Done | State::Failed => return Err(VtsError::Failed),
            }
        }
    }

    /// M3 (§3.2 server checks, negotiation), then send M4 (§3.3).
    fn on_hello(
        &mut self,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<ExpectKeyExchange>, VtsError> {
        let Some(m3) = self.reader.next(buf)? else {
            return Ok(None);
        };
        let v = as_tuple_n(&m3, 6, "ClientHello")?;
        let prf_offer = str_list(&v[0], "PRF hashes")?;
        let mut cipher_offer = Vec::new();
        for entry in as_tuple(&v[1], "ciphers")? {
            let pair = as_tuple_n(entry, 2, "cipher entry")?;
            cipher_offer.push((
                as_str(&pair[0], "cipher name")?,
                str_list(&pair[1], "cipher modes")?,
            ));
        }
        let mac_offer = str_list(&v[2], "MAC hashes")?;
        let rand_c = as_random(&v[3], "rand_c")?.to_vec();
        check_limit(&v[4], "max_keylen")?;
        check_limit(&v[5], "hshake_lim")?;
        let suite = negotiate(&self.config, &prf_offer, &cipher_offer, &mac_offer)?;

        let mut rand_s = vec![0u8; RANDOM_LEN];
        self.rng.fill(&mut rand_s)?;
        let c = &self.config;
        let hello = tuple(vec![
            st(suite.prf_hash.name()),
            st(suite.cipher.name()),
            st(suite.mode.name()),
            st(suite.mac_hash.name()),
            by(&rand_s),
            key_entity(self.key.public()),
            credentials_entity(c.credentials.as_ref()),
            Entity::Int(i64::from(c.max_keylen)),
            Entity::Int(c.handshake_limit as i64),
        ]);
        out.extend_from_slice(&encode_bare(&hello)?);
        Ok(Some(ExpectKeyExchange {
            suite,
            rand_c,
            rand_s,
        }))
    }

    /// M5 (§3.4 server processing step 1), then the RSA private-key
    /// operation of step 2, refused up front if the header is larger than
    /// a real client's.
    fn on_exchange(
        &mut self,
        s: ExpectKeyExchange,
        m5: &Entity,
    ) -> Result<DecryptHeader, VtsError> {
        let v = as_tuple_n(m5, 2, "ClientKeyExchange")?;
        let (Entity::Bytes(enc_header), Entity::Bytes(enc_content)) = (&v[0], &v[1]) else {
            return Err(VtsError::BadHandshake("ClientKeyExchange elements"));
        };
        let max = max_enc_header(self.key.public().size(), s.suite.mac_hash)?;
        check_ciphertext_len(enc_header.len(), max)?;
        let job = PrivateOp::new(self.key.clone(), s.suite.mac_hash, enc_header.clone());
        Ok(DecryptHeader {
            exchange: s,
            enc_content: enc_content.clone(),
            op: PendingOp::new(job),
        })
    }

    /// M5 steps 2–7 with the decrypted header, then M6 in client-key mode
    /// (§3.5).
    fn on_header(
        &mut self,
        d: DecryptHeader,
        header: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Established, VtsError> {
        let s = d.exchange;
        let enc_content = &d.enc_content[..];
        let suite = s.suite;
        let limit = self.config.handshake_limit;
        let header = decode_exact(&header, limit)?;
        let h = as_tuple_n(&header, 3, "key exchange header")?;
        let srand_c = as_random(&h[0], "srand_c")?.to_vec();
        let block_rand = as_random(&h[1], "block_rand")?;
        let claimed_hash = as_bytes(&h[2], "content hash")?;
        // Step 3: exactly one message covering all of enc_content.
        let (ckey, civ) = content_key(&suite, block_rand, &srand_c);
        let mut opener = Opener::new(
            symmetric(suite.cipher, suite.mode, Direction::Decrypt, &ckey, &civ)?,
            suite.mac_hash,
            Vec::new(),
            limit,
        );
        let mut cbuf = BytesMut::from(enc_content);
        let content_bytes = match opener.open(&mut cbuf)? {
            Some(p) if cbuf.is_empty() => p,
            _ => return Err(VtsError::BadHandshake("encrypted content")),
        };
        let content = decode_exact(&content_bytes, limit)?;
        // Step 4: hash over the canonical re-encoding.
        let rehash = content_hash(suite.mac_hash, &encode_bare(&content)?);
        if !bool::from(rehash.ct_eq(claimed_hash)) {
            return Err(VtsError::BadHandshake("content hash mismatch"));
        }
        // Steps 5–7.
        let cv = as_tuple_n(&content, 3, "key exchange content")?;
        let client_key = match &cv[0] {
            Entity::None => None,
            k => Some(parse_key(k, &self.config.key_policy)?),
        };
        let credentials = parse_credentials(&cv[1])?;
        if client_key.is_none() && (credentials.is_some() || self.config.require_peer_key) {
            return Err(VtsError::Unauthorized);
        }
        let peer = PeerCredentials {
            key: client_key.clone(),
            credentials,
            suite,
        };
        if let Some(auth) = &self.config.authorizer {
            if !auth(&peer) {
                return Err(VtsError::Unauthorized);
            }
        }
        let Some(client_key) = client_key else {
            let keys = derive_keys(&suite, &s.rand_c, &s.rand_s, &srand_c, None);
            return Ok(Established {
                suite,
                keys,
                peer,
                wait_for_peer_record: false,
            });
        };
        // M6 (§3.5).
        let mut srand_s = vec![0u8; RANDOM_LEN];
        self.rng.fill(&mut srand_s)?;
        let secret = asym_encrypt(
            &client_key,
            suite.mac_hash,
            &encode_bare(&by(&srand_s))?,
            self.rng.as_mut(),
        )?;
        out.extend_from_slice(&encode_bare(&by(&secret))?);
        let keys = derive_keys(&suite, &s.rand_c, &s.rand_s, &srand_c, Some(&srand_s));
        Ok(Established {
            suite,
            keys,
            peer,
            // §3.7: after M6 the Python client needs more bytes before it
            // processes records that arrived together with M6.
            wait_for_peer_record: true,
        })
    }
}
