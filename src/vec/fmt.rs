//! Formatting of peer-sized numbers with a bound.
//!
//! A VInteger on the wire can be as large as the entity size limit allows
//! (hundreds of millions of bits), and num-bigint's decimal conversion is
//! quadratic in its length (measured: 1 Mbit in 73 ms, 8 Mbit in 1.25 s;
//! 800 Mbit would take hours). So nothing that a log line, an error
//! message or a `{:?}` may print converts a peer's integer to decimal
//! unbounded: [`BoundedInt`] prints integers up to [`MAX_DECIMAL_BITS`]
//! exactly and larger ones as `<int of N bits, 0x…>` (the bit length and
//! the top 64 bits, in linear time). `Entity`, `VFloat`, `VseValue` and
//! errors that carry a peer's integer ([`PeerInt`]) format through it.
//!
//! Data flow: `Debug`/`Display` → [`BoundedInt`] → exact decimal (small)
//! or bit length + hex prefix (large).

use std::fmt;

use num_bigint::{BigInt, Sign};
use num_traits::ToPrimitive;

use super::entity::{Entity, VFloat};
use super::vse::VseValue;

/// Integers up to this many bits are printed exactly (1,234 decimal
/// digits at most, microseconds to convert); larger ones are summarised.
pub(crate) const MAX_DECIMAL_BITS: u64 = 4096;

/// Display/Debug adapter: exact decimal up to 4096 bits, else
/// `<int of N bits, 0x…>` / `<int of N bits, -0x…>` with the top 64 bits.
#[derive(Clone, Copy)]
pub struct BoundedInt<'a>(pub &'a BigInt);

impl BoundedInt<'_> {
    /// Write `<int of N bits, [-]0x<top 64 bits>…>` (linear time).
    pub(crate) fn summary(v: &BigInt, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = v.bits();
        let top = (v.magnitude() >> bits.saturating_sub(64))
            .to_u64()
            .unwrap_or_default();
        let sign = if v.sign() == Sign::Minus { "-" } else { "" };
        write!(f, "<int of {bits} bits, {sign}0x{top:x}…>")
    }
}

impl fmt::Display for BoundedInt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.bits() <= MAX_DECIMAL_BITS {
            fmt::Display::fmt(self.0, f)
        } else {
            Self::summary(self.0, f)
        }
    }
}

impl fmt::Debug for BoundedInt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A peer's integer kept in an error value: compares and clones as the
/// integer, formats through [`BoundedInt`].
#[derive(Clone, PartialEq, Eq)]
pub struct PeerInt(pub BigInt);

impl From<BigInt> for PeerInt {
    fn from(v: BigInt) -> Self {
        PeerInt(v)
    }
}

impl fmt::Display for PeerInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&BoundedInt(&self.0), f)
    }
}

impl fmt::Debug for PeerInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&BoundedInt(&self.0), f)
    }
}

impl fmt::Debug for VFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VFloat")
            .field("digits", &BoundedInt(&self.digits))
            .field("base", &BoundedInt(&self.base))
            .field("exp", &BoundedInt(&self.exp))
            .finish()
    }
}

/// As `#[derive(Debug)]` would print it, with [`BoundedInt`] for big
/// integers.
impl<R: fmt::Debug> fmt::Debug for Entity<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::None => f.write_str("None"),
            Entity::Bool(v) => f.debug_tuple("Bool").field(v).finish(),
            Entity::Int(v) => f.debug_tuple("Int").field(v).finish(),
            Entity::BigInt(v) => f.debug_tuple("BigInt").field(&BoundedInt(v)).finish(),
            Entity::Float(v) => f.debug_tuple("Float").field(v).finish(),
            Entity::VFloat(v) => f.debug_tuple("VFloat").field(v).finish(),
            Entity::Bytes(v) => f.debug_tuple("Bytes").field(v).finish(),
            Entity::String(v) => f.debug_tuple("String").field(v).finish(),
            Entity::Tuple(v) => f.debug_tuple("Tuple").field(v).finish(),
            Entity::Exception(v) => f.debug_tuple("Exception").field(v).finish(),
            Entity::Tagged(v) => f.debug_tuple("Tagged").field(v).finish(),
            Entity::Ref(v) => f.debug_tuple("Ref").field(v).finish(),
        }
    }
}

