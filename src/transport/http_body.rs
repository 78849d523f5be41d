//! Streaming HTTP response bodies as a session loop's sink: newline-delimited JSON
//! (`uni_http_stream`, `http_stream`), length-prefixed protobuf (`http_stream` with
//! protobuf) or Server-Sent Events (`uni_sse`, `sse`). The
//! loop writes into a one-slot channel the body reads from, so a client that stops
//! reading holds the writer up and the loop's write timeout ends the session; a body
//! dropped by the server (client gone) is reported to the loop as
//! [`Inbound::Broken`]`(None)`. The channel is `futures-channel`'s, which allocates
//! per message in flight: tokio's allocates a 32-slot block up front, ~1.5 KB that
//! every idle stream would keep.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_channel::mpsc;
use futures_util::SinkExt;
use futures_util::{Sink, Stream, StreamExt};
use tokio::sync::oneshot;

use crate::protocol::Disconnect;
use crate::protocol::codec::encode_push;

use super::session_loop::{Codec, Inbound, Outbound};

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
    fn frames(&self, batch: &[Bytes], out: &mut Vec<Bytes>) {
        let mut chunk = BytesMut::with_capacity(batch.iter().map(|b| b.len() + 8).sum());
        for msg in batch {
            self.put(&mut chunk, msg);
        }
        out.push(chunk.freeze());
    }
}

/// A disconnect push, in the unidirectional (bare) or bidirectional (`push`) form.
pub(super) fn disconnect_push(uni: bool, d: &Disconnect) -> Bytes {
    encode_push(uni, "", "disconnect", d)
}

/// The three ends of a streamed response: the loop's sink, the "client gone" signal
/// as an inbound stream, and the response body.
pub(super) struct Streamed<S, G> {
    pub sink: S,
    pub gone: G,
    pub body: Body,
}

/// A streamed body whose first chunk is `first`; a close is written as a disconnect
/// push (bare when `uni`) and ends the body.
pub(super) fn streamed(
    framing: Framing,
    uni: bool,
    first: Bytes,
) -> Streamed<impl Sink<Outbound<Bytes>> + Unpin, impl Stream<Item = Inbound> + Unpin> {
    // Capacity 0 + one per sender = one chunk in flight, as before.
    let (tx, rx) = mpsc::channel::<Bytes>(0);
    let (alive, gone) = oneshot::channel::<()>();
    let first = (!first.is_empty()).then_some(first);
    let body = futures_util::stream::unfold((rx, first, alive), |(mut rx, first, alive)| async move {
        let chunk = match first {
            Some(f) => f,
            None => rx.next().await?,
        };
        Some((Ok::<Bytes, std::io::Error>(chunk), (rx, None, alive)))
    });
    let sink = Box::pin(futures_util::sink::unfold(tx, move |mut tx, item: Outbound<Bytes>| async move {
        let chunk = match item {
            Outbound::Frame(b) => b,
            Outbound::Close(d) => {
                let mut out = BytesMut::new();
                framing.put(&mut out, &framing.disconnect_push(uni, &d));
                out.freeze()
            }
            Outbound::EchoClose => return Ok(tx),
        };
        tx.send(chunk).await.map(|()| tx).map_err(|_| Gone)
    }));
    let gone = futures_util::stream::once(gone).map(|_| Inbound::Broken(None)).boxed();
    Streamed { sink, gone, body: Body::from_stream(body) }
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
