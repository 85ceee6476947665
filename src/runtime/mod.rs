//! The tokio runtime around the sans-IO core: the link task
//! (`LinkDriver`), [`LinkHandle`]s, and stream plumbing.
//!
//! [`spawn_link`] runs a link over any stream (a TCP socket after VOP, a
//! secure transport, an in-memory duplex in tests) and resolves once the
//! VOL handshake is done, yielding the handle and the peer's gateway.
//! [`memory`] holds the per-link and shared memory budgets the link task
//! charges before it reads, decodes or queues ([`MemoryLimits`]).

pub(crate) mod call_span;
mod calls;
mod commands;
#[cfg(test)]
mod counting_waker;
pub(crate) mod driver;
mod handle;
mod io;
mod link_timer;
pub mod memory;
mod spare_read_buffer;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use calls::{CallBudget, CallExecution, CallLimits};
pub use driver::{Authorizer, LinkOptions, LinkOutcome, OnEstablished};
pub use handle::{CloseReason, LinkHandle, LinkShutdown};
pub(crate) use handle::{Command, OutgoingCall};
pub use io::{AsyncStream, BoxedIo, Rewind};
pub use memory::{MemoryBudget, MemoryLimits};

use crate::object::{ConnectionInfo, LocalObject, RemoteObject};
use crate::vol::LinkError;

/// A link running in its own task.
pub struct SpawnedLink {
    /// Resolves when the VOL handshake completes (or fails).
    pub established: oneshot::Receiver<Result<(LinkHandle, RemoteObject), LinkError>>,
    /// Resolves when the link has closed.
    pub task: JoinHandle<LinkOutcome>,
    /// The link's handle (usable before the handshake completes).
    pub handle: LinkHandle,
}

/// Run a link over `io`, offering `gateway` to the peer.
pub fn spawn_link<IO>(
    io: IO,
    gateway: LocalObject,
    info: ConnectionInfo,
    options: LinkOptions,
) -> SpawnedLink
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, established) = oneshot::channel();
    let (handle, rx) = LinkHandle::new(info);
    let on_established: OnEstablished = Box::new(move |r| {
        let _ = tx.send(r);
    });
    let driver = driver::LinkDriver::new(
        io,
        gateway,
        handle.clone(),
        rx,
        options,
        Some(on_established),
    );
    let task = tokio::spawn(driver.run());
    SpawnedLink {
        established,
        task,
        handle,
    }
}

/// Run a link over `io` and wait for the handshake: returns the link and
/// the peer's gateway.
pub async fn connect_link<IO>(
    io: IO,
    gateway: LocalObject,
    info: ConnectionInfo,
    options: LinkOptions,
) -> Result<(LinkHandle, RemoteObject), LinkError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let spawned = spawn_link(io, gateway, info, options);
    // Cancelling (dropping) this future before the handshake completes
    // shuts the half-made link down (`docs/protocol/vop-service.md` §6 C21).
    let guard = ShutdownOnDrop(Some(spawned.handle.clone()));
    let result = spawned.established.await.unwrap_or(Err(LinkError::Closed));
    guard.disarm();
    result
}

struct ShutdownOnDrop(Option<LinkHandle>);

impl ShutdownOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.shutdown(LinkShutdown::Forced);
        }
    }
}
