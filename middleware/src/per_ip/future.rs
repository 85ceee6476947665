//! The response future: the inner future and the guard it keeps alive, or
//! an immediate rejection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::table::PerIpGuard;
use crate::BoxError;

pin_project! {
    /// The state: admitted (the address's connection count is
    /// released when the future completes or is dropped) or refused.
    #[project = Proj]
    enum Kind<F> {
        /// Admitted, holding its slot.
        Admitted { #[pin] fut: F, guard: Option<PerIpGuard> },
        /// Refused.
        Rejected { error: Option<BoxError> },
    }
}

pin_project! {
    /// Future of [`super::PerIpLimit`]: the address's connection count is
    /// released when this future completes or is dropped.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn admitted(fut: F, guard: Option<PerIpGuard>) -> Self {
        ResponseFuture {
            kind: Kind::Admitted { fut, guard },
        }
    }

    pub(crate) fn rejected(error: BoxError) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            Proj::Admitted { fut, guard } => {
                let out = std::task::ready!(fut.poll(cx));
                // The connection is over: release now, not when the future
                // is eventually dropped.
                guard.take();
                Poll::Ready(out.map_err(Into::into))
            }
            Proj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "per-IP limit future polled after completion".into()))),
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Admitted { guard, .. } => f
                .debug_struct("ResponseFuture::Admitted")
                .field("guard", guard)
                .finish(),
            Kind::Rejected { error } => f
                .debug_struct("ResponseFuture::Rejected")
                .field("error", error)
                .finish(),
        }
    }
}
