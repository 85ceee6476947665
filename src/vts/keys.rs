//! RSA keys: our key pair ([`RsaKeyPair`]) and a peer's public key
//! ([`PublicKey`]) with the policy checks of `docs/protocol/vts.md` §3.3 step 4–5 and the
//! defaults of §10 #5: peer keys of at least 1024 bits by default (Versile
//! Python's own examples use 512-bit keys: [`KeyPolicy::legacy`] or
//! [`KeyPolicy::with_min_bits`] admit them), our own keys 2048 bits
//! ([`DEFAULT_KEY_BITS`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use num_bigint::{BigInt, Sign};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};

use super::error::VtsError;
use super::rsa_backend::{PrivateBackend, RsaBackend};

/// An RSA public key as VTS sees it: `(n, e)`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) key: RsaPublicKey,
}

impl PublicKey {
    /// Modulus, big-endian, minimal.
    pub fn n_bytes(&self) -> Vec<u8> {
        self.key.n_bytes().to_vec()
    }

    /// Public exponent, big-endian, minimal.
    pub fn e_bytes(&self) -> Vec<u8> {
        self.key.e_bytes().to_vec()
    }

    /// Modulus as an integer (for the VEC key tuple, §3.3).
    pub fn n(&self) -> BigInt {
        BigInt::from_bytes_be(Sign::Plus, &self.n_bytes())
    }

    /// Exponent as an integer.
    pub fn e(&self) -> BigInt {
        BigInt::from_bytes_be(Sign::Plus, &self.e_bytes())
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bit_width_vartime() as usize
    }

    /// `k`: the modulus length in bytes (§2.6).
    pub fn size(&self) -> usize {
        self.key.size()
    }

    /// PKCS#1 `RSAPublicKey` DER.
    pub fn to_pkcs1_der(&self) -> Vec<u8> {
        self.key
            .to_pkcs1_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// `SHA256:<hex>` over the PKCS#1 `RSAPublicKey` DER: a stable name for
    /// pinning and logs.
    pub fn fingerprint(&self) -> String {
        use digest::Digest;
        let h = sha2::Sha256::digest(self.to_pkcs1_der());
        let mut s = String::from("SHA256:");
        for b in h {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Build a peer key from wire integers, enforcing `policy`.
    pub fn from_wire(n: &BigInt, e: &BigInt, policy: &KeyPolicy) -> Result<Self, VtsError> {
        let refuse = |why: &str| VtsError::KeyRefused(why.to_owned());
        let (ns, nb) = n.to_bytes_be();
        let (es, eb) = e.to_bytes_be();
        if ns != Sign::Plus || es != Sign::Plus {
            return Err(refuse("non-positive key number"));
        }
        // Check the size before any big-number work on attacker input.
        let bits = n.bits() as usize;
        if bits > policy.max_bits {
            return Err(refuse("modulus too large"));
        }
        if bits < policy.min_bits {
            return Err(VtsError::KeyRefused(format!(
                "peer key has {bits} bits, below the minimum of {}; allow weaker keys with \
                 KeyPolicy::min_bits / --min-peer-key-bits",
                policy.min_bits
            )));
        }
        if e.bits() > 64 {
            return Err(refuse("exponent too large"));
        }
        let ev = u64::try_from(e).map_err(|_| refuse("exponent too large"))?;
        if ev % 2 == 0 || ev < policy.min_exponent || ev > policy.max_exponent {
            return Err(refuse("exponent outside policy"));
        }
        let n = BoxedUint::from_be_slice_vartime(&nb);
        let e = BoxedUint::from_be_slice_vartime(&eb);
        let key =
            RsaPublicKey::new_with_size_limits(n, e, policy.min_bits.max(1)..=policy.max_bits)
                .map_err(|err| refuse(&err.to_string()))?;
        Ok(PublicKey { key })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} bits, {})", self.bits(), self.fingerprint())
    }
}

/// Which peer keys we accept (`docs/protocol/vts.md` §10 #5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Smallest modulus in bits (default 1024; [`legacy`](Self::legacy)
    /// allows 512, the size Versile Python's examples use).
    pub min_bits: usize,
    /// Largest modulus in bits (default 4096, Python's `max_keylen`).
    pub max_bits: usize,
    /// Smallest public exponent (default 65537).
    pub min_exponent: u64,
    /// Largest public exponent (default 2^32 − 1).
    pub max_exponent: u64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            min_bits: DEFAULT_MIN_PEER_BITS,
            max_bits: 4096,
            min_exponent: 65537,
            max_exponent: u32::MAX as u64,
        }
    }
}

impl KeyPolicy {
    /// Accept moduli down to 512 bits (the keys of Versile Python's
    /// examples). Such keys are factorable; use only for interop tests.
    pub fn legacy() -> Self {
        Self::default().with_min_bits(512)
    }

    /// This policy with the smallest accepted modulus set to `bits`.
    pub fn with_min_bits(mut self, bits: usize) -> Self {
        self.min_bits = bits;
        self
    }
}

/// Default smallest peer modulus, bits ([`KeyPolicy::min_bits`]).
pub const DEFAULT_MIN_PEER_BITS: usize = 1024;

/// Size of the keys we generate by default (`versile keygen`, the
/// ephemeral key of `versile serve`), bits (§10 #5).
pub const DEFAULT_KEY_BITS: usize = 2048;

/// A PEM block with 64-column base64 (RFC 7468).
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Our RSA key pair. Cheap to clone.
#[derive(Clone)]
pub struct RsaKeyPair {
    pub(crate) private: Arc<RsaPrivateKey>,
    /// What runs the private operation, with its precomputed values.
    pub(crate) backend: Arc<PrivateBackend>,
    public: PublicKey,
    /// Private-key operations done with this key, shared by all clones.
    private_ops: Arc<AtomicU64>,
}

