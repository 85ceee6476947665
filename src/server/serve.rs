//! The accept loop and the [`Server`] handle (`vop-service.md` §5.5).
//!
//! One task per accepted connection runs the whole tower stack for it; the
//! loop itself never waits for a handshake, and an error in one connection
//! ends only that connection's task.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{BoxError, Service, ServiceExt};
use tracing::{debug, warn};

use super::connection::Connection;
use super::registry::LinkRegistry;

/// How to treat open links when stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopLinks {
    /// Leave them running (Python's `stop(stop_links=False)`).
    Keep,
    /// Graceful link shutdown: running calls finish and answer (`vol.md` §7.2).
    Graceful,
    /// Close them at once.
    Force,
}

/// A running service: its address, its links, and its stop controls.
pub struct Server {
    local_addr: SocketAddr,
    stop_accepting: CancellationToken,
    force: CancellationToken,
    tracker: TaskTracker,
    links: LinkRegistry,
}

impl Server {
    /// Start accepting on `listener`; each connection goes through `service`.
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// use tower::ServiceBuilder;
    /// use versile::{demo::SimpleGateway, GatewayService, Server, VopLayer};
    ///
    /// let svc = ServiceBuilder::new()
    ///     .layer(VopLayer::insecure())
    ///     .service(GatewayService::new(SimpleGateway::new));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let server = Server::serve(listener, svc)?;
    /// println!("listening on vop://{}/", server.local_addr());
    /// # Ok(()) }
    /// ```
    pub fn serve<S>(listener: TcpListener, service: S) -> io::Result<Server>
    where
        S: Service<Connection> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        S::Response: Send + 'static,
    {
        let local_addr = listener.local_addr()?;
        let server = Server {
            local_addr,
            stop_accepting: CancellationToken::new(),
            force: CancellationToken::new(),
            tracker: TaskTracker::new(),
            links: LinkRegistry::new(),
        };
        let stop = server.stop_accepting.clone();
        let force = server.force.clone();
        let tracker = server.tracker.clone();
        let links = server.links.clone();
        server
            .tracker
            .spawn(accept_loop(listener, service, stop, force, tracker, links));
        Ok(server)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live links.
    pub fn links(&self) -> &LinkRegistry {
        &self.links
    }

    /// Stop accepting, and shut links down as asked. May be called again
    /// with a stronger `links` argument.
    pub fn stop(&self, links: StopLinks) {
        self.stop_accepting.cancel();
        self.tracker.close();
        match links {
            StopLinks::Keep => {}
            StopLinks::Graceful => self.links.shutdown_all(false),
            StopLinks::Force => {
                self.links.shutdown_all(true);
                self.force.cancel();
            }
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stop_accepting.is_cancelled()
    }

    /// Wait until every connection task has ended (call after `stop`).
    pub async fn drained(&self) {
        self.tracker.wait().await;
    }

    /// Stop gracefully, wait up to `deadline` for links to drain, then force.
    /// Returns `true` if everything closed within the deadline.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.stop(StopLinks::Graceful);
        if tokio::time::timeout(deadline, self.drained()).await.is_ok() {
            return true;
        }
        self.stop(StopLinks::Force);
        self.drained().await;
        false
    }
}

async fn accept_loop<S>(
    listener: TcpListener,
    service: S,
    stop: CancellationToken,
    force: CancellationToken,
    tracker: TaskTracker,
    links: LinkRegistry,
) where
    S: Service<Connection> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off, go on.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let mut conn = Connection::new(Box::pin(stream), Some(peer), local);
        conn.extensions_mut().insert(links.clone());
        let svc = service.clone();
        let force = force.clone();
        tracker.spawn(async move {
            tokio::select! {
                r = svc.oneshot(conn) => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e.into(), "connection ended with an error");
                    }
                }
                _ = force.cancelled() => {}
            }
        });
    }
}
