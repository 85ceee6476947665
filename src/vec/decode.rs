//! Incremental entity decoder (`vec.md` §2.3).
//!
//! Data flow: the caller appends received bytes to a `BytesMut` and calls
//! [`Decoder::decode`]. The decoder parses the header section node by node
//! into a flat pre-order list (explicit stack of open containers, no
//! recursion), remembering where it stopped, so bytes arriving in many small
//! chunks are parsed once. When the header tree is complete the entity's
//! total length is known and later calls only compare lengths. Once all
//! payload bytes are there, the entity's bytes are split off the buffer and
//! the tree is built bottom-up by walking the node list backwards, which
//! meets the byte strings exactly in payload order (§2.1); byte payloads are
//! zero-copy `Bytes` slices.
//!
//! Between calls that return `Ok(None)` the caller may only append to the
//! buffer. Every length and count is checked against
//! [`DecoderConfig::max_entity_size`] before anything is allocated.

use bytes::{Bytes, BytesMut};
use num_bigint::BigInt;
use num_traits::ToPrimitive;

use super::encode::{code, float_parts, StrCodec};
use super::entity::{Entity, Tagged, VFloat, WireRef};
use super::error::VecError;
use super::netbytes::{decode_posint_raw, RawPosint};

/// Python's `msg_max`, 101 × 1024² bytes (`vec.md` §8.4).
pub const DEFAULT_MAX_ENTITY_SIZE: usize = 105_906_176;
/// Default nesting limit (Python has none, `vec.md` §2.3).
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// Decoder context and limits (`vec.md` §4, §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest accepted top-level entity, in bytes.
    pub max_entity_size: usize,
    /// Most nested open tuples/exceptions/tagged values.
    pub max_depth: usize,
    /// Codec for `F4` strings (from the peer's hello, §8.2); `None` rejects `F4`.
    pub str_decoding: Option<StrCodec>,
    /// Whether `FC`/`FD` are accepted (object context).
    pub allow_refs: bool,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_entity_size: DEFAULT_MAX_ENTITY_SIZE,
            max_depth: DEFAULT_MAX_DEPTH,
            str_decoding: None,
            allow_refs: false,
        }
    }
}

/// One header node; leaves without payload are already entities.
#[derive(Debug)]
enum Node {
    Leaf(Entity),
    Bytes(usize),
    Str4(usize),
    Str5 { codec: usize, data: usize },
    Tuple(usize),
    Exception(usize),
    Tagged(usize),
}

/// Progress on the current entity.
#[derive(Debug, Default)]
struct Progress {
    /// Header bytes parsed (always at a node boundary).
    pos: usize,
    /// Sum of declared payload lengths so far.
    payload: usize,
    /// Remaining children of each open container.
    open: Vec<usize>,
    nodes: Vec<Node>,
    /// Total entity length, once the header tree is complete.
    total: Option<usize>,
}

/// Incremental VEC entity decoder; see the module docs.
#[derive(Debug)]
pub struct Decoder {
    cfg: DecoderConfig,
    st: Progress,
    /// Scratch value stack for building trees (reused).
    vals: Vec<Entity>,
}

/// Scratch vectors larger than this are freed after an entity.
const KEEP_CAPACITY: usize = 4096;

