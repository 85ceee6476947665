//! Entity encoder (`docs/protocol/vec.md` §2, §5).
//!
//! One pre-order walk writes every node's header straight into the output
//! buffer and remembers each byte-string payload (a borrowed slice; only
//! UTF-16 text is converted into an owned buffer). When the walk is done the
//! payloads are appended in reverse order (§2.1). On error the output buffer
//! is truncated back to its original length.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive};

use super::entity::{Entity, VFloat, WireRef};
use super::error::VecError;
use super::netbytes::{encode_posint, encode_posint_u64, encode_signed, encode_signed_i64};

/// Type codes (`docs/protocol/vec.md` §3).
pub(crate) mod code {
    pub const VINT_POS: u8 = 0xEF;
    pub const VINT_NEG: u8 = 0xF0;
    pub const FALSE: u8 = 0xF1;
    pub const TRUE: u8 = 0xF2;
    pub const BYTES: u8 = 0xF3;
    pub const STRING: u8 = 0xF4;
    pub const STRING_ENC: u8 = 0xF5;
    pub const TUPLE: u8 = 0xF6;
    pub const EXCEPTION: u8 = 0xF7;
    pub const NONE: u8 = 0xF8;
    pub const FLOAT_10: u8 = 0xF9;
    pub const FLOAT_2: u8 = 0xFA;
    pub const FLOAT_N: u8 = 0xFB;
    pub const REF_SENDER: u8 = 0xFC;
    pub const REF_RECEIVER: u8 = 0xFD;
    pub const TAGGED: u8 = 0xFE;
}

/// A string codec usable in a channel context (`docs/protocol/vec.md` §4, §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrCodec {
    /// `utf8`.
    Utf8,
    /// Python's `utf16`: BOM `FF FE` + UTF-16LE on write; BOM-driven on read.
    Utf16,
}

impl StrCodec {
    /// The name as written in hello lines and `F5` strings.
    pub fn name(self) -> &'static str {
        match self {
            StrCodec::Utf8 => "utf8",
            StrCodec::Utf16 => "utf16",
        }
    }

    /// Codec for an `F5` codec name: `utf8`/`utf-8`/`utf_8` and
    /// `utf16`/`utf-16`/`utf_16`, ASCII case-insensitive (`docs/protocol/vec.md` §5.6).
    pub fn from_codec_name(name: &[u8]) -> Option<Self> {
        const UTF8: [&[u8]; 3] = [b"utf8", b"utf-8", b"utf_8"];
        const UTF16: [&[u8]; 3] = [b"utf16", b"utf-16", b"utf_16"];
        if UTF8.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            Some(StrCodec::Utf8)
        } else if UTF16.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            Some(StrCodec::Utf16)
        } else {
            None
        }
    }

    /// Text → bytes in this codec.
    pub(crate) fn encode_str(self, s: &str) -> Cow<'_, [u8]> {
        match self {
            StrCodec::Utf8 => Cow::Borrowed(s.as_bytes()),
            StrCodec::Utf16 => {
                let mut v = Vec::with_capacity(2 + 2 * s.len());
                v.extend_from_slice(&[0xFF, 0xFE]);
                for unit in s.encode_utf16() {
                    v.extend_from_slice(&unit.to_le_bytes());
                }
                Cow::Owned(v)
            }
        }
    }
}

/// Encoder context (`docs/protocol/vec.md` §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeConfig {
    /// `Some`: strings as `F4` in this codec; `None`: `F5` + `utf8`.
    pub str_encoding: Option<StrCodec>,
    /// Whether `FC`/`FD` may be written (object context).
    pub allow_refs: bool,
}

impl EncodeConfig {
    /// Bare context (as used by the VTS handshake): `F5` strings, no refs.
    pub const PLAIN: Self = Self {
        str_encoding: None,
        allow_refs: false,
    };
    /// A VOL link: `F4` UTF-8 strings and object references.
    pub const LINK: Self = Self {
        str_encoding: Some(StrCodec::Utf8),
        allow_refs: true,
    };

    /// Same as [`EncodeConfig::LINK`].
    pub const fn link() -> Self {
        Self::LINK
    }
}

