//! Incremental entity decoder (`docs/protocol/vec.md` §2.3).
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
//!
//! Memory: one wire byte can become a node plus an entity of a hundred
//! bytes, so wire size alone does not bound what a peer makes us spend
//! (`docs/design.md`, reliability). Each node is charged, before it is pushed,
//! what it will cost in memory until the entity is handed over: its node
//! slot, its place on the build stack and in its parent, and the heap it
//! owns (big integers, strings, tagged boxes); the scratch vectors grow in
//! steps that are charged before they happen. The sum is checked against
//! [`DecoderConfig::max_decoded_bytes`] (over it: [`VecError::DecodedTooLarge`])
//! and against an optional *room* set by the caller
//! ([`Decoder::set_memory_room`]): over the room, decoding stops at a node
//! boundary with `Ok(None)` and [`Decoder::is_waiting_for_memory`] until the
//! caller gives more room. Byte payloads are zero-copy slices of the
//! caller's buffer and cost nothing here; the caller accounts its buffer.

use bytes::{Bytes, BytesMut};
use num_bigint::BigInt;
use num_traits::ToPrimitive;

use super::encode::{code, float_parts, StrCodec};
use super::entity::{Entity, Tagged, VFloat, WireRef};
use super::error::VecError;
use super::netbytes::{decode_posint_raw, RawPosint};

/// Python's `msg_max`, 101 × 1024² bytes (`docs/protocol/vec.md` §8.4).
pub const DEFAULT_MAX_ENTITY_SIZE: usize = 105_906_176;
/// Default nesting limit (Python has none, `docs/protocol/vec.md` §2.3).
pub const DEFAULT_MAX_DEPTH: usize = 256;
/// Default in-memory cost limit of one decoded entity, 128 MiB: above what
/// a [`DEFAULT_MAX_ENTITY_SIZE`] entity of strings or big integers costs
/// (about its wire size), far below the ~14 GiB that a wire-size limit
/// alone lets a tuple of one-byte integers cost.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 128 * 1024 * 1024;

/// Decoder context and limits (`docs/protocol/vec.md` §4, §8.4).
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
    /// Largest in-memory cost of one entity being built, in bytes (see the
    /// module docs for what is charged); over it, [`VecError::DecodedTooLarge`].
    pub max_decoded_bytes: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_entity_size: DEFAULT_MAX_ENTITY_SIZE,
            max_depth: DEFAULT_MAX_DEPTH,
            str_decoding: None,
            allow_refs: false,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
        }
    }
}

/// One header node; leaves without payload are already values. Kept small
/// (24 bytes): the rare leaves with heap data are boxed.
#[derive(Debug)]
enum Node {
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    Ref(WireRef),
    /// Big integers and VFloats.
    Big(Box<Entity>),
    Bytes(usize),
    Str4(usize),
    Str5 {
        codec: usize,
        data: usize,
    },
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
    /// Memory charged for the nodes so far (without scratch capacity).
    tree: usize,
}

/// Incremental VEC entity decoder; see the module docs.
#[derive(Debug)]
pub struct Decoder {
    cfg: DecoderConfig,
    st: Progress,
    /// Scratch value stack for building trees (reused).
    vals: Vec<Entity>,
    /// Caller-given cap on [`Decoder::charge`] below the configured limit.
    room: usize,
    /// The last call stopped because the next node did not fit in `room`:
    /// the charge it needs.
    memory_wanted: Option<usize>,
}

/// Memory a node costs beyond its node slot: its place on the build stack
/// and in its parent's vector (`build`).
const ENTITY_SLOTS: usize = 2 * std::mem::size_of::<Entity>();
const NODE_SIZE: usize = std::mem::size_of::<Node>();
/// First capacity of the node list; it then doubles (charged before).
const FIRST_NODES: usize = 64;

/// Scratch vectors holding more than this many bytes are freed after an
/// entity: an idle link keeps at most this much (it is charged to it).
const KEEP_SCRATCH: usize = 64 * 1024;

