//! The VTS RSA block cipher and asymmetric entity encryption
//! (`docs/protocol/vts.md` §2.6). Not PKCS#1 v1.5 and not OAEP: raw RSA over the block
//! layout `02 || (P_i XOR IV_i) || 00 || R_i` (8 random bytes), CBC-chained
//! on the first `k − 11` bytes of each ciphertext block, IV all zero.
//!
//! The raw RSA public operation is `rsa` 0.10's hazmat function; the
//! private operation is the key's `rsa_backend` (OpenSSL with feature
//! `rsa-openssl`, else `rsa_crt`: precomputed CRT values, constant-time
//! `crypto-bigint` arithmetic, base and exponent blinding with fresh OS
//! randomness; `rsa`'s for keys neither takes). Decryption runs
//! every block and the MAC check before failing, with one uniform error
//! (§10 #4).

use rsa::hazmat::rsa_encrypt;
use rsa::traits::PublicKeyParts;
use rsa::BoxedUint;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::error::VtsError;
use super::hash::HashAlg;
use super::keys::{PublicKey, RsaKeyPair};
use super::message::{frame, unframe};
use super::random::RandomSource;

/// Bytes of fresh randomness at the end of each block.
pub(crate) const TAIL: usize = 8;

/// `(k, B)`: ciphertext and plaintext block sizes for a key (§2.6).
fn sizes(key: &impl PublicKeyParts) -> Result<(usize, usize), VtsError> {
    let k = key.size();
    // The message decoder needs the 2-byte length in the first block.
    if k < 13 {
        return Err(VtsError::Key("RSA modulus too small for VTS".into()));
    }
    Ok((k, k - 11))
}

/// RSA-CBC encrypt `data` (a multiple of `k − 11` bytes) under `key`.
pub(crate) fn encrypt_blocks(
    key: &PublicKey,
    data: &[u8],
    rng: &mut dyn RandomSource,
) -> Result<Vec<u8>, VtsError> {
    let (k, b) = sizes(&key.key)?;
    if !data.len().is_multiple_of(b) {
        return Err(VtsError::BadLength);
    }
    let prec = key.key.n_bits_precision();
    let mut iv = vec![0u8; b];
    let mut out = Vec::with_capacity(data.len() / b * k);
    for p in data.chunks_exact(b) {
        let mut m = Vec::with_capacity(k - 1);
        m.push(0x02);
        m.extend(p.iter().zip(&iv).map(|(x, y)| x ^ y));
        m.push(0x00);
        let mut tail = [0u8; TAIL];
        rng.fill(&mut tail)?;
        m.extend_from_slice(&tail);
        // m < 2^(8(k-1)) <= n: always a valid representative.
        let m = BoxedUint::from_be_slice(&m, prec).map_err(|_| VtsError::BadLength)?;
        let c = rsa_encrypt(&key.key, &m).map_err(|e| VtsError::Key(e.to_string()))?;
        let c = c.to_be_bytes();
        let c = &c[c.len() - k..];
        iv.copy_from_slice(&c[..b]);
        out.extend_from_slice(c);
    }
    Ok(out)
}

/// RSA-CBC decrypt `data` (a multiple of `k` bytes) with our private key.
/// Every block is processed; the result is `Err(RsaDecrypt)` if any failed.
pub(crate) fn decrypt_blocks(key: &RsaKeyPair, data: &[u8]) -> Result<Vec<u8>, VtsError> {
    let private = &*key.private;
    let (k, b) = sizes(private)?;
    if data.is_empty() || !data.len().is_multiple_of(k) {
        return Err(VtsError::RsaDecrypt);
    }
    key.count_private_ops((data.len() / k) as u64);
    let mut ok = Choice::from(1u8);
    let mut iv = vec![0u8; b];
    let mut out = Vec::with_capacity(data.len() / k * b);
    for c in data.chunks_exact(k) {
        // c < n is checked by every backend (and fails the block).
        let bytes = match key.backend.decrypt(private, c) {
            Some(m) => m,
            None => {
                ok &= Choice::from(0u8);
                Zeroizing::new(vec![0u8; k])
            }
        };
        // m < 2^(8(k-1)): every byte above the last k−1 is zero.
        let (high, low) = bytes.split_at(bytes.len().saturating_sub(k - 1));
        for h in high {
            ok &= h.ct_eq(&0);
        }
        if low.len() != k - 1 {
            return Err(VtsError::RsaDecrypt);
        }
        ok &= low[0].ct_eq(&0x02);
        ok &= low[k - 1 - TAIL - 1].ct_eq(&0x00);
        out.extend(low[1..1 + b].iter().zip(&iv).map(|(x, y)| x ^ y));
        iv.copy_from_slice(&c[..b]);
    }
    if bool::from(ok) {
        Ok(out)
    } else {
        Err(VtsError::RsaDecrypt)
    }
}

/// Ciphertext length of `AsymEnc` of a `plaintext_len`-byte entity under a
/// key of `k` bytes (§2.6: `(2 + len + L + pad) / (k − 11) * k`).
pub(crate) fn asym_ciphertext_len(k: usize, mac_hash: HashAlg, plaintext_len: usize) -> usize {
    let b = k.saturating_sub(11).max(1);
    (2 + plaintext_len + mac_hash.output_len()).div_ceil(b) * k
}

/// `AsymEnc(pub, plaintext)` (§2.6): seal with empty MAC key and counter 0,
/// then RSA-CBC.
pub fn asym_encrypt(
    key: &PublicKey,
    mac_hash: HashAlg,
    plaintext: &[u8],
    rng: &mut dyn RandomSource,
) -> Result<Vec<u8>, VtsError> {
    let (_, b) = sizes(&key.key)?;
    let framed = frame(mac_hash, b"", 0, plaintext, b)?;
    encrypt_blocks(key, &framed, rng)
}

/// `AsymDec` (§2.6): the whole input must be exactly one message. RSA
/// format errors and MAC errors are reported identically.
pub fn asym_decrypt(
    key: &RsaKeyPair,
    mac_hash: HashAlg,
    ciphertext: &[u8],
) -> Result<Vec<u8>, VtsError> {
    let (_, b) = sizes(&*key.private)?;
    let blocks = decrypt_blocks(key, ciphertext);
    let framed = match &blocks {
        Ok(f) => f.as_slice(),
        Err(_) => &[0u8; 2][..],
    };
    let opened = unframe(mac_hash, b"", 0, framed, b);
    match (blocks, opened) {
        (Ok(_), Ok(p)) => Ok(p),
        _ => Err(VtsError::RsaDecrypt),
    }
}
