//! The `netbytes` variable-length integers (`docs/protocol/vec.md` §1).
//!
//! Encoders always write the minimal form (§1.1) so output is byte-identical
//! to Python. Decoders are lenient like Python (non-minimal forms accepted)
//! and work on a byte slice: `Ok(None)` means "need more bytes", `Ok(Some((v,
//! n)))` gives the value and the number of bytes it used. Hostile input is
//! bounded: each magnitude is limited to `max_len` bytes (checked before the
//! bytes are needed) and the recursive `0xFF` length form to
//! `MAX_LENGTH_CHAIN` levels; decoding is iterative.

use bytes::BufMut;
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::ToPrimitive;

use super::error::VecError;

/// Most nested `0xFF` length prefixes accepted in one number (`docs/protocol/vec.md` §1.1).
///
/// A minimal encoding needs at most 2 for any length a machine can hold;
/// Python has no limit (it crashes on ~1000), we stop at 8.
pub(crate) const MAX_LENGTH_CHAIN: usize = 8;

/// Offset between the value and the big-endian magnitude (`docs/protocol/vec.md` §1.1).
const OFFSET: u8 = 247;

/// A decoded posint before conversion: `Small(b)` is `b`, `Long(m)` is
/// `247 + BE(m)` (`m` may carry leading zeros in non-minimal input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawPosint<'a> {
    Small(u8),
    Long(&'a [u8]),
}

impl RawPosint<'_> {
    /// The value as `u128`, or `None` if it does not fit.
    #[inline]
    pub fn to_u128(self) -> Option<u128> {
        match self {
            RawPosint::Small(b) => Some(u128::from(b)),
            RawPosint::Long(m) => {
                let m = strip_zeros(m);
                if m.len() > 16 {
                    return None;
                }
                let mut buf = [0u8; 16];
                buf[16 - m.len()..].copy_from_slice(m);
                u128::from_be_bytes(buf).checked_add(u128::from(OFFSET))
            }
        }
    }

    /// The value as `u64`, or `None` if it does not fit.
    #[inline]
    pub fn to_u64(self) -> Option<u64> {
        self.to_u128().and_then(|v| u64::try_from(v).ok())
    }

    /// The value of any size.
    pub fn to_biguint(self) -> BigUint {
        match self {
            RawPosint::Small(b) => BigUint::from(b),
            RawPosint::Long(m) => BigUint::from_bytes_be(m) + BigUint::from(OFFSET),
        }
    }

    /// Interpret as signed netbytes (`docs/protocol/vec.md` §1.2), as `i128` if it fits.
    pub fn signed_i128(self) -> Option<i128> {
        let u = self.to_u128()?;
        let half = i128::try_from(u >> 1).ok()?;
        Some(if u & 1 == 0 { half } else { -half })
    }

    /// Interpret as signed netbytes (`docs/protocol/vec.md` §1.2), any size.
    pub fn signed_bigint(self) -> BigInt {
        if let Some(v) = self.signed_i128() {
            return BigInt::from(v);
        }
        let u = self.to_biguint();
        let odd = u.bit(0);
        let half = BigInt::from(u >> 1u32);
        if odd {
            -half
        } else {
            half
        }
    }
}

fn strip_zeros(m: &[u8]) -> &[u8] {
    let nz = m.iter().position(|&b| b != 0).unwrap_or(m.len());
    &m[nz..]
}

fn too_large(size: u128, max: usize) -> VecError {
    VecError::EntityTooLarge { size, max }
}

