//! VER labels and the VSE standard types (`docs/protocol/vec.md` §6, §7).
//!
//! A VSE value travels as a VTagged whose first tags are a VER label; Python
//! writes the relative-OID label `21, a, b` followed by residual tags.
//! [`VseValue::from_tagged`] recognises all three label forms (§6) and parses
//! the value layout of §7; [`VseValue::to_entity`] writes Python's exact form.

use bytes::{BufMut, Bytes};
use num_bigint::BigInt;

use super::entity::{Entity, Tagged, VFloat, WireRef};
use super::error::VecError;
use super::netbytes::{decode_posint_raw, encode_signed};

/// The VSE OID prefix `1.3.6.1.4.1.38927.1` (`docs/protocol/vec.md` §6).
pub const VSE_OID_PREFIX: [u64; 8] = [1, 3, 6, 1, 4, 1, 38927, 1];

/// A VER label (`docs/protocol/vec.md` §6), relative OIDs already made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerLabel {
    /// Object identifier.
    Oid(Vec<u64>),
    /// Name and version (first tag `−1`).
    Name {
        /// The type's name parts, e.g. `("versile", "container", "frozenset")`.
        name: Vec<String>,
        /// Its version parts; VSE types use `(0, 8)`.
        version: Vec<i64>,
    },
}