impl Decoder {
    /// A decoder with the given context and limits.
    pub fn new(cfg: DecoderConfig) -> Self {
        Self {
            cfg,
            st: Progress::default(),
            vals: Vec::new(),
            room: usize::MAX,
            memory_wanted: None,
        }
    }

    /// Memory charged for the entity being decoded, including the scratch
    /// vectors the decoder keeps (module docs). Zero-copy byte payloads are
    /// not included: they live in the caller's buffer.
    pub fn charge(&self) -> usize {
        self.st.tree + self.scratch_charge()
    }

    fn scratch_charge(&self) -> usize {
        self.st.nodes.capacity() * NODE_SIZE
            + self.st.open.capacity() * std::mem::size_of::<usize>()
            + self.vals.capacity() * std::mem::size_of::<Entity>()
    }

    /// Let [`charge`](Self::charge) grow to at most `room` bytes (never
    /// beyond [`DecoderConfig::max_decoded_bytes`]): a node that does not fit
    /// stops decoding with `Ok(None)` until the room is raised. Used by a
    /// runtime that shares a memory budget between several consumers.
    pub fn set_memory_room(&mut self, room: usize) {
        self.room = room;
    }

    /// Whether the last [`decode`](Self::decode) stopped for lack of room
    /// rather than for lack of bytes.
    pub fn is_waiting_for_memory(&self) -> bool {
        self.memory_wanted.is_some()
    }

    /// When waiting for memory: the [`charge`](Self::charge) the next node
    /// needs, so that the caller can give at least that much room.
    pub fn memory_wanted(&self) -> Option<usize> {
        self.memory_wanted
    }

    /// Change the wire and memory limits (e.g. when a handshake completes).
    /// Takes effect from the next node on.
    pub fn set_limits(&mut self, max_entity_size: usize, max_decoded_bytes: usize) {
        self.cfg.max_entity_size = max_entity_size;
        self.cfg.max_decoded_bytes = max_decoded_bytes;
    }

    /// The current configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Set the codec for `F4` strings (from the peer's hello line).
    pub(crate) fn set_str_decoding(&mut self, codec: Option<StrCodec>) {
        self.cfg.str_decoding = codec;
    }

    /// Forget any partially parsed entity.
    pub fn reset(&mut self) {
        let st = &mut self.st;
        st.pos = 0;
        st.payload = 0;
        st.total = None;
        st.tree = 0;
        self.memory_wanted = None;
        st.open.clear();
        st.nodes.clear();
        self.vals.clear();
        // Keep scratch capacity for the next entity, unless it got large.
        if self.scratch_charge() > KEEP_SCRATCH {
            self.st.nodes = Vec::new();
            self.st.open = Vec::new();
            self.vals = Vec::new();
        }
    }

    /// Give the scratch vectors up if no entity is in progress: a link
    /// that goes quiet keeps none. The usual small ones go to a pool of
    /// this thread's for the next entity decoded here.
    pub fn release_scratch(&mut self) {
        if self.st.pos == 0 && self.st.nodes.is_empty() && self.vals.is_empty() {
            pool::give(&mut self.st.nodes, &mut self.st.open, &mut self.vals);
            // What the pool did not take (it holds one of each).
            if self.st.nodes.capacity() > 0 {
                self.st.nodes = Vec::new();
            }
            if self.st.open.capacity() > 0 {
                self.st.open = Vec::new();
            }
            if self.vals.capacity() > 0 {
                self.vals = Vec::new();
            }
        }
    }

    /// Header bytes of the current entity parsed so far: progress kept
    /// across calls (0 between entities).
    pub(crate) fn header_bytes_parsed(&self) -> usize {
        self.st.pos
    }

    /// Lower bound of the buffer length at which the next call can progress.
    // Public only for tests/vec_hostile.rs.
    #[doc(hidden)]
    pub fn min_bytes_needed(&self) -> usize {
        self.st.total.unwrap_or(self.st.pos + self.st.payload + 1)
    }