/// Parse one posint (`docs/protocol/vec.md` §1.1) from the front of `buf`.
///
/// `max_len` bounds every magnitude (and nested length) in bytes; a larger
/// declaration is an error as soon as its length field is read.
#[inline]
pub(crate) fn decode_posint_raw(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(RawPosint<'_>, usize)>, VecError> {
    // One byte below the offset: most counts, lengths and ids, inline.
    match buf.first() {
        Some(&b) if b < OFFSET => Ok(Some((RawPosint::Small(b), 1))),
        _ => decode_posint_long(buf, max_len),
    }
}

/// [`decode_posint_raw`] for everything but a one-byte posint.
fn decode_posint_long(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(RawPosint<'_>, usize)>, VecError> {
    // Count the 0xFF length prefixes, then read inside out.
    let mut chain = 0;
    let first = loop {
        match buf.get(chain) {
            None => return Ok(None),
            Some(0xFF) => {
                chain += 1;
                if chain > MAX_LENGTH_CHAIN {
                    return Err(VecError::NetbytesTooDeep);
                }
            }
            Some(&b) => break b,
        }
    };
    let mut pos = chain + 1;
    let mut raw = if first < OFFSET {
        RawPosint::Small(first)
    } else {
        let len = usize::from(first - 0xF6);
        match buf.get(pos..pos + len) {
            Some(m) => {
                pos += len;
                RawPosint::Long(m)
            }
            None => return Ok(None),
        }
    };
    for _ in 0..chain {
        // raw is the length field: L = 9 + value.
        let len = raw
            .to_u128()
            .and_then(|v| v.checked_add(9))
            .unwrap_or(u128::MAX);
        if len > max_len as u128 {
            return Err(too_large(len, max_len));
        }
        let len = len as usize; // <= max_len
        match buf.get(pos..pos + len) {
            Some(m) => {
                pos += len;
                raw = RawPosint::Long(m);
            }
            None => return Ok(None),
        }
    }
    Ok(Some((raw, pos)))
}

/// Decode a posint that must fit in `u64` (lengths, counts).
#[cfg(test)]
pub(crate) fn decode_posint_u64(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(u64, usize)>, VecError> {
    match decode_posint_raw(buf, max_len)? {
        None => Ok(None),
        Some((raw, n)) => match raw.to_u64() {
            Some(v) => Ok(Some((v, n))),
            None => Err(too_large(raw.to_u128().unwrap_or(u128::MAX), max_len)),
        },
    }
}

/// Decode a posint of any size.
pub fn decode_posint(buf: &[u8], max_len: usize) -> Result<Option<(BigUint, usize)>, VecError> {
    Ok(decode_posint_raw(buf, max_len)?.map(|(raw, n)| (raw.to_biguint(), n)))
}

/// Decode a signed netbytes integer (`docs/protocol/vec.md` §1.2) of any size.
pub fn decode_signed(buf: &[u8], max_len: usize) -> Result<Option<(BigInt, usize)>, VecError> {
    Ok(decode_posint_raw(buf, max_len)?.map(|(raw, n)| (raw.signed_bigint(), n)))
}

/// Decode a signed netbytes integer that must fit in `i64`;
/// `None` inside the result means it does not fit.
#[cfg(test)]
pub(crate) fn decode_signed_i64(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(Option<i64>, usize)>, VecError> {
    Ok(decode_posint_raw(buf, max_len)?.map(|(raw, n)| {
        let v = raw.signed_i128().and_then(|v| i64::try_from(v).ok());
        (v, n)
    }))
}

/// Write `n` as a minimal posint (`docs/protocol/vec.md` §1.1).
pub(crate) fn encode_posint_u128(n: u128, out: &mut impl BufMut) {
    if n < u128::from(OFFSET) {
        out.put_u8(n as u8);
        return;
    }
    let m = n - u128::from(OFFSET);
    let len = (16 - (m.leading_zeros() as usize) / 8).max(1);
    let bytes = m.to_be_bytes();
    if len <= 8 {
        out.put_u8(0xF6 + len as u8);
    } else {
        // 9..=16 bytes: 0xFF then posint(L - 9), which is one byte here.
        out.put_u8(0xFF);
        out.put_u8((len - 9) as u8);
    }
    out.put_slice(&bytes[16 - len..]);
}

/// Write `n` as a minimal posint (`docs/protocol/vec.md` §1.1).
#[inline]
pub fn encode_posint_u64(n: u64, out: &mut impl BufMut) {
    if n < u64::from(OFFSET) {
        out.put_u8(n as u8);
    } else {
        encode_posint_u128(u128::from(n), out);
    }
}

/// Write `n` as a minimal posint of any size (`docs/protocol/vec.md` §1.1).
pub fn encode_posint(n: &BigUint, out: &mut impl BufMut) {
    if let Some(small) = n.to_u128() {
        return encode_posint_u128(small, out);
    }
    let m = n - BigUint::from(OFFSET);
    let bytes = m.to_bytes_be();
    out.put_u8(0xFF);
    encode_posint_u64(bytes.len() as u64 - 9, out);
    out.put_slice(&bytes);
}

/// Write `v` as signed netbytes (`docs/protocol/vec.md` §1.2).
#[inline]
pub fn encode_signed_i64(v: i64, out: &mut impl BufMut) {
    let folded = (u128::from(v.unsigned_abs()) << 1) | u128::from(v < 0);
    encode_posint_u128(folded, out);
}

/// Write `v` as signed netbytes (`docs/protocol/vec.md` §1.2), any size.
pub fn encode_signed(v: &BigInt, out: &mut impl BufMut) {
    if let Some(small) = v.to_i64() {
        return encode_signed_i64(small, out);
    }
    let mut folded = v.magnitude() << 1u32;
    if v.sign() == Sign::Minus {
        folded += 1u32;
    }
    encode_posint(&folded, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc_u(n: u128) -> Vec<u8> {
        let mut v = Vec::new();
        encode_posint_u128(n, &mut v);
        v
    }

    #[test]
    fn boundaries() {
        assert_eq!(enc_u(246), [0xF6]);
        assert_eq!(enc_u(247), [0xF7, 0]);
        assert_eq!(enc_u(503), [0xF8, 1, 0]);
        let big = 247u128 + (1u128 << 64);
        assert_eq!(enc_u(big), [0xFF, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut v = Vec::new();
        encode_posint(&BigUint::from(big), &mut v);
        assert_eq!(v, enc_u(big));
    }

    #[test]
    fn lenient_and_bounded() {
        // F8 00 05 = 252 (non-minimal).
        assert_eq!(
            decode_posint_u64(&[0xF8, 0, 5], 100).unwrap(),
            Some((252, 3))
        );
        assert_eq!(decode_posint_u64(&[0xF8, 0], 100).unwrap(), None);
        // Length 9 + 2^64 declared: error before any data arrives.
        let hostile = [0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(decode_posint_raw(&hostile, 1 << 20).is_err());
        // Deep 0xFF chain: error, not recursion.
        assert_eq!(
            decode_posint_raw(&[0xFF; 64], 1 << 20),
            Err(VecError::NetbytesTooDeep)
        );
        // Signed 01 is a (non-canonical) zero.
        assert_eq!(decode_signed(&[1], 10).unwrap(), Some((BigInt::from(0), 1)));
        assert_eq!(decode_signed_i64(&[3], 10).unwrap(), Some((Some(-1), 1)));
    }

    #[test]
    fn signed_extremes() {
        for v in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX] {
            let mut a = Vec::new();
            encode_signed_i64(v, &mut a);
            let mut b = Vec::new();
            encode_signed(&BigInt::from(v), &mut b);
            assert_eq!(a, b);
            let (got, n) = decode_signed_i64(&a, 64).unwrap().unwrap();
            assert_eq!((got, n), (Some(v), a.len()));
        }
    }
}