macro_rules! need {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

impl Decoder {
    /// A decoder with the given context and limits.
    pub fn new(cfg: DecoderConfig) -> Self {
        Self {
            cfg,
            st: Progress::default(),
            vals: Vec::new(),
        }
    }

    /// The current configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Set the codec for `F4` strings (from the peer's hello line).
    pub fn set_str_decoding(&mut self, codec: Option<StrCodec>) {
        self.cfg.str_decoding = codec;
    }

    /// Forget any partially parsed entity.
    pub fn reset(&mut self) {
        let st = &mut self.st;
        st.pos = 0;
        st.payload = 0;
        st.total = None;
        st.open.clear();
        st.nodes.clear();
        self.vals.clear();
        // Keep scratch capacity for the next entity, unless it got large.
        if st.nodes.capacity() > KEEP_CAPACITY {
            st.nodes = Vec::new();
            self.vals = Vec::new();
        }
        if st.open.capacity() > KEEP_CAPACITY {
            st.open = Vec::new();
        }
    }

    /// Header bytes of the current entity parsed so far: progress kept
    /// across calls (0 between entities).
    pub fn header_bytes_parsed(&self) -> usize {
        self.st.pos
    }

    /// Lower bound of the buffer length at which the next call can progress.
    pub fn min_bytes_needed(&self) -> usize {
        self.st.total.unwrap_or(self.st.pos + self.st.payload + 1)
    }

    /// Decode one entity from the front of `buf`.
    ///
    /// `Ok(Some(e))`: the entity's bytes were removed from `buf`.
    /// `Ok(None)`: incomplete, nothing consumed. `Err`: invalid input (fatal
    /// for the channel, `vec.md` §8.4); nothing consumed, state reset.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Entity>, VecError> {
        if buf.len() < self.st.pos {
            // The caller replaced the buffer: start over.
            self.reset();
        }
        let total = match self.st.total {
            Some(total) => total,
            None => match self.parse_headers(buf) {
                Ok(Some(total)) => total,
                Ok(None) => return Ok(None),
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            },
        };
        if buf.len() < total {
            return Ok(None);
        }
        let header_len = self.st.pos;
        let data = buf.split_to(total).freeze();
        let built = build(
            &mut self.st.nodes,
            &mut self.vals,
            &data,
            header_len,
            self.cfg.str_decoding,
        );
        self.reset();
        match built {
            Ok(e) => Ok(Some(e)),
            Err(e) => {
                // Put the bytes back (error path only).
                let mut restored = BytesMut::with_capacity(data.len() + buf.len());
                restored.extend_from_slice(&data);
                restored.extend_from_slice(buf);
                *buf = restored;
                Err(e)
            }
        }
    }

    /// Continue parsing headers; `Some(total)` when the header tree is complete.
    fn parse_headers(&mut self, buf: &[u8]) -> Result<Option<usize>, VecError> {
        let max = self.cfg.max_entity_size;
        loop {
            let rest = buf.get(self.st.pos..).unwrap_or_default();
            let budget = max.saturating_sub(self.st.pos + self.st.payload);
            let Some((node, n)) = self.parse_node(rest, budget)? else {
                if buf.len() > max {
                    return Err(too_large(buf.len(), max));
                }
                return Ok(None);
            };
            let st = &mut self.st;
            st.pos += n;
            if let Some(top) = st.open.last_mut() {
                *top -= 1;
            }
            let (payload, children) = match node {
                Node::Bytes(len) | Node::Str4(len) => (len, 0),
                Node::Str5 { codec, data } => (codec + data, 0),
                Node::Tuple(c) | Node::Exception(c) | Node::Tagged(c) => (0, c),
                Node::Leaf(_) => (0, 0),
            };
            // Each child needs at least one byte: bound counts up front.
            let least = st.pos as u128 + st.payload as u128 + payload as u128 + children as u128;
            if least > max as u128 {
                return Err(VecError::EntityTooLarge { size: least, max });
            }
            st.payload += payload;
            if children > 0 {
                if st.open.len() >= self.cfg.max_depth {
                    return Err(VecError::NestingTooDeep {
                        max: self.cfg.max_depth,
                    });
                }
                st.open.push(children);
            }
            st.nodes.push(node);
            while st.open.last() == Some(&0) {
                st.open.pop();
            }
            if st.open.is_empty() {
                let total = st.pos + st.payload;
                st.total = Some(total);
                return Ok(Some(total));
            }
        }
    }

    /// Parse one explicit node's header (`vec.md` §3, §5).
    fn parse_node(&self, b: &[u8], budget: usize) -> Result<Option<(Node, usize)>, VecError> {
        let Some(&t) = b.first() else {
            return Ok(None);
        };
        let mut at = 1;
        // Next netbytes number, raw.
        macro_rules! raw {
            () => {{
                let (raw, n) = need!(decode_posint_raw(&b[at..], budget));
                at += n;
                raw
            }};
        }
        macro_rules! length {
            () => {{
                let raw = raw!();
                match raw.to_u64().and_then(|v| usize::try_from(v).ok()) {
                    Some(v) if v <= budget => v,
                    _ => return Err(too_large_raw(raw, budget)),
                }
            }};
        }
        let node = match t {
            0..=0xEE => Node::Leaf(Entity::Int(i64::from(t) - 1)),
            code::VINT_POS => Node::Leaf(vint(raw!(), true)),
            code::VINT_NEG => Node::Leaf(vint(raw!(), false)),
            code::FALSE => Node::Leaf(Entity::Bool(false)),
            code::TRUE => Node::Leaf(Entity::Bool(true)),
            code::NONE => Node::Leaf(Entity::None),
            code::BYTES => Node::Bytes(length!()),
            code::STRING => Node::Str4(length!()),
            code::STRING_ENC => {
                let codec = length!();
                let data = length!();
                Node::Str5 { codec, data }
            }
            code::TUPLE => Node::Tuple(length!()),
            code::EXCEPTION => Node::Exception(length!()),
            code::TAGGED => match length!() {
                0 => return Err(VecError::MalformedTagged),
                n => Node::Tagged(n),
            },
            code::FLOAT_2 | code::FLOAT_10 => {
                let digits = raw!();
                let exp = raw!();
                let base = if t == code::FLOAT_2 { 2 } else { 10 };
                Node::Leaf(vfloat(digits, BigInt::from(base), exp))
            }
            code::FLOAT_N => {
                let digits = raw!();
                let base = raw!().signed_bigint();
                let exp = raw!();
                if base < BigInt::from(2) {
                    return Err(VecError::InvalidFloatBase(base));
                }
                Node::Leaf(vfloat(digits, base, exp))
            }
            code::REF_SENDER | code::REF_RECEIVER => {
                if !self.cfg.allow_refs {
                    return Err(VecError::RefsNotAllowed);
                }
                let id = raw!()
                    .signed_i128()
                    .and_then(|v| i64::try_from(v).ok())
                    .ok_or(VecError::ObjectIdOutOfRange)?;
                Node::Leaf(Entity::Ref(if t == code::REF_SENDER {
                    WireRef::SenderOwned(id)
                } else {
                    WireRef::ReceiverOwned(id)
                }))
            }
            _ => return Err(VecError::BadTypeCode(t)),
        };
        Ok(Some((node, at)))
    }
}

