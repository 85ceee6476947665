//! The entity tree (`docs/protocol/vec.md` §5), generic over what an object reference is.
//!
//! On the wire a reference is an id in one of two id spaces ([`WireRef`],
//! `docs/protocol/vec.md` §5.10). Above the link, the runtime replaces those ids with live
//! objects (`crate::Value` = `Entity<crate::Object>`). Everything else —
//! integers, strings, tuples, exceptions, tagged values — is the same tree in
//! both worlds, so one type (and one set of conversions) serves both.

use bytes::Bytes;
use num_bigint::BigInt;

/// A reference as written on the wire (`docs/protocol/vec.md` §5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireRef {
    /// `FC id`: an object owned by the **sender** of the entity (sender's id space).
    SenderOwned(i64),
    /// `FD id`: an object owned by the **receiver** (an id the receiver exported).
    ReceiverOwned(i64),
}

/// A float that is not a plain IEEE double: `digits × base^exp` (`docs/protocol/vec.md` §5.3).
///
/// Base-10 values (Python `Decimal`) and other bases are kept exactly as
/// received so that they re-encode byte for byte. `Debug` is bounded
/// ([`BoundedInt`](super::BoundedInt)): the parts come from the peer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VFloat {
    /// The significand, signed.
    pub digits: BigInt,
    /// The base, ≥ 2: 10 for Python `Decimal` (`F9`), 2 (`FA`) or any other
    /// (`FB`, §5.3).
    pub base: BigInt,
    /// The exponent of `base`, signed.
    pub exp: BigInt,
}

/// A tagged value (`docs/protocol/vec.md` §5.9): a value with one or more tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<R = WireRef> {
    /// The tagged value.
    pub value: Entity<R>,
    /// The tags in wire order (at least one); a VER label comes first when
    /// the tags name a type (§6, see [`vse`](super::vse)).
    pub tags: Vec<Entity<R>>,
}

/// One VFE entity (`docs/protocol/vec.md` §3, §5).
///
/// Integers are split in two variants so that the common case costs no
/// allocation: [`Entity::Int`] holds every value that fits in an `i64`,
/// [`Entity::BigInt`] only values outside that range (decoders and
/// [`Entity::int`] keep that invariant, so `==` is value equality).
///
/// `Debug` prints as derived, except that big integers above
/// 4096 bits are summarised
/// (`src/vec/fmt.rs`: decimal conversion is quadratic).
#[derive(Clone, PartialEq)]
pub enum Entity<R = WireRef> {
    /// VNone (`F8`).
    None,
    /// VBoolean (`F1`/`F2`).
    Bool(bool),
    /// VInteger in `i64` range.
    Int(i64),
    /// VInteger outside `i64` range.
    BigInt(BigInt),
    /// VFloat base 2 that is an exact finite IEEE double (`FA`).
    Float(f64),
    /// Any other VFloat (base 10 `F9`, other bases `FB`, base-2 values a
    /// double cannot hold exactly). Boxed, so that every entity is 40
    /// bytes rather than 104 (its three `BigInt`s inline): values are moved
    /// and copied on every call, and VFloats are rare.
    VFloat(Box<VFloat>),
    /// VBytes (`F3`).
    Bytes(Bytes),
    /// VString (`F4`/`F5`).
    String(String),
    /// VTuple (`F6`).
    Tuple(Vec<Entity<R>>),
    /// VException (`F7`): the exception's arguments.
    Exception(Vec<Entity<R>>),
    /// VTagged (`FE`).
    Tagged(Box<Tagged<R>>),
    /// An object reference (`FC`/`FD`).
    Ref(R),
}

impl<R> Entity<R> {
    /// An integer entity from any integer, normalised to [`Entity::Int`] when it fits.
    pub fn int(v: impl Into<BigInt>) -> Self {
        let v: BigInt = v.into();
        match i64::try_from(&v) {
            Ok(small) => Entity::Int(small),
            Err(_) => Entity::BigInt(v),
        }
    }

    /// The integer value as `i64`, if this is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Entity::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The integer value of any size.
    pub fn as_bigint(&self) -> Option<BigInt> {
        match self {
            Entity::Int(v) => Some(BigInt::from(*v)),
            Entity::BigInt(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// The string, if this is a VString.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Entity::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a VBytes.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Entity::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is a VTuple.
    pub fn as_tuple(&self) -> Option<&[Entity<R>]> {
        match self {
            Entity::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// Whether this is VNone.
    pub fn is_none(&self) -> bool {
        matches!(self, Entity::None)
    }

    /// Rebuild the tree with every reference mapped by `f` (which may fail).
    ///
    /// References are visited in pre-order, the order in which they appear
    /// on the wire, so id assignment on export matches Python's.
    pub fn try_map_refs<S, E>(self, f: &mut impl FnMut(R) -> Result<S, E>) -> Result<Entity<S>, E> {
        Ok(match self {
            Entity::None => Entity::None,
            Entity::Bool(b) => Entity::Bool(b),
            Entity::Int(v) => Entity::Int(v),
            Entity::BigInt(v) => Entity::BigInt(v),
            Entity::Float(v) => Entity::Float(v),
            Entity::VFloat(v) => Entity::VFloat(v),
            Entity::Bytes(b) => Entity::Bytes(b),
            Entity::String(s) => Entity::String(s),
            Entity::Tuple(items) => Entity::Tuple(map_vec(items, f)?),
            Entity::Exception(items) => Entity::Exception(map_vec(items, f)?),
            Entity::Tagged(t) => {
                let Tagged { value, tags } = *t;
                Entity::Tagged(Box::new(Tagged {
                    value: value.try_map_refs(f)?,
                    tags: map_vec(tags, f)?,
                }))
            }
            Entity::Ref(r) => Entity::Ref(f(r)?),
        })
    }

    /// Visit every reference in pre-order.
    pub fn for_each_ref(&self, f: &mut impl FnMut(&R)) {
        match self {
            Entity::Tuple(items) | Entity::Exception(items) => {
                items.iter().for_each(|e| e.for_each_ref(f))
            }
            Entity::Tagged(t) => {
                t.value.for_each_ref(f);
                t.tags.iter().for_each(|e| e.for_each_ref(f));
            }
            Entity::Ref(r) => f(r),
            _ => {}
        }
    }
}

fn map_vec<R, S, E>(
    items: Vec<Entity<R>>,
    f: &mut impl FnMut(R) -> Result<S, E>,
) -> Result<Vec<Entity<S>>, E> {
    items.into_iter().map(|e| e.try_map_refs(f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entity_is_five_words() {
        // Every value of every call is moved through these; a variant
        // that grows them (as an inline VFloat did, to 104 bytes) costs
        // about 2,000 instructions per echo call (docs/performance.md).
        assert_eq!(std::mem::size_of::<Entity>(), 40);
    }
}
