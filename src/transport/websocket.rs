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
use super::ws_socket::{self, Upgrade};

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

/// What a connection's task starts from. Boxed: an `async` block's captures keep
/// their place in its future for the task's whole life, even once moved out, so the
/// task captures only this pointer and the box is freed after the upgrade.
struct Start {
    pending: ws_socket::Pending,
    options: ws_socket::Options,
    node: Arc<Node>,
    forwarded: Vec<(String, String)>,
    encoding: Encoding,
}

/// The connection's task: the upgraded socket, then the session loop over it (or,
/// during shutdown, a 3001 close). A plain function returning an `async move` block,
/// and the socket a local of it, so each value is stored once in the future: an
/// `async fn` keeps its arguments next to the copies it moves them into.
#[allow(clippy::manual_async_fn)]
fn run(start: Box<Start>) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let Start { pending, options, node, forwarded, encoding } = *start;
        let Some(mut socket) = pending.socket(options).await else { return };
        if node.is_shutting_down() {
            let write_timeout = node.config.websocket.write_timeout.std();
            // Boxed: the refusal is rare and should not size every connection's task.
            let _ = Box::pin(tokio::time::timeout(write_timeout, socket.send(Outbound::Close(Disconnect::shutdown()))))
                .await;
            return;
        }
        let mut conn = Conn::new(node, Transport::WebSocket).with_headers(forwarded).with_encoding(encoding);
        match encoding {
            Encoding::Json => session_loop::run_duplex(&mut conn, &mut socket, &JoinedLines, Mode::Bidirectional).await,
            Encoding::Protobuf => {
                session_loop::run_duplex(&mut conn, &mut socket, &Concatenated, Mode::Bidirectional).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ws_socket::{Io, WsSocket};

    /// The size of what a function returns, from its type alone.
    fn returned_size<A, R>(_: fn(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// What every idle WebSocket connection keeps alive: its task's future, which
    /// holds the socket inline. A regression here (a large value held across the
    /// loop's await, a buffer in the socket) costs bytes per connection; the bounds
    /// have a little headroom over today's sizes.
    #[test]
    fn the_session_future_stays_small() {
        let socket = std::mem::size_of::<WsSocket<Io>>();
        let task = returned_size(run);
        // 160 and 768 bytes when this was written; 728 since the loop's wake-up and
        // timer stopped taking a future of their own.
        assert!(socket <= 176, "the WebSocket socket grew to {socket} bytes");
        assert!(task <= 760, "the WebSocket session future grew to {task} bytes");
    }
}