fn too_large(size: usize, max: usize) -> VecError {
    VecError::EntityTooLarge {
        size: size as u128,
        max,
    }
}

fn too_large_raw(raw: RawPosint<'_>, max: usize) -> VecError {
    VecError::EntityTooLarge {
        size: raw.to_u128().unwrap_or(u128::MAX),
        max,
    }
}

/// `EF`/`F0` VInteger (`vec.md` §5.1), normalised to `Int` when it fits.
fn vint(raw: RawPosint<'_>, positive: bool) -> Entity {
    if let Some(u) = raw.to_u128().and_then(|u| i128::try_from(u).ok()) {
        let v = if positive {
            u.checked_add(238)
        } else {
            u.checked_add(2).map(|m| -m)
        };
        if let Some(small) = v.and_then(|v| i64::try_from(v).ok()) {
            return Entity::Int(small);
        }
    }
    let u = BigInt::from(raw.to_biguint());
    Entity::int(if positive { u + 238 } else { -(u + 2i32) })
}

/// A VFloat; base 2 becomes `Entity::Float` when it is exactly Python's
/// form of a finite double (so that it re-encodes to the same bytes).
fn vfloat(digits: RawPosint<'_>, base: BigInt, exp: RawPosint<'_>) -> Entity {
    if base == BigInt::from(2) {
        let d = digits.signed_i128().and_then(|v| i64::try_from(v).ok());
        let e = exp.signed_i128().and_then(|v| i64::try_from(v).ok());
        if let (Some(d), Some(e)) = (d, e) {
            if let Some(x) = canonical_f64(d, e) {
                return Entity::Float(x);
            }
        }
    }
    Entity::VFloat(VFloat {
        digits: digits.signed_bigint(),
        base,
        exp: exp.signed_bigint(),
    })
}

/// The double `d × 2^e` if `(d, e)` is exactly what [`float_parts`] gives for it.
pub(crate) fn canonical_f64(d: i64, e: i64) -> Option<f64> {
    if d == 0 {
        return (e == 0).then_some(0.0);
    }
    if d.unsigned_abs() >= 1 << 53 || !(-1074..=1023).contains(&e) {
        return None;
    }
    let scale = if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (e + 1074))
    };
    let x = d as f64 * scale;
    (float_parts(x) == Some((d, e))).then_some(x)
}

