//! The client side of the VTS handshake (`docs/protocol/vts.md` §3, §8 "Client").
//!
//! States: [`ExpectServerLine`] → [`ExpectServerHello`] → (client-key mode)
//! [`ExpectServerSecret`] → [`DecryptSecret`] → done. M1 is produced by
//! [`ClientHandshake::new`].
//!
//! Facing a hostile server: M2…M6 are read by one decoder kept across reads
//! (`EntityReader`); M6 is refused by its length before any private-key
//! operation if a real server could not have sent it (one block for keys
//! ≥ 1024 bits), and that operation is a [`PrivateOp`] the driver may run
//! elsewhere ([`PrivateOps::Offload`]). The server key's size and exponent
//! are bounded by the [`KeyPolicy`] before we
//! encrypt to it.

use std::sync::Arc;

use bytes::BytesMut;

use super::*;
use crate::vts::cipher::{symmetric, Direction};
use crate::vts::config::{PeerCredentials, Suite, VtsConfig};
use crate::vts::keys::RsaKeyPair;
use crate::vts::message::Sealer;
use crate::vts::private_op::{PendingOp, PrivateOp, PrivateOpResult, PrivateOps};
use crate::vts::random::RandomSource;
use crate::vts::rsa_block::asym_encrypt;
use crate::vts::{cipher::CipherAlg, cipher::Mode};

/// Waiting for M2.
pub struct ExpectServerLine;

/// M3 sent; waiting for M4.
pub struct ExpectServerHello {
    rand_c: Vec<u8>,
}

/// M5 sent in client-key mode; waiting for M6.
pub struct ExpectServerSecret {
    suite: Suite,
    rand_c: Vec<u8>,
    rand_s: Vec<u8>,
    srand_c: Vec<u8>,
    peer: PeerCredentials,
}

/// M6 received; waiting for the private-key operation on it.
pub struct DecryptSecret {
    secret: ExpectServerSecret,
    op: PendingOp,
}

enum State {
    Line(ExpectServerLine),
    Hello(ExpectServerHello),
    Secret(Box<ExpectServerSecret>),
    Decrypt(Box<DecryptSecret>),
    Done,
    Failed,
}

/// A client handshake in progress.
pub struct ClientHandshake {
    config: Arc<VtsConfig>,
    key: Option<RsaKeyPair>,
    rng: Box<dyn RandomSource>,
    state: State,
    reader: EntityReader,
    private_ops: PrivateOps,
}

