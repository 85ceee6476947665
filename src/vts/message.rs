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
    let mut out = Vec::new();
    frame_into(hash, mac_key, seq, plaintext, block, &mut out)?;
    Ok(out)
}

/// [`frame`], appended to `out` (nothing appended on an error).
fn frame_into(
    hash: HashAlg,
    mac_key: &[u8],
    seq: u64,
    plaintext: &[u8],
    block: usize,
    out: &mut Vec<u8>,
) -> Result<(), VtsError> {
    if plaintext.is_empty() || plaintext.len() > MAX_MESSAGE || block == 0 {
        return Err(VtsError::BadLength);
    }
    let len2 = u16::try_from(plaintext.len() - 1).map_err(|_| VtsError::BadLength)?;
    let pad = pad_len(plaintext.len(), hash.output_len(), block);
    let start = out.len();
    out.reserve(2 + plaintext.len() + pad + hash.output_len());
    out.extend_from_slice(&len2.to_be_bytes());
    out.extend_from_slice(plaintext);
    out.resize(out.len() + pad, 0);
    let mac = vhmac(hash, mac_key, &[&min_be(seq), &out[start..]]);
    out.extend_from_slice(&mac);
    Ok(())
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
    check_mac(hash, mac_key, &[&min_be(seq), body], mac)?;
    Ok(body[2..2 + plen].to_vec())
}