/// Python's `(digits, exp)` for a finite double, derived like `float.hex()`
/// (`docs/protocol/vec.md` §5.3); `None` for NaN and infinities.
pub fn float_parts(x: f64) -> Option<(i64, i64)> {
    if !x.is_finite() {
        return None;
    }
    if x == 0.0 {
        return Some((0, 0));
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i64;
    let mut frac = bits & ((1u64 << 52) - 1);
    let (lead, e) = if biased == 0 {
        (0u64, -1022)
    } else {
        (1u64, biased - 1023)
    };
    let mut nibbles = 13i64;
    while nibbles > 0 && frac & 0xF == 0 {
        frac >>= 4;
        nibbles -= 1;
    }
    let digits = ((lead << (4 * nibbles)) | frac) as i64;
    let digits = if bits >> 63 == 1 { -digits } else { digits };
    Some((digits, e - 4 * nibbles))
}

/// Append the encoding of `entity` to `out` (`docs/protocol/vec.md` §2.1).
///
/// On error `out` is left exactly as it was.
pub fn encode(entity: &Entity, cfg: &EncodeConfig, out: &mut BytesMut) -> Result<(), VecError> {
    encode_sharing(entity, cfg, out, &mut NoSharing)
}

/// Where [`encode_sharing`] puts large byte strings instead of copying them.
pub trait ShareBytes {
    /// Byte strings of at least this many bytes are shared.
    fn min_len(&self) -> usize;
    /// Take, in order, the encoding so far (split off the output buffer;
    /// empty right after another shared byte string) and a shared byte
    /// string that follows it.
    fn share(&mut self, before: Bytes, shared: Bytes);
}

struct NoSharing;

impl ShareBytes for NoSharing {
    fn min_len(&self) -> usize {
        usize::MAX
    }
    fn share(&mut self, _: Bytes, _: Bytes) {}
}

/// [`encode`], except that the payloads of byte strings of at least
/// [`ShareBytes::min_len`] bytes are not copied into `out`: at each, the
/// encoding so far is split off `out` and handed to `sharing` with the
/// byte string itself, and `out` goes on with what follows it. The
/// concatenation of every piece handed over and then `out` is what
/// [`encode`] writes. Trees deeper than the recursive walk takes copy
/// everything.
///
/// On error `out` is left exactly as it was and nothing is handed over.
pub fn encode_sharing(
    entity: &Entity,
    cfg: &EncodeConfig,
    out: &mut BytesMut,
    sharing: &mut dyn ShareBytes,
) -> Result<(), VecError> {
    let start = out.len();
    // Shallow trees (every VOL message of ordinary values) are walked
    // recursively twice, headers then payloads, with no scratch vectors;
    // the copied payloads' room is reserved once (a large byte string would
    // otherwise be copied again as the buffer grows).
    let shared_from = sharing.min_len();
    let mut payload_len = 0;
    match write_headers_shallow(entity, cfg, out, 0, (shared_from, &mut payload_len)) {
        Ok(Shallow::Done) => {
            out.reserve(payload_len);
            write_payloads_reversed(entity, cfg, out, sharing);
            return Ok(());
        }
        Ok(Shallow::TooDeep) => out.truncate(start),
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    }
    encode_with_stack(entity, cfg, out)
}

/// [`encode`] for any depth: an explicit stack and a list of payloads.
fn encode_with_stack(
    entity: &Entity,
    cfg: &EncodeConfig,
    out: &mut BytesMut,
) -> Result<(), VecError> {
    let start = out.len();
    let mut payloads: Vec<Cow<'_, [u8]>> = Vec::new();
    if let Err(e) = write_headers(entity, cfg, out, &mut payloads) {
        out.truncate(start);
        return Err(e);
    }
    out.reserve(payloads.iter().map(|p| p.len()).sum());
    for p in payloads.iter().rev() {
        out.put_slice(p);
    }
    Ok(())
}

/// Append the header of a tuple of `len` items (`docs/protocol/vec.md` §5.7); the items
/// follow. Lets a caller encode `(a, b, tail)` where `a` and `b` carry no
/// byte payloads (integers, references) without building the tuple: their
/// encodings are headers only, so the tail's payloads still come last.
pub fn encode_tuple_header(len: usize, out: &mut BytesMut) {
    out.put_u8(code::TUPLE);
    encode_posint_u64(len as u64, out);
}

/// Append the encoding of the integer `v` (`docs/protocol/vec.md` §5.1): what
/// [`encode`] writes for `Entity::Int(v)`, without the tree walks.
pub(crate) fn encode_int(v: i64, out: &mut BytesMut) {
    write_int_i64(v, out);
}

/// Nesting up to which [`encode`] walks recursively.
const SHALLOW_DEPTH: usize = 32;

enum Shallow {
    Done,
    TooDeep,
}

/// The headers in pre-order, recursively, adding the length of the payloads
/// [`write_payloads_reversed`] will copy (byte strings shorter than
/// `shared_from`, strings) to `payload_len`; gives up past
/// [`SHALLOW_DEPTH`] or on a string that needs conversion (UTF-16).
fn write_headers_shallow(
    e: &Entity,
    cfg: &EncodeConfig,
    out: &mut BytesMut,
    depth: usize,
    payloads: (usize, &mut usize),
) -> Result<Shallow, VecError> {
    let (shared_from, payload_len) = payloads;
    if depth > SHALLOW_DEPTH {
        return Ok(Shallow::TooDeep);
    }
    match e {
        Entity::Tuple(items) | Entity::Exception(items) => {
            out.put_u8(if matches!(e, Entity::Tuple(_)) {
                code::TUPLE
            } else {
                code::EXCEPTION
            });
            encode_posint_u64(items.len() as u64, out);
            for item in items {
                let payloads = (shared_from, &mut *payload_len);
                if let Shallow::TooDeep =
                    write_headers_shallow(item, cfg, out, depth + 1, payloads)?
                {
                    return Ok(Shallow::TooDeep);
                }
            }
        }
        Entity::Tagged(t) => {
            out.put_u8(code::TAGGED);
            encode_posint_u64(1 + t.tags.len() as u64, out);
            for item in std::iter::once(&t.value).chain(&t.tags) {
                let payloads = (shared_from, &mut *payload_len);
                if let Shallow::TooDeep =
                    write_headers_shallow(item, cfg, out, depth + 1, payloads)?
                {
                    return Ok(Shallow::TooDeep);
                }
            }
        }
        // Byte strings: the header here, the payload in the second walk.
        Entity::Bytes(b) => {
            out.put_u8(code::BYTES);
            encode_posint_u64(b.len() as u64, out);
            if b.len() < shared_from {
                *payload_len += b.len();
            }
        }
        Entity::String(s) => match cfg.str_encoding {
            Some(StrCodec::Utf8) => {
                out.put_u8(code::STRING);
                encode_posint_u64(s.len() as u64, out);
                *payload_len += s.len();
            }
            None => {
                out.put_u8(code::STRING_ENC);
                out.put_u8(4);
                encode_posint_u64(s.len() as u64, out);
                *payload_len += s.len() + b"utf8".len();
            }
            Some(StrCodec::Utf16) => return Ok(Shallow::TooDeep),
        },
        // The common leaves directly (ids, codes, small arguments).
        Entity::Int(v) => write_int_i64(*v, out),
        Entity::None => out.put_u8(code::NONE),
        Entity::Bool(b) => out.put_u8(if *b { code::TRUE } else { code::FALSE }),
        leaf => {
            // No payload, nothing pushed: the scratch vector stays empty
            // (unallocated).
            let mut none = Vec::new();
            write_headers(leaf, cfg, out, &mut none)?;
        }
    }
    Ok(Shallow::Done)
}

/// The byte-string payloads in reverse pre-order (`docs/protocol/vec.md` §2.1), for a
/// tree `write_headers_shallow` accepted.
fn write_payloads_reversed(
    e: &Entity,
    cfg: &EncodeConfig,
    out: &mut BytesMut,
    sharing: &mut dyn ShareBytes,
) {
    match e {
        Entity::Tuple(items) | Entity::Exception(items) => {
            for item in items.iter().rev() {
                write_payloads_reversed(item, cfg, out, sharing);
            }
        }
        Entity::Tagged(t) => {
            for item in t.tags.iter().rev() {
                write_payloads_reversed(item, cfg, out, sharing);
            }
            write_payloads_reversed(&t.value, cfg, out, sharing);
        }
        Entity::Bytes(b) if b.len() >= sharing.min_len() => {
            sharing.share(out.split().freeze(), b.clone());
        }
        Entity::Bytes(b) => out.put_slice(b),
        Entity::String(s) => {
            // F4 (UTF-8 here): the data; F5: the data, then the codec
            // name (pushed first, so written last).
            out.put_slice(s.as_bytes());
            if cfg.str_encoding.is_none() {
                out.put_slice(b"utf8");
            }
        }
        _ => {}
    }
}

/// Pre-order walk with an explicit stack (no recursion on deep trees).
fn write_headers<'a>(
    root: &'a Entity,
    cfg: &EncodeConfig,
    out: &mut BytesMut,
    payloads: &mut Vec<Cow<'a, [u8]>>,
) -> Result<(), VecError> {
    let mut stack: Vec<&'a Entity> = Vec::new();
    let mut next = Some(root);
    while let Some(e) = next.take().or_else(|| stack.pop()) {
        match e {
            Entity::None => out.put_u8(code::NONE),
            Entity::Bool(b) => out.put_u8(if *b { code::TRUE } else { code::FALSE }),
            Entity::Int(v) => write_int_i64(*v, out),
            Entity::BigInt(v) => write_bigint(v, out),
            Entity::Float(x) => {
                let (digits, exp) = float_parts(*x).ok_or(VecError::NonFiniteFloat)?;
                out.put_u8(code::FLOAT_2);
                encode_signed_i64(digits, out);
                encode_signed_i64(exp, out);
            }
            Entity::VFloat(f) => write_vfloat(f, out)?,
            Entity::Bytes(b) => {
                out.put_u8(code::BYTES);
                encode_posint_u64(b.len() as u64, out);
                payloads.push(Cow::Borrowed(b));
            }
            Entity::String(s) => write_string(s, cfg, out, payloads),
            Entity::Tuple(items) | Entity::Exception(items) => {
                let c = if matches!(e, Entity::Tuple(_)) {
                    code::TUPLE
                } else {
                    code::EXCEPTION
                };
                out.put_u8(c);
                encode_posint_u64(items.len() as u64, out);
                stack.extend(items.iter().rev());
            }
            Entity::Tagged(t) => {
                // §5.9: FE + implicit tuple (value, tags...).
                out.put_u8(code::TAGGED);
                encode_posint_u64(1 + t.tags.len() as u64, out);
                stack.extend(t.tags.iter().rev());
                next = Some(&t.value);
            }
            Entity::Ref(r) => {
                if !cfg.allow_refs {
                    return Err(VecError::RefsNotAllowed);
                }
                let (c, id) = match r {
                    WireRef::SenderOwned(id) => (code::REF_SENDER, *id),
                    WireRef::ReceiverOwned(id) => (code::REF_RECEIVER, *id),
                };
                out.put_u8(c);
                encode_signed_i64(id, out);
            }
        }
    }
    Ok(())
}

