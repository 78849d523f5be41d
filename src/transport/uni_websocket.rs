//! `/connection/uni_websocket`: the ConnectRequest comes in `?cf_connect=` or as the
//! first text message; then each Push is a text message (joined with `\n` when
//! `join_push_messages`; otherwise a drained batch's messages go out as a frame each,
//! in one write), and a disconnect is a disconnect push plus a close frame.
//! Anything else the client sends is read and ignored, except a Close (echoed) and a
//! frame that breaks RFC 6455 (closed with 1002/1007/1009, as on the bidirectional
//! endpoint). After the connect, the session loop runs in unidirectional mode.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

use crate::node::{Conn, Node, Transport};
use crate::protocol::{ConnectRequest, Disconnect};

use super::session_loop::{self, Inbound, JoinedLines, Mode, OnePerMessage, Outbound};
use super::uni::decode_connect;
use super::ws_socket::{self, Io, Upgrade, WsSocket};

pub(super) async fn handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Upgrade,
) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let preset = match query.get("cf_connect") {
        Some(raw) => match decode_connect(raw.as_bytes()) {
            Some(r) => Some(r),
            None => return (StatusCode::BAD_REQUEST, "Bad Request").into_response(),
        },
        None => None,
    };
    let forwarded = node.proxies.capture(&headers);
    let c = &node.config.uni_websocket;
    let options = ws_socket::Options {
        binary: false,
        push_disconnect: !c.disable_disconnect_push,
        message_size_limit: c.message_size_limit,
        read_chunk: node.config.websocket.read_buffer_size,
    };
    ws.on_upgrade(move |pending| run(Box::new(Start { pending, options, node, preset, forwarded })))
}

/// What a connection's task starts from. Boxed, and unpacked in [`open`]: an `async`
/// block's captures keep their place in its future for the task's whole life, even
/// once moved out, and a box moved out of is freed only when its scope ends.
struct Start {
    pending: ws_socket::Pending,
    options: ws_socket::Options,
    node: Arc<Node>,
    preset: Option<ConnectRequest>,
    forwarded: Vec<(String, String)>,
}

/// The ConnectRequest sent as the first message; `Err(None)` when the session already
/// ended (the client closed, or broke the protocol and was told so).
async fn first_request(socket: &mut WsSocket<Io>, node: &Node) -> Result<ConnectRequest, Option<Disconnect>> {
    let write_timeout = node.config.websocket.write_timeout.std();
    match socket.next().await {
        Some(Inbound::Frame(t)) => decode_connect(&t).ok_or_else(|| Some(Disconnect::bad_request())),
        Some(Inbound::Unsupported) => Err(Some(Disconnect::bad_request())),
        Some(Inbound::PeerClosed) => {
            let _ = tokio::time::timeout(write_timeout, socket.send(Outbound::<Bytes>::EchoClose)).await;
            Err(None)
        }
        // A broken frame gets its close code, after the disconnect push as in a session.
        Some(Inbound::Broken(Some(d))) => Err(Some(d)),
        Some(Inbound::Broken(None)) | None => Err(None),
    }
}

/// The connection's task: the session loop over the connected socket. The upgrade,
/// the first message and the connect (a large future: the connect path, proxies
/// included) run in a box of their own, freed before the session starts; the task then
/// holds the socket, the `Conn` and the loop only. A plain function returning an
/// `async move` block, so that its argument is stored once.
#[allow(clippy::manual_async_fn)]
fn run(start: Box<Start>) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let Some((mut conn, mut socket)) = Box::pin(open(start)).await else { return };
        if conn.node().config.uni_websocket.join_push_messages {
            session_loop::run_duplex(&mut conn, &mut socket, &JoinedLines, Mode::Unidirectional).await;
        } else {
            session_loop::run_duplex(&mut conn, &mut socket, &OnePerMessage, Mode::Unidirectional).await;
        }
    }
}

/// The upgraded socket and its connected `Conn`; None when the session ended before it
/// started (the upgrade failed, or the first message or the connect was refused, and
/// the client was told).
async fn open(start: Box<Start>) -> Option<(Conn, WsSocket<Io>)> {
    let Start { pending, options, node, preset, forwarded } = *start;
    let mut socket = pending.socket(options).await?;
    let req = match preset {
        Some(r) => r,
        None => match first_request(&mut socket, &node).await {
            Ok(r) => r,
            Err(Some(d)) => {
                finish(&mut socket, &node, d).await;
                return None;
            }
            Err(None) => return None,
        },
    };
    let mut conn = Conn::new(node.clone(), Transport::UniWebSocket).with_headers(forwarded);
    if let Err(d) = conn.connect_uni(req).await {
        finish(&mut socket, &node, d).await;
        return None;
    }
    Some((conn, socket))
}

/// Ends a session that never started: the disconnect push (unless disabled) and the
/// close frame.
async fn finish(socket: &mut WsSocket<Io>, node: &Node, d: Disconnect) {
    let write_timeout = node.config.websocket.write_timeout.std();
    let _ = tokio::time::timeout(write_timeout, socket.send(Outbound::<Bytes>::Close(d))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::returned_size;

    /// What every idle uni_websocket connection keeps alive: its task's future. The
    /// upgrade and the connect run in a box of their own; a regression that brings
    /// them back inline (4,208 B before they were boxed; 384 since: a 512-byte task)
    /// costs every connection.
    #[test]
    fn the_session_future_stays_small() {
        let task = returned_size(run);
        assert!(task <= 408, "the uni_websocket session future grew to {task} bytes");
    }
}
