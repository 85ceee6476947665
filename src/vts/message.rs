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
    /// The blocks of the frame that lie wholly within the plaintext are
    /// encrypted straight from `plaintext` into `out`; only the first block
    /// (`LEN2` and the plaintext's start) and the tail (its end, `PAD`,
    /// the MAC) are built aside. No copy of the plaintext (a 1 MiB VTS
    /// echo, `docs/performance.md`, "Eighth round").
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), VtsError> {
        let start = out.len();
        let sealed = self.seal_frame(plaintext, out);
        if sealed.is_err() {
            // Never leave plaintext where ciphertext goes to the wire.
            out.truncate(start);
        }
        sealed?;
        self.seq += 1;
        Ok(())
    }

    fn seal_frame(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), VtsError> {
        let b = self.t.block_len();
        let start = out.len();
        // The frame's blocks after the first that hold only plaintext.
        let direct = plaintext.len().saturating_sub(b.saturating_sub(2)) / b.max(1) * b;
        if direct == 0 || b > 16 || self.t.out_block_len() != b {
            frame_into(self.hash, &self.mac_key, self.seq, plaintext, b, out)?;
            return self.t.transform_in_place(&mut out[start..]);
        }
        let plen = plaintext.len();
        if plen > MAX_MESSAGE {
            return Err(VtsError::BadLength);
        }
        let l = self.hash.output_len();
        let len2 = u16::try_from(plen - 1)
            .map_err(|_| VtsError::BadLength)?
            .to_be_bytes();
        let pad = pad_len(plen, l, b);
        let zeros = [0u8; 16]; // PAD < b ≤ 16
        let mac = vhmac(
            self.hash,
            &self.mac_key,
            &[&min_be(self.seq), &len2, plaintext, &zeros[..pad]],
        );
        // LEN2 || P || PAD || MAC: [0, b) first block, [b, b + direct)
        // from P[b - 2..], the rest the tail.
        let (head, rest) = plaintext.split_at(b - 2);
        let (middle, tail) = rest.split_at(direct);
        let total = 2 + plen + pad + l;
        out.resize(start + total, 0);
        let frame = &mut out[start..];
        let (first, frame) = frame.split_at_mut(b);
        let (bulk, end) = frame.split_at_mut(direct);
        first[..2].copy_from_slice(&len2);
        first[2..].copy_from_slice(head);
        let (end_p, end_rest) = end.split_at_mut(tail.len());
        end_p.copy_from_slice(tail);
        end_rest[pad..].copy_from_slice(&mac);
        self.t.transform_in_place(first)?;
        self.t.transform_into(middle, bulk)?;
        self.t.transform_in_place(end)
    }
}

/// Opens messages in one direction, incrementally (§2.5 Open).
pub struct Opener {
    t: Box<dyn BlockTransform>,
    hash: HashAlg,
    mac_key: Vec<u8>,
    seq: u64,
    max_plaintext: usize,
    /// The message in progress: its first block, decrypted (to learn its
    /// length), and the length of its whole record. The record's bytes
    /// stay at the front of the input until all of them are there.
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
    /// incomplete (its bytes stay in `buf`; call again with more appended).
    pub fn open(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, VtsError> {
        Ok(self.open_record(buf)?.map(|p| p.to_vec()))
    }

    /// [`open`](Self::open) without a copy: the record is split off `buf`,
    /// decrypted where it lies and cut to its plaintext once its MAC
    /// checks, so the plaintext shares `buf`'s allocation. A received byte
    /// is copied by nobody but the kernel (a 1 MiB VTS echo,
    /// `docs/performance.md`, "Eighth round").
    pub fn open_record(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, VtsError> {
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
            let plen = usize::from(u16::from_be_bytes([first[0], first[1]])) + 1;
            // Cap the declared length at our own limit before waiting for
            // it (§10 #7).
            if plen > self.max_plaintext {
                return Err(VtsError::BadLength);
            }
            let total = 2 + plen + pad_len(plen, l, b) + l;
            if total < b {
                return Err(VtsError::BadLength);
            }
            self.partial = Some((first, total));
        }
        let Some((first, total)) = self.partial.take_if(|(_, total)| buf.len() >= *total) else {
            return Ok(None);
        };
        // The first block was decrypted already (the chaining state is past
        // it): its plaintext goes where its ciphertext was.
        let mut record = buf.split_to(total);
        self.t.transform_in_place(&mut record[b..])?;
        record[..b].copy_from_slice(&first);
        let (body, mac) = record.split_at(total - l);
        check_mac(self.hash, &self.mac_key, &[&min_be(self.seq), body], mac)?;
        let plen = usize::from(u16::from_be_bytes([first[0], first[1]])) + 1;
        record.advance(2);
        record.truncate(plen);
        self.seq += 1;
        Ok(Some(record))
    }

    /// Whether a message has been partly received.
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
    fn sealing_after_other_output_and_opening_in_place() {
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

            // Opened where they lie, whole or arriving a few bytes at a
            // time: each plaintext is a part of the input buffer.
            for step in [joined.len(), 7] {
                let (_, mut opener) = pair(mode);
                let mut buf = BytesMut::new();
                let mut opened = Vec::new();
                for piece in joined.chunks(step) {
                    buf.extend_from_slice(piece);
                    while let Some(p) = opener.open_record(&mut buf).unwrap() {
                        opened.push(p);
                    }
                }
                assert!(opened.iter().zip(&messages).all(|(p, m)| p[..] == m[..]));
                assert_eq!(opened.len(), messages.len());
                assert!(buf.is_empty() && !opener.has_partial());
            }
        }
    }

    #[test]
    fn sealing_from_the_plaintext_gives_the_framed_bytes() {
        // The sealer encrypts most of a plaintext straight from it; the
        // bytes must be those of the whole frame built and encrypted.
        let suites = [
            (CipherAlg::Aes256, Mode::Cbc, 32, 16),
            (CipherAlg::Aes256, Mode::Ofb, 32, 16),
            (CipherAlg::Blowfish, Mode::Cbc, 56, 8),
        ];
        for (alg, mode, key_len, b) in suites {
            let (key, iv) = (vec![1u8; key_len], vec![2u8; b]);
            let t = |dir| symmetric(alg, mode, dir, &key, &iv).unwrap();
            let mut sealer = Sealer::new(t(Direction::Encrypt), HashAlg::Sha1, vec![3; 20]);
            let mut reference = t(Direction::Encrypt);
            let lens = (1..=80).chain([1000, 16_384, MAX_MESSAGE]);
            for (seq, n) in lens.enumerate() {
                let p: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
                let mut sealed = b"before".to_vec();
                sealer.seal(&p, &mut sealed).unwrap();
                let mut expected = b"before".to_vec();
                let framed = frame(HashAlg::Sha1, &[3; 20], seq as u64, &p, b).unwrap();
                reference.transform(&framed, &mut expected).unwrap();
                assert!(sealed == expected, "{} {} len {n}", alg.name(), mode.name());
            }
        }
    }

    #[test]
    fn a_tampered_record_is_refused() {
        let (mut sealer, mut opener) = pair(Mode::Cbc);
        let mut wire = Vec::new();
        sealer.seal(&[5u8; 100], &mut wire).unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            opener.open_record(&mut buf),
            Err(VtsError::BadMac)
        ));
    }
}
