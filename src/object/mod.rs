//! Objects: what a link exports and imports (`docs/protocol/vol.md` §4, §5).
//!
//! * [`VObject`] — anything callable from the peer; gets the raw argument
//!   tuple of each call.
//! * [`ObjectBuilder`] — builds a [`LocalObject`] that follows the VOB
//!   convention (method name first, published methods, meta calls §4.1–4.5);
//!   its calls are counted per declared method ([`call_metrics`]).
//! * [`RemoteObject`] — a handle to a peer object; calls go over its link and
//!   dropping the last clone releases it on the wire (§5.2).
//! * [`Object`] — either of the two, as found inside a [`Value`].
//! * [`Publish`] and [`ProxyError`] — the typed API that
//!   `#[versile::object]` and `#[versile::client]` generate code for
//!   (typed.rs); [`ObjectBuilder`] is the dynamic API underneath.

mod builder;
mod call_durations;
pub mod call_metrics;
mod context;
mod error;
pub(crate) mod remote;
pub(crate) mod typed;

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use crate::transport::ConnectionInfo;
pub use builder::{MethodSpec, ObjectBuilder};
pub use context::CallContext;
pub(crate) use context::ContextState;
pub use error::CallError;
pub use remote::RemoteObject;
pub use typed::{IntoCallResult, ProxyError, Publish};

use crate::value::{FromArgs, Value, ValueError};
use crate::vec::Entity;
use crate::vol::ExportKey;

/// One incoming call: the arguments and the link's context.
#[derive(Debug)]
pub struct Call {
    /// The per-link context (peer address, protocol, per-link entries).
    pub ctx: CallContext,
    /// The arguments. For [`VObject::call`] this is the whole argument tuple;
    /// inside an [`ObjectBuilder`] method, the arguments after the name.
    pub args: Vec<Value>,
}

impl Call {
    /// Parse the arguments with an exact arity check; a mismatch becomes
    /// CALL_ERROR when returned with `?` (as Python's `TypeError`, §4.4).
    pub fn args<T: FromArgs>(&self) -> Result<T, CallError> {
        T::from_args(self.args.clone()).map_err(CallError::from)
    }

    /// Like [`args`](Self::args) but consumes the call (no clone).
    pub fn into_args<T: FromArgs>(self) -> Result<T, CallError> {
        T::from_args(self.args).map_err(CallError::from)
    }
}

/// An object the peer can call.
///
/// `call` receives the raw argument tuple of a METHOD_CALL (`docs/protocol/vol.md` §3.3)
/// and returns the value for CALL_RESULT or a [`CallError`]. Each call runs
/// as its own task, so a slow method holds up nothing else.
pub trait VObject: Send + Sync + 'static {
    /// Run one call. `call.args` is the whole argument tuple (for VOB
    /// objects the method name first, `docs/protocol/vol.md` §4.1); `Ok` answers
    /// CALL_RESULT, `Err` CALL_EXCEPTION or CALL_ERROR as [`CallError`] says.
    fn call(&self, call: Call) -> BoxFuture<'static, Result<Value, CallError>>;
}

/// One of our objects, shareable and exportable on any number of links.
#[derive(Clone)]
pub struct LocalObject(pub(crate) Arc<dyn VObject>);

impl LocalObject {
    /// Wrap any [`VObject`].
    pub fn new(object: impl VObject) -> Self {
        LocalObject(Arc::new(object))
    }

    /// Invoke the object locally (as the link does for remote calls).
    pub fn call(&self, call: Call) -> BoxFuture<'static, Result<Value, CallError>> {
        self.0.call(call)
    }

    /// Whether two handles denote the same object.
    pub fn same(&self, other: &LocalObject) -> bool {
        self.export_key() == other.export_key()
    }
}

impl ExportKey for LocalObject {
    fn export_key(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }
}

impl fmt::Debug for LocalObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalObject({:#x})", self.export_key())
    }
}

impl PartialEq for LocalObject {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

/// An object reference inside a [`Value`].
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// One of ours.
    Local(LocalObject),
    /// The peer's (or, after forwarding, another peer's).
    Remote(RemoteObject),
}

impl Object {
    /// The remote handle, if this is a peer object.
    pub fn as_remote(&self) -> Option<&RemoteObject> {
        match self {
            Object::Remote(r) => Some(r),
            Object::Local(_) => None,
        }
    }

    /// The local object, if this is one of ours.
    pub fn as_local(&self) -> Option<&LocalObject> {
        match self {
            Object::Local(l) => Some(l),
            Object::Remote(_) => None,
        }
    }
}

impl From<LocalObject> for Value {
    fn from(o: LocalObject) -> Self {
        Entity::Ref(Object::Local(o))
    }
}

impl From<RemoteObject> for Value {
    fn from(o: RemoteObject) -> Self {
        Entity::Ref(Object::Remote(o))
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Entity::Ref(o)
    }
}

impl TryFrom<Value> for Object {
    type Error = ValueError;
    fn try_from(v: Value) -> Result<Self, ValueError> {
        match v {
            Entity::Ref(o) => Ok(o),
            other => Err(ValueError {
                expected: "object",
                found: other.type_name(),
            }),
        }
    }
}

impl TryFrom<Value> for RemoteObject {
    type Error = ValueError;
    fn try_from(v: Value) -> Result<Self, ValueError> {
        match v {
            Entity::Ref(Object::Remote(r)) => Ok(r),
            other => Err(ValueError {
                expected: "remote object",
                found: other.type_name(),
            }),
        }
    }
}

impl crate::value::FromValue for RemoteObject {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        RemoteObject::try_from(v)
    }
}

impl Value {
    /// The remote object, if this value is one.
    pub fn as_remote(&self) -> Option<&RemoteObject> {
        match self {
            Entity::Ref(o) => o.as_remote(),
            _ => None,
        }
    }
}
