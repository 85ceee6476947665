//! `GET /healthz` and `GET /readyz` over HTTP, from a server's
//! [`Readiness`]: a tower [`Service`] on `http::Request`s, so it runs in
//! hyper directly, in axum (`Router::route_service`), and on the
//! `--metrics` listener ([`MetricsEndpoint`](super::MetricsEndpoint)).
//!
//! | path | 200 when | 503 otherwise |
//! |---|---|---|
//! | `/healthz` | the accept loop runs, or a stop is draining links | not started yet, or the accept loop died |
//! | `/readyz` | the accept loop runs, no stop asked for, gate open | starting, draining, gate closed, failed |
//!
//! The body is the phase (`accepting`, `draining`, ...) and, if closed,
//! `gate closed`, one line. Other paths are not this service's: 404.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use tower::Service;

use crate::server::{Gate, Readiness};

/// Path of the liveness check.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Path of the readiness check.
pub const READYZ_PATH: &str = "/readyz";

/// Answers `/healthz` and `/readyz` from a [`Readiness`] (see the module
/// docs); cheap to clone.
///
/// ```no_run
/// # async fn f(server: versile::Server) {
/// use versile::ops::HealthService;
/// let health = HealthService::new(server.readiness().clone());
/// let app: axum::Router = axum::Router::new()
///     .route_service("/healthz", health.clone())
///     .route_service("/readyz", health);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct HealthService {
    readiness: Readiness,
}

impl HealthService {
    /// Serve `readiness`.
    pub fn new(readiness: Readiness) -> Self {
        HealthService { readiness }
    }

    /// The answer to `method path`, or `None` if the path is not a health
    /// path (the caller answers it).
    pub fn answer(&self, method: &Method, path: &str) -> Option<Response<Full<Bytes>>> {
        let ok = match path {
            HEALTHZ_PATH => self.readiness.is_live(),
            READYZ_PATH => self.readiness.is_ready(),
            _ => return None,
        };
        if method != Method::GET && method != Method::HEAD {
            return Some(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".to_owned()));
        }
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut body = self.readiness.phase().as_str().to_owned();
        if self.readiness.gate() == Gate::Closed {
            body.push_str(", gate closed");
        }
        body.push('\n');
        Some(text(status, body))
    }
}

impl<B> Service<Request<B>> for HealthService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let resp = self
            .answer(req.method(), req.uri().path())
            .unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n".to_owned()));
        ready(Ok(resp))
    }
}

/// A `text/plain` response.
pub(crate) fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn get(svc: &HealthService, path: &str) -> StatusCode {
        let req = Request::get(path).body(()).unwrap();
        svc.clone().oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn answers_follow_the_readiness() {
        let r = Readiness::new();
        let svc = HealthService::new(r.clone());
        assert_eq!(
            get(&svc, HEALTHZ_PATH).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            get(&svc, READYZ_PATH).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        r.mark_accepting();
        assert_eq!(get(&svc, HEALTHZ_PATH).await, StatusCode::OK);
        assert_eq!(get(&svc, READYZ_PATH).await, StatusCode::OK);
        r.set_gate(Gate::Closed);
        assert_eq!(
            get(&svc, READYZ_PATH).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        r.set_gate(Gate::Open);
        r.mark_draining();
        assert_eq!(get(&svc, HEALTHZ_PATH).await, StatusCode::OK);
        assert_eq!(
            get(&svc, READYZ_PATH).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get(&svc, "/other").await, StatusCode::NOT_FOUND);
    }
}
