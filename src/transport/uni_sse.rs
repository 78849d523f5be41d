//! `/connection/uni_sse`: GET with `?cf_connect=<URL-encoded ConnectRequest JSON>` (or
//! POST with a JSON body); response is `text/event-stream` starting with `\r\n`, one
//! `data: <Push JSON>` event per message.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::node::{Node, Transport};

use super::http_body::{Framing, InlineSession};
use super::uni;

pub(super) async fn handler(
    State(node): State<Arc<Node>>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    inline: Option<Extension<InlineSession>>,
    body: Bytes,
) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let raw: &[u8] =
        if method == Method::POST { &body } else { query.get("cf_connect").map_or(b"{}".as_slice(), |s| s.as_bytes()) };
    let Some(req) = uni::decode_connect(raw) else {
        return (StatusCode::BAD_REQUEST, "Bad Request").into_response();
    };
    uni::serve(node, req, &headers, Transport::UniSse, Framing::Sse, inline.is_some()).await
}
