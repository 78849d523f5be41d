//! The shared part of the unidirectional HTTP transports (`uni_http_stream`,
//! `uni_sse`): decoding the connect request, connecting, and turning the connection's
//! queue into a streaming response body, one framed Push per message, ending with a
//! `disconnect` push. Dropping the body (client gone) drops the `Conn`, which removes
//! the session.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};

use crate::node::{Conn, Node, Transport};
use crate::protocol::codec::encode_push;
use crate::protocol::{ConnectRequest, Disconnect};

/// How one transport frames a Push on the wire.
#[derive(Clone, Copy)]
pub enum Framing {
    /// One JSON object per line.
    Lines,
    /// `data: <json>\n\n` Server-Sent Events.
    Sse,
}

impl Framing {
    fn put(self, out: &mut BytesMut, msg: &[u8]) {
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
        }
    }
}

/// Decodes a ConnectRequest body; `null` is `{}`; anything else invalid is None.
pub fn decode_connect(body: &[u8]) -> Option<ConnectRequest> {
    match serde_json::from_slice::<Option<ConnectRequest>>(body) {
        Ok(r) => Some(r.unwrap_or_default()),
        Err(_) => None,
    }
}

/// Connects and streams. A failed connect is still a 200 with a disconnect push.
pub async fn serve(
    node: Arc<Node>,
    req: ConnectRequest,
    headers: &HeaderMap,
    transport: Transport,
    framing: Framing,
) -> Response {
    let forwarded = node.proxies.capture(headers);
    let mut conn = Conn::new(node.clone(), transport).with_headers(forwarded);
    let prefix: &[u8] = if matches!(framing, Framing::Sse) { b"\r\n" } else { b"" };
    let mut first = BytesMut::from(prefix);
    if let Err(d) = conn.connect_uni(req).await {
        framing.put(&mut first, &disconnect_push(&d));
        return stream_response(Body::from(first.freeze()), framing);
    }
    let state = (conn, Some(first), false);
    let stream = futures_util::stream::unfold(state, move |(mut conn, mut first, done)| async move {
        if done {
            return None;
        }
        let (chunk, finished) = next_chunk(&mut conn, framing, first.take()).await;
        Some((Ok::<Bytes, std::io::Error>(chunk), (conn, None, finished)))
    });
    stream_response(Body::from_stream(stream), framing)
}

/// Waits until something is queued (or a timer fires), returns it framed; `true`
/// when the stream must end after this chunk.
async fn next_chunk(conn: &mut Conn, framing: Framing, first: Option<BytesMut>) -> (Bytes, bool) {
    let queue = conn.queue().clone();
    let mut out = first.unwrap_or_default();
    let mut items = Vec::new();
    loop {
        let closed = queue.drain(&mut items);
        for item in items.drain(..) {
            framing.put(&mut out, &item);
        }
        if let Some(d) = &closed {
            conn.node().metrics.server_disconnect(d.code);
            framing.put(&mut out, &disconnect_push(d));
        }
        if !out.is_empty() || closed.is_some() {
            return (out.freeze(), closed.is_some());
        }
        tokio::select! {
            biased;
            _ = queue.notified() => {}
            _ = tokio::time::sleep_until(conn.deadline()) => {
                if let Err(d) = conn.on_deadline() {
                    queue.close(d, true);
                }
            }
        }
    }
}

pub fn disconnect_push(d: &Disconnect) -> Bytes {
    encode_push(true, "", "disconnect", d)
}

fn stream_response(body: Body, framing: Framing) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    let content_type = match framing {
        Framing::Lines => "text/plain; charset=utf-8",
        Framing::Sse => "text/event-stream; charset=utf-8",
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
