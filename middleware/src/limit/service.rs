//! The service: acquires a permit in `poll_ready`, hands it to the future.

use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;
use tower_service::Service;

use super::future::ResponseFuture;

/// A service whose calls run only while holding a permit of a shared
/// connection limit; built by [`super::ConnectionLimitLayer`].
///
/// Clones share the limit but not a permit: each clone acquires its own.
#[derive(Debug)]
pub struct ConnectionLimit<S> {
    inner: S,
    semaphore: PollSemaphore,
    /// Acquired by `poll_ready`, moved into the future by `call`.
    permit: Option<OwnedSemaphorePermit>,
}

impl<S> ConnectionLimit<S> {
    /// Wrap `inner` with a limit drawn from `semaphore`.
    pub fn new(inner: S, semaphore: Arc<Semaphore>) -> Self {
        ConnectionLimit {
            inner,
            semaphore: PollSemaphore::new(semaphore),
            permit: None,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Drop the wrapper (and any permit it holds), keeping the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for ConnectionLimit<S> {
    fn clone(&self) -> Self {
        ConnectionLimit {
            inner: self.inner.clone(),
            semaphore: self.semaphore.clone(),
            permit: None,
        }
    }
}

impl<S, Request> Service<Request> for ConnectionLimit<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.permit.is_none() {
            let permit = ready!(self.semaphore.poll_acquire(cx));
            // The layer owns the semaphore and never closes it.
            self.permit = Some(permit.expect("connection-limit semaphore is never closed"));
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let permit = self
            .permit
            .take()
            .expect("ConnectionLimit::call without a successful poll_ready");
        ResponseFuture::new(self.inner.call(request), permit)
    }
}
