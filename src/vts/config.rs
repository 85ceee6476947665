//! [`VtsConfig`]: algorithm preferences, limits, key policy and the
//! authorization hook (`docs/protocol/vts.md` §5.3, §6, §10).

use std::fmt;
use std::sync::Arc;

use super::cipher::{CipherAlg, Mode};
use super::hash::HashAlg;
use super::keys::{KeyPolicy, PublicKey};

/// What the peer presented in its credentials element (`docs/protocol/vts.md` §3.8).
///
/// Certificate chains are **not validated** by this implementation: they
/// are recorded as the peer's unverified claim, like identities. Only the
/// RSA key is authenticated by the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `(false, name_der)`: an identity claim, DER of an X.501 Name.
    Identity(Vec<u8>),
    /// `(true, (cert_der, ...))`: a certificate chain, leaf first.
    Certificates(Vec<Vec<u8>>),
}

/// The negotiated algorithms (`docs/protocol/vts.md` §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// Hash of the PRF that derives the session keys (§2.3, §3.6).
    pub prf_hash: HashAlg,
    /// Symmetric cipher of the records (§2.4).
    pub cipher: CipherAlg,
    /// Block mode of that cipher.
    pub mode: Mode,
    /// Hash of the message MACs (VHMAC, §2.2) and of the M5 content hash.
    pub mac_hash: HashAlg,
}

/// What a finished handshake learned about the peer; recorded in the
/// connection's extensions by the VOP transports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The peer's RSA public key: always set for a server peer, `None` for
    /// an anonymous client.
    pub key: Option<PublicKey>,
    /// Unverified identity claim or certificate chain (§3.8).
    pub credentials: Option<Credentials>,
    /// The algorithms in use.
    pub suite: Suite,
}

/// Decides whether a peer is acceptable once its key and credentials have
/// been checked (Python's `VAuth.accept_credentials`, `docs/protocol/vop-service.md` §5.4).
pub type Authorizer = Arc<dyn Fn(&PeerCredentials) -> bool + Send + Sync>;

/// Settings for one side of VTS.
#[derive(Clone)]
pub struct VtsConfig {
    /// PRF hashes, preference order (`hhashes`).
    pub prf_hashes: Vec<HashAlg>,
    /// Ciphers and their modes, preference order.
    pub ciphers: Vec<(CipherAlg, Vec<Mode>)>,
    /// MAC hashes, preference order (`hashes`).
    pub mac_hashes: Vec<HashAlg>,
    /// Which peer keys are acceptable (§10 #5).
    pub key_policy: KeyPolicy,
    /// Largest peer modulus advertised in our hello, bytes (informational).
    pub max_keylen: u32,
    /// Largest handshake entity we accept, bytes (§6).
    pub handshake_limit: usize,
    /// Largest record plaintext we send (≤ 65536; Python sends ≤ 16384).
    pub max_send_record: usize,
    /// Largest record plaintext we accept (≤ 65536, §4).
    pub max_recv_record: usize,
    /// Credentials we present (`None`: `VNone`).
    pub credentials: Option<Credentials>,
    /// Server only: refuse clients without a key.
    pub require_peer_key: bool,
    /// Final say on the peer (pinning, known keys, ...).
    pub authorizer: Option<Authorizer>,
    /// Bytes allowed per direction under one key of a 64-bit-block cipher
    /// (Blowfish) before the connection is closed (`docs/protocol/vts.md` §10 #9,
    /// Sweet32: VTS has no rekeying, so the only remedy is a new
    /// connection). `None` disables the limit.
    pub max_bytes_64bit_cipher: Option<u64>,
    /// Threads that run RSA private-key operations (the server's M5 header,
    /// a client-key client's M6), one pool per transport shared by all its
    /// connections ([`RsaPool`](super::rsa_pool::RsaPool)). Default: the
    /// CPU count, so a flood of bogus key exchanges can keep at most the
    /// CPUs busy, never more, and accepts, live links and the async
    /// workers still get their share of time.
    pub rsa_workers: usize,
    /// RSA jobs that may wait for a worker; when full, the handshake is
    /// refused ([`VtsError::RsaBusy`](super::VtsError::RsaBusy), metric
    /// `versile_limits_exceeded_total{limit="rsa_queue"}`), after the
    /// newest job of the address with the most queued jobs was dropped
    /// instead if that is another address. Default 64: with 2048-bit keys
    /// (about 1–2 ms per operation) at most ~100 ms of work per worker,
    /// well inside the handshake timeout, and room for bursts of real
    /// clients.
    pub rsa_queue: usize,
    /// RSA workers that one peer address can never occupy all at once: a
    /// flood from one address leaves them to other addresses' handshakes
    /// (each address may use at least one worker). Default 1: on 2 CPUs a
    /// flooding address gets one worker and real clients the other; set 0
    /// when all clients arrive from one address (a load balancer without
    /// PROXY protocol).
    pub rsa_reserved_workers: usize,
    /// Time limit for the whole VTS handshake (hello to the first record
    /// keys), default [`DEFAULT_HANDSHAKE_TIMEOUT`](super::stream::DEFAULT_HANDSHAKE_TIMEOUT):
    /// a peer that stalls in the middle is closed then, its RSA job dropped.
    pub handshake_timeout: std::time::Duration,
}

