//! Streaming HTTP response bodies as a session loop's sink: newline-delimited JSON
//! (`uni_http_stream`, `http_stream`), length-prefixed protobuf (`http_stream` with
//! protobuf) or Server-Sent Events (`uni_sse`, `sse`).
//!
//! On Rotor's own stream writer the body polls the session loop itself (see
//! [`session_body`]): one task and one future per idle stream, and a one-chunk slot
//! between loop and body. Under hyper the loop runs in a task of its own and writes
//! into a one-slot channel the body reads from, so a client that stops reading holds
//! the writer up and the loop's write timeout ends the session; a body dropped by the
//! server (client gone) is reported to the loop as [`Inbound::Broken`]`(None)`. The
//! channel is `futures-channel`'s, which allocates per message in flight: tokio's
//! allocates a 32-slot block up front, ~1.5 KB that every idle stream would keep.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_channel::mpsc;
use futures_util::{Sink, Stream, StreamExt};
use hyper::body::Frame;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::protocol::Disconnect;
use crate::protocol::codec::encode_push;

use super::session_loop::{Codec, Duplex, Inbound, Outbound};

/// How one transport frames a message in the body.
#[derive(Clone, Copy, Debug)]
pub(super) enum Framing {
    /// One JSON object per line.
    Lines,
    /// `data: <json>\n\n` Server-Sent Events.
    Sse,
    /// Protobuf: messages are length-prefixed already and simply follow each other.
    Delimited,
}

impl Framing {
    pub(super) fn put(self, out: &mut BytesMut, msg: &[u8]) {
        match self {
            Framing::Lines => {
                out.put_slice(msg);
                out.put_u8(b'\n');
            }
            Framing::Sse => {
                out.put_slice(b"data: ");
                out.put_slice(msg);
                out.put_slice(b"\n\n");
            }
            Framing::Delimited => out.put_slice(msg),
        }
    }

    /// The disconnect push in this framing's encoding.
    pub(super) fn disconnect_push(self, uni: bool, d: &Disconnect) -> Bytes {
        match self {
            Framing::Delimited => crate::protocol::pb::encode_push("", "disconnect", d),
            Framing::Lines | Framing::Sse => disconnect_push(uni, d),
        }
    }

    /// What the body starts with: SSE opens with `\r\n` so clients see the stream at once.
    pub(super) fn preamble(self) -> &'static [u8] {
        match self {
            Framing::Lines | Framing::Delimited => b"",
            Framing::Sse => b"\r\n",
        }
    }
}

/// A batch of messages becomes one chunk of the body.
impl Codec for Framing {
    type Frame = Bytes;
    fn frames(&self, batch: Vec<Bytes>, out: &mut Vec<Bytes>) {
        let mut chunk = BytesMut::with_capacity(batch.iter().map(|b| b.len() + 8).sum());
        for msg in &batch {
            self.put(&mut chunk, msg);
        }
        out.push(chunk.freeze());
    }
}

/// A disconnect push, in the unidirectional (bare) or bidirectional (`push`) form.
pub(super) fn disconnect_push(uni: bool, d: &Disconnect) -> Bytes {
    encode_push(uni, "", "disconnect", d)
}

/// A request extension saying that the answer's body is polled by Rotor's own
/// stream writer (`server/stream.rs`), which bounds every socket write by the write
/// timeout: the session loop may then run inside the body, in the connection's task.
#[derive(Clone, Copy, Debug)]
pub struct InlineSession;

/// The one chunk in flight between a session loop and the body polling it.
type Slot = Arc<Mutex<Option<Bytes>>>;

/// The streamed body of a session whose first chunk is `first`. `run` makes the
/// session loop from its transport: the stream that says the client is gone and the
/// sink it writes chunks to; a close is written as a disconnect push (bare when `uni`)
/// and ends the body.
///
/// `inline` (the request carried [`InlineSession`]): the body polls the loop itself, so
/// an idle stream is one task holding one future, and the body dropped (client gone)
/// drops the loop and its connection. Otherwise (hyper serves the stream, and stops
/// polling a body whose client does not read) the loop runs in a task of its own and
/// hands chunks over a one-slot channel, so its write timeout still ends the session.
pub(super) fn session_body<R, F>(framing: Framing, uni: bool, first: Bytes, inline: bool, run: R) -> Body
where
    R: FnOnce(Duplex<GoneStream, ChunkSink>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let first = (!first.is_empty()).then_some(first);
    if inline {
        let slot = Slot::default();
        let sink = ChunkSink { to: To::Slot(slot.clone()), framing, uni };
        let session = Box::pin(run(Duplex::new(GoneStream::Never, sink)));
        return Body::new(DrivenBody { first, slot, session: Some(session) });
    }
    // Capacity 0 + one per sender = one chunk in flight.
    let (tx, rx) = mpsc::channel::<Bytes>(0);
    let (alive, gone) = oneshot::channel::<()>();
    let sink = ChunkSink { to: To::Channel(Box::new(tx)), framing, uni };
    tokio::spawn(run(Duplex::new(GoneStream::Dropped(gone), sink)));
    let body = futures_util::stream::unfold((rx, first, alive), |(mut rx, first, alive)| async move {
        let chunk = match first {
            Some(f) => f,
            None => rx.next().await?,
        };
        Some((Ok::<Bytes, std::io::Error>(chunk), (rx, None, alive)))
    });
    Body::from_stream(body)
}