impl RsaKeyPair {
    fn from_private(private: RsaPrivateKey) -> Self {
        let public = PublicKey {
            key: private.to_public_key(),
        };
        RsaKeyPair {
            backend: Arc::new(PrivateBackend::best(&private)),
            private: Arc::new(private),
            public,
            private_ops: Arc::new(AtomicU64::new(0)),
        }
    }

    /// RSA private-key operations (one per decrypted block, `docs/protocol/vts.md` §2.6)
    /// done with this key and its clones so far: what peers made us spend.
    pub fn private_ops(&self) -> u64 {
        self.private_ops.load(Ordering::Relaxed)
    }

    /// Which implementation runs this key's private-key operations: the
    /// fastest available ([`RsaBackend::OpenSsl`] with feature
    /// `rsa-openssl`, else [`RsaBackend::FixedCrt`] for usual keys).
    pub fn rsa_backend(&self) -> RsaBackend {
        self.backend.kind()
    }

    /// This key with its private-key operations run by `backend` (for
    /// comparisons and benchmarks; [`rsa_backend`](Self::rsa_backend) is
    /// already the fastest). Clones share the operation count.
    pub fn with_rsa_backend(mut self, backend: RsaBackend) -> Result<Self, VtsError> {
        self.backend = Arc::new(PrivateBackend::with(&self.private, backend)?);
        Ok(self)
    }

    /// Count `n` private-key operations (called before they run).
    pub(crate) fn count_private_ops(&self, n: u64) {
        self.private_ops.fetch_add(n, Ordering::Relaxed);
    }

    /// Generate a new key of [`DEFAULT_KEY_BITS`] (2048) bits.
    /// Slow (around a second); run it off the async executor.
    pub fn generate_default() -> Result<Self, VtsError> {
        Self::generate(DEFAULT_KEY_BITS)
    }

    /// Generate a new key (`bits` ≥ 2048 recommended, §10 #5).
    /// Slow (seconds); run it off the async executor.
    pub fn generate(bits: usize) -> Result<Self, VtsError> {
        let mut rng = getrandom::SysRng;
        RsaPrivateKey::new(&mut rng, bits)
            .map(Self::from_private)
            .map_err(|e| VtsError::Key(e.to_string()))
    }

    /// Load a PEM private key: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8
    /// (`PRIVATE KEY`, unencrypted). Line width is not enforced (Python
    /// writes 76-column PEM, which strict RFC 7468 parsers refuse).
    pub fn from_pem(pem: &str) -> Result<Self, VtsError> {
        use base64::Engine;
        let bad = |why: &str| VtsError::Key(format!("PEM: {why}"));
        let begin = pem
            .find("-----BEGIN ")
            .ok_or_else(|| bad("no BEGIN line"))?;
        let rest = &pem[begin + 11..];
        let label_end = rest.find("-----").ok_or_else(|| bad("bad BEGIN line"))?;
        let label = &rest[..label_end];
        let body = &rest[label_end + 5..];
        let end = body
            .find(&format!("-----END {label}-----"))
            .ok_or_else(|| bad("no END line"))?;
        let b64: String = body[..end].split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad("bad base64"))?;
        let key = match label {
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| e.to_string()),
            "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| e.to_string()),
            _ => return Err(bad("not an RSA private key")),
        };
        key.map(Self::from_private).map_err(VtsError::Key)
    }

    /// Load a DER private key: PKCS#1 `RSAPrivateKey` or PKCS#8.
    pub fn from_der(der: &[u8]) -> Result<Self, VtsError> {
        RsaPrivateKey::from_pkcs1_der(der)
            .or_else(|_| RsaPrivateKey::from_pkcs8_der(der))
            .map(Self::from_private)
            .map_err(|e| VtsError::Key(e.to_string()))
    }

    /// Load a PEM or DER key file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, VtsError> {
        let data = std::fs::read(path).map_err(|e| VtsError::Key(e.to_string()))?;
        match std::str::from_utf8(&data) {
            Ok(s) if s.contains("-----BEGIN") => Self::from_pem(s),
            _ => Self::from_der(&data),
        }
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`, unencrypted).
    pub fn to_pkcs8_pem(&self) -> Result<String, VtsError> {
        use rsa::pkcs8::EncodePrivateKey;
        let der = self
            .private
            .to_pkcs8_der()
            .map_err(|e| VtsError::Key(e.to_string()))?;
        Ok(pem_block("PRIVATE KEY", der.as_bytes()))
    }

    /// The private key as PKCS#1 PEM (`RSA PRIVATE KEY`, what Versile
    /// Python's `VX509Crypto.import_private_key` reads).
    pub fn to_pkcs1_pem(&self) -> Result<String, VtsError> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let der = self
            .private
            .to_pkcs1_der()
            .map_err(|e| VtsError::Key(e.to_string()))?;
        Ok(pem_block("RSA PRIVATE KEY", der.as_bytes()))
    }

    /// The private key as PKCS#8 DER (for `TlsServerConfig::self_signed_with_key`:
    /// one key, one pin for VTS and TLS).
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, VtsError> {
        use rsa::pkcs8::EncodePrivateKey;
        self.private
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| VtsError::Key(e.to_string()))
    }

    /// The private key as PKCS#1 DER.
    pub fn to_pkcs1_der(&self) -> Result<Vec<u8>, VtsError> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        self.private
            .to_pkcs1_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| VtsError::Key(e.to_string()))
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Fingerprint of the public key (see [`PublicKey::fingerprint`]).
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint()
    }
}

impl fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaKeyPair({:?})", self.public)
    }
}
