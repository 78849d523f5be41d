//! The shared part of the unidirectional HTTP transports (`uni_http_stream`,
//! `uni_sse`): decoding the connect request, connecting, and running the session loop
//! into a streaming response body, one framed Push per message, ending with a
//! `disconnect` push. The client's side of the request carries nothing after the
//! connect; a body dropped by the server (client gone) ends the loop, and dropping
//! the `Conn` removes the session.

use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::BytesMut;

use crate::node::{Conn, Node, Transport};
use crate::protocol::ConnectRequest;

use super::http_body::{self, ChunkSink, Framing, GoneStream, disconnect_push, stream_response};
use super::session_loop::{self, Duplex, Mode};

/// Decodes a ConnectRequest body; `null` is `{}`; anything else invalid is None.
pub(super) fn decode_connect(body: &[u8]) -> Option<ConnectRequest> {
    match serde_json::from_slice::<Option<ConnectRequest>>(body) {
        Ok(r) => Some(r.unwrap_or_default()),
        Err(_) => None,
    }
}

/// Connects and streams (`inline`: the loop runs inside the body, see
/// [`http_body::session_body`]). A failed connect is still a 200 with a disconnect push.
pub(super) async fn serve(
    node: Arc<Node>,
    req: ConnectRequest,
    headers: &HeaderMap,
    transport: Transport,
    framing: Framing,
    inline: bool,
) -> Response {
    let forwarded = node.proxies.capture(headers);
    let mut conn = Conn::new(node.clone(), transport).with_headers(forwarded);
    let mut first = BytesMut::from(framing.preamble());
    if let Err(d) = conn.connect_uni(req).await {
        framing.put(&mut first, &disconnect_push(true, &d));
        return stream_response(Body::from(first.freeze()), framing);
    }
    let body = http_body::session_body(framing, true, first.freeze(), inline, move |io| session(conn, io, framing));
    stream_response(body, framing)
}

/// The session loop of one stream: the future every idle stream keeps (in a box of
/// its own, polled by the body). The loop borrows the transport where it was
/// captured, so each value is stored once.
#[allow(clippy::manual_async_fn)]
fn session(mut conn: Conn, mut io: Duplex<GoneStream, ChunkSink>, framing: Framing) -> impl Future<Output = ()> + Send {
    async move { session_loop::run_duplex(&mut conn, &mut io, &framing, Mode::Unidirectional).await }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned_size<A, B, C, R>(_: fn(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// What every idle uni stream keeps in its body's box. A regression (a value held
    /// across the loop's await) costs bytes per connection: at 256 B and under, the
    /// box takes mimalloc's 256-byte size class (the next is 320).
    #[test]
    fn the_stream_session_future_stays_small() {
        let session = returned_size(session);
        // 568 bytes before the deadline moved to the node's timer wheel (a 640-byte
        // block); 384 with the connection's deadlines as 8-byte stamps; 248 once an
        // event's work ran in its own box.
        assert!(session <= 256, "the stream session future grew to {session} bytes");
    }
}