/// Where a session loop writes its chunks: the slot of the body that polls it, or the
/// channel to a body in another task.
pub(super) struct ChunkSink {
    to: To,
    framing: Framing,
    uni: bool,
}

enum To {
    Slot(Slot),
    /// Boxed: a sender is 24 B, and the inline case (every idle stream on Rotor's
    /// writer) should not carry its size.
    Channel(Box<mpsc::Sender<Bytes>>),
}

impl Sink<Outbound<Bytes>> for ChunkSink {
    type Error = Gone;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        match &mut self.get_mut().to {
            // A full slot is emptied by the body, which polls the loop again right
            // after: no wake-up is needed.
            To::Slot(slot) => {
                if slot.lock().is_none() {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }
            To::Channel(tx) => tx.poll_ready(cx).map_err(|_| Gone),
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Outbound<Bytes>) -> Result<(), Gone> {
        let this = self.get_mut();
        let chunk = match item {
            Outbound::Frame(b) => b,
            Outbound::Close(d) => {
                let mut out = BytesMut::new();
                this.framing.put(&mut out, &this.framing.disconnect_push(this.uni, &d));
                out.freeze()
            }
            Outbound::EchoClose => return Ok(()),
        };
        match &mut this.to {
            To::Slot(slot) => {
                *slot.lock() = Some(chunk);
                Ok(())
            }
            To::Channel(tx) => tx.start_send(chunk).map_err(|_| Gone),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        match &mut self.get_mut().to {
            To::Slot(_) => Poll::Ready(Ok(())),
            To::Channel(tx) => Pin::new(&mut **tx).poll_flush(cx).map_err(|_| Gone),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        match &mut self.get_mut().to {
            To::Slot(_) => Poll::Ready(Ok(())),
            To::Channel(tx) => Pin::new(&mut **tx).poll_close(cx).map_err(|_| Gone),
        }
    }
}

/// The session loop's "client gone" signal, as an inbound stream: once, when the body
/// in another task is dropped; never for a body that polls the loop (dropping that body
/// drops the loop).
pub(super) enum GoneStream {
    Never,
    Dropped(oneshot::Receiver<()>),
    Told,
}

impl Stream for GoneStream {
    type Item = Inbound;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let this = self.get_mut();
        match this {
            GoneStream::Never => Poll::Pending,
            GoneStream::Dropped(rx) => {
                ready!(Pin::new(rx).poll(cx)).ok();
                *this = GoneStream::Told;
                Poll::Ready(Some(Inbound::Broken(None)))
            }
            GoneStream::Told => Poll::Ready(None),
        }
    }
}

/// A body that runs its session loop: each poll takes the chunk the loop left in the
/// slot, or polls the loop for one. The loop ended, the body ends after its last chunk.
struct DrivenBody {
    first: Option<Bytes>,
    slot: Slot,
    session: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl HttpBody for DrivenBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let data = |chunk| Poll::Ready(Some(Ok(Frame::data(chunk))));
        if let Some(chunk) = this.first.take().or_else(|| this.slot.lock().take()) {
            return data(chunk);
        }
        if let Some(session) = &mut this.session
            && session.as_mut().poll(cx).is_ready()
        {
            // The loop is over: its connection goes now, before the last chunk is written.
            this.session = None;
        }
        match this.slot.lock().take() {
            Some(chunk) => data(chunk),
            None if this.session.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.session.is_none() && self.slot.lock().is_none()
    }
}

/// The body was dropped: the client is gone.
#[derive(Debug)]
pub(super) struct Gone;

/// A 200 streaming response with the no-cache headers Centrifugo sends.
pub(super) fn stream_response(body: Body, framing: Framing) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    let content_type = match framing {
        Framing::Lines => "text/plain; charset=utf-8",
        Framing::Sse => "text/event-stream; charset=utf-8",
        Framing::Delimited => "application/octet-stream",
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("expire", HeaderValue::from_static("0"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
