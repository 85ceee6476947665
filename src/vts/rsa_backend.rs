//! Which code runs our raw RSA private-key operation (`AsymDec`,
//! `docs/protocol/vts.md` §2.6), chosen once when the key is loaded.
//!
//! ```text
//! RsaKeyPair::from_* ─► PrivateBackend::best(key)
//!    OpenSsl   feature `rsa-openssl` and OpenSSL loads the key (rsa_openssl)
//!    FixedCrt  two-prime 1024/2048/3072/4096-bit key, e < 2⁶⁴   (rsa_crt)
//!    Generic   anything else: `rsa` 0.10's rsa_decrypt_and_check
//! rsa_block::decrypt_blocks ─► PrivateBackend::decrypt(c) per block
//! ```
//!
//! All three are constant-time, blind the base with fresh OS randomness
//! and never release an unchecked CRT result; SECURITY.md compares them.

use rsa::hazmat::rsa_decrypt_and_check;
use rsa::traits::PublicKeyParts;
use rsa::BoxedUint;
use zeroize::Zeroizing;

use super::error::VtsError;
use super::rsa_crt::CrtKey;
#[cfg(feature = "rsa-openssl")]
use super::rsa_openssl::OpensslKey;

/// Which implementation runs an [`RsaKeyPair`](super::RsaKeyPair)'s
/// private-key operations ([`RsaKeyPair::rsa_backend`](super::RsaKeyPair::rsa_backend)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RsaBackend {
    /// The system's OpenSSL (feature `rsa-openssl`, on in the `versile`
    /// binary): assembly Montgomery arithmetic, about 4× faster than
    /// [`FixedCrt`](Self::FixedCrt) for 2048-bit keys.
    OpenSsl,
    /// Pure Rust, fixed-size `crypto-bigint` CRT with precomputed values,
    /// base and exponent blinding (two-prime keys of 1024, 2048, 3072 or
    /// 4096 bits). The default without `rsa-openssl`.
    FixedCrt,
    /// `rsa` 0.10's `rsa_decrypt_and_check` (any key; slowest).
    Generic,
}

/// The chosen implementation with what it precomputed for the key.
pub(crate) enum PrivateBackend {
    #[cfg(feature = "rsa-openssl")]
    OpenSsl(OpensslKey),
    FixedCrt(CrtKey),
    Generic,
}

impl PrivateBackend {
    /// The fastest backend that takes `key`.
    pub(crate) fn best(key: &rsa::PrivateKey) -> Self {
        #[cfg(feature = "rsa-openssl")]
        if let Some(k) = OpensslKey::new(key) {
            return PrivateBackend::OpenSsl(k);
        }
        match CrtKey::new(key) {
            Some(k) => PrivateBackend::FixedCrt(k),
            None => PrivateBackend::Generic,
        }
    }

    /// `backend` for `key`, or why it cannot be used.
    pub(crate) fn with(key: &rsa::PrivateKey, backend: RsaBackend) -> Result<Self, VtsError> {
        let unavailable = |why: &str| VtsError::Key(format!("RSA backend {backend:?}: {why}"));
        match backend {
            #[cfg(feature = "rsa-openssl")]
            RsaBackend::OpenSsl => OpensslKey::new(key)
                .map(PrivateBackend::OpenSsl)
                .ok_or_else(|| unavailable("OpenSSL refused the key")),
            #[cfg(not(feature = "rsa-openssl"))]
            RsaBackend::OpenSsl => Err(unavailable("built without feature `rsa-openssl`")),
            RsaBackend::FixedCrt => CrtKey::new(key)
                .map(PrivateBackend::FixedCrt)
                .ok_or_else(|| unavailable("not a two-prime key of 1024-4096 bits")),
            RsaBackend::Generic => Ok(PrivateBackend::Generic),
        }
    }

    pub(crate) fn kind(&self) -> RsaBackend {
        match self {
            #[cfg(feature = "rsa-openssl")]
            PrivateBackend::OpenSsl(_) => RsaBackend::OpenSsl,
            PrivateBackend::FixedCrt(_) => RsaBackend::FixedCrt,
            PrivateBackend::Generic => RsaBackend::Generic,
        }
    }

    /// `c^d mod n` for one block `c` (`k` big-endian bytes) of `key`, as
    /// big-endian bytes; `None` if `c ≥ n` or the operation failed.
    pub(crate) fn decrypt(&self, key: &rsa::PrivateKey, c: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        match self {
            #[cfg(feature = "rsa-openssl")]
            PrivateBackend::OpenSsl(k) => k.decrypt(c),
            PrivateBackend::FixedCrt(k) => k.decrypt(c),
            PrivateBackend::Generic => {
                let c = BoxedUint::from_be_slice(c, key.n_bits_precision()).ok()?;
                let m = rsa_decrypt_and_check(key, Some(&mut getrandom::SysRng), &c).ok()?;
                Some(Zeroizing::new(m.to_be_bytes().to_vec()))
            }
        }
    }
}
