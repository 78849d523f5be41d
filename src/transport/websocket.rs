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

use axum::body::Bytes;
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
    ws.on_upgrade(move |pending| run(Box::new(Start { pending, options, node, forwarded, encoding })))
}

/// What a connection's task starts from. Boxed, and unpacked in [`open`]: an `async`
/// block's captures keep their place in its future for the task's whole life, even
/// once moved out, and a box moved out of is freed only when its scope ends.
struct Start {
    pending: ws_socket::Pending,
    options: ws_socket::Options,
    node: Arc<Node>,
    forwarded: Vec<(String, String)>,
    encoding: Encoding,
}

/// The connection's task: the session loop over the upgraded socket. A plain function
/// returning an `async move` block, and the socket a local of it, so each value is
/// stored once in the future: an `async fn` keeps its arguments next to the copies it
/// moves them into.
#[allow(clippy::manual_async_fn)]
fn run(start: Box<Start>) -> impl std::future::Future<Output = ()> + Send {
    async move {
        // Opened in a box of its own, freed (with `start`) once the session can begin.
        let Some((mut conn, mut socket)) = Box::pin(open(start)).await else { return };
        match conn.encoding() {
            Encoding::Json => session_loop::run_duplex(&mut conn, &mut socket, &JoinedLines, Mode::Bidirectional).await,
            Encoding::Protobuf => {
                session_loop::run_duplex(&mut conn, &mut socket, &Concatenated, Mode::Bidirectional).await
            }
        }
    }
}

/// The upgraded socket and its connection; None when the upgrade failed, or the server
/// is shutting down (the client is then told 3001).
async fn open(start: Box<Start>) -> Option<(Conn, WsSocket<Io>)> {
    let Start { pending, options, node, forwarded, encoding } = *start;
    let mut socket = pending.socket(options).await?;
    if node.is_shutting_down() {
        let write_timeout = node.config.websocket.write_timeout.std();
        let _ =
            tokio::time::timeout(write_timeout, socket.send(Outbound::<Bytes>::Close(Disconnect::shutdown()))).await;
        return None;
    }
    let conn = Conn::new(node, Transport::WebSocket).with_headers(forwarded).with_encoding(encoding);
    Some((conn, socket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::returned_size;

    /// What every idle WebSocket connection keeps alive: its task's future, which
    /// holds the socket inline. A regression here (a large value held across the
    /// loop's await, a buffer in the socket) costs bytes per connection; the bounds
    /// have a little headroom over today's sizes. tokio allocates a task as ~104 B
    /// plus its future, rounded up to 128 B: up to 408 B the cell is 512 B.
    #[test]
    fn the_session_future_stays_small() {
        let socket = std::mem::size_of::<WsSocket<Io>>();
        let task = returned_size(run);
        // 160 and 768 bytes when this was written; 728 once the loop's wake-up and
        // timer took no future of their own (an 896-byte cell); 520 with the deadline
        // in the node's timer wheel and the connection's deadlines as 8-byte stamps;
        // 384 once an event's work ran in its own box (a 512-byte cell).
        assert!(socket <= 176, "the WebSocket socket grew to {socket} bytes");
        assert!(task <= 408, "the WebSocket session future grew to {task} bytes");
    }
}