/// Parse the VER label at the start of `tags`; returns it and the number of
/// tags it used, or `None` if the tags are not a (well-formed) label.
pub fn ver_label<R>(tags: &[Entity<R>]) -> Option<(VerLabel, usize)> {
    let first = tags.first()?.as_i64()?;
    if first == -1 {
        let name = tags
            .get(1)?
            .as_tuple()?
            .iter()
            .map(|e| e.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?;
        let version = tags
            .get(2)?
            .as_tuple()?
            .iter()
            .map(Entity::as_i64)
            .collect::<Option<Vec<_>>>()?;
        return Some((VerLabel::Name { name, version }, 3));
    }
    if first < 0 || first % 10 > 1 {
        return None;
    }
    let n = usize::try_from(first / 10).ok()?;
    let parts = tags
        .get(1..1 + n)?
        .iter()
        .map(|e| e.as_i64().and_then(|v| u64::try_from(v).ok()))
        .collect::<Option<Vec<_>>>()?;
    let oid = if first % 10 == 1 {
        VSE_OID_PREFIX.iter().copied().chain(parts).collect()
    } else {
        parts
    };
    Some((VerLabel::Oid(oid), 1 + n))
}

/// The VSE types of `docs/protocol/vec.md` §7: `(a, b, group, name)`.
const CATALOGUE: &[(u64, u64, &str, &str)] = &[
    (1, 1, "container", "frozenmultiarray"),
    (1, 2, "container", "frozendict"),
    (1, 3, "container", "frozenset"),
    (1, 4, "container", "arrayofint"),
    (1, 5, "container", "arrayoflong"),
    (1, 6, "container", "arrayofvinteger"),
    (1, 7, "container", "arrayoffloat"),
    (1, 8, "container", "arrayofdouble"),
    (1, 9, "container", "arrayofvfloat"),
    (2, 1, "stream", "bytestreamer"),
    (2, 2, "stream", "entitystreamer"),
    (3, 1, "native", "object"),
    (3, 2, "native", "exception"),
    (4, 1, "util", "function"),
    (4, 2, "util", "udprelay"),
    (4, 3, "util", "udp_vop"),
    (4, 4, "util", "login"),
    (5, 1, "time", "utctime"),
    (6, 1, "semantics", "concept"),
    (7, 1, "math", "prefixedunit"),
    (7, 2, "math", "dimensionalquantity"),
];

/// The VSE code `(a, b)` of a label, if it names a catalogued VSE type.
pub fn vse_code(label: &VerLabel) -> Option<(u64, u64)> {
    CATALOGUE.iter().find_map(|&(a, b, group, name)| {
        let hit = match label {
            VerLabel::Oid(oid) => {
                oid.len() == 10 && oid[..8] == VSE_OID_PREFIX && oid[8..] == [a, b]
            }
            VerLabel::Name { name: n, version } => {
                n.len() == 3
                    && n[0] == "versile"
                    && n[1] == group
                    && n[2] == name
                    && version[..] == [0, 8]
            }
        };
        hit.then_some((a, b))
    })
}

/// A typed VSE value (`docs/protocol/vec.md` §7). `Debug` is bounded for big integers
/// (`src/vec/fmt.rs`).
#[derive(Clone, PartialEq)]
pub enum VseValue<R = WireRef> {
    /// 1,1: elements flattened with the first index varying fastest.
    FrozenMultiArray {
        /// The dimensions, from the residual tags (integers > 0 on the wire).
        dims: Vec<Entity<R>>,
        /// All elements; its length is the product of `dims`.
        data: Vec<Entity<R>>,
    },
    /// 1,2: key/value pairs in wire order (duplicates are not checked).
    FrozenDict(Vec<(Entity<R>, Entity<R>)>),
    /// 1,3: elements in wire order.
    FrozenSet(Vec<Entity<R>>),
    /// 1,4: int32 big-endian.
    ArrayOfInt(Vec<i32>),
    /// 1,5: int64 big-endian.
    ArrayOfLong(Vec<i64>),
    /// 1,6: signed netbytes.
    ArrayOfVInteger(Vec<BigInt>),
    /// 1,7: binary32 big-endian.
    ArrayOfFloat(Vec<f32>),
    /// 1,8: binary64 big-endian.
    ArrayOfDouble(Vec<f64>),
    /// 1,9: signed netbytes triples (digits, base, exp).
    ArrayOfVFloat(Vec<VFloat>),
    /// 5,1: days since 1970-01-01 and seconds into the day (int or VFloat).
    UtcTime {
        /// Whole days since 1970-01-01.
        days: Entity<R>,
        /// Seconds into the day; Python sends a base-10 VFloat for a
        /// `datetime`.
        secs: Entity<R>,
    },
    /// 6,1: concept type (residual tag) and its value.
    Concept {
        /// The concept type: 1 VP-defined, 2 English Wikipedia title, 3 URL.
        kind: Entity<R>,
        /// The concept itself, laid out as its `kind` says.
        value: Entity<R>,
    },
    /// 7,1: `(prefix, unit)`.
    PrefixedUnit {
        /// The prefix (e.g. kilo), itself usually a VSE value.
        prefix: Entity<R>,
        /// The unit it scales.
        unit: Entity<R>,
    },
    /// 7,2: `(quantity, unit)`.
    DimensionalQuantity {
        /// The number.
        quantity: Entity<R>,
        /// The unit it is measured in.
        unit: Entity<R>,
    },
    /// Any other catalogued type (streamers, native, util — mostly
    /// reference-carrying), kept raw.
    Other {
        /// The VSE code `(a, b)` from the label.
        code: (u64, u64),
        /// The tagged value, unparsed.
        value: Entity<R>,
        /// The tags after the label, unparsed.
        residual: Vec<Entity<R>>,
    },
}

fn bad(what: &'static str) -> VecError {
    VecError::InvalidVse(what)
}

fn pair<R: Clone>(v: &Entity<R>, what: &'static str) -> Result<(Entity<R>, Entity<R>), VecError> {
    match v.as_tuple() {
        Some([a, b]) => Ok((a.clone(), b.clone())),
        _ => Err(bad(what)),
    }
}

fn fixed<const N: usize, T>(
    v: &Entity<impl Sized>,
    f: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, VecError> {
    let b = v.as_bytes().ok_or(bad("array value must be bytes"))?;
    if b.len() % N != 0 {
        return Err(bad("array length not a multiple of the element size"));
    }
    Ok(b.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect())
}

/// Consecutive signed netbytes numbers filling `b` exactly.
fn signed_list(b: &[u8]) -> Result<Vec<BigInt>, VecError> {
    let mut out = Vec::new();
    let mut rest = b;
    while !rest.is_empty() {
        let (raw, n) =
            decode_posint_raw(rest, rest.len())?.ok_or(bad("truncated netbytes in array"))?;
        out.push(raw.signed_bigint());
        rest = &rest[n..];
    }
    Ok(out)
}

impl<R: Clone> VseValue<R> {
    /// Recognise a VSE type: `None` if the tags are not a VSE label,
    /// `Some(Err)` if the label is VSE but the value layout is invalid.
    pub fn from_tagged(t: &Tagged<R>) -> Option<Result<Self, VecError>> {
        let (label, used) = ver_label(&t.tags)?;
        let code = vse_code(&label)?;
        Some(Self::parse(code, &t.value, &t.tags[used..]))
    }

    fn parse(code: (u64, u64), v: &Entity<R>, residual: &[Entity<R>]) -> Result<Self, VecError> {
        let tuple = || v.as_tuple().ok_or(bad("value must be a tuple"));
        Ok(match code {
            (1, 1) => {
                let data = tuple()?.to_vec();
                let mut count: u128 = 1;
                for d in residual {
                    match d.as_i64() {
                        Some(n) if n > 0 => count = count.saturating_mul(n as u128),
                        _ => return Err(bad("multi-array dimensions must be positive ints")),
                    }
                }
                if residual.is_empty() || count != data.len() as u128 {
                    return Err(bad("multi-array size does not match dimensions"));
                }
                VseValue::FrozenMultiArray {
                    dims: residual.to_vec(),
                    data,
                }
            }
            (1, 2) => {
                let items = tuple()?;
                if items.len() % 2 != 0 {
                    return Err(bad("frozendict needs an even number of elements"));
                }
                let pairs = items
                    .chunks_exact(2)
                    .map(|kv| (kv[0].clone(), kv[1].clone()));
                VseValue::FrozenDict(pairs.collect())
            }
            (1, 3) => VseValue::FrozenSet(tuple()?.to_vec()),
            (1, 4) => VseValue::ArrayOfInt(fixed(v, i32::from_be_bytes)?),
            (1, 5) => VseValue::ArrayOfLong(fixed(v, i64::from_be_bytes)?),
            (1, 6) => {
                let b = v.as_bytes().ok_or(bad("array value must be bytes"))?;
                VseValue::ArrayOfVInteger(signed_list(b)?)
            }
            (1, 7) => VseValue::ArrayOfFloat(fixed(v, f32::from_be_bytes)?),
            (1, 8) => VseValue::ArrayOfDouble(fixed(v, f64::from_be_bytes)?),
            (1, 9) => {
                let b = v.as_bytes().ok_or(bad("array value must be bytes"))?;
                let nums = signed_list(b)?;
                if nums.len() % 3 != 0 {
                    return Err(bad("vfloat array needs (digits, base, exp) triples"));
                }
                let floats = nums.chunks_exact(3).map(|t| VFloat {
                    digits: t[0].clone(),
                    base: t[1].clone(),
                    exp: t[2].clone(),
                });
                VseValue::ArrayOfVFloat(floats.collect())
            }
            (5, 1) => {
                let (days, secs) = pair(v, "utctime value must be (days, secs)")?;
                VseValue::UtcTime { days, secs }
            }
            (6, 1) => match residual {
                [kind] => VseValue::Concept {
                    kind: kind.clone(),
                    value: v.clone(),
                },
                _ => return Err(bad("concept needs one type tag")),
            },
            (7, 1) => {
                let (prefix, unit) = pair(v, "prefixedunit value must be (prefix, unit)")?;
                VseValue::PrefixedUnit { prefix, unit }
            }
            (7, 2) => {
                let (quantity, unit) = pair(v, "quantity value must be (quantity, unit)")?;
                VseValue::DimensionalQuantity { quantity, unit }
            }
            code => VseValue::Other {
                code,
                value: v.clone(),
                residual: residual.to_vec(),
            },
        })
    }

    /// Python's wire form: VTagged `value, 21, a, b, residual…` (`docs/protocol/vec.md` §6).
    pub fn to_entity(&self) -> Entity<R> {
        let tuple2 = |a: &Entity<R>, b: &Entity<R>| Entity::Tuple(vec![a.clone(), b.clone()]);
        let (code, value, residual) = match self {
            VseValue::FrozenMultiArray { dims, data } => {
                ((1, 1), Entity::Tuple(data.clone()), dims.clone())
            }
            VseValue::FrozenDict(pairs) => {
                let flat = pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]);
                ((1, 2), Entity::Tuple(flat.collect()), vec![])
            }
            VseValue::FrozenSet(items) => ((1, 3), Entity::Tuple(items.clone()), vec![]),
            VseValue::ArrayOfInt(v) => ((1, 4), packed(v, |x, o| o.put_i32(*x)), vec![]),
            VseValue::ArrayOfLong(v) => ((1, 5), packed(v, |x, o| o.put_i64(*x)), vec![]),
            VseValue::ArrayOfVInteger(v) => ((1, 6), packed(v, encode_signed), vec![]),
            VseValue::ArrayOfFloat(v) => ((1, 7), packed(v, |x, o| o.put_f32(*x)), vec![]),
            VseValue::ArrayOfDouble(v) => ((1, 8), packed(v, |x, o| o.put_f64(*x)), vec![]),
            VseValue::ArrayOfVFloat(v) => {
                let bytes = packed(v, |f, o| {
                    encode_signed(&f.digits, o);
                    encode_signed(&f.base, o);
                    encode_signed(&f.exp, o);
                });
                ((1, 9), bytes, vec![])
            }
            VseValue::UtcTime { days, secs } => ((5, 1), tuple2(days, secs), vec![]),
            VseValue::Concept { kind, value } => ((6, 1), value.clone(), vec![kind.clone()]),
            VseValue::PrefixedUnit { prefix, unit } => ((7, 1), tuple2(prefix, unit), vec![]),
            VseValue::DimensionalQuantity { quantity, unit } => {
                ((7, 2), tuple2(quantity, unit), vec![])
            }
            VseValue::Other {
                code,
                value,
                residual,
            } => (*code, value.clone(), residual.clone()),
        };
        let mut tags = vse_label(code);
        tags.extend(residual);
        Entity::Tagged(Box::new(Tagged { value, tags }))
    }

    /// The native tuple Python makes of an array type (`docs/protocol/vec.md` §7).
    pub fn array_as_tuple(&self) -> Option<Entity<R>> {
        let items: Vec<Entity<R>> = match self {
            VseValue::ArrayOfInt(v) => v.iter().map(|&x| Entity::Int(x.into())).collect(),
            VseValue::ArrayOfLong(v) => v.iter().map(|&x| Entity::Int(x)).collect(),
            VseValue::ArrayOfVInteger(v) => v.iter().map(|x| Entity::int(x.clone())).collect(),
            VseValue::ArrayOfFloat(v) => v.iter().map(|&x| Entity::Float(x.into())).collect(),
            VseValue::ArrayOfDouble(v) => v.iter().map(|&x| Entity::Float(x)).collect(),
            VseValue::ArrayOfVFloat(v) => v.iter().map(vfloat_entity).collect(),
            _ => return None,
        };
        Some(Entity::Tuple(items))
    }
}

/// Python's native value of an array VFloat: a double if exact (`docs/protocol/vec.md` §5.3).
fn vfloat_entity<R>(f: &VFloat) -> Entity<R> {
    match f.to_f64_exact() {
        Some(x) => Entity::Float(x),
        None => Entity::VFloat(Box::new(f.clone())),
    }
}

/// The label tags `21, a, b` Python writes for VSE type `(a, b)` (`docs/protocol/vec.md` §6).
pub(crate) fn vse_label<R>((a, b): (u64, u64)) -> Vec<Entity<R>> {
    vec![Entity::Int(21), Entity::int(a), Entity::int(b)]
}

fn packed<T, R>(items: &[T], mut put: impl FnMut(&T, &mut Vec<u8>)) -> Entity<R> {
    let mut out = Vec::new();
    for x in items {
        put(x, &mut out);
    }
    Entity::Bytes(Bytes::from(out))
}
