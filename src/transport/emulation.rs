//! Bidirectional emulation for clients without WebSocket (centrifuge-js's
//! `http_stream` and `sse` transports):
//!
//! - `POST /connection/http_stream`: the body is the first frame of commands (the
//!   connect); the response streams every Reply and Push as one JSON line.
//! - `GET /connection/sse?cf_connect=<frame>` (or POST with the frame as the body): the
//!   same as Server-Sent Events, `data: <json>\n\n` each.
//! - `POST /emulation` with `{"session","node","data"}`: `data` (a JSON string holding
//!   newline-separated commands) goes to that session's loop, on this node or, with
//!   the Redis engine, on the node that owns it. 204 when delivered; replies arrive on
//!   the stream. 404 for an unknown node or session, 400 for a malformed body, 413 over
//!   `emulation.max_request_body_size`, 503 when the session's inbound queue stays
//!   full, 500 when the owning node does not answer.
//!
//! The connect reply carries `session` (a fresh random ID) and `node`.
//!
//! Protobuf: an `http_stream` request with `Content-Type: application/octet-stream`
//! (or `?cf_protocol=protobuf`) is a protobuf session — its body and response are
//! length-prefixed Command / Reply messages — and a protobuf `/emulation` body is an
//! `EmulationRequest` message whose `data` holds length-prefixed commands. SSE carries
//! text only: a protobuf SSE request is refused with 415, as Centrifugo does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::node::{Conn, EmulationError, Node, Transport};
use crate::protocol::{Encoding, pb};

use super::http_body::{self, Framing, InlineSession, stream_response};
use super::session_loop::{self, Inbound, Mode};

/// Longest `session` or `node` accepted (both are UUIDs, 36 characters).
const MAX_ID_LEN: usize = 64;

pub(super) async fn http_stream(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    inline: Option<Extension<InlineSession>>,
    body: Bytes,
) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let protobuf = octet_stream(&headers) || query.get("cf_protocol").is_some_and(|p| p == "protobuf");
    let framing = if protobuf { Framing::Delimited } else { Framing::Lines };
    serve(node, &headers, body, Transport::HttpStream, framing, inline.is_some()).await
}

pub(super) async fn sse(
    State(node): State<Arc<Node>>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    inline: Option<Extension<InlineSession>>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse(&node, &headers) {
        return refused;
    }
    if query.get("cf_protocol").is_some_and(|p| p == "protobuf") {
        return protobuf_refused();
    }
    let frame = if method == Method::POST {
        body
    } else {
        match query.get("cf_connect") {
            Some(q) => Bytes::copy_from_slice(q.as_bytes()),
            None => return bad_request(),
        }
    };
    serve(node, &headers, frame, Transport::Sse, Framing::Sse, inline.is_some()).await
}

/// The checks SSE makes first: origin, JSON only.
fn refuse(node: &Node, headers: &HeaderMap) -> Option<Response> {
    if !super::origin::allowed(&node.config.client.allowed_origins, headers) {
        return Some(StatusCode::FORBIDDEN.into_response());
    }
    octet_stream(headers).then(protobuf_refused)
}

fn protobuf_refused() -> Response {
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "protobuf is not supported over SSE").into_response()
}

/// `Content-Type: application/octet-stream`: the request is protobuf.
fn octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"))
}

fn bad_request() -> Response {
    (StatusCode::BAD_REQUEST, "Bad Request").into_response()
}

/// Runs the first frame (the connect), then streams the session. A frame that is not
/// commands is a 400; a connect answered with an error streams that reply and ends.
async fn serve(
    node: Arc<Node>,
    headers: &HeaderMap,
    frame: Bytes,
    transport: Transport,
    framing: Framing,
    inline: bool,
) -> Response {
    let encoding = if matches!(framing, Framing::Delimited) { Encoding::Protobuf } else { Encoding::Json };
    if encoding.decode_frame(&frame).is_err() {
        return bad_request();
    }
    let forwarded = node.proxies.capture(headers);
    let mut conn = Conn::new(node.clone(), transport).with_headers(forwarded).with_encoding(encoding);
    if let Err(d) = Box::pin(conn.handle_frame(&frame)).await {
        conn.queue().close(d, true);
    }
    let Some(session) = conn.session().and_then(|s| s.session()).map(|id| id.to_string()) else {
        return connect_failed(&conn, framing);
    };
    let (registration, rx) = node.register_emulated(&session);
    let preamble = Bytes::from_static(framing.preamble());
    let body = http_body::session_body(framing, false, preamble, inline, move |io| async move {
        let _registration = registration;
        let (gone, sink) = io.into_parts();
        let mut rx = rx;
        let commands = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let inbound = futures_util::stream::select(commands.map(Inbound::Frame), gone);
        session_loop::run(&mut conn, inbound, sink, &framing, Mode::Bidirectional).await;
    });
    stream_response(body, framing)
}

/// No session: what the connect queued (an error reply, or a disconnect) is the whole
/// body.
fn connect_failed(conn: &Conn, framing: Framing) -> Response {
    let mut out = BytesMut::from(framing.preamble());
    let mut items = Vec::new();
    let closed = conn.queue().drain(&mut items);
    for item in &items {
        framing.put(&mut out, item);
    }
    if let Some(d) = closed {
        framing.put(&mut out, &framing.disconnect_push(false, &d));
    }
    stream_response(axum::body::Body::from(out.freeze()), framing)
}

#[derive(Deserialize)]
struct JsonEmulationRequest {
    session: String,
    node: String,
    data: String,
}

struct EmulationRequest {
    session: String,
    node: String,
    data: Bytes,
}

/// `POST /emulation` (a JSON body, or a protobuf `EmulationRequest`).
pub(super) async fn emulation(State(node): State<Arc<Node>>, headers: HeaderMap, body: Bytes) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let (encoding, req) = if octet_stream(&headers) {
        let Some(r) = pb::decode_emulation(&body) else { return bad_request() };
        (Encoding::Protobuf, EmulationRequest { session: r.session, node: r.node, data: Bytes::from(r.data) })
    } else {
        let Ok(r) = serde_json::from_slice::<JsonEmulationRequest>(&body) else { return bad_request() };
        (Encoding::Json, EmulationRequest { session: r.session, node: r.node, data: Bytes::from(r.data) })
    };
    let ids_ok = |s: &str| !s.is_empty() && s.len() <= MAX_ID_LEN;
    if !ids_ok(&req.session) || !ids_ok(&req.node) || encoding.decode_frame(&req.data).is_err() {
        return bad_request();
    }
    match node.emulate(&req.node, &req.session, req.data).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(EmulationError::UnknownNode | EmulationError::UnknownSession) => StatusCode::NOT_FOUND.into_response(),
        Err(EmulationError::Busy) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(e @ EmulationError::Unreachable(_)) => {
            tracing::warn!("emulation request not delivered: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
