//! [`Value`]: the entity tree as the application sees it, with live objects
//! in place of wire ids, and conversions to and from ordinary Rust types.
//!
//! The conversions are generic over the reference type, so they work for
//! [`Value`] and for wire-level [`Entity`] alike.

use bytes::Bytes;
use num_bigint::BigInt;

use crate::object::Object;
use crate::vec::Entity;

/// An entity whose references are live objects (`docs/protocol/vol.md` §4.6).
pub type Value = Entity<Object>;

/// A value did not have the type a conversion asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct ValueError {
    /// What the conversion wanted: a Rust type name (`"i64"`) or an arity
    /// (`"2 argument(s)"`).
    pub expected: &'static str,
    /// What the value was: an entity type name (see [`Entity::type_name`])
    /// or, for a wrong arity, a description of the count.
    pub found: &'static str,
}

impl<R> Entity<R> {
    /// A short name of the entity type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Entity::None => "None",
            Entity::Bool(_) => "bool",
            Entity::Int(_) | Entity::BigInt(_) => "int",
            Entity::Float(_) | Entity::VFloat(_) => "float",
            Entity::Bytes(_) => "bytes",
            Entity::String(_) => "str",
            Entity::Tuple(_) => "tuple",
            Entity::Exception(_) => "exception",
            Entity::Tagged(_) => "tagged",
            Entity::Ref(_) => "object",
        }
    }

    fn mismatch(&self, expected: &'static str) -> ValueError {
        ValueError {
            expected,
            found: self.type_name(),
        }
    }
}

macro_rules! from_small_int {
    ($($t:ty),*) => {$(
        impl<R> From<$t> for Entity<R> {
            fn from(v: $t) -> Self {
                Entity::Int(i64::from(v))
            }
        }
        impl<R> TryFrom<Entity<R>> for $t {
            type Error = ValueError;
            fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
                match e {
                    Entity::Int(v) => <$t>::try_from(v).map_err(|_| ValueError {
                        expected: stringify!($t),
                        found: "int out of range",
                    }),
                    Entity::BigInt(_) => Err(ValueError {
                        expected: stringify!($t),
                        found: "int out of range",
                    }),
                    other => Err(other.mismatch(stringify!($t))),
                }
            }
        }
    )*};
}
from_small_int!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! from_wide_int {
    ($($t:ty),*) => {$(
        impl<R> From<$t> for Entity<R> {
            fn from(v: $t) -> Self {
                Entity::int(v)
            }
        }
        impl<R> TryFrom<Entity<R>> for $t {
            type Error = ValueError;
            fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
                let big = e.as_bigint().ok_or_else(|| e.mismatch(stringify!($t)))?;
                <$t>::try_from(big).map_err(|_| ValueError {
                    expected: stringify!($t),
                    found: "int out of range",
                })
            }
        }
    )*};
}
from_wide_int!(u64, i128, u128, usize, isize);

impl<R> From<BigInt> for Entity<R> {
    fn from(v: BigInt) -> Self {
        Entity::int(v)
    }
}

impl<R> TryFrom<Entity<R>> for BigInt {
    type Error = ValueError;
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        e.as_bigint().ok_or_else(|| e.mismatch("int"))
    }
}

impl<R> From<bool> for Entity<R> {
    fn from(v: bool) -> Self {
        Entity::Bool(v)
    }
}

impl<R> TryFrom<Entity<R>> for bool {
    type Error = ValueError;
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        match e {
            Entity::Bool(b) => Ok(b),
            other => Err(other.mismatch("bool")),
        }
    }
}

impl<R> From<f64> for Entity<R> {
    fn from(v: f64) -> Self {
        Entity::Float(v)
    }
}

impl<R> From<f32> for Entity<R> {
    fn from(v: f32) -> Self {
        Entity::Float(f64::from(v))
    }
}

impl<R> TryFrom<Entity<R>> for f64 {
    type Error = ValueError;
    /// Floats, and integers that a double holds exactly.
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        match e {
            Entity::Float(f) => Ok(f),
            // A base-2 float in a non-canonical form is still a double
            // (Python's rule, `docs/protocol/vec.md` §5.3).
            Entity::VFloat(ref v) if v.to_f64_exact().is_some() => {
                v.to_f64_exact().ok_or_else(|| e.mismatch("float"))
            }
            Entity::Int(v) if v.unsigned_abs() <= (1u64 << 53) => Ok(v as f64),
            other => Err(other.mismatch("float")),
        }
    }
}

impl<R> From<&str> for Entity<R> {
    fn from(v: &str) -> Self {
        Entity::String(v.to_owned())
    }
}

impl<R> From<String> for Entity<R> {
    fn from(v: String) -> Self {
        Entity::String(v)
    }
}

impl<R> TryFrom<Entity<R>> for String {
    type Error = ValueError;
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        match e {
            Entity::String(s) => Ok(s),
            other => Err(other.mismatch("str")),
        }
    }
}

impl<R> From<Bytes> for Entity<R> {
    fn from(v: Bytes) -> Self {
        Entity::Bytes(v)
    }
}

