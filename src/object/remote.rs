//! [`RemoteObject`]: a handle to an object owned by the peer.

use std::fmt;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::object::CallError;
use crate::runtime::{Command, LinkHandle, OutgoingCall};
use crate::value::{IntoArgs, Value};
use crate::vec::Entity;
use crate::vol::{CallKind, LinkError};

/// A peer object reachable over one link (`docs/protocol/vol.md` §4.6).
///
/// Clones share one import; when the last clone is dropped the link sends
/// `NOTIFY_DEREF` with the total receive count (`docs/protocol/vol.md` §5.2).
#[derive(Clone)]
pub struct RemoteObject(pub(crate) Arc<RemoteInner>);

pub(crate) struct RemoteInner {
    pub(crate) id: i64,
    pub(crate) generation: u64,
    pub(crate) link: LinkHandle,
}

impl Drop for RemoteInner {
    fn drop(&mut self) {
        // Ignored if the link is gone: then nothing is left to release.
        let _ = self.link.send(Command::Release {
            id: self.id,
            generation: self.generation,
        });
    }
}

impl RemoteObject {
    /// Call a published method: sends `(method, args...)` (`docs/protocol/vol.md` §4.1).
    ///
    /// ```no_run
    /// # async fn f(remote: versile::RemoteObject) -> Result<(), versile::CallError> {
    /// let sum = remote.call("add", (5,)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call(&self, method: &str, args: impl IntoArgs) -> Result<Value, CallError> {
        self.call_raw(
            CallKind::Normal,
            args.into_args_after([Value::from(method)]),
        )
        .await
    }

    /// Call a meta method: sends `(None, name, args...)` (`docs/protocol/vol.md` §4.3).
    pub async fn meta(&self, name: &str, args: impl IntoArgs) -> Result<Value, CallError> {
        let all = args.into_args_after([Entity::None, Value::from(name)]);
        self.call_raw(CallKind::Normal, all).await
    }

    /// A one-way call (code 3): nothing comes back, not even errors.
    pub fn notify(&self, method: &str, args: impl IntoArgs) -> Result<(), CallError> {
        self.send(
            CallKind::NoReturn,
            args.into_args_after([Value::from(method)]),
            None,
        )
    }

    /// Send a call with a raw argument tuple and the given message code.
    pub async fn call_raw(&self, kind: CallKind, args: Vec<Value>) -> Result<Value, CallError> {
        let (tx, rx) = oneshot::channel();
        self.send(kind, args, Some(tx))?;
        rx.await.unwrap_or(Err(CallError::Link(LinkError::Closed)))
    }

    fn send(
        &self,
        kind: CallKind,
        args: Vec<Value>,
        reply: Option<oneshot::Sender<Result<Value, CallError>>>,
    ) -> Result<(), CallError> {
        self.0
            .link
            .send(Command::Call(OutgoingCall {
                target: self.0.id,
                kind,
                args,
                reply,
            }))
            .map_err(|_| CallError::Link(LinkError::Closed))
    }

    /// The link this object is reached through.
    pub fn link(&self) -> &LinkHandle {
        &self.0.link
    }

    /// The object's id in the peer's id space.
    pub fn id(&self) -> i64 {
        self.0.id
    }
}

impl PartialEq for RemoteObject {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id && self.0.link.same_link(&other.0.link)
    }
}

impl fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteObject(link {}, id {})",
            self.0.link.id(),
            self.0.id
        )
    }
}
