//! [`GatewayService`]: the terminal `Service<Connection>` that runs a VOL
//! link with a gateway object from a per-connection factory
//! (`docs/protocol/vop-service.md` §5.1, §5.3 steps 4–7).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;
use tower::{BoxError, Service};

use super::link_limits::StackLinkSettings;
use super::registry::LinkRegistry;
use crate::object::{LocalObject, RemoteObject};
use crate::runtime::driver::LinkDriver;
use crate::runtime::{
    CallBudget, CloseReason, LinkHandle, LinkOptions, LinkOutcome, OnEstablished,
};
use crate::transport::{Connection, NegotiatedTransport};
use crate::vol::LinkError;

type InitCallback = Arc<dyn Fn(LinkHandle, RemoteObject) + Send + Sync>;
type FailCallback = Arc<dyn Fn(LinkHandle, LinkError) + Send + Sync>;

/// Runs one link per connection; its future completes when the link closes,
/// with the [`LinkOutcome`] (so outer layers see every connection's end).
///
/// The gateway is built only once the transport is up, not at accept time
/// as in Python (§5.3 allows this; no work is spent on failed handshakes).
///
/// All links of one service (and its clones) share one [`CallBudget`]: at
/// most [`CallBudget::DEFAULT_SIZE`] incoming calls run at once across them
/// unless [`with_options`](Self::with_options) installs another.
///
/// Behind a [`StackConfig`](super::StackConfig) the stack's
/// [`link`](super::StackConfig::link) limits and its process-wide budgets
/// (one memory and one call budget per built stack) replace those of
/// [`with_options`](Self::with_options); the other options stay.
pub struct GatewayService<F> {
    factory: Arc<F>,
    /// Shared by the clones: the service is cloned into every connection's
    /// middleware future, where a copy of the options stayed for the
    /// link's lifetime (0.3 KiB per idle link; issue #8).
    options: Arc<LinkOptions>,
    on_established: Option<InitCallback>,
    on_failed: Option<FailCallback>,
}

impl<F> Clone for GatewayService<F> {
    fn clone(&self) -> Self {
        GatewayService {
            factory: self.factory.clone(),
            options: self.options.clone(),
            on_established: self.on_established.clone(),
            on_failed: self.on_failed.clone(),
        }
    }
}

impl<F, G> GatewayService<F>
where
    F: Fn() -> G + Send + Sync + 'static,
    G: Into<LocalObject>,
{
    /// Serve a new gateway from `factory` on every connection.
    pub fn new(factory: F) -> Self {
        let mut options = LinkOptions::default();
        options.protocol.handshake_timeout = Some(std::time::Duration::from_secs(30));
        options.calls.budget = Some(CallBudget::default());
        GatewayService {
            factory: Arc::new(factory),
            options: Arc::new(options),
            on_established: None,
            on_failed: None,
        }
    }

    /// Link settings used for every link (Python's link config template).
    /// Without a [`CallBudget`] in `options.calls.budget` the service keeps
    /// the one it has, so its links stay bounded together; install a larger
    /// budget to raise the cap.
    pub fn with_options(mut self, mut options: LinkOptions) -> Self {
        if options.calls.budget.is_none() {
            options.calls.budget = self.options.calls.budget.clone();
        }
        self.options = Arc::new(options);
        self
    }

    /// Called with the link and the client's gateway once the VOL handshake
    /// completes (Python's `init_callback`). Keep the `RemoteObject` to hold
    /// the client's gateway; dropping it releases it (Python's
    /// `hold_peer=False`, `docs/protocol/vol.md` §7.4).
    pub fn on_established(
        mut self,
        callback: impl Fn(LinkHandle, RemoteObject) + Send + Sync + 'static,
    ) -> Self {
        self.on_established = Some(Arc::new(callback));
        self
    }

    /// Called with the link and the reason when its VOL handshake never
    /// completes (Python calls its `init_callback` with `None`,
    /// `docs/protocol/vop-service.md` §5.3 step 7).
    pub fn on_handshake_failed(
        mut self,
        callback: impl Fn(LinkHandle, LinkError) + Send + Sync + 'static,
    ) -> Self {
        self.on_failed = Some(Arc::new(callback));
        self
    }
}

impl<F, G> Service<Connection> for GatewayService<F>
where
    F: Fn() -> G + Send + Sync + 'static,
    G: Into<LocalObject>,
{
    type Response = LinkOutcome;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<LinkOutcome, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        let gateway: LocalObject = (self.factory)().into();
        let mut options = LinkOptions::clone(&self.options);
        // A built StackConfig's limits, keep-alive and shared budgets.
        if let Some(stack) = conn.info.extensions.get::<StackLinkSettings>() {
            stack.apply(&mut options);
        }
        let init = self.on_established.clone();
        let failed = self.on_failed.clone();
        // Everything is set up here, not in an `async` block: a block would
        // keep its captures (the connection, the options) for the link's
        // lifetime next to the driver's own copies, in every idle link.
        // Middleware signals (handshake deadline, idle timeout, metrics):
        // the driver reports to them; a layer's close request becomes a
        // graceful shutdown (`docs/design.md`, partial limits).
        let signals = conn.signals();
        let transport = conn
            .info
            .extensions
            .get::<NegotiatedTransport>()
            .map(|t| t.0.token());
        let Connection { io, info } = conn;
        let peer = info.peer_addr;
        let registry = info.extensions.get::<LinkRegistry>().cloned();
        let (handle, rx) = LinkHandle::new(info);
        let on_established: Option<OnEstablished> = if init.is_some() || failed.is_some() {
            let link = handle.clone();
            Some(Box::new(
                move |r: Result<(LinkHandle, RemoteObject), LinkError>| match r {
                    Ok((link, peer_gateway)) => {
                        if let Some(cb) = init {
                            cb(link, peer_gateway);
                        }
                    }
                    Err(e) => {
                        if let Some(cb) = failed {
                            cb(link, e);
                        }
                    }
                },
            ))
        } else {
            None
        };
        // Unregistered on drop: the future may be dropped mid-link (a
        // forced stop, a middleware deadline or idle timeout).
        let registered = registry.map(|r| r.enter(&handle));
        let run = LinkDriver::new(io, gateway, handle, rx, options, on_established)
            .with_signals(signals, transport)
            .run();
        Box::pin(run.map(move |outcome| {
            drop(registered);
            if let CloseReason::Error(LinkError::KeepAliveExpired) = outcome.reason {
                // Dead-peer detection tripped (`StackConfig::keep_alive`).
                tracing::debug!(
                    peer = ?peer,
                    "link closed: no traffic from the peer within its keep-alive expiry"
                );
                crate::limits::limit_exceeded("keep_alive_expired");
            }
            Ok(outcome)
        }))
    }
}