impl<R> From<Vec<u8>> for Entity<R> {
    fn from(v: Vec<u8>) -> Self {
        Entity::Bytes(Bytes::from(v))
    }
}

impl<R> From<&[u8]> for Entity<R> {
    fn from(v: &[u8]) -> Self {
        Entity::Bytes(Bytes::copy_from_slice(v))
    }
}

impl<R> TryFrom<Entity<R>> for Bytes {
    type Error = ValueError;
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        match e {
            Entity::Bytes(b) => Ok(b),
            other => Err(other.mismatch("bytes")),
        }
    }
}

impl<R> TryFrom<Entity<R>> for Vec<u8> {
    type Error = ValueError;
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        Bytes::try_from(e).map(|b| b.to_vec())
    }
}

impl<R> From<Vec<Entity<R>>> for Entity<R> {
    fn from(v: Vec<Entity<R>>) -> Self {
        Entity::Tuple(v)
    }
}

impl<R> TryFrom<Entity<R>> for Vec<Entity<R>> {
    type Error = ValueError;
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        match e {
            Entity::Tuple(t) => Ok(t),
            other => Err(other.mismatch("tuple")),
        }
    }
}

impl<R, T: Into<Entity<R>>> From<Option<T>> for Entity<R> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Entity::None, Into::into)
    }
}

impl<R, T: TryFrom<Entity<R>, Error = ValueError>> TryFrom<Entity<R>> for Option<T> {
    type Error = ValueError;
    fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
        match e {
            Entity::None => Ok(None),
            other => T::try_from(other).map(Some),
        }
    }
}

impl<R> From<()> for Entity<R> {
    /// `()` is VNone, the value of a method that returns nothing.
    fn from(_: ()) -> Self {
        Entity::None
    }
}

macro_rules! tuple_conversions {
    ($n:literal; $($name:ident),+) => {
        impl<R, $($name: Into<Entity<R>>),+> From<($($name,)+)> for Entity<R> {
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Self {
                Entity::Tuple(vec![$($name.into()),+])
            }
        }
        impl<R, $($name: TryFrom<Entity<R>, Error = ValueError>),+> TryFrom<Entity<R>> for ($($name,)+) {
            type Error = ValueError;
            fn try_from(e: Entity<R>) -> Result<Self, ValueError> {
                let items = match e {
                    Entity::Tuple(t) if t.len() == $n => t,
                    other => return Err(other.mismatch(concat!("tuple of ", $n))),
                };
                let mut it = items.into_iter();
                Ok(($($name::try_from(it.next().ok_or(ValueError { expected: "element", found: "end" })?)?,)+))
            }
        }
    };
}
tuple_conversions!(1; A);
tuple_conversions!(2; A, B);
tuple_conversions!(3; A, B, C);
tuple_conversions!(4; A, B, C, D);
tuple_conversions!(5; A, B, C, D, E);
tuple_conversions!(6; A, B, C, D, E, F);
tuple_conversions!(7; A, B, C, D, E, F, G);
tuple_conversions!(8; A, B, C, D, E, F, G, H);

/// Things that can be a call's argument list: `()`, tuples of values, or a
/// `Vec<Value>`. `remote.call("add", (1, 2))` sends `("add", 1, 2)`.
pub trait IntoArgs {
    /// The arguments in order, without the method name.
    fn into_args(self) -> Vec<Value>;

    /// `head` (the method name, for a call) followed by the arguments, in
    /// one vector. The provided version builds [`into_args`](Self::into_args)
    /// first; tuples and `()` allocate once, at the right size.
    fn into_args_after<const N: usize>(self, head: [Value; N]) -> Vec<Value>
    where
        Self: Sized,
    {
        head_then(head, self.into_args().into_iter())
    }
}

/// `head` followed by `tail`, in one allocation of the right size.
fn head_then<const N: usize>(
    head: [Value; N],
    tail: impl ExactSizeIterator<Item = Value>,
) -> Vec<Value> {
    let mut all = Vec::with_capacity(N + tail.len());
    all.extend(head);
    all.extend(tail);
    all
}

impl IntoArgs for () {
    fn into_args(self) -> Vec<Value> {
        Vec::new()
    }

    fn into_args_after<const N: usize>(self, head: [Value; N]) -> Vec<Value> {
        head.into()
    }
}

impl IntoArgs for Vec<Value> {
    fn into_args(self) -> Vec<Value> {
        self
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Into<Value>),+> IntoArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Vec<Value> {
                let ($($name,)+) = self;
                vec![$($name.into()),+]
            }

            #[allow(non_snake_case)]
            fn into_args_after<const N: usize>(self, head: [Value; N]) -> Vec<Value> {
                let ($($name,)+) = self;
                head_then(head, [$($name.into()),+].into_iter())
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);

/// Conversion of one argument or result [`Value`] into a Rust type
/// (implemented for every type with a `TryFrom<Value>` conversion above,
/// for `Value` itself, and for `()`, which accepts only VNone).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be converted from a versile `Value`",
    label = "not convertible from a `Value`",
    note = "arguments and results are owned types with `versile::FromValue` (i64, String, Vec<u8>, Option<T>, Value, RemoteObject, ...)"
)]
pub trait FromValue: Sized {
    /// Convert `v`, or say which type was expected and found.
    fn from_value(v: Value) -> Result<Self, ValueError>;
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        Ok(v)
    }
}

