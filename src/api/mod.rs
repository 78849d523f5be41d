//! The server HTTP API: `POST <prefix>/<method>` with API-key auth, JSON in, and
//! `{"result":…}` / `{"error":…}` out (or HTTP statuses in transport error mode).
//! One file per method; this file routes and turns results into responses.

mod auth;
mod batch;
mod broadcast;
mod channel_info;
pub mod connections;
pub mod error;
mod fleet;
mod info;
mod legacy;
mod publish;
mod rpc;
pub mod select;
mod targets;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::node::Node;

pub use error::ApiError;
pub use fleet::install as install_fleet;

/// The methods this server answers at `POST <prefix>/<method>`.
pub const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "refresh",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "batch",
    "rpc",
    "connections",
];

pub fn router(node: &Arc<Node>) -> Router<Arc<Node>> {
    fleet::install(node);
    let c = &node.config.http_api;
    let mut r = Router::new();
    if !c.disabled {
        let prefix = c.handler_prefix.trim_end_matches('/');
        r = r
            .route(&format!("{prefix}/{{method}}"), any(handle))
            .route(if prefix.is_empty() { "/" } else { prefix }, any(handle_legacy))
            .route_layer(middleware::from_fn_with_state(node.clone(), auth::require_key))
            .layer(DefaultBodyLimit::max(c.max_request_body_size));
    }
    r
}

/// `POST <prefix>/<method>`; the API key was checked by `auth::require_key`.
async fn handle(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = &node.config.http_api;
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if !METHODS.contains(&name.as_str()) {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    let transport_mode = c.error_mode == "transport"
        || headers.get("x-centrifugo-error-mode").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"transport"));
    match call(&node, &name, &body).await {
        Err(Undecodable) => (StatusCode::BAD_REQUEST, "Bad Request").into_response(),
        // batch answers at the top level, as `cent` expects.
        Ok(Ok(result)) if name == "batch" => json_response(StatusCode::OK, &result),
        Ok(Ok(result)) => json_response(StatusCode::OK, &Envelope { result: Some(&result), error: None }),
        Ok(Err(e)) if transport_mode => json_response(e.status(), &e),
        Ok(Err(e)) => json_response(StatusCode::OK, &Envelope::<()> { result: None, error: Some(&e) }),
    }
}

/// `POST <prefix>`: the legacy newline-delimited `{method, params}` endpoint (behind
/// `auth::require_key` too).
async fn handle_legacy(State(node): State<Arc<Node>>, method: Method, body: Bytes) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if node.is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match legacy::handle(&node, &body).await {
        Ok(out) => {
            let mut resp = (StatusCode::OK, out).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(()) => (StatusCode::BAD_REQUEST, "Bad Request").into_response(),
    }
}

/// Whether a request body may ask for a survey or a per-connection scan (a
/// `label_filter` or an `expression`, possibly inside a batch). Such requests run on
/// the blocking pool, never on the runtime's worker threads; a false positive (the
/// word inside some string) only costs a thread hop.
fn may_survey(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"label_filter").is_some() || memchr::memmem::find(body, b"expression").is_some()
}

/// Runs a node-local part that may survey (a label filter or CEL expression in
/// `body`) on the blocking pool, one survey per core at a time; anything else inline.
pub(crate) async fn local<T: Send + 'static>(
    node: &Arc<Node>,
    body: &[u8],
    f: impl FnOnce(&Node) -> T + Send + 'static,
) -> Result<T, ApiError> {
    if !may_survey(body) {
        return Ok(f(node));
    }
    let node = node.clone();
    let _turn = survey_turn().await;
    tokio::task::spawn_blocking(move || f(&node)).await.map_err(|_| ApiError::new(crate::protocol::ErrorCode::Internal))
}

/// Survey requests in flight at once: one per core. A survey already uses every core,
/// so more would only multiply threads and the memory of half-built results; the rest
/// wait their turn (asynchronously, holding no thread).
async fn survey_turn() -> tokio::sync::SemaphorePermit<'static> {
    static TURNS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let turns =
        TURNS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));
    turns.acquire().await.expect("the survey semaphore is never closed")
}

/// The body could not be decoded as the method's request.
pub struct Undecodable;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ApiError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a T>,
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Undecodable> {
    serde_json::from_slice(body).map_err(|_| Undecodable)
}

/// An encoded method result (serialized once, embedded as is).
pub type Encoded = Box<serde_json::value::RawValue>;

fn to_value<T: Serialize>(r: Result<T, ApiError>) -> Result<Encoded, ApiError> {
    r.map(|v| serde_json::value::to_raw_value(&v).expect("API results encode"))
}

/// Runs one method on a JSON body. With the Redis engine, `channels`, `info`,
/// `connections` and `rpc getUserConnections` answer for the whole fleet and the
/// targeted operations act on every node (see `fleet.rs`).
pub async fn call(node: &Arc<Node>, name: &str, body: &[u8]) -> Result<Result<Encoded, ApiError>, Undecodable> {
    Ok(match name {
        "publish" => to_value(publish::call(node, decode(body)?).await),
        "broadcast" => to_value(broadcast::call(node, decode(body)?).await),
        "subscribe" | "unsubscribe" | "disconnect" | "refresh" => fleet::targeted(node, name, body).await?,
        "presence" => to_value(channel_info::presence(node, decode(body)?).await),
        "presence_stats" => to_value(channel_info::presence_stats(node, decode(body)?).await),
        "history" => to_value(channel_info::history(node, decode(body)?).await),
        "history_remove" => to_value(channel_info::history_remove(node, decode(body)?).await),
        "channels" => fleet::channels(node, decode(body)?).await,
        "info" => to_value(fleet::info(node, decode::<info::InfoRequest>(body)?)),
        "batch" => to_value(Box::pin(batch::batch(node, decode(body)?)).await),
        "rpc" => fleet::rpc(node, decode(body)?).await,
        "connections" => fleet::connections(node, body, decode(body)?).await,
        _ => Err(ApiError::not_found()),
    })
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("API responses encode");
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `GET /health` → `{}`.
pub async fn health() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({}))
}