/// VString (`docs/protocol/vec.md` §5.6): `F4` in the hello's codec if one was agreed,
/// else `F5` naming `utf8`.
#[inline]
fn write_string<'a>(
    s: &'a str,
    cfg: &EncodeConfig,
    out: &mut BytesMut,
    payloads: &mut Vec<Cow<'a, [u8]>>,
) {
    match cfg.str_encoding {
        Some(codec) => {
            // §5.6 F4: posint(len(data)); payload data.
            let data = codec.encode_str(s);
            out.put_u8(code::STRING);
            encode_posint_u64(data.len() as u64, out);
            payloads.push(data);
        }
        None => {
            // §5.6 F5: codec node then data node (pre-order).
            out.put_u8(code::STRING_ENC);
            out.put_u8(4);
            encode_posint_u64(s.len() as u64, out);
            payloads.push(Cow::Borrowed(b"utf8"));
            payloads.push(Cow::Borrowed(s.as_bytes()));
        }
    }
}

/// Explicit VInteger (`docs/protocol/vec.md` §5.1).
#[inline]
fn write_int_i64(v: i64, out: &mut BytesMut) {
    if (-1..=237).contains(&v) {
        out.put_u8((v + 1) as u8);
    } else if v >= 238 {
        out.put_u8(code::VINT_POS);
        encode_posint_u64((v - 238) as u64, out);
    } else {
        // v <= -2: posint(|v| - 2); -(v + 2) cannot overflow.
        out.put_u8(code::VINT_NEG);
        encode_posint_u64((-(v + 2)) as u64, out);
    }
}

