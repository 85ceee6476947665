//! Prometheus text exposition over HTTP/1.1, served with hyper on the
//! caller's tokio runtime (no thread of its own): `GET /metrics` renders
//! the recorder installed by [`install_prometheus`]; with a server's
//! [`Readiness`], `/healthz` and `/readyz` are answered by
//! [`HealthService`]; anything else is 404.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use versile_middleware::metrics::names;

use super::health::{text, HealthService};
use crate::object::call_metrics;
use crate::server::Readiness;

/// Install the Prometheus recorder as the global `metrics` recorder (once
/// per process: later calls fail), with histogram buckets for the
/// handshake time, and spawn its upkeep task on the current runtime. (The
/// per-method call duration histogram has its own fixed buckets,
/// [`METHOD_CALL_BUCKETS`](crate::object::call_metrics::METHOD_CALL_BUCKETS),
/// and is appended by [`write_prometheus`](call_metrics::write_prometheus).)
pub fn install_prometheus() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::HANDSHAKE_SECONDS.into()),
            &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0],
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// A running `/metrics` endpoint; [`shutdown`](Self::shutdown) stops it
/// (so does dropping it).
#[derive(Debug)]
pub struct MetricsEndpoint {
    addr: SocketAddr,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl MetricsEndpoint {
    /// Bind `addr` and serve `handle`'s metrics at `/metrics`.
    pub async fn bind(addr: &str, handle: PrometheusHandle) -> io::Result<Self> {
        Self::bind_inner(addr, handle, None).await
    }

    /// Bind `addr`, serve `handle`'s metrics at `/metrics` and
    /// `readiness` at `/healthz` and `/readyz` ([`HealthService`]).
    pub async fn bind_with_health(
        addr: &str,
        handle: PrometheusHandle,
        readiness: Readiness,
    ) -> io::Result<Self> {
        Self::bind_inner(addr, handle, Some(HealthService::new(readiness))).await
    }

    async fn bind_inner(
        addr: &str,
        handle: PrometheusHandle,
        health: Option<HealthService>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let pages = Pages { handle, health };
        tracker.spawn(accept_loop(listener, pages, stop.clone(), tracker.clone()));
        Ok(MetricsEndpoint {
            addr,
            stop,
            tracker,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, end open scrapes, and wait (bounded) for the tasks.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tracker.wait()).await;
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the endpoint serves.
#[derive(Clone)]
struct Pages {
    handle: PrometheusHandle,
    health: Option<HealthService>,
}

async fn accept_loop(
    listener: TcpListener,
    pages: Pages,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let pages = pages.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let resp = respond(&req, &pages);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "metrics endpoint: connection error");
                    }
                }
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
}

fn respond(req: &Request<Incoming>, pages: &Pages) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if let Some(resp) = pages
        .health
        .as_ref()
        .and_then(|h| h.answer(req.method(), path))
    {
        return resp;
    }
    match (req.method(), path) {
        (&Method::GET, "/metrics") => {
            let mut page = pages.handle.render();
            call_metrics::write_prometheus(&mut page);
            let mut resp = text(StatusCode::OK, page);
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n".to_string(),
        ),
    }
}
