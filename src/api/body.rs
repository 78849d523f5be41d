//! An HTTP body made of a few byte parts sent one after another, with its length
//! known up front (so it goes out with `content-length`, not chunked). It lets the API
//! put an envelope around a large encoded result without copying the result: hyper
//! queues each part for a vectored write as it is.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// The parts still to send, and their total length.
pub(super) struct Parts {
    parts: VecDeque<Bytes>,
    remaining: u64,
}

impl Parts {
    pub(super) fn new(parts: impl IntoIterator<Item = Bytes>) -> Parts {
        let parts: VecDeque<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = parts.iter().map(|p| p.len() as u64).sum();
        Parts { parts, remaining }
    }
}

impl Body for Parts {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.parts.pop_front().map(|part| {
            this.remaining -= part.len() as u64;
            Ok(Frame::data(part))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_every_part_in_order_with_its_exact_length() {
        let body = Parts::new([
            Bytes::from_static(b"{\"result\":"),
            Bytes::new(),
            Bytes::from("[1,2]"),
            Bytes::from_static(b"}"),
        ]);
        assert_eq!(body.size_hint().exact(), Some(16));
        assert!(!body.is_end_stream());
        let collected = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX).await.unwrap();
        assert_eq!(&collected[..], b"{\"result\":[1,2]}");
        let empty = Parts::new([]);
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }
}
