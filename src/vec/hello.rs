//! The VEC hello line (`docs/protocol/vec.md` §8.2).
//!
//! Each direction of a channel starts with one ASCII line announcing the
//! protocol version and, optionally, the sender's `F4` string codec. The
//! receiver stores that codec as its decoder's `str_decoding`.

use bytes::{Buf, BytesMut};

use super::encode::StrCodec;
use super::error::VecError;

/// Longest accepted hello line, LF included (`docs/protocol/vec.md` §8.2, §8.4).
pub(crate) const MAX_HELLO_LEN: usize = 32;

/// The hello line announcing `codec` for our outgoing `F4` strings.
pub fn hello_line(codec: Option<StrCodec>) -> &'static [u8] {
    match codec {
        None => b"VEC_DRAFT-0.8\n",
        Some(StrCodec::Utf8) => b"VEC_DRAFT-0.8-utf8\n",
        Some(StrCodec::Utf16) => b"VEC_DRAFT-0.8-utf16\n",
    }
}

/// Parse the peer's hello line from the front of `buf` with Python's
/// acceptance rules (`docs/protocol/vec.md` §8.2).
///
/// `Ok(Some(codec))`: accepted, the line (with its LF) was removed and any
/// following bytes stay in `buf`. `Ok(None)`: no LF yet. `Err`: rejected.
pub fn parse_hello(buf: &mut BytesMut) -> Result<Option<Option<StrCodec>>, VecError> {
    let window = &buf[..buf.len().min(MAX_HELLO_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= MAX_HELLO_LEN {
            return Err(VecError::BadHello("Handshake protocol exceeded byte limit"));
        }
        return Ok(None);
    };
    let codec = check_line(&buf[..lf])?;
    buf.advance(lf + 1);
    Ok(Some(codec))
}

/// Rules 2-6 of `docs/protocol/vec.md` §8.2 on the line without its LF.
fn check_line(line: &[u8]) -> Result<Option<StrCodec>, VecError> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b'-').collect();
    let (proto, version, codec) = match fields[..] {
        [p, v] => (p, v, None),
        [p, v, c] => (p, v, Some(c)),
        _ => return Err(VecError::BadHello("Malformed header")),
    };
    if proto != b"VEC_DRAFT" {
        return Err(VecError::BadHello("Requires protocol VEC"));
    }
    if !version.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        return Err(VecError::BadHello("Illegal protocol version number"));
    }
    // Each part is parsed as an integer (so `00.08` is 0.8); an empty part
    // is Python's `ValueError` — also a rejection.
    let mut parts = Vec::new();
    for part in version.split(|&b| b == b'.') {
        if part.is_empty() {
            return Err(VecError::BadHello("Illegal protocol version number"));
        }
        let digits = &part[part.iter().position(|&b| b != b'0').unwrap_or(part.len())..];
        parts.push(digits);
    }
    if parts.len() != 2 || parts[0] != b"" || parts[1] != b"8" {
        return Err(VecError::BadHello("Protocol version not supported"));
    }
    match codec {
        None => Ok(None),
        Some(b"utf8") => Ok(Some(StrCodec::Utf8)),
        Some(b"utf16") => Ok(Some(StrCodec::Utf16)),
        Some(_) => Err(VecError::BadHello("Invalid string codec")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_keeps_leftover() {
        let mut b = BytesMut::from(&b"VEC_DRAFT-00.08-utf8\n\x01"[..]);
        assert_eq!(parse_hello(&mut b), Ok(Some(Some(StrCodec::Utf8))));
        assert_eq!(&b[..], b"\x01");
        let mut b = BytesMut::from(&b"VEC_DRAFT-0.8"[..]);
        assert_eq!(parse_hello(&mut b), Ok(None));
        assert_eq!(b.len(), 13);
    }

    #[test]
    fn rejects() {
        for line in [
            &b"VEC_DRAFT-0..8\n"[..],
            b"VEC_DRAFT-0.8.0\n",
            b"VEC_DRAFT--\n",
            b"VEC_DRAFT-\n",
        ] {
            let mut b = BytesMut::from(line);
            assert!(parse_hello(&mut b).is_err(), "{line:?}");
        }
    }
}