impl ClientHandshake {
    /// Start: appends M1 to `out` (§3.1: the client speaks first).
    pub fn new(
        config: Arc<VtsConfig>,
        key: Option<RsaKeyPair>,
        rng: Box<dyn RandomSource>,
        out: &mut Vec<u8>,
    ) -> Self {
        out.extend_from_slice(PROTOCOL_LINE);
        let reader = EntityReader::new(config.handshake_limit);
        ClientHandshake {
            config,
            key,
            rng,
            state: State::Line(ExpectServerLine),
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
    /// `Ok(Some(_))` once the handshake is complete; bytes after the last
    /// handshake message stay in `buf`.
    pub fn advance(
        &mut self,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<Established>, VtsError> {
        loop {
            let state = std::mem::replace(&mut self.state, State::Failed);
            let (next, done) = match state {
                State::Line(s) => match self.on_line(s, buf, out)? {
                    Ok(n) => (n, None),
                    Err(s) => {
                        self.state = State::Line(s);
                        return Ok(None);
                    }
                },
                State::Hello(s) => match self.on_hello(s, buf, out)? {
                    Ok(r) => r,
                    Err(s) => {
                        self.state = State::Hello(s);
                        return Ok(None);
                    }
                },
                State::Secret(s) => match self.on_secret(s, buf)? {
                    Ok(d) => (State::Decrypt(Box::new(d)), None),
                    Err(s) => {
                        self.state = State::Secret(s);
                        return Ok(None);
                    }
                },
                State::Decrypt(mut d) => {
                    let Some(plain) = d.op.poll(self.private_ops) else {
                        self.state = State::Decrypt(d);
                        return Ok(None);
                    };
                    (
                        State::Done,
                        Some(self.on_secret_decrypted(d.secret, plain?)?),
                    )
                }
                State::Done | State::Failed => return Err(VtsError::Failed),
            };
            self.state = next;
            if done.is_some() {
                return Ok(done);
            }
        }
    }

    /// M2, then send M3 (§3.2).
    fn on_line(
        &mut self,
        s: ExpectServerLine,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Result<State, ExpectServerLine>, VtsError> {
        if !take_protocol_line(buf)? {
            return Ok(Err(s));
        }
        let mut rand_c = vec![0u8; RANDOM_LEN];
        self.rng.fill(&mut rand_c)?;
        let c = &self.config;
        let hello = tuple(vec![
            tuple(c.prf_hashes.iter().map(|h| st(h.name())).collect()),
            tuple(
                c.ciphers
                    .iter()
                    .map(|(alg, modes)| {
                        tuple(vec![
                            st(alg.name()),
                            tuple(modes.iter().map(|m| st(m.name())).collect()),
                        ])
                    })
                    .collect(),
            ),
            tuple(c.mac_hashes.iter().map(|h| st(h.name())).collect()),
            by(&rand_c),
            Entity::Int(i64::from(c.max_keylen)),
            Entity::Int(c.handshake_limit as i64),
        ]);
        out.extend_from_slice(&encode_bare(&hello)?);
        Ok(Ok(State::Hello(ExpectServerHello { rand_c })))
    }

    /// M4 (§3.3 client checks), then send M5 (§3.4).
    #[allow(clippy::type_complexity)]
    fn on_hello(
        &mut self,
        s: ExpectServerHello,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Result<(State, Option<Established>), ExpectServerHello>, VtsError> {
        let Some(m4) = self.reader.next(buf)? else {
            return Ok(Err(s));
        };
        let hello = check_server_hello(&self.config, &m4)?;
        let srand_c = self.send_client_secret(&hello, out)?;
        Ok(Ok(after_client_secret(
            self.key.is_some(),
            s.rand_c,
            hello,
            srand_c,
        )))
    }

    /// M5 (§3.4): the header (`srand_c`, the content key's random, the
    /// content hash) encrypted to the server key, the content sealed with
    /// the content key. Returns `srand_c`.
    fn send_client_secret(
        &mut self,
        hello: &ServerHello,
        out: &mut Vec<u8>,
    ) -> Result<Vec<u8>, VtsError> {
        let suite = &hello.suite;
        let mut srand_c = vec![0u8; RANDOM_LEN];
        self.rng.fill(&mut srand_c)?;
        let mut block_rand = vec![0u8; RANDOM_LEN];
        self.rng.fill(&mut block_rand)?;
        let content_bytes = encode_bare(&self.client_secret_content())?;
        let hash = content_hash(suite.mac_hash, &content_bytes);
        let header = tuple(vec![by(&srand_c), by(&block_rand), by(&hash)]);
        let enc_header = asym_encrypt(
            &hello.server_key,
            suite.mac_hash,
            &encode_bare(&header)?,
            self.rng.as_mut(),
        )?;
        let (ckey, civ) = content_key(suite, &block_rand, &srand_c);
        let mut sealer = Sealer::new(
            symmetric(suite.cipher, suite.mode, Direction::Encrypt, &ckey, &civ)?,
            suite.mac_hash,
            Vec::new(),
        );
        let mut enc_content = Vec::new();
        sealer.seal(&content_bytes, &mut enc_content)?;
        out.extend_from_slice(&encode_bare(&tuple(vec![
            by(&enc_header),
            by(&enc_content),
        ]))?);
        Ok(srand_c)
    }

    /// M5's content: our key and credentials in client-key mode, `None`
    /// and no credentials when anonymous (§3.4).
    fn client_secret_content(&self) -> Entity {
        let c = &self.config;
        tuple(vec![
            self.key
                .as_ref()
                .map_or(Entity::None, |k| key_entity(k.public())),
            credentials_entity(c.credentials.as_ref().filter(|_| self.key.is_some())),
            by(b""),
        ])
    }

    /// M6 (§3.5): refused by its length if a real server could not have
    /// sent it, else the private-key operation that recovers `srand_s`.
    fn on_secret(
        &mut self,
        s: Box<ExpectServerSecret>,
        buf: &mut BytesMut,
    ) -> Result<Result<DecryptSecret, Box<ExpectServerSecret>>, VtsError> {
        let Some(m6) = self.reader.next(buf)? else {
            return Ok(Err(s));
        };
        let key = self.key.as_ref().ok_or(VtsError::Failed)?;
        let Entity::Bytes(enc) = &m6 else {
            return Err(VtsError::BadHandshake("ServerSecret"));
        };
        check_ciphertext_len(
            enc.len(),
            max_enc_secret(key.public().size(), s.suite.mac_hash)?,
        )?;
        let job = PrivateOp::new(key.clone(), s.suite.mac_hash, enc.clone());
        Ok(Ok(DecryptSecret {
            secret: *s,
            op: PendingOp::new(job),
        }))
    }

    /// M6 decrypted: derive the session keys (§3.6).
    fn on_secret_decrypted(
        &self,
        s: ExpectServerSecret,
        plain: Vec<u8>,
    ) -> Result<Established, VtsError> {
        let inner = decode_exact(&plain, self.config.handshake_limit)?;
        let srand_s = as_random(&inner, "srand_s")?;
        let keys = derive_keys(&s.suite, &s.rand_c, &s.rand_s, &s.srand_c, Some(srand_s));
        Ok(Established {
            suite: s.suite,
            keys,
            peer: s.peer,
            wait_for_peer_record: false,
        })
    }
}

/// M4, checked (§3.3).
struct ServerHello {
    suite: Suite,
    rand_s: Vec<u8>,
    server_key: PublicKey,
    peer: PeerCredentials,
}

/// The client checks of M4 in the order of §3.3: shape, only what we
/// offered, limits, the server key, credentials, authorization.
fn check_server_hello(c: &VtsConfig, m4: &Entity) -> Result<ServerHello, VtsError> {
    // Step 1: shape.
    let v = as_tuple_n(m4, 9, "ServerHello")?;
    let prf = as_str(&v[0], "PRF hash")?;
    let cipher = as_str(&v[1], "cipher")?;
    let mode = as_str(&v[2], "mode")?;
    let mac = as_str(&v[3], "MAC hash")?;
    as_bytes(&v[4], "rand_s")?;
    as_tuple_n(&v[5], 2, "server key")?;
    // Step 2: only what we offered.
    let suite = offered_suite(c, prf, cipher, mode, mac)?;
    // Step 3.
    check_limit(&v[7], "max_keylen")?;
    check_limit(&v[8], "hshake_lim")?;
    let rand_s = as_random(&v[4], "rand_s")?.to_vec();
    // Steps 4–5: the key; 6–7: credentials and authorization.
    let server_key = parse_key(&v[5], &c.key_policy)?;
    let credentials = parse_credentials(&v[6])?;
    let peer = PeerCredentials {
        key: Some(server_key.clone()),
        credentials,
        suite,
    };
    if let Some(auth) = &c.authorizer {
        if !auth(&peer) {
            return Err(VtsError::Unauthorized);
        }
    }
    Ok(ServerHello {
        suite,
        rand_s,
        server_key,
        peer,
    })
}

/// The server's choice by name, refused unless we offered it (§3.3 step 2).
fn offered_suite(
    c: &VtsConfig,
    prf: &str,
    cipher: &str,
    mode: &str,
    mac: &str,
) -> Result<Suite, VtsError> {
    let suite = Suite {
        prf_hash: HashAlg::from_name(prf)
            .filter(|h| c.prf_hashes.contains(h))
            .ok_or(VtsError::BadHandshake("PRF hash not offered"))?,
        cipher: CipherAlg::from_name(cipher).ok_or(VtsError::BadHandshake("cipher not offered"))?,
        mode: Mode::from_name(mode).ok_or(VtsError::BadHandshake("mode not offered"))?,
        mac_hash: HashAlg::from_name(mac)
            .filter(|h| c.mac_hashes.contains(h))
            .ok_or(VtsError::BadHandshake("MAC hash not offered"))?,
    };
    if !c
        .ciphers
        .iter()
        .any(|(a, ms)| *a == suite.cipher && ms.contains(&suite.mode))
    {
        return Err(VtsError::BadHandshake("cipher/mode not offered"));
    }
    Ok(suite)
}

/// After M5: in client-key mode wait for M6; anonymous, the keys are ready
/// now, but no record may be sent before the server's first record (§3.7).
fn after_client_secret(
    client_key: bool,
    rand_c: Vec<u8>,
    hello: ServerHello,
    srand_c: Vec<u8>,
) -> (State, Option<Established>) {
    let ServerHello {
        suite,
        rand_s,
        peer,
        ..
    } = hello;
    if client_key {
        let secret = ExpectServerSecret {
            suite,
            rand_c,
            rand_s,
            srand_c,
            peer,
        };
        return (State::Secret(Box::new(secret)), None);
    }
    let keys = derive_keys(&suite, &rand_c, &rand_s, &srand_c, None);
    let established = Established {
        suite,
        keys,
        peer,
        wait_for_peer_record: true,
    };
    (State::Done, Some(established))
}