    /// Decode one entity from the front of `buf`.
    ///
    /// `Ok(Some(e))`: the entity's bytes were removed from `buf`.
    /// `Ok(None)`: incomplete, nothing consumed. `Err`: invalid input (fatal
    /// for the channel, `docs/protocol/vec.md` §8.4); nothing consumed, state reset.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Entity>, VecError> {
        self.decode_with(buf, build)
    }

    /// [`decode`](Self::decode), but a top-level 3-tuple whose first two
    /// items are leaves comes back as its items ([`Spread`]), without the
    /// allocation of its vector, nor that of its last item if that is a
    /// 2-tuple: the shape of every VOL call and response
    /// (`docs/protocol/vol.md` §3.1), which the link takes apart anyway.
    /// Same bytes consumed, same errors, same memory charged.
    pub(crate) fn decode_spread(&mut self, buf: &mut BytesMut) -> Result<Option<Spread>, VecError> {
        self.decode_with(buf, build_spread)
    }

    fn decode_with<T>(
        &mut self,
        buf: &mut BytesMut,
        build: BuildFn<T>,
    ) -> Result<Option<T>, VecError> {
        if buf.len() < self.st.pos {
            // The caller replaced the buffer: start over.
            self.reset();
        }
        self.memory_wanted = None;
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
        if self.vals.capacity() == 0 {
            // Within the two slots per node the tree was charged.
            self.vals = pool::take_vals(2 * self.st.nodes.len());
        }
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
            // Memory this node may own on the heap, known before it is built.
            let fixed = ENTITY_SLOTS + self.nodes_growth();
            let limit = self.cfg.max_decoded_bytes.min(self.room);
            // Unchanged until the node is pushed below.
            let charge = self.charge();
            let allowance = limit.saturating_sub(charge + fixed);
            let (node, n, heap) = match self.parse_node(rest, budget, allowance)? {
                Parsed::Node { node, len, heap } => (node, len, heap),
                Parsed::OverAllowance(heap) => return self.out_of_memory(fixed + heap),
                Parsed::Incomplete => {
                    if buf.len() > max {
                        return Err(too_large(buf.len(), max));
                    }
                    return Ok(None);
                }
            };
            let (payload, children) = match node {
                Node::Bytes(len) => (len, 0),
                Node::Str4(len) => (len, 0),
                Node::Str5 { codec, data } => (codec + data, 0),
                Node::Tuple(c) | Node::Exception(c) | Node::Tagged(c) => (0, c),
                _ => (0, 0),
            };
            // Each child needs at least one byte: bound counts up front.
            let st = &self.st;
            let least =
                (st.pos + n) as u128 + st.payload as u128 + payload as u128 + children as u128;
            if least > max as u128 {
                return Err(VecError::EntityTooLarge { size: least, max });
            }
            // …and at least a node's memory: refuse a huge count at once.
            let cost = fixed + heap;
            let least_mem =
                (charge + cost) as u128 + children as u128 * (ENTITY_SLOTS + NODE_SIZE) as u128;
            if least_mem > self.cfg.max_decoded_bytes as u128 {
                return Err(VecError::DecodedTooLarge {
                    size: least_mem,
                    max: self.cfg.max_decoded_bytes,
                });
            }
            if charge + cost > limit {
                return self.out_of_memory(cost);
            }
            if children > 0 && self.st.open.len() >= self.cfg.max_depth {
                return Err(VecError::NestingTooDeep {
                    max: self.cfg.max_depth,
                });
            }
            if self.st.nodes.len() == self.st.nodes.capacity() {
                if self.st.nodes.capacity() == 0 {
                    // Exactly `FIRST_NODES` (or none): charged as the
                    // reservation below would be; and the open stack's
                    // four slots, as its first push (this node's, or the
                    // next container's) would reserve.
                    let (nodes, open) = pool::take_nodes_and_open();
                    self.st.nodes = nodes;
                    if self.st.open.capacity() == 0 {
                        self.st.open = open;
                    }
                }
                if self.st.nodes.len() == self.st.nodes.capacity() {
                    let grow = self.st.nodes.capacity().max(FIRST_NODES);
                    self.st.nodes.reserve_exact(grow);
                }
            }
            let st = &mut self.st;
            st.pos += n;
            st.tree += ENTITY_SLOTS + heap;
            if let Some(top) = st.open.last_mut() {
                *top -= 1;
            }
            st.payload += payload;
            if children > 0 {
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

    /// Bytes the node list grows by before the next push (charged first).
    fn nodes_growth(&self) -> usize {
        let nodes = &self.st.nodes;
        if nodes.len() < nodes.capacity() {
            0
        } else {
            nodes.capacity().max(FIRST_NODES) * NODE_SIZE
        }
    }

    /// The next node costs `cost` more than allowed: a hard error over the
    /// configured limit, else wait for the caller to give more room.
    fn out_of_memory(&mut self, cost: usize) -> Result<Option<usize>, VecError> {
        let size = self.charge().saturating_add(cost);
        if size > self.cfg.max_decoded_bytes {
            return Err(VecError::DecodedTooLarge {
                size: size as u128,
                max: self.cfg.max_decoded_bytes,
            });
        }
        self.memory_wanted = Some(size);
        Ok(None)
    }

    /// Parse one explicit node's header (`docs/protocol/vec.md` §3, §5). A leaf that owns
    /// heap memory is only built if that fits in `allowance`.
    fn parse_node(&self, b: &[u8], budget: usize, allowance: usize) -> Result<Parsed, VecError> {
        let Some(&t) = b.first() else {
            return Ok(Parsed::Incomplete);
        };
        let mut at = 1;
        // Next netbytes number, raw.
        macro_rules! raw {
            () => {{
                let Some((raw, n)) = decode_posint_raw(&b[at..], budget)? else {
                    return Ok(Parsed::Incomplete);
                };
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
        // A big number's digits take about as many bytes as its wire form;
        // the box and three `BigInt` headers come on top. Checked before
        // the value is built (also for one that turns out to fit an `i64`).
        macro_rules! check_big_leaf {
            () => {{
                // A VFloat's three `BigInt`s are boxed on their own (the
                // entity stays 40 bytes): charged for integers too.
                let heap =
                    std::mem::size_of::<Entity>() + std::mem::size_of::<VFloat>() + at + 3 * 8;
                if heap > allowance {
                    return Ok(Parsed::OverAllowance(heap));
                }
                heap
            }};
        }
        macro_rules! big_leaf {
            ($build:expr) => {{
                let heap = check_big_leaf!();
                leaf($build, heap)
            }};
        }
        let (node, heap) = match t {
            0..=0xEE => (Node::Int(i64::from(t) - 1), 0),
            code::VINT_POS | code::VINT_NEG => {
                let raw = raw!();
                let heap = check_big_leaf!();
                let positive = t == code::VINT_POS;
                // Message and call ids past 237 take this path: no
                // `Entity` is built and dropped for them.
                match small_vint(raw, positive) {
                    Some(v) => (Node::Int(v), 0),
                    None => leaf(vint(raw, positive), heap),
                }
            }
            code::FALSE => (Node::Bool(false), 0),
            code::TRUE => (Node::Bool(true), 0),
            code::NONE => (Node::None, 0),
            code::BYTES => (Node::Bytes(length!()), 0),
            code::STRING => {
                let len = length!();
                (Node::Str4(len), string_heap(len, self.cfg.str_decoding))
            }
            code::STRING_ENC => {
                let codec = length!();
                let data = length!();
                // The codec is only known at build time: assume the widest.
                (
                    Node::Str5 { codec, data },
                    string_heap(data, Some(StrCodec::Utf16)),
                )
            }
            code::TUPLE => (Node::Tuple(length!()), 0),
            code::EXCEPTION => (Node::Exception(length!()), 0),
            code::TAGGED => match length!() {
                0 => return Err(VecError::MalformedTagged),
                n => (Node::Tagged(n), std::mem::size_of::<Tagged>()),
            },
            code::FLOAT_2 | code::FLOAT_10 => {
                let digits = raw!();
                let exp = raw!();
                let base = if t == code::FLOAT_2 { 2 } else { 10 };
                big_leaf!(vfloat(digits, BigInt::from(base), exp))
            }
            code::FLOAT_N => {
                let digits = raw!();
                let base = raw!();
                let exp = raw!();
                let base = base.signed_bigint();
                if base < BigInt::from(2) {
                    return Err(VecError::InvalidFloatBase(base.into()));
                }
                big_leaf!(vfloat(digits, base, exp))
            }
            code::REF_SENDER | code::REF_RECEIVER => {
                if !self.cfg.allow_refs {
                    return Err(VecError::RefsNotAllowed);
                }
                let id = raw!()
                    .signed_i128()
                    .and_then(|v| i64::try_from(v).ok())
                    .ok_or(VecError::ObjectIdOutOfRange)?;
                let r = if t == code::REF_SENDER {
                    WireRef::SenderOwned(id)
                } else {
                    WireRef::ReceiverOwned(id)
                };
                (Node::Ref(r), 0)
            }
            _ => return Err(VecError::BadTypeCode(t)),
        };
        Ok(Parsed::Node {
            node,
            len: at,
            heap,
        })
    }
}

/// What [`Decoder::parse_node`] found.
enum Parsed {
    Node {
        node: Node,
        len: usize,
        heap: usize,
    },
    Incomplete,
    /// A leaf would own this many heap bytes, more than allowed.
    OverAllowance(usize),
}

/// A leaf value as a node; only values with heap data are boxed.
fn leaf(e: Entity, heap: usize) -> (Node, usize) {
    match e {
        Entity::Int(v) => (Node::Int(v), 0),
        Entity::Float(v) => (Node::Float(v), 0),
        other => (Node::Big(Box::new(other)), heap),
    }
}

/// Heap of a decoded string: UTF-8 is copied as is; a UTF-16 code unit
/// (2 bytes) becomes at most 3 bytes of UTF-8.
fn string_heap(len: usize, codec: Option<StrCodec>) -> usize {
    match codec {
        Some(StrCodec::Utf16) => len.saturating_add(len / 2),
        _ => len,
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

/// `EF`/`F0` VInteger (`docs/protocol/vec.md` §5.1) if it fits an `i64`.
fn small_vint(raw: RawPosint<'_>, positive: bool) -> Option<i64> {
    let u = raw.to_u128().and_then(|u| i128::try_from(u).ok())?;
    let v = if positive {
        u.checked_add(238)
    } else {
        u.checked_add(2).map(|m| -m)
    };
    v.and_then(|v| i64::try_from(v).ok())
}

/// `EF`/`F0` VInteger (`docs/protocol/vec.md` §5.1), normalised to `Int` when it fits.
fn vint(raw: RawPosint<'_>, positive: bool) -> Entity {
    if let Some(small) = small_vint(raw, positive) {
        return Entity::Int(small);
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
    Entity::VFloat(Box::new(VFloat {
        digits: digits.signed_bigint(),
        base,
        exp: exp.signed_bigint(),
    }))
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
    /// rule (`docs/protocol/vec.md` §5.3). The decoder itself only yields `Entity::Float`
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

/// [`build`] or [`build_spread`]: node list, value stack, the entity's
/// bytes, the header length, the string codec.
type BuildFn<T> =
    fn(&mut Vec<Node>, &mut Vec<Entity>, &Bytes, usize, Option<StrCodec>) -> Result<T, VecError>;

/// Build the tree from the pre-order node list (`docs/protocol/vec.md` §2.3 step 2-3).
fn build(
    nodes: &mut Vec<Node>,
    vals: &mut Vec<Entity>,
    data: &Bytes,
    header_len: usize,
    str_decoding: Option<StrCodec>,
) -> Result<Entity, VecError> {
    vals.clear();
    // One exact allocation, charged per node (ENTITY_SLOTS).
    vals.reserve_exact(nodes.len());
    let mut payloads = Payloads {
        data,
        cur: header_len,
    };
    for node in nodes.drain(..).rev() {
        let e = build_node(node, vals, &mut payloads, str_decoding)?;
        vals.push(e);
    }
    debug_assert_eq!(vals.len(), 1);
    vals.pop().ok_or(VecError::MalformedTagged)
}

/// An entity from [`Decoder::decode_spread`].
#[derive(Debug)]
pub(crate) enum Spread {
    /// `(a, b, (c, d))` as `[a, b]` and `[c, d]`.
    TripleWithPair([Entity; 2], [Entity; 2]),
    /// `(a, b, c)`, `c` not a 2-tuple.
    Triple([Entity; 3]),
    /// Any other entity.
    Other(Entity),
}

/// [`build`], taking apart the shapes of [`Spread`] (the same nodes are
/// built in the same order, so payloads and errors are the same).
fn build_spread(
    nodes: &mut Vec<Node>,
    vals: &mut Vec<Entity>,
    data: &Bytes,
    header_len: usize,
    str_decoding: Option<StrCodec>,
) -> Result<Spread, VecError> {
    let is_leaf = |n: Option<&Node>| {
        matches!(
            n,
            Some(node) if !matches!(node, Node::Tuple(_) | Node::Exception(_) | Node::Tagged(_))
        )
    };
    if !(matches!(nodes.first(), Some(Node::Tuple(3)))
        && is_leaf(nodes.get(1))
        && is_leaf(nodes.get(2)))
    {
        return build(nodes, vals, data, header_len, str_decoding).map(Spread::Other);
    }
    let pair = matches!(nodes.get(3), Some(Node::Tuple(2)));
    vals.clear();
    vals.reserve_exact(nodes.len());
    let mut payloads = Payloads {
        data,
        cur: header_len,
    };
    // The third item's subtree (without its own node if it is a pair),
    // then the two leaves, last first, as `build` walks them.
    let first_built = if pair { 4 } else { 3 };
    let mut rest = nodes.drain(..).rev();
    while rest.len() > first_built {
        let Some(node) = rest.next() else { break };
        let e = build_node(node, vals, &mut payloads, str_decoding)?;
        vals.push(e);
    }
    let mut leaves = rest.take(3);
    if pair {
        leaves.next(); // the pair's node: its two items are on `vals`
    }
    let (Some(second), Some(first)) = (leaves.next(), leaves.next()) else {
        return Err(VecError::MalformedTagged);
    };
    let b = build_node(second, vals, &mut payloads, str_decoding)?;
    let a = build_node(first, vals, &mut payloads, str_decoding)?;
    if pair {
        let (Some(c), Some(d)) = (vals.pop(), vals.pop()) else {
            return Err(VecError::MalformedTagged);
        };
        Ok(Spread::TripleWithPair([a, b], [c, d]))
    } else {
        let Some(c) = vals.pop() else {
            return Err(VecError::MalformedTagged);
        };
        Ok(Spread::Triple([a, b, c]))
    }
}

/// The payload section of an entity, taken in order.
struct Payloads<'a> {
    data: &'a Bytes,
    cur: usize,
}

impl Payloads<'_> {
    fn take(&mut self, len: usize) -> Bytes {
        let s = self.data.slice(self.cur..self.cur + len);
        self.cur += len;
        s
    }
}

/// One node's value; a container's children are the last values on `vals`.
/// Inlined so that the value is built in place rather than returned
/// through a copy.
#[inline(always)]
fn build_node(
    node: Node,
    vals: &mut Vec<Entity>,
    payloads: &mut Payloads<'_>,
    str_decoding: Option<StrCodec>,
) -> Result<Entity, VecError> {
    Ok(match node {
        Node::Int(v) => Entity::Int(v),
        Node::Float(v) => Entity::Float(v),
        Node::Bool(v) => Entity::Bool(v),
        Node::None => Entity::None,
        Node::Ref(r) => Entity::Ref(r),
        Node::Big(e) => *e,
        Node::Bytes(len) => Entity::Bytes(payloads.take(len)),
        Node::Str4(len) => {
            let codec = str_decoding.ok_or(VecError::NoStringCodec)?;
            Entity::String(decode_str(codec, &payloads.take(len))?)
        }
        Node::Str5 { codec, data } => {
            // Text payload precedes the codec name (§5.6).
            let text = payloads.take(data);
            let name = payloads.take(codec);
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
    })
}

/// The last `n` values, in child order (they were pushed last child first).
fn pop_children(vals: &mut Vec<Entity>, n: usize) -> Vec<Entity> {
    debug_assert!(vals.len() >= n);
    // One exact allocation, each value moved once.
    vals.drain(vals.len().saturating_sub(n)..).rev().collect()
}

/// Decode string bytes (`docs/protocol/vec.md` §5.6).
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

/// Scratch vectors given up between entities ([`Decoder::release_scratch`]),
/// one set per thread, taken by the next entity decoded on that thread. An
/// idle link then holds no scratch (issue #8) while a busy one does not
/// allocate it for every message: the node list is 1.5 KiB, and its
/// allocation with the build stack's growth was ~1,900 instructions per
/// entity. Only the first node list (`FIRST_NODES`) and build stacks of at
/// most that many slots are kept, so a thread holds at most ~4 KiB here;
/// what an entity takes is charged as its own allocation would be.
mod pool {
    use std::cell::RefCell;

    use super::{Entity, Node, FIRST_NODES};

    /// The first capacity a `Vec<usize>` reserves.
    const FIRST_OPEN: usize = 4;

    #[derive(Default)]
    struct Scratch {
        nodes: Vec<Node>,
        open: Vec<usize>,
        vals: Vec<Entity>,
    }

    thread_local! {
        static POOL: RefCell<Scratch> = const {
            RefCell::new(Scratch {
                nodes: Vec::new(),
                open: Vec::new(),
                vals: Vec::new(),
            })
        };
    }

    /// Take the (empty) scratch vectors for the next entity, those that
    /// are small and whose slot is free (swapped: nothing is dropped here).
    pub(super) fn give(nodes: &mut Vec<Node>, open: &mut Vec<usize>, vals: &mut Vec<Entity>) {
        let _ = POOL.try_with(|p| {
            let Ok(mut p) = p.try_borrow_mut() else {
                return;
            };
            if nodes.capacity() == FIRST_NODES && p.nodes.capacity() == 0 {
                std::mem::swap(nodes, &mut p.nodes);
            }
            if open.capacity() == FIRST_OPEN && p.open.capacity() == 0 {
                std::mem::swap(open, &mut p.open);
            }
            if vals.capacity() > 0 && vals.capacity() <= FIRST_NODES && p.vals.capacity() == 0 {
                std::mem::swap(vals, &mut p.vals);
            }
        });
    }

    /// A node list of exactly `FIRST_NODES` slots and a stack of open
    /// containers of `FIRST_OPEN` (each, or an empty one): taken together,
    /// as every message starts with a container.
    pub(super) fn take_nodes_and_open() -> (Vec<Node>, Vec<usize>) {
        POOL.try_with(|p| {
            p.try_borrow_mut()
                .map(|mut p| (std::mem::take(&mut p.nodes), std::mem::take(&mut p.open)))
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    /// A build stack of at most `max` slots, or an empty one.
    pub(super) fn take_vals(max: usize) -> Vec<Entity> {
        POOL.try_with(|p| match p.try_borrow_mut() {
            Ok(mut p) if p.vals.capacity() <= max => std::mem::take(&mut p.vals),
            _ => Vec::new(),
        })
        .unwrap_or_default()
    }
}
