//! [`CallError`]: how a remote call can fail, on both sides of a link.

use crate::value::{Value, ValueError};
use crate::vec::Entity;
use crate::vol::LinkError;

/// The failure of a remote call (`docs/protocol/vol.md` §4.5, §4.7).
///
/// On the calling side it says what came back; on the serving side a
/// method returns it to choose what goes on the wire:
/// [`Exception`](CallError::Exception) becomes CALL_EXCEPTION, every other
/// variant CALL_ERROR (which carries no detail; the detail stays local).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The method raised: the payload of CALL_EXCEPTION, normally a
    /// VException ([`Entity::Exception`]) with its arguments.
    #[error("remote exception: {}", describe_exception(.0))]
    Exception(Value),
    /// CALL_ERROR: the call could not be performed (unknown method, bad
    /// arguments, a failure inside the method that is not an exception).
    #[error("the call could not be performed{}", .0.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Failed(Option<String>),
    /// The link failed or closed before the result arrived.
    #[error("link failed: {0}")]
    Link(#[from] LinkError),
    /// The arguments or the result have no wire form (e.g. NaN).
    #[error("value cannot be encoded: {0}")]
    Unencodable(&'static str),
}

impl CallError {
    /// A VException with the given arguments, for a method to raise:
    /// `Err(CallError::exception(("failed on purpose", 42)))`.
    pub fn exception(args: impl crate::value::IntoArgs) -> Self {
        CallError::Exception(Entity::Exception(args.into_args()))
    }

    /// CALL_ERROR with a local explanation (not sent to the peer).
    pub fn failed(detail: impl Into<String>) -> Self {
        CallError::Failed(Some(detail.into()))
    }

    /// The exception's arguments, if this is a VException.
    pub fn exception_args(&self) -> Option<&[Value]> {
        match self {
            CallError::Exception(Entity::Exception(args)) => Some(args),
            _ => None,
        }
    }
}

impl From<ValueError> for CallError {
    /// A wrong argument type or count: CALL_ERROR, as Python's `TypeError`.
    fn from(e: ValueError) -> Self {
        CallError::Failed(Some(format!("invalid arguments: {e}")))
    }
}

fn describe_exception(v: &Value) -> String {
    match v {
        Entity::Exception(args) => {
            let parts: Vec<String> = args.iter().map(short).collect();
            format!("VException({})", parts.join(", "))
        }
        other => short(other),
    }
}

fn short(v: &Value) -> String {
    match v {
        Entity::String(s) => format!("{s:?}"),
        Entity::Int(i) => i.to_string(),
        // Peer-sized: bounded (`src/vec/fmt.rs`).
        Entity::BigInt(i) => crate::vec::BoundedInt(i).to_string(),
        Entity::Bool(b) => b.to_string(),
        Entity::None => "None".into(),
        other => format!("<{}>", other.type_name()),
    }
}

#[cfg(test)]
mod tests {
    use num_bigint::BigInt;

    use super::*;
    use crate::vol::CallId;

    /// A peer's exception or call id holding a huge integer formats in
    /// bounded length (decimal would be quadratic, `src/vec/fmt.rs`).
    #[test]
    fn peer_sized_integers_format_bounded() {
        let huge: BigInt = (BigInt::from(1) << (8u64 << 20)) - BigInt::from(1);
        let e = CallError::exception(("boom", Value::int(huge.clone())));
        let text = e.to_string();
        assert_eq!(
            text,
            "remote exception: VException(\"boom\", <int of 8388608 bits, 0xffffffffffffffff…>)"
        );
        assert!(format!("{e:?}").len() < 200);
        let id = CallId::Big(huge);
        assert_eq!(
            format!("{id:?}"),
            "Big(<int of 8388608 bits, 0xffffffffffffffff…>)"
        );
    }
}
