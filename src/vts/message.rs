//! The VCA encrypted-message format (`docs/protocol/vts.md` §2.5): seal and incremental
//! open over any [`BlockTransform`].
//!
//! ```text
//! T( LEN2 || P || PAD || VHMAC_H(K, minBE(n) || LEN2 || P || PAD) )
//! ```
//! `LEN2` is `len(P) - 1` (so 1..=65536 bytes fit), `PAD` zero bytes up to
//! the transform's block size, `n` a per-direction message counter. Padding
//! is MAC-covered and never checked separately (§10 #8).

use bytes::{Buf, BytesMut};
use subtle::ConstantTimeEq;

use super::cipher::BlockTransform;
use super::error::VtsError;
use super::hash::HashAlg;
use super::vhmac::vhmac;

/// Largest plaintext of one message (the 16-bit length field stores len − 1).
pub const MAX_MESSAGE: usize = 65536;

/// `minBE(n)`: big-endian, minimal, at least one byte (`docs/protocol/vts.md` conventions).
pub fn min_be(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

/// Number of zero pad bytes for a plaintext of `plen` bytes (§2.5).
fn pad_len(plen: usize, mac_len: usize, block: usize) -> usize {
    (block - (2 + plen + mac_len) % block) % block
}

/// `LEN2 || P || PAD || MAC` before the transform (§2.5 Seal).
pub(crate) fn frame(
    hash: HashAlg,
    mac_key: &[u8],
    seq: u64,
    plaintext: &[u8],
    block: usize,
) -> Result<Vec<u8>, VtsError> {
    if plaintext.is_empty() || plaintext.len() > MAX_MESSAGE || block == 0 {
        return Err(VtsError::BadLength);
    }
    let len2 = u16::try_from(plaintext.len() - 1).map_err(|_| VtsError::BadLength)?;
    let pad = pad_len(plaintext.len(), hash.output_len(), block);
    let mut out = Vec::with_capacity(2 + plaintext.len() + pad + hash.output_len());
    out.extend_from_slice(&len2.to_be_bytes());
    out.extend_from_slice(plaintext);
    out.resize(out.len() + pad, 0);
    let mac = vhmac(hash, mac_key, &[&min_be(seq), &out]);
    out.extend_from_slice(&mac);
    Ok(out)
}

/// Check the MAC of a complete decrypted frame and return the plaintext.
/// The comparison is constant-time.
pub(crate) fn unframe(
    hash: HashAlg,
    mac_key: &[u8],
    seq: u64,
    framed: &[u8],
    block: usize,
) -> Result<Vec<u8>, VtsError> {
    let l = hash.output_len();
    if framed.len() < 2 {
        return Err(VtsError::BadLength);
    }
    let plen = usize::from(u16::from_be_bytes([framed[0], framed[1]])) + 1;
    let total = 2 + plen + pad_len(plen, l, block) + l;
    if framed.len() != total {
        return Err(VtsError::BadLength);
    }
    let (body, mac) = framed.split_at(total - l);
    let expect = vhmac(hash, mac_key, &[&min_be(seq), body]);
    if !bool::from(expect.ct_eq(mac)) {
        return Err(VtsError::BadMac);
    }
    Ok(body[2..2 + plen].to_vec())
}

/// Seals messages in one direction (§2.5 Seal).
pub struct Sealer {
    t: Box<dyn BlockTransform>,
    hash: HashAlg,
    mac_key: Vec<u8>,
    seq: u64,
}

impl Sealer {
    /// A sealer over block transform `t` (the direction's encrypter), MACs
    /// with `hash` keyed by `mac_key`; its sequence number starts at 0.
    pub fn new(t: Box<dyn BlockTransform>, hash: HashAlg, mac_key: Vec<u8>) -> Self {
        Sealer {
            t,
            hash,
            mac_key,
            seq: 0,
        }
    }

    /// Seal `plaintext` (1..=65536 bytes), appending the ciphertext to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), VtsError> {
        let framed = frame(
            self.hash,
            &self.mac_key,
            self.seq,
            plaintext,
            self.t.block_len(),
        )?;
        self.t.transform(&framed, out)?;
        self.seq += 1;
        Ok(())
    }
}

/// Opens messages in one direction, incrementally (§2.5 Open).
pub struct Opener {
    t: Box<dyn BlockTransform>,
    hash: HashAlg,
    mac_key: Vec<u8>,
    seq: u64,
    max_plaintext: usize,
    /// Decrypted first block of the message in progress, and the number of
    /// ciphertext bytes still needed for it.
    partial: Option<(Vec<u8>, usize)>,
}

impl Opener {
    /// An opener accepting plaintexts up to `max_plaintext` (≤ 65536) bytes.
    pub fn new(
        t: Box<dyn BlockTransform>,
        hash: HashAlg,
        mac_key: Vec<u8>,
        max_plaintext: usize,
    ) -> Self {
        Opener {
            t,
            hash,
            mac_key,
            seq: 0,
            max_plaintext: max_plaintext.clamp(1, MAX_MESSAGE),
            partial: None,
        }
    }

    /// Open the next message from the front of `buf`: `Ok(None)` if it is
    /// incomplete (its bytes may have been consumed into the opener).
    pub fn open(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, VtsError> {
        let b = self.t.block_len();
        let bo = self.t.out_block_len();
        if self.partial.is_none() {
            if buf.len() < bo {
                return Ok(None);
            }
            let mut first = Vec::with_capacity(b);
            self.t.transform(&buf[..bo], &mut first)?;
            buf.advance(bo);
            if first.len() < 2 {
                return Err(VtsError::BadLength);
            }
            let plen = usize::from(u16::from_be_bytes([first[0], first[1]])) + 1;
            // Cap the declared length at our own limit before waiting for
            // it (§10 #7).
            if plen > self.max_plaintext {
                return Err(VtsError::BadLength);
            }
            let l = self.hash.output_len();
            let total = 2 + plen + pad_len(plen, l, b) + l;
            let remaining = (total / b) * bo - bo;
            self.partial = Some((first, remaining));
        }
        let Some((_, remaining)) = &self.partial else {
            return Ok(None);
        };
        let remaining = *remaining;
        if buf.len() < remaining {
            return Ok(None);
        }
        let Some((mut framed, _)) = self.partial.take() else {
            return Ok(None);
        };
        self.t.transform(&buf[..remaining], &mut framed)?;
        buf.advance(remaining);
        let p = unframe(self.hash, &self.mac_key, self.seq, &framed, b)?;
        self.seq += 1;
        Ok(Some(p))
    }

    /// Whether part of a message has been consumed.
    pub fn has_partial(&self) -> bool {
        self.partial.is_some()
    }
}
