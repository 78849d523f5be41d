//! Real-time transports: bidirectional WebSocket, its emulation over HTTP streaming
//! and SSE (`/connection/http_stream`, `/connection/sse` + `/emulation`), and the
//! unidirectional `uni_http_stream`, `uni_sse` and `uni_websocket`. Each adapts its
//! socket or response body to the one [`session_loop`], which drives a
//! [`crate::node::Conn`]; none interprets commands itself.

mod emulation;
mod http_body;
mod limit;
mod origin;
pub mod session_loop;
mod uni;
mod uni_http_stream;
mod uni_sse;
mod uni_websocket;
mod websocket;
pub mod ws_frame;
pub mod ws_socket;

use std::sync::Arc;

pub use http_body::InlineSession;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};

use crate::node::Node;

/// Routes of every enabled connection endpoint.
pub fn router(node: &Arc<Node>) -> Router<Arc<Node>> {
    let c = &node.config;
    let mut r = Router::new();
    if !c.websocket.disabled {
        r = r.route(&c.websocket.handler_prefix, any(websocket::handler));
    }
    if c.uni_http_stream.enabled {
        let route = post(uni_http_stream::handler)
            .options(uni_http_stream::preflight)
            .layer(DefaultBodyLimit::max(c.uni_http_stream.max_request_body_size));
        r = r.route(c.uni_http_stream_prefix(), route);
    }
    if c.uni_sse.enabled {
        let route =
            get(uni_sse::handler).post(uni_sse::handler).layer(DefaultBodyLimit::max(c.uni_sse.max_request_body_size));
        r = r.route(c.uni_sse_prefix(), route);
    }
    if c.http_stream.enabled {
        let route = post(emulation::http_stream)
            .options(uni_http_stream::preflight)
            .layer(DefaultBodyLimit::max(c.http_stream.max_request_body_size));
        r = r.route(c.http_stream_prefix(), route);
    }
    if c.sse.enabled {
        let route = get(emulation::sse).post(emulation::sse).layer(DefaultBodyLimit::max(c.sse.max_request_body_size));
        r = r.route(c.sse_prefix(), route);
    }
    if c.uni_websocket.enabled {
        r = r.route(&c.uni_websocket.handler_prefix, any(uni_websocket::handler));
    }
    // Only routes added above are guarded: `/emulation` serves existing sessions.
    let guarded = !c.websocket.disabled
        || c.uni_http_stream.enabled
        || c.uni_sse.enabled
        || c.http_stream.enabled
        || c.sse.enabled
        || c.uni_websocket.enabled;
    if let Some(l) = limit::Limits::of(node).filter(|_| guarded) {
        r = r.route_layer(axum::middleware::from_fn_with_state(l, limit::guard));
    }
    if c.emulation_enabled() {
        let route = post(emulation::emulation)
            .options(uni_http_stream::preflight)
            .layer(DefaultBodyLimit::max(c.emulation.max_request_body_size));
        r = r.route(&c.emulation.handler_prefix, route);
    }
    r
}

/// The size of what a one-argument function returns, from its type alone: the size
/// guards of the transports' task futures.
#[cfg(test)]
fn returned_size<A, R>(_: fn(A) -> R) -> usize {
    std::mem::size_of::<R>()
}
