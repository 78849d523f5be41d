//! Bidirectional WebSocket (`/connection/websocket`). JSON protocol: text frames of
//! newline-separated commands in, batched replies and pushes out as one text frame
//! per drain of the queue. Protobuf protocol (the `centrifuge-protobuf` subprotocol,
//! or `?cf_protocol=protobuf`): the same with binary frames of length-prefixed
//! messages; a text frame there (or a binary one on JSON) is a 3501. Disconnects are WebSocket close frames; a client's Close is
//! echoed, and a frame that breaks RFC 6455 gets 1002 (1007 for text that is not
//! UTF-8, 1009 when too big). One task per connection runs the session loop over the
//! socket's two halves (see [`ws_ends`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;

use crate::node::{Conn, Node, Transport};
use crate::protocol::{Disconnect, Encoding};

use super::session_loop::{self, Concatenated, Inbound, JoinedLines, Mode, Outbound};

/// The subprotocol that selects protobuf frames.
pub(super) const PROTOBUF_SUBPROTOCOL: &str = "centrifuge-protobuf";

pub(super) async fn handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let forwarded = node.proxies.capture(&headers);
    let c = &node.config.websocket;
    let ws = ws.protocols([PROTOBUF_SUBPROTOCOL]);
    let by_query = query.get("cf_protocol").is_some_and(|p| p == "protobuf");
    let encoding = if by_query || ws.selected_protocol().is_some() { Encoding::Protobuf } else { Encoding::Json };
    ws.read_buffer_size(c.read_buffer_size.max(256))
        .write_buffer_size(0)
        .max_message_size(c.message_size_limit)
        .max_frame_size(c.message_size_limit)
        .on_upgrade(move |socket| session(socket, node, forwarded, encoding))
}

/// The connection's task. The socket is split into its two ends before the session
/// future is built, so that future (which every idle connection keeps for its whole
/// life) holds the ends, not also the unsplit socket it came from; the rare refusal
/// during shutdown is boxed for the same reason.
fn session(
    socket: WebSocket,
    node: Arc<Node>,
    forwarded: Vec<(String, String)>,
    encoding: Encoding,
) -> impl std::future::Future<Output = ()> + Send {
    use futures_util::future::Either;
    if node.is_shutting_down() {
        return Either::Left(Box::pin(async move {
            let mut socket = socket;
            let _ = close(&mut socket, &Disconnect::shutdown()).await;
        }));
    }
    let (inbound, sink) = ws_ends_encoded(socket, false, encoding);
    Either::Right(run(inbound, sink, node, forwarded, encoding))
}

async fn run<I, S>(inbound: I, sink: S, node: Arc<Node>, forwarded: Vec<(String, String)>, encoding: Encoding)
where
    I: Stream<Item = Inbound> + Unpin,
    S: Sink<Outbound<Bytes>> + Unpin,
{
    let mut conn = Conn::new(node.clone(), Transport::WebSocket).with_headers(forwarded).with_encoding(encoding);
    let write_timeout = node.config.websocket.write_timeout.std();
    match encoding {
        Encoding::Json => {
            session_loop::run(&mut conn, inbound, sink, &JoinedLines, Mode::Bidirectional, write_timeout).await
        }
        Encoding::Protobuf => {
            session_loop::run(&mut conn, inbound, sink, &Concatenated, Mode::Bidirectional, write_timeout).await
        }
    }
}

/// A WebSocket as the session loop's inbound stream and outbound sink: text frames
/// are commands, binary ones unsupported, Close is echoed, broken frames closed with
/// the code [`violation`] picks; outbound frames are text messages, a close is a close
/// frame, preceded by a bare disconnect push when `push_disconnect` (uni WebSocket).
pub(super) fn ws_ends(
    socket: WebSocket,
    push_disconnect: bool,
) -> (impl Stream<Item = Inbound> + Unpin, impl Sink<Outbound<Bytes>, Error = axum::Error> + Unpin) {
    ws_ends_encoded(socket, push_disconnect, Encoding::Json)
}

