//! Bidirectional WebSocket (`/connection/websocket`). JSON protocol: text frames of
//! newline-separated commands in, batched replies and pushes out as one text frame
//! per drain of the queue. Protobuf protocol (the `centrifuge-protobuf` subprotocol,
//! or `?cf_protocol=protobuf`): the same with binary frames of length-prefixed
//! messages; a text frame there (or a binary one on JSON) is a 3501. Disconnects are
//! WebSocket close frames; a client's Close is echoed, and a frame that breaks
//! RFC 6455 gets 1002 (1007 for text that is not UTF-8, 1009 when too big). The
//! handshake and framing are Rotor's own ([`super::ws_socket`]); one task per
//! connection runs the session loop over the socket, which it owns whole.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;

use crate::node::{Conn, Node, Transport};
use crate::protocol::{Disconnect, Encoding};

use super::session_loop::{self, Concatenated, JoinedLines, Mode, Outbound};
use super::ws_socket::{self, Io, Upgrade, WsSocket};

/// The subprotocol that selects protobuf frames.
pub(super) const PROTOBUF_SUBPROTOCOL: &str = "centrifuge-protobuf";

pub(super) async fn handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Upgrade,
) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let forwarded = node.proxies.capture(&headers);
    let ws = ws.protocol(PROTOBUF_SUBPROTOCOL);
    let by_query = query.get("cf_protocol").is_some_and(|p| p == "protobuf");
    let encoding = if by_query || ws.selected_protocol().is_some() { Encoding::Protobuf } else { Encoding::Json };
    let c = &node.config.websocket;
    let options = ws_socket::Options {
        binary: encoding == Encoding::Protobuf,
        push_disconnect: false,
        message_size_limit: c.message_size_limit,
        read_chunk: c.read_buffer_size,
    };
    ws.on_upgrade(move |io| session(WsSocket::new(io, options), node, forwarded, encoding))
}

/// The connection's task. The rare refusal during shutdown is boxed so the session
/// future, which every idle connection keeps for its whole life, does not carry it.
fn session(
    socket: WsSocket<Io>,
    node: Arc<Node>,
    forwarded: Vec<(String, String)>,
    encoding: Encoding,
) -> impl std::future::Future<Output = ()> + Send {
    use futures_util::future::Either;
    if node.is_shutting_down() {
        return Either::Left(Box::pin(async move {
            let mut socket = socket;
            let write_timeout = node.config.websocket.write_timeout.std();
            let close = socket.send(Outbound::Close(Disconnect::shutdown()));
            let _ = tokio::time::timeout(write_timeout, close).await;
        }));
    }
    Either::Right(run(socket, node, forwarded, encoding))
}

/// The session over `socket`. A plain function returning an `async move` block, so
/// the socket is stored once in the future, as the block's capture: an `async fn`
/// would keep its argument and a moved copy of it (a few hundred bytes per idle
/// connection).
#[allow(clippy::manual_async_fn)]
fn run<D>(
    mut socket: D,
    node: Arc<Node>,
    forwarded: Vec<(String, String)>,
    encoding: Encoding,
) -> impl std::future::Future<Output = ()> + Send
where
    D: futures_util::Stream<Item = session_loop::Inbound> + futures_util::Sink<Outbound<bytes::Bytes>> + Unpin + Send,
{
    async move {
        let mut conn = Conn::new(node.clone(), Transport::WebSocket).with_headers(forwarded).with_encoding(encoding);
        let write_timeout = node.config.websocket.write_timeout.std();
        match encoding {
            Encoding::Json => {
                session_loop::run_duplex(&mut conn, &mut socket, &JoinedLines, Mode::Bidirectional, write_timeout).await
            }
            Encoding::Protobuf => {
                session_loop::run_duplex(&mut conn, &mut socket, &Concatenated, Mode::Bidirectional, write_timeout)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every idle WebSocket connection keeps alive: its session future, which
    /// holds the socket inline. A regression here (a large value held across the
    /// loop's await, a buffer in the socket) costs bytes per connection; the bound has
    /// a little headroom over today's size.
    #[test]
    fn the_session_future_stays_small() {
        let node = crate::node::Node::new(crate::config::Config::default()).unwrap();
        let (io, _peer) = tokio::io::duplex(64);
        let options =
            ws_socket::Options { binary: false, push_disconnect: false, message_size_limit: 65536, read_chunk: 4096 };
        let socket = WsSocket::new(io, options);
        let socket_size = std::mem::size_of_val(&socket);
        let fut = run(socket, node, Vec::new(), Encoding::Json);
        let size = std::mem::size_of_val(&fut);
        assert!(socket_size <= 192, "the WebSocket socket grew to {socket_size} bytes");
        // 168 and 800 bytes when this was written.
        assert!(size <= 864, "the WebSocket session future grew to {size} bytes");
    }
}