/// Default [`VtsConfig::max_bytes_64bit_cipher`]: 1 GiB per direction
/// (2²⁷ blocks; the birthday bound is at 2³²).
pub const DEFAULT_MAX_BYTES_64BIT_CIPHER: u64 = 1 << 30;

impl Default for VtsConfig {
    /// Python's defaults (§5.3) with AES-256 preferred where the peer
    /// offers it, and the stricter key policy of §10 #5.
    fn default() -> Self {
        VtsConfig {
            prf_hashes: vec![HashAlg::Sha256],
            ciphers: vec![
                (CipherAlg::Aes256, vec![Mode::Cbc, Mode::Ofb]),
                (CipherAlg::Blowfish, vec![Mode::Cbc, Mode::Ofb]),
                (CipherAlg::Blowfish128, vec![Mode::Cbc, Mode::Ofb]),
            ],
            mac_hashes: vec![HashAlg::Sha1],
            key_policy: KeyPolicy::default(),
            max_keylen: 512,
            handshake_limit: 16384,
            max_send_record: 16384,
            max_recv_record: 65536,
            credentials: None,
            require_peer_key: false,
            authorizer: None,
            max_bytes_64bit_cipher: Some(DEFAULT_MAX_BYTES_64BIT_CIPHER),
            rsa_workers: super::rsa_pool::default_rsa_workers(),
            rsa_queue: super::rsa_pool::DEFAULT_RSA_QUEUE,
            rsa_reserved_workers: super::rsa_pool::DEFAULT_RSA_RESERVED_WORKERS,
            handshake_timeout: super::stream::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl VtsConfig {
    /// Accept the peer only if its key has this fingerprint
    /// ([`PublicKey::fingerprint`], `SHA256:<hex>`; case-insensitive).
    /// Combines with an [`authorizer`](Self::authorizer): both must accept.
    pub fn pin_peer_key(self, fingerprint: impl Into<String>) -> Self {
        let fp = fingerprint.into().to_ascii_lowercase();
        self.authorizer(move |p: &PeerCredentials| {
            p.key
                .as_ref()
                .is_some_and(|k| k.fingerprint().to_ascii_lowercase() == fp)
        })
    }

    /// Use `f` to accept or refuse peers (Python's
    /// `VAuth.accept_credentials`), after the key policy. Combines with an
    /// authorizer or pin set before: every one must accept.
    pub fn authorizer(
        mut self,
        f: impl Fn(&PeerCredentials) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorizer = Some(match self.authorizer.take() {
            None => Arc::new(f),
            Some(prev) => Arc::new(move |p: &PeerCredentials| prev(p) && f(p)),
        });
        self
    }

    /// Size the RSA private-key pool: `workers` threads, `queue` waiting
    /// jobs ([`rsa_workers`](Self::rsa_workers), [`rsa_queue`](Self::rsa_queue)).
    pub fn rsa_pool(mut self, workers: usize, queue: usize) -> Self {
        self.rsa_workers = workers;
        self.rsa_queue = queue;
        self
    }

    /// Set the peer key policy.
    pub fn key_policy(mut self, policy: KeyPolicy) -> Self {
        self.key_policy = policy;
        self
    }
}

impl fmt::Debug for VtsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VtsConfig")
            .field("prf_hashes", &self.prf_hashes)
            .field("ciphers", &self.ciphers)
            .field("mac_hashes", &self.mac_hashes)
            .field("key_policy", &self.key_policy)
            .field("authorizer", &self.authorizer.is_some())
            .field("rsa_workers", &self.rsa_workers)
            .field("rsa_queue", &self.rsa_queue)
            .field("rsa_reserved_workers", &self.rsa_reserved_workers)
            .finish()
    }
}
