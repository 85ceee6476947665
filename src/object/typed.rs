//! The runtime half of the typed API: what `#[versile::object]` and
//! `#[versile::client]` (crate `versile-macros`) expand to.
//!
//! Serving: the macro turns an `impl` block of async methods into a
//! [`Publish`] implementation that registers one [`ObjectBuilder`] method per
//! Rust method. An incoming call flows
//!
//! ```text
//! ("add", 2, 3) → ObjectBuilder (name → method, meta calls, docs/protocol/vol.md §4.1–4.3)
//!              → Args: arity check, FromValue per argument  (CALL_ERROR)
//!              → the Rust method
//!              → IntoCallResult: Ok value / Err → CallError (CALL_EXCEPTION)
//! ```
//!
//! Calling: the macro turns a trait into a client struct over a
//! [`RemoteObject`] whose methods convert arguments with `Into<Value>` and
//! the result with [`FromValue`]; a result of the wrong type is a
//! [`ProxyError::Result`], every other failure the [`CallError`].
//!
//! [`ObjectBuilder`] stays the dynamic API underneath, for objects whose
//! methods are only known at run time.

use std::sync::Arc;

use super::{CallError, LocalObject, ObjectBuilder, RemoteObject};
use crate::value::{FromValue, Value, ValueError};

/// A type whose methods are published as a VOB object (`docs/protocol/vol.md` §4.1–4.5).
///
/// Implemented by `#[versile::object]` on an `impl` block, which also
/// implements `From<Self> for LocalObject`, so the type can be served
/// directly (`GatewayService::new(|| Counter::default())`).
pub trait Publish: Sized + Send + Sync + 'static {
    /// Adds the class documentation and every published method to `builder`.
    fn publish(builder: ObjectBuilder<Self>) -> ObjectBuilder<Self>;

    /// A builder with everything published, to add custom meta calls or
    /// dynamic methods before [`build`](ObjectBuilder::build).
    fn into_builder(self) -> ObjectBuilder<Self> {
        Self::publish(ObjectBuilder::new(self))
    }

    /// The served object, owning `self`.
    fn into_object(self) -> LocalObject {
        self.into_builder().build()
    }

    /// A served object over state shared with other code (or other objects).
    fn shared_object(state: Arc<Self>) -> LocalObject {
        Self::publish(ObjectBuilder::from_arc(state)).build()
    }
}

/// What a published method may return: a value (`T: Into<Value>`, `()` is
/// VNone) or `Result<T, E>` where `E` becomes the [`CallError`] on the wire,
/// normally [`CallError::Exception`] (CALL_EXCEPTION, `docs/protocol/vol.md` §4.5).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of a versile method",
    label = "the result must convert into a `versile::Value`",
    note = "return a type with `From<T> for versile::Value`, or `Result<T, E>` with `E: Into<versile::CallError>`"
)]
pub trait IntoCallResult {
    /// The CALL_RESULT value, or the error to answer with.
    fn into_call_result(self) -> Result<Value, CallError>;
}

impl<T: Into<Value>> IntoCallResult for T {
    fn into_call_result(self) -> Result<Value, CallError> {
        Ok(self.into())
    }
}

impl<T: Into<Value>, E: Into<CallError>> IntoCallResult for Result<T, E> {
    fn into_call_result(self) -> Result<Value, CallError> {
        self.map(Into::into).map_err(Into::into)
    }
}

/// The failure of a typed client call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// The call failed: a remote exception (CALL_EXCEPTION), CALL_ERROR, or
    /// the link.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The call succeeded but its result does not have the declared type.
    #[error("{method}: unexpected result: {source}")]
    Result {
        /// The method's name on the wire.
        method: &'static str,
        /// What was expected and what came back.
        source: ValueError,
    },
}

impl ProxyError {
    /// The remote exception's arguments, if the method raised a VException.
    pub fn exception_args(&self) -> Option<&[Value]> {
        match self {
            ProxyError::Call(e) => e.exception_args(),
            ProxyError::Result { .. } => None,
        }
    }
}

/// An incoming argument list being converted, one argument at a time.
#[doc(hidden)]
pub struct Args {
    method: &'static str,
    next_index: usize,
    values: std::vec::IntoIter<Value>,
}

impl Args {
    /// Checks the arity: a different count is CALL_ERROR (Python's
    /// `TypeError`, `docs/protocol/vol.md` §4.4).
    pub fn new(method: &'static str, values: Vec<Value>, arity: usize) -> Result<Args, CallError> {
        if values.len() != arity {
            return Err(CallError::failed(format!(
                "{method} takes {arity} argument(s), got {}",
                values.len()
            )));
        }
        Ok(Args {
            method,
            next_index: 0,
            values: values.into_iter(),
        })
    }

    /// The next argument as a `T`; a wrong type is CALL_ERROR.
    pub fn take<T: FromValue>(&mut self) -> Result<T, CallError> {
        let index = self.next_index;
        self.next_index += 1;
        // The arity was checked in `new`; a missing value still cannot panic.
        let value = self.values.next().unwrap_or(Value::None);
        T::from_value(value)
            .map_err(|e| CallError::failed(format!("{}: argument {index}: {e}", self.method)))
    }
}

/// One argument of a typed client call.
#[doc(hidden)]
pub fn arg<T: Into<Value>>(value: T) -> Value {
    value.into()
}

/// A typed client call: `(method, args...)`, then the result as a `T`.
#[doc(hidden)]
pub async fn call<T: FromValue>(
    remote: &RemoteObject,
    method: &'static str,
    args: Vec<Value>,
) -> Result<T, ProxyError> {
    let value = remote.call(method, args).await?;
    T::from_value(value).map_err(|source| ProxyError::Result { method, source })
}