/// As derived, with [`BoundedInt`] for the integers of `ArrayOfVInteger`.
impl<R: fmt::Debug> fmt::Debug for VseValue<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VseValue::FrozenMultiArray { dims, data } => f
                .debug_struct("FrozenMultiArray")
                .field("dims", dims)
                .field("data", data)
                .finish(),
            VseValue::FrozenDict(v) => f.debug_tuple("FrozenDict").field(v).finish(),
            VseValue::FrozenSet(v) => f.debug_tuple("FrozenSet").field(v).finish(),
            VseValue::ArrayOfInt(v) => f.debug_tuple("ArrayOfInt").field(v).finish(),
            VseValue::ArrayOfLong(v) => f.debug_tuple("ArrayOfLong").field(v).finish(),
            VseValue::ArrayOfVInteger(v) => {
                let ints: Vec<BoundedInt<'_>> = v.iter().map(BoundedInt).collect();
                f.debug_tuple("ArrayOfVInteger").field(&ints).finish()
            }
            VseValue::ArrayOfFloat(v) => f.debug_tuple("ArrayOfFloat").field(v).finish(),
            VseValue::ArrayOfDouble(v) => f.debug_tuple("ArrayOfDouble").field(v).finish(),
            VseValue::ArrayOfVFloat(v) => f.debug_tuple("ArrayOfVFloat").field(v).finish(),
            VseValue::UtcTime { days, secs } => f
                .debug_struct("UtcTime")
                .field("days", days)
                .field("secs", secs)
                .finish(),
            VseValue::Concept { kind, value } => f
                .debug_struct("Concept")
                .field("kind", kind)
                .field("value", value)
                .finish(),
            VseValue::PrefixedUnit { prefix, unit } => f
                .debug_struct("PrefixedUnit")
                .field("prefix", prefix)
                .field("unit", unit)
                .finish(),
            VseValue::DimensionalQuantity { quantity, unit } => f
                .debug_struct("DimensionalQuantity")
                .field("quantity", quantity)
                .field("unit", unit)
                .finish(),
            VseValue::Other {
                code,
                value,
                residual,
            } => f
                .debug_struct("Other")
                .field("code", code)
                .field("value", value)
                .field("residual", residual)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vec::VecError;

    /// 2^(8 Mi) − 1: decimal would take over a second here and grow
    /// quadratically; the summary is a few dozen characters.
    fn huge() -> BigInt {
        (BigInt::from(1) << (8u64 << 20)) - BigInt::from(1)
    }

    #[test]
    fn small_integers_print_exactly() {
        let v = BigInt::from(u64::MAX) * 3;
        assert_eq!(BoundedInt(&v).to_string(), v.to_string());
        let edge = (BigInt::from(1) << MAX_DECIMAL_BITS) - 1;
        assert_eq!(BoundedInt(&edge).to_string(), edge.to_string());
        assert_eq!(
            format!("{:?}", Entity::<()>::BigInt(-v.clone())),
            format!("BigInt(-{v})")
        );
    }

    #[test]
    fn huge_integers_print_bit_length_and_hex_prefix() {
        let v = huge();
        assert_eq!(
            BoundedInt(&v).to_string(),
            "<int of 8388608 bits, 0xffffffffffffffff…>"
        );
        let neg = -(BigInt::from(0xabcd) << 10_000u32);
        assert_eq!(
            BoundedInt(&neg).to_string(),
            "<int of 10016 bits, -0xabcd000000000000…>"
        );
        let e: Entity = Entity::Tuple(vec![Entity::BigInt(v.clone()), Entity::Int(1)]);
        let dbg = format!("{e:?}");
        assert_eq!(
            dbg,
            "Tuple([BigInt(<int of 8388608 bits, 0xffffffffffffffff…>), Int(1)])"
        );
        let f = Entity::<()>::VFloat(Box::new(VFloat {
            digits: v.clone(),
            base: BigInt::from(10),
            exp: -v.clone(),
        }));
        assert!(format!("{f:?}").len() < 200, "{f:?}");
        let vse = VseValue::<()>::ArrayOfVInteger(vec![v, BigInt::from(7)]);
        assert_eq!(
            format!("{vse:?}"),
            "ArrayOfVInteger([<int of 8388608 bits, 0xffffffffffffffff…>, 7])"
        );
    }

    #[test]
    fn errors_carry_a_bounded_integer() {
        let e = VecError::InvalidFloatBase(PeerInt(-huge()));
        assert_eq!(
            e.to_string(),
            "invalid VFloat base <int of 8388608 bits, -0xffffffffffffffff…>"
        );
        assert!(format!("{e:?}").len() < 100, "{e:?}");
        let small = VecError::InvalidFloatBase(BigInt::from(-3).into());
        assert_eq!(small.to_string(), "invalid VFloat base -3");
    }
}
