//! The refusing variant: a connection over the limit is closed at once
//! with [`ConnectionLimitReached`] instead of waiting for a permit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// The error of a connection refused by [`MaxConnectionsLayer`]; its
/// [rejection reason](crate::metrics::rejection_reason) is `max_connections`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection limit of {max} reached")]
pub struct ConnectionLimitReached {
    /// The configured maximum.
    pub max: usize,
}

/// A global cap on concurrent connections that *refuses* the excess: a
/// connection arriving while `max` are open is dropped (closed, unread)
/// with [`ConnectionLimitReached`]. Unlike [`ConnectionLimitLayer`]
/// (which queues in `poll_ready`), the accept loop never stalls, and a
/// refused client learns at once instead of waiting in the backlog.
///
/// [`ConnectionLimitLayer`]: super::ConnectionLimitLayer
///
/// ```
/// use versile_middleware::limit::MaxConnectionsLayer;
/// let layer = MaxConnectionsLayer::new(2);
/// assert_eq!((layer.max(), layer.in_use()), (2, 0));
/// ```
#[derive(Debug, Clone)]
pub struct MaxConnectionsLayer {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl MaxConnectionsLayer {
    /// At most `max` concurrent connections (capped at
    /// [`Semaphore::MAX_PERMITS`]).
    pub fn new(max: usize) -> Self {
        let max = max.min(Semaphore::MAX_PERMITS);
        MaxConnectionsLayer {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The configured maximum.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open right now.
    pub fn in_use(&self) -> usize {
        self.max.saturating_sub(self.semaphore.available_permits())
    }
}

impl<S> Layer<S> for MaxConnectionsLayer {
    type Service = MaxConnections<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MaxConnections {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`MaxConnectionsLayer`].
#[derive(Debug, Clone)]
pub struct MaxConnections<S> {
    inner: S,
    layer: MaxConnectionsLayer,
}

impl<S, R> Service<R> for MaxConnections<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = MaxConnectionsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        match self.layer.semaphore.clone().try_acquire_owned() {
            Ok(permit) => MaxConnectionsFuture {
                inner: Some(self.inner.call(request)),
                permit: Some(permit),
                max: self.layer.max,
            },
            // The request (and its stream) is dropped here: closed unread.
            Err(_) => MaxConnectionsFuture {
                inner: None,
                permit: None,
                max: self.layer.max,
            },
        }
    }
}

pin_project! {
    /// Future of [`MaxConnections`]: the inner future holding its permit,
    /// or (without one) an immediate refusal.
    #[derive(Debug)]
    pub struct MaxConnectionsFuture<F> {
        #[pin]
        inner: Option<F>,
        permit: Option<OwnedSemaphorePermit>,
        max: usize,
    }
}

impl<F, T, E> Future for MaxConnectionsFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            // The permit stays in `self` until the future is dropped.
            Some(inner) => inner.poll(cx).map_err(Into::into),
            None => Poll::Ready(Err(Box::new(ConnectionLimitReached { max: *this.max }))),
        }
    }
}