macro_rules! from_value_via_try_from {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self, ValueError> {
                <$t>::try_from(v)
            }
        }
    )*};
}
from_value_via_try_from!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    i128,
    u128,
    usize,
    isize,
    BigInt,
    bool,
    f64,
    String,
    Bytes,
    Vec<u8>,
    Vec<Value>,
    Object
);

impl FromValue for () {
    /// VNone, the result of a method that returns nothing.
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Entity::None => Ok(()),
            other => Err(other.mismatch("None")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Entity::None => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

macro_rules! tuple_from_value {
    ($n:literal; $($name:ident),+) => {
        impl<$($name: FromValue),+> FromValue for ($($name,)+) {
            /// A tuple of exactly this length, element by element.
            fn from_value(v: Value) -> Result<Self, ValueError> {
                let items = match v {
                    Entity::Tuple(t) if t.len() == $n => t,
                    other => return Err(other.mismatch(concat!("tuple of ", $n))),
                };
                let mut it = items.into_iter();
                Ok(($($name::from_value(it.next().unwrap_or(Entity::None))?,)+))
            }
        }
    };
}
tuple_from_value!(1; A);
tuple_from_value!(2; A, B);
tuple_from_value!(3; A, B, C);
tuple_from_value!(4; A, B, C, D);
tuple_from_value!(5; A, B, C, D, E);
tuple_from_value!(6; A, B, C, D, E, F);
tuple_from_value!(7; A, B, C, D, E, F, G);
tuple_from_value!(8; A, B, C, D, E, F, G, H);

/// Things a method's argument list can be parsed into, with an exact arity
/// check: `let (a, b): (i64, String) = call.args()?;`.
pub trait FromArgs: Sized {
    /// Convert the whole argument list (without the method name); a wrong
    /// count or type is a [`ValueError`], which a method answers as
    /// CALL_ERROR.
    fn from_args(args: Vec<Value>) -> Result<Self, ValueError>;
}

impl FromArgs for Vec<Value> {
    fn from_args(args: Vec<Value>) -> Result<Self, ValueError> {
        Ok(args)
    }
}

impl FromArgs for () {
    fn from_args(args: Vec<Value>) -> Result<Self, ValueError> {
        if args.is_empty() {
            Ok(())
        } else {
            Err(ValueError {
                expected: "no arguments",
                found: "arguments",
            })
        }
    }
}

macro_rules! tuple_from_args {
    ($n:literal; $($name:ident),+) => {
        impl<$($name: FromValue),+> FromArgs for ($($name,)+) {
            fn from_args(args: Vec<Value>) -> Result<Self, ValueError> {
                if args.len() != $n {
                    return Err(ValueError {
                        expected: concat!($n, " argument(s)"),
                        found: "a different number",
                    });
                }
                let mut it = args.into_iter();
                Ok(($($name::from_value(it.next().unwrap_or(Entity::None))?,)+))
            }
        }
    };
}
tuple_from_args!(1; A);
tuple_from_args!(2; A, B);
tuple_from_args!(3; A, B, C);
tuple_from_args!(4; A, B, C, D);
tuple_from_args!(5; A, B, C, D, E);
tuple_from_args!(6; A, B, C, D, E, F);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vec::WireRef;

    type E = Entity<WireRef>;

    #[test]
    fn arguments_follow_the_head_in_one_vector() {
        let head = || [Value::from("m")];
        let all = (1, "two").into_args_after(head());
        assert_eq!(
            all,
            vec![Value::from("m"), Value::from(1), Value::from("two")]
        );
        assert_eq!(all.capacity(), 3, "one allocation of the right size");
        assert_eq!(().into_args_after(head()), vec![Value::from("m")]);
        let v = vec![Value::from(true)];
        assert_eq!(
            v.into_args_after([Value::None, Value::from("n")]),
            vec![Value::None, Value::from("n"), Value::from(true)]
        );
    }

    #[test]
    fn round_trips() {
        assert_eq!(i64::try_from(E::from(-5i64)), Ok(-5));
        assert!(u8::try_from(E::from(300i64)).is_err());
        let big = BigInt::from(u64::MAX) * BigInt::from(4);
        assert_eq!(BigInt::try_from(E::from(big.clone())), Ok(big));
        assert_eq!(E::from(u64::MAX), Entity::BigInt(BigInt::from(u64::MAX)));
        assert_eq!(String::try_from(E::from("x")), Ok("x".to_string()));
        assert_eq!(Vec::<u8>::try_from(E::from(vec![1u8, 2])), Ok(vec![1, 2]));
        assert_eq!(Option::<i64>::try_from(E::None), Ok(None));
        let t: (i64, String, bool) = E::from((1, "a", true)).try_into().unwrap();
        assert_eq!(t, (1, "a".to_string(), true));
        assert!(<(i64, i64)>::try_from(E::from((1,))).is_err());
    }
}
