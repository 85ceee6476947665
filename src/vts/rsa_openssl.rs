//! The raw RSA private-key operation of `AsymDec` (`docs/protocol/vts.md` §2.6) on the
//! system's OpenSSL (feature `rsa-openssl`), through the `openssl` crate's
//! safe `Rsa::private_decrypt` with `Padding::NONE`: `m = c^d mod n`, no
//! padding checked (the VTS block layout is checked by `rsa_block`).
//!
//! ```text
//! key loaded: rsa::PrivateKey ─► PKCS#1 DER ─► openssl Rsa<Private> (once)
//! one block c (k bytes, public) ─► RSA_private_decrypt(NO_PADDING) ─► m (k bytes)
//! ```
//!
//! What OpenSSL does inside (`crypto/rsa/rsa_ossl.c` of OpenSSL 3.0,
//! `rsa_ossl_private_decrypt` and `rsa_ossl_mod_exp`):
//!
//! - refuses `c ≥ n` (`RSA_R_DATA_TOO_LARGE_FOR_MODULUS`);
//! - base blinding (`RSA_FLAG_NO_BLINDING` is not set on keys it loads):
//!   `c · rᵉ`, unblinded with `r⁻¹`, the pair squared after each use and
//!   drawn afresh after 32 (`BN_BLINDING_update`, as `rsa_crt` does);
//! - constant-time CRT exponentiations (`BN_FLG_CONSTTIME` on `p`, `q`,
//!   `dₚ`, `d_q`: `BN_mod_exp_mont_consttime`, or the RSAZ assembly for
//!   1024-bit halves, AVX-512 IFMA or AVX2 where the CPU has them);
//! - the CRT fault check: `mᵉ ≡ c (mod n)`, and on a mismatch the result is
//!   recomputed without CRT (constant-time, with `d`) instead of releasing
//!   the faulty one. `rsa_crt` fails the block instead; either way a wrong
//!   CRT half never leaves the process.
//!
//! Not done by OpenSSL: exponent blinding (`rsa_crt` adds 64 random bits to
//! `dₚ`, `d_q`); with constant-time exponentiation and a blinded base it
//! guards against local side channels only, which is also `ring`'s and
//! BoringSSL's position.

use openssl::pkey::Private;
use openssl::rsa::{Padding, Rsa};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

/// Our private key as OpenSSL holds it.
pub(crate) struct OpensslKey {
    rsa: Rsa<Private>,
    /// Modulus length in bytes.
    k: usize,
}

impl OpensslKey {
    /// Load `key` into OpenSSL; `None` if OpenSSL refuses it (the caller
    /// falls back to the pure-Rust path).
    pub(crate) fn new(key: &rsa::PrivateKey) -> Option<Self> {
        let der = key.to_pkcs1_der().ok()?;
        let rsa = Rsa::private_key_from_der(der.as_bytes()).ok()?;
        let k = key.size();
        (rsa.size() as usize == k).then_some(OpensslKey { rsa, k })
    }

    /// `c^d mod n` for the big-endian `c` (exactly `k` bytes), as `k`
    /// big-endian bytes; `None` if `c ≥ n` or OpenSSL failed.
    pub(crate) fn decrypt(&self, c: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if c.len() != self.k {
            return None;
        }
        let mut out = Zeroizing::new(vec![0u8; self.k]);
        // Errors drain OpenSSL's per-thread error queue (`ErrorStack::get`),
        // so a failed block leaves nothing behind for the next operation.
        let n = self.rsa.private_decrypt(c, &mut out, Padding::NONE).ok()?;
        (n == self.k).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::hazmat::rsa_encrypt;
    use rsa::BoxedUint;

    fn check(key: &rsa::PrivateKey) {
        let ossl = OpensslKey::new(key).expect("OpenSSL loads the key");
        let k = key.size();
        for fill in [0u8, 1, 0x5a, 0xff] {
            let mut m = vec![fill; k];
            m[0] = 0;
            let mb = BoxedUint::from_be_slice(&m, key.n_bits_precision()).unwrap();
            let c = rsa_encrypt(key, &mb).unwrap().to_be_bytes();
            let c = &c[c.len() - k..];
            assert_eq!(&ossl.decrypt(c).expect("decrypts")[..], &m[..]);
        }
        // c ≥ n and a wrong length are refused.
        let n = key.n().as_ref().to_be_bytes();
        assert!(ossl.decrypt(&n[n.len() - k..]).is_none());
        assert!(ossl.decrypt(&vec![0xff; k]).is_none());
        assert!(ossl.decrypt(&vec![0x01; k - 1]).is_none());
    }

    #[test]
    fn matches_raw_rsa_on_the_vector_key_and_a_fresh_2048_bit_key() {
        use rsa::pkcs8::DecodePrivateKey;
        let key = crate::vts::RsaKeyPair::from_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/spec/vts-vector-server-key.pem"
        ))
        .unwrap();
        check(&rsa::PrivateKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap());
        let key = crate::vts::RsaKeyPair::generate(2048).unwrap();
        check(&rsa::PrivateKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap());
    }
}
