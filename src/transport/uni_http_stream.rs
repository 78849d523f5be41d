//! `POST /connection/uni_http_stream`: body = ConnectRequest JSON, response = one Push
//! per line (connect push first, publications, `{}` pings, a disconnect push last).
//! OPTIONS answers CORS preflight; other methods are 405; oversized bodies 413;
//! invalid JSON 400.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::node::{Node, Transport};

use super::http_body::{Framing, InlineSession};
use super::uni;

pub(super) async fn handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    inline: Option<Extension<InlineSession>>,
    body: Bytes,
) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(req) = uni::decode_connect(&body) else {
        return (StatusCode::BAD_REQUEST, "Bad Request").into_response();
    };
    uni::serve(node, req, &headers, Transport::UniHttpStream, Framing::Lines, inline.is_some()).await
}

/// CORS preflight: 204 with the allowed methods.
pub(super) async fn preflight(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if !super::origin::allowed(&node.config.client.allowed_origins, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert("access-control-max-age", HeaderValue::from_static("300"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("POST, OPTIONS"));
    if let Some(origin) = headers.get("origin") {
        h.insert("access-control-allow-origin", origin.clone());
        h.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
    }
    if let Some(req_headers) = headers.get("access-control-request-headers") {
        h.insert("access-control-allow-headers", req_headers.clone());
    }
    resp
}
