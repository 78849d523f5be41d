//! Bidirectional WebSocket (`/connection/websocket`), JSON protocol: text frames of
//! newline-separated commands in, batched replies and pushes out as one text frame
//! per drain of the queue. Disconnects are WebSocket close frames; a client's Close is
//! echoed, and a frame that breaks RFC 6455 gets 1002 (1007 for text that is not
//! UTF-8, 1009 when too big). One task per connection: it reads, writes and runs the
//! connection's timers.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;

use crate::node::{Conn, Node, Transport};
use crate::protocol::Disconnect;

pub async fn handler(State(node): State<Arc<Node>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let forwarded = node.proxies.capture(&headers);
    let c = &node.config.websocket;
    ws.read_buffer_size(c.read_buffer_size.max(256))
        .write_buffer_size(0)
        .max_message_size(c.message_size_limit)
        .max_frame_size(c.message_size_limit)
        .on_upgrade(move |socket| run(socket, node, forwarded))
}

async fn run(mut socket: WebSocket, node: Arc<Node>, forwarded: Vec<(String, String)>) {
    if node.is_shutting_down() {
        let _ = close(&mut socket, &Disconnect::shutdown()).await;
        return;
    }
    let mut conn = Conn::new(node.clone(), Transport::WebSocket).with_headers(forwarded);
    let queue = conn.queue().clone();
    let write_timeout = node.config.websocket.write_timeout.std();
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = queue.notified() => {
                let closed = queue.drain(&mut batch);
                if !batch.is_empty() {
                    let frame = join_lines(&batch);
                    batch.clear();
                    let send = socket.send(Message::Text(frame.into()));
                    if !matches!(tokio::time::timeout(write_timeout, send).await, Ok(Ok(()))) {
                        break;
                    }
                }
                if let Some(d) = closed {
                    node.metrics.server_disconnect(d.code);
                    let _ = tokio::time::timeout(write_timeout, close(&mut socket, &d)).await;
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    // Boxed: command handling is a large state machine that should not
                    // live inside every idle connection's task.
                    if let Err(d) = Box::pin(conn.handle_frame(t.as_bytes())).await {
                        queue.close(d, true);
                    }
                }
                Some(Ok(Message::Binary(_))) => queue.close(Disconnect::bad_request(), true),
                Some(Ok(Message::Close(_))) => {
                    echo_close(&mut socket, write_timeout).await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if let Some(d) = violation(e) {
                        let _ = tokio::time::timeout(write_timeout, close(&mut socket, &d)).await;
                    }
                    break;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(conn.deadline()) => {
                if let Err(d) = conn.on_deadline() {
                    queue.close(d, true);
                }
            }
        }
    }
}

/// Joins queued messages with `\n` into one frame.
pub(super) fn join_lines(items: &[Bytes]) -> String {
    let len = items.iter().map(|b| b.len() + 1).sum();
    let mut out = Vec::with_capacity(len);
    for (i, b) in items.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(b);
    }
    String::from_utf8(out).unwrap_or_default()
}

pub(super) async fn close(socket: &mut WebSocket, d: &Disconnect) -> Result<(), axum::Error> {
    let frame = CloseFrame { code: d.code as u16, reason: d.close_reason().into() };
    socket.send(Message::Close(Some(frame))).await
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
