//! Request bodies under a deadline (`http_server.read_body_timeout`): every request's
//! body must arrive in full within the limit, counted from when its headers were
//! parsed. A read past the deadline fails, and the connection layer answers such a
//! request 408 whatever the handler made of the truncated read. The timer is only
//! armed once a read would wait, so bodies that arrived with their headers cost none.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// The body did not arrive within `http_server.read_body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within http_server.read_body_timeout")]
pub(super) struct BodyTimeout;

/// Set once a request's body missed its deadline.
#[derive(Clone, Default)]
pub(super) struct Expired(Arc<AtomicBool>);

impl Expired {
    pub(super) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes.
pub(super) struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Expired,
}

impl DeadlineBody {
    pub(super) fn new(inner: Incoming, deadline: Instant) -> (Self, Expired) {
        let expired = Expired::default();
        (Self { inner, deadline, timer: None, expired: expired.clone() }, expired)
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        this.expired.0.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyTimeout.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