fn write_bigint(v: &BigInt, out: &mut BytesMut) {
    if let Some(small) = v.to_i64() {
        return write_int_i64(small, out);
    }
    if v.is_positive() {
        out.put_u8(code::VINT_POS);
        encode_posint(&(v.magnitude() - 238u32), out);
    } else {
        out.put_u8(code::VINT_NEG);
        encode_posint(&(v.magnitude() - 2u32), out);
    }
}

/// VFloat: `FA`/`F9` for base 2/10, `FB` otherwise (`docs/protocol/vec.md` §5.3).
fn write_vfloat(f: &VFloat, out: &mut BytesMut) -> Result<(), VecError> {
    match f.base.to_u8() {
        Some(b @ (2 | 10)) => {
            out.put_u8(if b == 2 {
                code::FLOAT_2
            } else {
                code::FLOAT_10
            });
            encode_signed(&f.digits, out);
        }
        Some(0 | 1) => return Err(VecError::InvalidFloatBase(f.base.clone().into())),
        _ if f.base.is_negative() => return Err(VecError::InvalidFloatBase(f.base.clone().into())),
        _ => {
            out.put_u8(code::FLOAT_N);
            encode_signed(&f.digits, out);
            encode_signed(&f.base, out);
        }
    }
    encode_signed(&f.exp, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_parts_match_spec() {
        assert_eq!(float_parts(1.5), Some((24, -4)));
        assert_eq!(float_parts(-2.25), Some((-18, -3)));
        assert_eq!(float_parts(0.1), Some((7205759403792794, -56)));
        assert_eq!(float_parts(5e-324), Some((1, -1074)));
        assert_eq!(float_parts(-0.0), Some((0, 0)));
        assert_eq!(float_parts(f64::NAN), None);
    }

    #[test]
    fn the_recursive_walk_writes_what_the_stack_walk_writes() {
        let leafy = |depth: usize| {
            let mut e = Entity::Bytes(bytes::Bytes::from_static(b"deepest"));
            for i in 0..depth {
                e = Entity::Tuple(vec![
                    Entity::String(format!("s{i}")),
                    e,
                    Entity::Int(i as i64 * 1000),
                    Entity::Bytes(bytes::Bytes::from(vec![i as u8; i % 3])),
                ]);
            }
            e
        };
        for depth in [0, 1, 5, SHALLOW_DEPTH, SHALLOW_DEPTH + 1, 3 * SHALLOW_DEPTH] {
            for cfg in [EncodeConfig::PLAIN, EncodeConfig::LINK] {
                let e = leafy(depth);
                let (mut fast, mut stack) = (BytesMut::new(), BytesMut::new());
                encode(&e, &cfg, &mut fast).unwrap();
                encode_with_stack(&e, &cfg, &mut stack).unwrap();
                assert_eq!(fast, stack, "depth {depth}");
            }
        }
        let utf16 = EncodeConfig {
            str_encoding: Some(StrCodec::Utf16),
            allow_refs: false,
        };
        let e = Entity::Tuple(vec![Entity::String("é".into()), Entity::Int(1)]);
        let (mut fast, mut stack) = (BytesMut::new(), BytesMut::new());
        encode(&e, &utf16, &mut fast).unwrap();
        encode_with_stack(&e, &utf16, &mut stack).unwrap();
        assert_eq!(fast, stack);
    }

    #[test]
    fn payloads_are_reserved_at_once() {
        // A call: the method's name, then a large byte string, whose
        // payload is written first (payloads go in reverse). The buffer is
        // grown once to the whole encoding, not doubled (a copy of the
        // large payload) for the name after it.
        let e = Entity::Tuple(vec![
            Entity::String("echo".into()),
            Entity::Bytes(bytes::Bytes::from(vec![7u8; 100_000])),
        ]);
        for cfg in [EncodeConfig::PLAIN, EncodeConfig::LINK] {
            let mut out = BytesMut::new();
            encode(&e, &cfg, &mut out).unwrap();
            assert!(out.capacity() < out.len() + 64, "{}", out.capacity());
        }
    }

    #[test]
    fn error_leaves_buffer() {
        let mut out = BytesMut::from(&b"xy"[..]);
        let bad = Entity::Tuple(vec![Entity::Int(1), Entity::Float(f64::INFINITY)]);
        assert_eq!(
            encode(&bad, &EncodeConfig::PLAIN, &mut out),
            Err(VecError::NonFiniteFloat)
        );
        assert_eq!(&out[..], b"xy");
        let r = Entity::Ref(WireRef::SenderOwned(1));
        assert_eq!(
            encode(&r, &EncodeConfig::PLAIN, &mut out),
            Err(VecError::RefsNotAllowed)
        );
        encode(&r, &EncodeConfig::LINK, &mut out).unwrap();
        assert_eq!(&out[..], b"xy\xFC\x02");
    }
}
