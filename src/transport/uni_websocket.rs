//! `/connection/uni_websocket`: the ConnectRequest comes in `?cf_connect=` or as the
//! first text message; then each Push is a text message (joined with `\n` when
//! `join_push_messages`), and a disconnect is a disconnect push plus a close frame.
//! Anything else the client sends is read and ignored, except a Close (echoed) and a
//! frame that breaks RFC 6455 (closed with 1002/1007/1009, as on the bidirectional
//! endpoint). After the connect, the session loop runs in unidirectional mode.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::node::{Conn, Node, Transport};
use crate::protocol::{ConnectRequest, Disconnect};

use super::http_body::disconnect_push;
use super::session_loop::{self, JoinedLines, Mode, OnePerMessage};
use super::uni::decode_connect;
use super::websocket::{close, echo_close, violation, ws_ends};

pub(super) async fn handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
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
    let limit = node.config.uni_websocket.message_size_limit;
    ws.read_buffer_size(256).max_message_size(limit).on_upgrade(move |s| run(s, node, preset, forwarded))
}

/// The ConnectRequest sent as the first message; `Err(None)` when the session already
/// ended (the client closed, or broke the protocol and was told so).
async fn first_request(socket: &mut WebSocket, node: &Node) -> Result<ConnectRequest, Option<Disconnect>> {
    match socket.recv().await {
        Some(Ok(Message::Text(t))) => decode_connect(t.as_bytes()).ok_or_else(|| Some(Disconnect::bad_request())),
        Some(Ok(Message::Close(_))) => {
            echo_close(socket, node.config.websocket.write_timeout.std()).await;
            Err(None)
        }
        Some(Err(e)) => {
            if let Some(d) = violation(e) {
                let _ = tokio::time::timeout(node.config.websocket.write_timeout.std(), close(socket, &d)).await;
            }
            Err(None)
        }
        Some(Ok(_)) => Err(Some(Disconnect::bad_request())),
        None => Err(None),
    }
}

async fn run(mut socket: WebSocket, node: Arc<Node>, preset: Option<ConnectRequest>, forwarded: Vec<(String, String)>) {
    let req = match preset {
        Some(r) => r,
        None => match first_request(&mut socket, &node).await {
            Ok(r) => r,
            Err(Some(d)) => return finish(&mut socket, &node, &d).await,
            Err(None) => return,
        },
    };
    let mut conn = Conn::new(node.clone(), Transport::UniWebSocket).with_headers(forwarded);
    if let Err(d) = conn.connect_uni(req).await {
        return finish(&mut socket, &node, &d).await;
    }
    let c = &node.config.uni_websocket;
    let write_timeout = node.config.websocket.write_timeout.std();
    let (inbound, sink) = ws_ends(socket, !c.disable_disconnect_push);
    if c.join_push_messages {
        session_loop::run(&mut conn, inbound, sink, &JoinedLines, Mode::Unidirectional, write_timeout).await;
    } else {
        session_loop::run(&mut conn, inbound, sink, &OnePerMessage, Mode::Unidirectional, write_timeout).await;
    }
}

async fn finish(socket: &mut WebSocket, node: &Node, d: &Disconnect) {
    if !node.config.uni_websocket.disable_disconnect_push {
        let push = String::from_utf8_lossy(&disconnect_push(true, d)).into_owned();
        let _ = socket.send(Message::Text(push.into())).await;
    }
    let _ = close(socket, d).await;
}