/// Compare `mac` with the VHMAC of `parts` (`minBE(seq)` first), in
/// constant time.
fn check_mac(hash: HashAlg, mac_key: &[u8], parts: &[&[u8]], mac: &[u8]) -> Result<(), VtsError> {
    let expect = vhmac(hash, mac_key, parts);
    if bool::from(expect.ct_eq(mac)) {
        Ok(())
    } else {
        Err(VtsError::BadMac)
    }
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
    ///
    /// The frame is built in `out` and transformed there: one copy of the
    /// plaintext, where a frame of its own and its ciphertext were two (a
    /// 1 MiB VTS echo, `docs/performance.md`, "Seventh round").
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), VtsError> {
        let start = out.len();
        frame_into(
            self.hash,
            &self.mac_key,
            self.seq,
            plaintext,
            self.t.block_len(),
            out,
        )?;
        if let Err(e) = self.t.transform_in_place(&mut out[start..]) {
            // Never leave plaintext where ciphertext goes to the wire.
            out.truncate(start);
            return Err(e);
        }
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
        let mut plaintext = BytesMut::new();
        Ok(self
            .open_into(buf, &mut plaintext)?
            .map(|_| plaintext.to_vec()))
    }

    /// [`open`](Self::open), appending the plaintext to `out`; `Some` holds
    /// its length. The record after its first block is decrypted in `out`
    /// itself and cut to the plaintext once its MAC checks: one copy of
    /// the ciphertext, where a frame of its own and a copy of its
    /// plaintext were two more. Nothing stays appended on an error.
    pub fn open_into(
        &mut self,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Option<usize>, VtsError> {
        let b = self.t.block_len();
        let l = self.hash.output_len();
        if self.partial.is_none() {
            if buf.len() < b {
                return Ok(None);
            }
            // In-place decryption needs ciphertext blocks as long as
            // plaintext ones (every symmetric transform's).
            if self.t.out_block_len() != b || b < 2 {
                return Err(VtsError::BadLength);
            }
            let mut first = Vec::with_capacity(b);
            self.t.transform(&buf[..b], &mut first)?;
            buf.advance(b);
            let plen = usize::from(u16::from_be_bytes([first[0], first[1]])) + 1;
            // Cap the declared length at our own limit before waiting for
            // it (§10 #7).
            if plen > self.max_plaintext {
                return Err(VtsError::BadLength);
            }
            let total = 2 + plen + pad_len(plen, l, b) + l;
            let rest = total.checked_sub(b).ok_or(VtsError::BadLength)?;
            self.partial = Some((first, rest));
        }
        let Some((_, remaining)) = &self.partial else {
            return Ok(None);
        };
        let remaining = *remaining;
        if buf.len() < remaining {
            return Ok(None);
        }
        let Some((first, _)) = self.partial.take() else {
            return Ok(None);
        };
        // `out` gets the frame after LEN2: P || PAD || MAC.
        let plen = usize::from(u16::from_be_bytes([first[0], first[1]])) + 1;
        let start = out.len();
        out.extend_from_slice(&first[2..]);
        out.extend_from_slice(&buf[..remaining]);
        buf.advance(remaining);
        let body_end = out.len() - l;
        let checked = self
            .t
            .transform_in_place(&mut out[start + b - 2..])
            .and_then(|()| {
                let (body, mac) = out[start..].split_at(body_end - start);
                let seq = min_be(self.seq);
                check_mac(self.hash, &self.mac_key, &[&seq, &first[..2], body], mac)
            });
        if let Err(e) = checked {
            out.truncate(start);
            return Err(e);
        }
        out.truncate(start + plen);
        self.seq += 1;
        Ok(Some(plen))
    }

    /// Whether part of a message has been consumed.
    pub fn has_partial(&self) -> bool {
        self.partial.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vts::cipher::{symmetric, CipherAlg, Direction, Mode};

    fn pair(mode: Mode) -> (Sealer, Opener) {
        let (key, iv, mac) = ([1u8; 32], [2u8; 16], vec![3u8; 20]);
        let t = |dir| symmetric(CipherAlg::Aes256, mode, dir, &key, &iv).unwrap();
        (
            Sealer::new(t(Direction::Encrypt), HashAlg::Sha1, mac.clone()),
            Opener::new(t(Direction::Decrypt), HashAlg::Sha1, mac, MAX_MESSAGE),
        )
    }

    #[test]
    fn sealing_after_other_output_and_opening_into_a_buffer() {
        for mode in [Mode::Cbc, Mode::Ofb] {
            let messages = [vec![7u8; 1], vec![8u8; 1000], vec![9u8; MAX_MESSAGE]];
            // Sealed one after another into one buffer, as a connection
            // does: the same bytes as each sealed alone (same keys and
            // chaining), so the frame and its MAC cover only its own part.
            let (mut sealer, _) = pair(mode);
            let mut joined = Vec::new();
            for m in &messages {
                sealer.seal(m, &mut joined).unwrap();
            }
            let (mut alone, _) = pair(mode);
            let mut separate = Vec::new();
            for m in &messages {
                let mut wire = Vec::new();
                alone.seal(m, &mut wire).unwrap();
                separate.extend_from_slice(&wire);
            }
            assert_eq!(joined, separate);

            // Opened into one buffer that already holds bytes.
            let (_, mut opener) = pair(mode);
            let mut buf = BytesMut::from(&joined[..]);
            let mut out = BytesMut::from(&b"held"[..]);
            let mut lens = Vec::new();
            while let Some(n) = opener.open_into(&mut buf, &mut out).unwrap() {
                lens.push(n);
            }
            assert_eq!(lens, [1, 1000, MAX_MESSAGE]);
            let expected: Vec<u8> = [&b"held"[..]]
                .into_iter()
                .chain(messages.iter().map(|m| &m[..]))
                .flatten()
                .copied()
                .collect();
            assert!(out[..] == expected[..], "plaintexts differ");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_tampered_record_appends_nothing() {
        let (mut sealer, mut opener) = pair(Mode::Cbc);
        let mut wire = Vec::new();
        sealer.seal(&[5u8; 100], &mut wire).unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let mut buf = BytesMut::from(&wire[..]);
        let mut out = BytesMut::from(&b"held"[..]);
        assert!(matches!(
            opener.open_into(&mut buf, &mut out),
            Err(VtsError::BadMac)
        ));
        assert_eq!(&out[..], b"held");
    }
}
