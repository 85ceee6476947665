//! Echo through our own server and client, over PLAIN or VTS: sequential
//! round trips, pipelined calls on one link, and full connections.

use crate::runtime::LinkShutdown;
use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tower::ServiceBuilder;

use super::split::ServerThread;
use super::{Measured, Phase};
use crate::client::{Client, ClientConfig};
use crate::object::{CallError, RemoteObject};
use crate::server::{GatewayService, Server, StopLinks, VopLayer};
use crate::value::Value;
use crate::vec::Entity;
use crate::vts::{RsaKeyPair, VtsClientTransport, VtsLayer};

/// A server with an `Echoer` gateway and one client link to it.
pub struct EchoSetup {
    server: ServerSide,
    client: Client,
    link: crate::runtime::LinkHandle,
    pub gateway: RemoteObject,
}

impl EchoSetup {
    /// PLAIN.
    pub async fn start(split: bool) -> io::Result<Self> {
        Self::start_with(VopLayer::insecure(), ClientConfig::insecure(), split).await
    }

    /// VTS with `key` on the server; the client pins it.
    pub async fn start_vts(key: RsaKeyPair, split: bool) -> io::Result<Self> {
        let client = VtsClientTransport::new(None).pin_server_key(key.fingerprint());
        Self::start_with(
            VtsLayer::new(key).into(),
            ClientConfig::default().transport(client),
            split,
        )
        .await
    }

    /// TLS with a self-signed certificate for `key`; the client pins it.
    pub async fn start_tls(key: RsaKeyPair, split: bool) -> io::Result<Self> {
        use crate::tls::{
            TlsClientConfig, TlsClientTransport, TlsServerConfig, TlsServerTransport,
        };
        let der = key.to_pkcs8_der().map_err(io::Error::other)?;
        let server = TlsServerConfig::self_signed_with_key(vec!["localhost".to_owned()], &der)
            .and_then(TlsServerTransport::new)
            .map_err(io::Error::other)?;
        let client = TlsClientConfig::pinned_key(&key.fingerprint())
            .and_then(TlsClientTransport::new)
            .map_err(io::Error::other)?;
        let layer = VopLayer::builder()
            .transport(server)
            .build()
            .map_err(io::Error::other)?;
        Self::start_with(layer, ClientConfig::default().transport(client), split).await
    }

    async fn start_with(layer: VopLayer, config: ClientConfig, split: bool) -> io::Result<Self> {
        let svc = ServiceBuilder::new()
            .layer(layer)
            .service(GatewayService::new(|| crate::demo::Echoer));
        let server = if split {
            ServerSide::Thread(ServerThread::spawn(move |listener, stop| async move {
                let Ok(server) = Server::serve(listener, svc) else {
                    return;
                };
                let _ = stop.await;
                server.stop(StopLinks::Force);
                let _ = server.shutdown(Duration::from_secs(2)).await;
            })?)
        } else {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            ServerSide::Task(Server::serve(listener, svc)?)
        };
        let client = Client::new(config);
        let (link, gateway) = client
            .connect(&server.local_addr().to_string())
            .await
            .map_err(io::Error::other)?;
        Ok(EchoSetup {
            server,
            client,
            link,
            gateway,
        })
    }

    /// Sequential full connections (TCP, VOP, transport and VOL
    /// handshakes; the link is then closed by force) for up to `count`
    /// connections or `limit`, whichever ends first.
    pub async fn connections(&self, count: usize, limit: Duration) -> io::Result<Measured> {
        let addr = self.server.local_addr().to_string();
        let mut phase = Phase::start();
        let deadline = Instant::now() + limit;
        let mut done = 0u64;
        while (done as usize) < count.max(1) && (done == 0 || Instant::now() < deadline) {
            let t = Instant::now();
            let (link, gateway) = self.client.connect(&addr).await.map_err(io::Error::other)?;
            phase.sample(t.elapsed());
            drop(gateway);
            link.shutdown(LinkShutdown::Forced);
            let _ = tokio::time::timeout(Duration::from_secs(2), link.closed()).await;
            done += 1;
        }
        Ok(phase.finish(done))
    }

    /// Close the link and stop the server, within a bounded time.
    pub async fn stop(self) {
        let EchoSetup {
            server,
            link,
            gateway,
            ..
        } = self;
        drop(gateway);
        link.shutdown(LinkShutdown::Graceful);
        let _ = tokio::time::timeout(Duration::from_secs(2), link.closed()).await;
        match server {
            ServerSide::Task(server) => {
                server.stop(StopLinks::Force);
                let _ = server.shutdown(Duration::from_secs(2)).await;
            }
            ServerSide::Thread(thread) => thread.stop().await,
        }
    }
}

/// Where the server runs: a task of the caller's runtime, or its own thread.
enum ServerSide {
    Task(Server),
    Thread(ServerThread),
}

impl ServerSide {
    fn local_addr(&self) -> std::net::SocketAddr {
        match self {
            ServerSide::Task(s) => s.local_addr(),
            ServerSide::Thread(t) => t.local_addr(),
        }
    }
}

/// One `echo(payload)` call; how long its answer took, timed when the
/// answer arrives and before it is compared with the payload (the raw TCP
/// baseline does not compare either).
async fn echo_once(gateway: &RemoteObject, payload: &Bytes) -> io::Result<Duration> {
    let start = Instant::now();
    let answer = gateway.call("echo", (Value::Bytes(payload.clone()),)).await;
    let took = start.elapsed();
    match answer {
        Ok(Entity::Bytes(b)) if b == *payload => Ok(took),
        Ok(other) => Err(io::Error::other(format!("echo returned {other:?}"))),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// Sequential `echo(payload)` round trips: `warmup` untimed, then
/// `iterations` timed into `phase` (resumed for them, paused after).
pub async fn sequential(
    gateway: &RemoteObject,
    payload: &Bytes,
    warmup: usize,
    iterations: usize,
    phase: &mut Phase,
) -> io::Result<()> {
    for _ in 0..warmup {
        echo_once(gateway, payload).await?;
    }
    phase.resume();
    for _ in 0..iterations {
        let took = echo_once(gateway, payload).await?;
        phase.sample(took);
    }
    phase.pause();
    Ok(())
}

/// Keep `in_flight` calls outstanding on one link for `duration`; every
/// call is awaited (the last ones after the deadline are counted too).
pub async fn pipelined(
    gateway: &RemoteObject,
    payload: &Bytes,
    in_flight: usize,
    duration: Duration,
) -> io::Result<Measured> {
    let call = || {
        let g = gateway.clone();
        let p = Value::Bytes(payload.clone());
        async move { g.call("echo", (p,)).await }
    };
    let phase = Phase::start();
    let deadline = Instant::now() + duration;
    let mut running = FuturesUnordered::new();
    for _ in 0..in_flight.max(1) {
        running.push(call());
    }
    let mut done: u64 = 0;
    while let Some(r) = running.next().await {
        r.map_err(|e: CallError| io::Error::other(e))?;
        done += 1;
        if Instant::now() < deadline {
            running.push(call());
        }
    }
    Ok(phase.finish(done))
}