/// [`ws_ends`] for either encoding: protobuf reads and writes binary messages.
fn ws_ends_encoded(
    socket: WebSocket,
    push_disconnect: bool,
    encoding: Encoding,
) -> (impl Stream<Item = Inbound> + Unpin, impl Sink<Outbound<Bytes>, Error = axum::Error> + Unpin) {
    let binary = encoding == Encoding::Protobuf;
    let (tx, rx) = socket.split();
    let inbound = rx.filter_map(move |msg| async move {
        match msg {
            Ok(Message::Text(t)) if !binary => Some(Inbound::Frame(Bytes::from(t))),
            Ok(Message::Binary(b)) if binary => Some(Inbound::Frame(b)),
            Ok(Message::Text(_) | Message::Binary(_)) => Some(Inbound::Unsupported),
            Ok(Message::Close(_)) => Some(Inbound::PeerClosed),
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
            Err(e) => Some(Inbound::Broken(violation(e))),
        }
    });
    let sink = Box::pin(futures_util::sink::unfold(tx, move |mut tx, item: Outbound<Bytes>| async move {
        match item {
            Outbound::Frame(b) if binary => tx.send(Message::Binary(b)).await?,
            Outbound::Frame(b) => {
                let text = Utf8Bytes::try_from(b).unwrap_or_default();
                tx.send(Message::Text(text)).await?;
            }
            Outbound::Close(d) => {
                if push_disconnect {
                    let push = super::http_body::disconnect_push(true, &d);
                    tx.send(Message::Text(Utf8Bytes::try_from(push).unwrap_or_default())).await?;
                }
                tx.send(close_message(&d)).await?;
            }
            // tungstenite queued the echo of the client's Close when it read it, and
            // writes it on the next flush.
            Outbound::EchoClose => tx.flush().await?,
        }
        Ok::<_, axum::Error>(tx)
    }));
    (Box::pin(inbound), sink)
}

fn close_message(d: &Disconnect) -> Message {
    Message::Close(Some(CloseFrame { code: d.code as u16, reason: d.close_reason().into() }))
}

pub(super) async fn close(socket: &mut WebSocket, d: &Disconnect) -> Result<(), axum::Error> {
    socket.send(close_message(d)).await
}

/// Answers the client's Close frame with its own code: tungstenite queued the echo
/// when it read the frame, and writes it on the next flush.
pub(super) async fn echo_close(socket: &mut WebSocket, write_timeout: std::time::Duration) {
    let _ = tokio::time::timeout(write_timeout, socket.flush()).await;
}

/// The close a failed read calls for (RFC 6455 §7.4.1): 1009 for a message over the
/// size limit, 1007 for a text message that is not UTF-8, 1002 for any other broken
/// frame (unmasked, reserved opcode or bits, bad fragmentation…). `None` when the peer
/// is gone and there is no one to tell.
pub(super) fn violation(e: axum::Error) -> Option<Disconnect> {
    let Ok(e) = e.into_inner().downcast::<WsError>() else { return None };
    match *e {
        WsError::Capacity(_) => Some(Disconnect::message_too_big()),
        WsError::Utf8(_) => Some(Disconnect::invalid_payload()),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some(Disconnect::protocol_error()),
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Io(_)
        | WsError::Tls(_)
        | WsError::WriteBufferFull(_)
        | WsError::AttackAttempt
        | WsError::Url(_)
        | WsError::Http(_)
        | WsError::HttpFormat(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every idle WebSocket connection keeps alive: its session future. A
    /// regression here (a large value held across the loop's await) costs bytes per
    /// connection; the bound has a little headroom over today's size.
    #[test]
    fn the_session_future_stays_small() {
        let sink = futures_util::sink::drain().sink_map_err(|e: std::convert::Infallible| match e {});
        let node = crate::node::Node::new(crate::config::Config::default()).unwrap();
        let fut = run(futures_util::stream::pending::<Inbound>(), sink, node, Vec::new(), Encoding::Json);
        // 616 bytes when this was written (the connection, the loop's timer and queue
        // waits); the real ends are boxed, so they add a pointer each, not their state.
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 768, "the WebSocket session future grew to {size} bytes");
    }
}