impl VFloat {
    /// The value as a double if it is base 2 and `digits × 2^exp` is exactly
    /// a finite double, in any representation — Python's native conversion
    /// rule (`vec.md` §5.3). The decoder itself only yields `Entity::Float`
    /// for Python's canonical form, so that every entity re-encodes to the
    /// bytes it came from.
    pub fn to_f64_exact(&self) -> Option<f64> {
        if self.base != BigInt::from(2) {
            return None;
        }
        let Some(tz) = self.digits.trailing_zeros() else {
            return Some(0.0); // digits == 0
        };
        let mag = self.digits.magnitude() >> tz;
        let bits = mag.bits();
        let low = (&self.exp + tz).to_i64()?;
        let top = low.checked_add(i64::try_from(bits).ok()? - 1)?;
        if bits > 53 || low < -1074 || top > 1023 {
            return None;
        }
        let m = mag.to_u64()? as f64; // exact: at most 53 bits
        let scale = if low >= -1022 {
            f64::from_bits(((low + 1023) as u64) << 52)
        } else {
            f64::from_bits(1u64 << (low + 1074))
        };
        let x = m * scale; // exact: the product is representable
        Some(if self.digits.sign() == num_bigint::Sign::Minus {
            -x
        } else {
            x
        })
    }
}

/// Build the tree from the pre-order node list (`vec.md` §2.3 step 2-3).
fn build(
    nodes: &mut Vec<Node>,
    vals: &mut Vec<Entity>,
    data: &Bytes,
    header_len: usize,
    str_decoding: Option<StrCodec>,
) -> Result<Entity, VecError> {
    vals.clear();
    let mut cur = header_len;
    let mut take = |len: usize| {
        let s = data.slice(cur..cur + len);
        cur += len;
        s
    };
    for node in nodes.drain(..).rev() {
        let e = match node {
            Node::Leaf(e) => e,
            Node::Bytes(len) => Entity::Bytes(take(len)),
            Node::Str4(len) => {
                let codec = str_decoding.ok_or(VecError::NoStringCodec)?;
                Entity::String(decode_str(codec, &take(len))?)
            }
            Node::Str5 { codec, data } => {
                // Text payload precedes the codec name (§5.6).
                let text = take(data);
                let name = take(codec);
                let c = StrCodec::from_codec_name(&name).ok_or_else(|| {
                    VecError::UnknownCodec(String::from_utf8_lossy(&name).into_owned())
                })?;
                Entity::String(decode_str(c, &text)?)
            }
            Node::Tuple(n) => Entity::Tuple(pop_children(vals, n)),
            Node::Exception(n) => Entity::Exception(pop_children(vals, n)),
            Node::Tagged(n) => {
                let mut items = pop_children(vals, n).into_iter();
                let value = items.next().ok_or(VecError::MalformedTagged)?;
                Entity::Tagged(Box::new(Tagged {
                    value,
                    tags: items.collect(),
                }))
            }
        };
        vals.push(e);
    }
    debug_assert_eq!(vals.len(), 1);
    vals.pop().ok_or(VecError::MalformedTagged)
}

/// The last `n` values, in child order (they were pushed last child first).
fn pop_children(vals: &mut Vec<Entity>, n: usize) -> Vec<Entity> {
    debug_assert!(vals.len() >= n);
    let mut items = vals.split_off(vals.len().saturating_sub(n));
    items.reverse();
    items
}

/// Decode string bytes (`vec.md` §5.6).
fn decode_str(codec: StrCodec, b: &[u8]) -> Result<String, VecError> {
    match codec {
        StrCodec::Utf8 => std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| VecError::InvalidString("invalid UTF-8")),
        StrCodec::Utf16 => {
            if !b.len().is_multiple_of(2) {
                return Err(VecError::InvalidString("odd UTF-16 length"));
            }
            // BOM decides the order; none means little-endian (§5.6).
            let (big_endian, body) = match b {
                [0xFF, 0xFE, rest @ ..] => (false, rest),
                [0xFE, 0xFF, rest @ ..] => (true, rest),
                _ => (false, b),
            };
            let units = body.chunks_exact(2).map(|c| {
                let pair = [c[0], c[1]];
                if big_endian {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| VecError::InvalidString("invalid UTF-16"))
        }
    }
}
