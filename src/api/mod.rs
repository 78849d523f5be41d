//! The server HTTP API: `POST <prefix>/<method>` with API-key auth, JSON in, and
//! `{"result":…}` / `{"error":…}` out (or HTTP statuses in transport error mode).
//! One file per method; this file routes and turns results into responses, and
//! schedules requests that may survey (see [`SurveyTurns`]).

mod auth;
mod batch;
mod body;
mod broadcast;
mod channel_info;
pub mod connections;
pub mod error;
mod fleet;
mod info;
mod legacy;
mod publish;
#[cfg(test)]
mod router_tests;
mod rpc;
pub mod select;
mod sessions;
mod targets;
mod user_status;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::ErrorMode;
use crate::node::Node;
use crate::protocol::nesting;

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
    "revoke_token",
    "invalidate_user_tokens",
    "block_user",
    "unblock_user",
    "update_user_status",
    "get_user_status",
    "delete_user_status",
];

pub fn router(node: &Arc<Node>) -> Router<Arc<Node>> {
    router_with_turns(node, Arc::new(SurveyTurns::for_cores()))
}

/// The API router with its own survey turns (tests hold turns to stage contention).
fn router_with_turns(node: &Arc<Node>, turns: Arc<SurveyTurns>) -> Router<Arc<Node>> {
    fleet::install(node);
    let c = &node.config.http_api;
    let mut r = Router::new();
    if !c.disabled {
        let prefix = c.handler_prefix.trim_end_matches('/');
        r = r
            .route(&format!("{prefix}/{{method}}"), any(handle))
            .route(if prefix.is_empty() { "/" } else { prefix }, any(handle_legacy))
            .route_layer(middleware::from_fn_with_state(node.clone(), auth::require_key))
            .layer(DefaultBodyLimit::max(c.max_request_body_size))
            .layer(Extension(turns));
    }
    r
}

/// `POST <prefix>/<method>`; the API key was checked by `auth::require_key`.
async fn handle(
    State(node): State<Arc<Node>>,
    Extension(turns): Extension<Arc<SurveyTurns>>,
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
    let transport_mode = c.error_mode == ErrorMode::Transport
        || headers.get("x-centrifugo-error-mode").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"transport"));
    match TURNS.scope(turns, call(&node, &name, &body)).await {
        Err(e) => e.into_response(),
        // batch answers at the top level, as `cent` expects.
        Ok(Ok(result)) if name == "batch" => json_response(StatusCode::OK, &result),
        Ok(Ok(result)) => envelope(result),
        Ok(Err(e)) if transport_mode => e.into_response(),
        Ok(Err(e)) => json_response(StatusCode::OK, &Envelope::<()> { result: None, error: Some(&e) }),
    }
}

/// `POST <prefix>`: the legacy newline-delimited `{method, params}` endpoint (behind
/// `auth::require_key` too).
async fn handle_legacy(
    State(node): State<Arc<Node>>,
    Extension(turns): Extension<Arc<SurveyTurns>>,
    method: Method,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if node.is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match TURNS.scope(turns, legacy::handle(&node, &body)).await {
        Ok(out) => {
            let mut resp = (StatusCode::OK, out).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(()) => Undecodable::legacy().into_response(),
    }
}

/// Runs a legacy `{method, params}` body (newline-separated commands) as `POST /api`
/// does, without the API key check: the admin API's caller authenticated otherwise.
/// `Err(())` = the request as a whole is bad (HTTP 400).
pub async fn legacy(node: &Arc<Node>, body: &[u8]) -> Result<Vec<u8>, ()> {
    legacy::handle(node, body).await
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
    let turns = TURNS.try_with(Arc::clone).unwrap_or_else(|_| default_turns());
    let waiting = std::time::Instant::now();
    let _turn = turns.take(pool_for(node, "connections", body)).await;
    node.metrics.connections.survey_queue_wait.observe(waiting.elapsed().as_secs_f64());
    let node = node.clone();
    tokio::task::spawn_blocking(move || f(&node)).await.map_err(|_| ApiError::new(crate::protocol::ErrorCode::Internal))
}

tokio::task_local! {
    /// The survey turns of the router serving the current request.
    static TURNS: Arc<SurveyTurns>;
}

/// Turns for surveys outside a request of the router: a fleet peer's survey answers,
/// in-process callers of [`call`].
fn default_turns() -> Arc<SurveyTurns> {
    static DEFAULT: OnceLock<Arc<SurveyTurns>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(SurveyTurns::for_cores())).clone()
}

/// Which queue a request that may survey waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    /// Bytecode surveys (`label_filter`, CEL translated to bytecode) and user lookups:
    /// cheap per connection.
    Bytecode,
    /// Interpreted CEL: up to `connections.cel_max_cost` per connection, for up to
    /// `connections.cel_time_budget`.
    Cel,
}

/// Turns for requests that may survey, in two pools so that an expensive interpreted
/// CEL survey never makes a cheap `label_filter` listing wait: bytecode surveys get one
/// turn per core (a survey already uses every core, so more would only multiply
/// threads and half-built results), interpreted CEL half as many (at least one), drawn
/// from a separate semaphore. The two pools share the cores, so a CEL survey slows a
/// concurrent listing down but never queues it. Waiters wait asynchronously, holding
/// no thread, first come first served within their pool.
pub struct SurveyTurns {
    bytecode: Semaphore,
    cel: Semaphore,
}

impl SurveyTurns {
    fn new(cores: usize) -> SurveyTurns {
        SurveyTurns { bytecode: Semaphore::new(cores.max(1)), cel: Semaphore::new(cores.div_ceil(2).max(1)) }
    }

    fn for_cores() -> SurveyTurns {
        SurveyTurns::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    #[allow(clippy::expect_used, reason = "the semaphores live as long as self and are never closed")]
    async fn take(&self, pool: Pool) -> SemaphorePermit<'_> {
        let sem = match pool {
            Pool::Bytecode => &self.bytecode,
            Pool::Cel => &self.cel,
        };
        sem.acquire().await.expect("survey semaphores are never closed")
    }
}

/// The pool of a request [`may_survey`] flagged. A `connections` call whose expression
/// plans to the interpreter goes to [`Pool::Cel`] (planning is bounded by the CEL caps:
/// microseconds, here on the runtime thread; the call plans again on the blocking pool).
/// A batch or legacy body mentioning `expression` goes there too, conservatively;
/// everything else is [`Pool::Bytecode`].
fn pool_for(node: &Node, method: &str, body: &[u8]) -> Pool {
    if memchr::memmem::find(body, b"expression").is_none() {
        return Pool::Bytecode;
    }
    if method != "connections" {
        return if method == "batch" || method.is_empty() { Pool::Cel } else { Pool::Bytecode };
    }
    #[derive(Deserialize)]
    struct ExpressionOnly {
        #[serde(default)]
        expression: String,
    }
    let Ok(ExpressionOnly { expression }) = serde_json::from_slice(body) else { return Pool::Bytecode };
    if expression.trim().is_empty() {
        return Pool::Bytecode;
    }
    match crate::filter::cel::plan(&expression, &select::cel_limits(node)) {
        Ok(crate::filter::cel::CelPlan::Interpreted(_)) => Pool::Cel,
        _ => Pool::Bytecode,
    }
}

/// The body could not be decoded as the method's request: not JSON, or a field of the
/// wrong type. HTTP 400 as in Centrifugo (whose clients look only at the status), with
/// a body in Rotor's error format saying where the decoder stopped.
#[derive(Debug)]
pub struct Undecodable(pub String);

impl Undecodable {
    fn from_serde(e: serde_json::Error) -> Undecodable {
        Undecodable(format!("bad request: {e}"))
    }

    /// A legacy `/api` (or `/admin/api`) body that is not a stream of known
    /// `{method, params}` commands.
    pub fn legacy() -> Undecodable {
        Undecodable("bad request: not a stream of {method, params} commands with known methods".into())
    }
}

impl IntoResponse for Undecodable {
    fn into_response(self) -> Response {
        let e = ApiError::bad_request(self.0);
        json_response(StatusCode::BAD_REQUEST, &Envelope::<()> { result: None, error: Some(&e) })
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ApiError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a T>,
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Undecodable> {
    serde_json::from_slice(body).map_err(Undecodable::from_serde)
}

/// An encoded method result: JSON text, made once and embedded as is — in an HTTP
/// envelope without being copied (see [`envelope`]), in a batch or legacy reply
/// through [`crate::json::Verbatim`].
#[derive(Debug)]
pub struct Encoded(String);

impl Encoded {
    /// `json`, which the caller wrote as exactly one JSON value (it is not parsed
    /// again: the encoders that call this are tested against serde_json's output).
    fn from_json(json: String) -> Encoded {
        Encoded(json)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

impl Serialize for Encoded {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        crate::json::Verbatim(&self.0).serialize(ser)
    }
}

fn to_value<T: Serialize>(r: Result<T, ApiError>) -> Result<Encoded, ApiError> {
    r.map(|v| Encoded(crate::json::to_string(&v)))
}

/// Runs one method on a JSON body. With the Redis engine, `channels`, `info`,
/// `connections` and `rpc getUserConnections` answer for the whole fleet and the
/// targeted operations act on every node (see `fleet.rs`).
///
/// A body nested deeper than [`nesting::MAX_DEPTH`] is refused with 107 naming the
/// path where it crossed the limit, for every method alike (a publication's raw `data`
/// included), before the parser could refuse it with a bare 400.
pub async fn call(node: &Arc<Node>, name: &str, body: &[u8]) -> Result<Result<Encoded, ApiError>, Undecodable> {
    let started = std::time::Instant::now();
    let out = Box::pin(run(node, name, body)).await;
    node.metrics.api(name).observe(started.elapsed().as_secs_f64());
    out
}

/// `connections` on a JSON body as [`call`] runs it — the same checks, survey
/// scheduling, fleet merge and metrics — but answering the [`connections::Listing`]
/// unencoded, for a caller that encodes it otherwise (the gRPC API).
pub async fn list_connections(
    node: &Arc<Node>,
    body: &[u8],
) -> Result<Result<connections::Listing, ApiError>, Undecodable> {
    let started = std::time::Instant::now();
    let out = match nesting::check(body, nesting::MAX_DEPTH) {
        Err(too_deep) => Ok(Err(ApiError::bad_request(too_deep.to_string()))),
        Ok(()) => match decode(body) {
            Ok(req) => Ok(Box::pin(fleet::connections(node, body, req)).await),
            Err(e) => Err(e),
        },
    };
    node.metrics.api("connections").observe(started.elapsed().as_secs_f64());
    out
}

async fn run(node: &Arc<Node>, name: &str, body: &[u8]) -> Result<Result<Encoded, ApiError>, Undecodable> {
    if let Err(too_deep) = nesting::check(body, nesting::MAX_DEPTH) {
        return Ok(Err(ApiError::bad_request(too_deep.to_string())));
    }
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
        "connections" => fleet::connections(node, body, decode(body)?).await.map(|l| l.encode()),
        "revoke_token" => to_value(sessions::revoke_token(node, decode(body)?).await),
        "invalidate_user_tokens" => to_value(sessions::invalidate_user_tokens(node, decode(body)?).await),
        "block_user" => to_value(sessions::block_user(node, decode(body)?).await),
        "unblock_user" => to_value(sessions::unblock_user(node, decode(body)?).await),
        "update_user_status" => to_value(user_status::update(node, decode(body)?).await),
        "get_user_status" => to_value(user_status::get(node, decode(body)?).await),
        "delete_user_status" => to_value(user_status::delete(node, decode(body)?).await),
        _ => Err(ApiError::not_found()),
    })
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut bytes = Vec::with_capacity(128);
    crate::json::write(&mut bytes, body);
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `{"result":<result>}` with the result's text as the body's middle part, not
/// copied: a `connections` page of 1,000 rows is ~300 KB, which an envelope written
/// around it copied whole (docs/performance.md, stop 28).
fn envelope(result: Encoded) -> Response {
    let body = body::Parts::new([Bytes::from_static(b"{\"result\":"), Bytes::from(result.0), Bytes::from_static(b"}")]);
    let mut resp = (StatusCode::OK, axum::body::Body::new(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `GET /health` → `{}`.
pub async fn health() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({}))
}

#[cfg(test)]
mod tests {

    use axum::body::Body;
    use axum::http::Request;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::ConnectToken;
    use crate::config::Config;
    use crate::node::{Queue, Transport};
    use crate::protocol::ConnectRequest;

    /// A node with `n` registered sessions, half of them `region=eu`, and its router.
    fn node_with_sessions(config: Config, n: usize, turns: Arc<SurveyTurns>) -> (Arc<Node>, Router) {
        let node = Node::new(config).unwrap();
        for i in 0..n {
            let region = if i % 2 == 0 { "eu" } else { "us" };
            let token = ConnectToken {
                user: format!("u{i}"),
                labels: vec![("region".into(), region.into())],
                ..Default::default()
            };
            let queue = Arc::new(Queue::new(1 << 16));
            let s = node.new_session(&ConnectRequest::default(), Transport::WebSocket, Some(&token), queue);
            node.hub.add(Arc::new(s)).unwrap();
        }
        let app = router_with_turns(&node, turns).with_state(node.clone());
        (node, app)
    }

    fn insecure() -> Config {
        let mut c = Config::default();
        c.http_api.insecure = true;
        c
    }

    async fn connections(app: &Router, body: Value) -> Value {
        let req = Request::post("/api/connections").body(Body::from(body.to_string())).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    const INTERPRETED: &str = r#"labels.region == "eu" && size(user) > 1"#;

    /// Regression: cheap `label_filter` listings waited behind expensive interpreted-CEL
    /// surveys in one queue. With every interpreted-CEL turn taken (as by long CEL
    /// surveys in flight), label filters and translated CEL still complete, while an
    /// interpreted request waits for a turn and completes once one is free.
    #[tokio::test]
    async fn bytecode_surveys_never_wait_behind_interpreted_cel() {
        let turns = Arc::new(SurveyTurns::new(2));
        let (_node, app) = node_with_sessions(insecure(), 10, turns.clone());
        assert_eq!(
            pool_for(&_node, "connections", json!({"expression": INTERPRETED}).to_string().as_bytes()),
            Pool::Cel
        );
        let held = turns.cel.acquire_many(1).await.unwrap();
        assert_eq!(turns.cel.available_permits(), 0);

        let listed = connections(&app, json!({"label_filter": {"key": "region", "cmp": "eq", "val": "eu"}})).await;
        assert_eq!(listed["result"]["connections"].as_object().unwrap().len(), 5, "{listed}");
        let translated = connections(&app, json!({"expression": "labels.region == \"us\""})).await;
        assert_eq!(translated["result"]["connections"].as_object().unwrap().len(), 5, "{translated}");

        let waiting = tokio::spawn({
            let app = app.clone();
            async move { connections(&app, json!({"expression": INTERPRETED})).await }
        });
        // It cannot finish without a CEL turn; give it every chance to run meanwhile.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "an interpreted CEL survey ran without a CEL turn");
        drop(held);
        let done = waiting.await.unwrap();
        assert_eq!(done["result"]["connections"].as_object().unwrap().len(), 5, "{done}");
    }

    /// An interpreted expression that outruns `connections.cel_time_budget` stops between
    /// connections with 106 naming the budget; the same request within budget lists.
    #[tokio::test]
    async fn interpreted_cel_stops_at_its_time_budget() {
        let mut config = insecure();
        config.connections.cel_time_budget = crate::config::Duration(std::time::Duration::from_nanos(1));
        let (_node, app) = node_with_sessions(config, 50, Arc::new(SurveyTurns::new(2)));
        let r = connections(&app, json!({"expression": INTERPRETED})).await;
        assert_eq!(r["error"]["code"], 106, "{r}");
        let msg = r["error"]["message"].as_str().unwrap();
        assert!(msg.contains("time budget") && msg.contains("connections.cel_time_budget"), "{msg}");
        // Label filters and translated CEL never run the interpreter: no budget applies.
        let r = connections(&app, json!({"expression": "labels.region == \"eu\""})).await;
        assert_eq!(r["result"]["connections"].as_object().unwrap().len(), 25, "{r}");

        let (_node, app) = node_with_sessions(insecure(), 50, Arc::new(SurveyTurns::new(2)));
        let r = connections(&app, json!({"expression": INTERPRETED})).await;
        assert_eq!(r["result"]["connections"].as_object().unwrap().len(), 25, "{r}");
    }

    /// The pathological nested expression of the hardening issue is refused at compile
    /// time with 107, before any connection is evaluated.
    #[tokio::test]
    async fn nested_macros_over_long_lists_are_refused() {
        let (_node, app) = node_with_sessions(insecure(), 10, Arc::new(SurveyTurns::new(2)));
        let list = format!("[{}]", (0..200).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let src = format!("{list}.exists(x, {list}.exists(y, x == y + 100000))");
        let r = connections(&app, json!({"expression": src})).await;
        assert_eq!(r["error"]["code"], 107, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().starts_with("expression: expression is too expensive"), "{r}");
    }

    async fn post(app: &Router, method: &str, body: String) -> (StatusCode, Value) {
        let req = Request::post(format!("/api/{method}")).body(Body::from(body)).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// Regression: valid JSON nested past serde_json's recursion limit got a bare 400,
    /// and `publish` let raw `data` nest without any limit while `batch` refused it.
    /// Every method now answers 107 naming where the body crossed
    /// `nesting::MAX_DEPTH`; `data` as deep as the limit allows still publishes.
    #[tokio::test]
    async fn json_nested_past_the_limit_is_107_with_its_path() {
        let (_node, app) = node_with_sessions(insecure(), 0, Arc::new(SurveyTurns::new(2)));
        let deep = nested(200);
        let cases = [
            ("publish", format!(r#"{{"channel":"c","data":{{"a":{deep}}}}}"#), "data.a[0]"),
            ("broadcast", format!(r#"{{"channels":["c"],"data":{deep}}}"#), "data[0]"),
            (
                "batch",
                format!(r#"{{"commands":[{{"info":{{}}}},{{"publish":{{"channel":"c","data":{deep}}}}}]}}"#),
                "commands[1].publish.data[0]",
            ),
            ("info", deep.clone(), "[0]"),
        ];
        for (method, body, path) in cases {
            let (status, r) = post(&app, method, body).await;
            assert_eq!(status, StatusCode::OK, "{method}: {r}");
            assert_eq!(r["error"]["code"], 107, "{method}: {r}");
            let message = r["error"]["message"].as_str().unwrap();
            assert!(message.starts_with(path), "{method}: {message}");
            assert!(message.ends_with(&format!("JSON nested deeper than {} levels", nesting::MAX_DEPTH)), "{message}");
        }
        // The deepest `data` a publish body may carry (the body itself is one level).
        let (_, r) =
            post(&app, "publish", format!(r#"{{"channel":"c","data":{}}}"#, nested(nesting::MAX_DEPTH - 1))).await;
        assert!(r["result"].is_object(), "{r}");
        let (_, r) = post(&app, "publish", format!(r#"{{"channel":"c","data":{}}}"#, nested(nesting::MAX_DEPTH))).await;
        assert_eq!(r["error"]["code"], 107, "{r}");
        // Shallow but malformed JSON stays a plain 400, as in Centrifugo.
        let (status, _) = post(&app, "publish", "{\"channel\":".into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    /// Regression: a publication larger than `client.queue_max_size` was accepted and
    /// then disconnected every subscriber with 3008. It is refused at publish time with
    /// 107 naming the limit (publish and each channel of a broadcast); one that fits
    /// is published.
    #[tokio::test]
    async fn publication_past_the_queue_limit_is_refused() {
        let mut config = insecure();
        config.client.queue_max_size = 1024;
        let (_node, app) = node_with_sessions(config, 0, Arc::new(SurveyTurns::new(2)));
        let big = json!({"blob": "x".repeat(1000)});
        let (_, r) = post(&app, "publish", json!({"channel": "c", "data": big}).to_string()).await;
        assert_eq!(r["error"]["code"], 107, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("client.queue_max_size (1024 bytes)"), "{r}");
        let (_, r) = post(&app, "broadcast", json!({"channels": ["a", "b"], "data": big}).to_string()).await;
        assert_eq!(r["result"]["responses"][1]["error"]["code"], 107, "{r}");
        let (_, r) =
            post(&app, "publish", json!({"channel": "c", "data": {"blob": "x".repeat(900)}}).to_string()).await;
        assert!(r["result"].is_object(), "{r}");
    }

    /// `total` counts the whole selection on every page (those before the cursor too),
    /// by each route — the per-user index, the survey, interpreted CEL — and each
    /// ConnectionInfo names this node.
    #[tokio::test]
    async fn total_counts_every_page_of_a_listing() {
        let (node, app) = node_with_sessions(insecure(), 6, Arc::new(SurveyTurns::new(2)));
        let eu = json!({"key": "region", "cmp": "eq", "val": "eu"});
        for (what, query, want) in [
            ("survey", json!({"label_filter": {"key": "region", "cmp": "ex"}}), 6),
            ("survey, narrower", json!({"label_filter": eu}), 3),
            ("user index", json!({"user": "u2"}), 1),
            ("interpreted CEL", json!({"expression": INTERPRETED}), 3),
            ("CEL after a survey", json!({"label_filter": eu, "expression": "size(user) > 1"}), 3),
            ("nothing matches", json!({"user": "nobody"}), 0),
        ] {
            let mut seen = 0;
            let mut cursor = String::new();
            for page in 0.. {
                assert!(page <= want, "{what}: paging does not end");
                let mut body = query.clone();
                body["limit"] = json!(1);
                body["cursor"] = json!(cursor);
                let r = connections(&app, body).await;
                assert_eq!(r["result"]["total"], want, "{what}, page {page}: {r}");
                let conns = r["result"]["connections"].as_object().unwrap();
                for info in conns.values() {
                    assert_eq!(info["node"], node.name.as_str(), "{what}: {info}");
                }
                seen += conns.len();
                match r["result"]["next_cursor"].as_str() {
                    Some(c) => cursor = c.to_owned(),
                    None => break,
                }
            }
            assert_eq!(seen, want, "{what}: the pages add up to the total");
        }
        // Without a limit: one page, the same total.
        let r = connections(&app, json!({"label_filter": eu})).await;
        assert_eq!(r["result"]["total"], 3, "{r}");
        assert_eq!(r["result"]["connections"].as_object().unwrap().len(), 3);
    }

    /// A cursor is exactly what `connections` hands out (32 lowercase hex digits);
    /// anything else is 107, never read as some position.
    #[tokio::test]
    async fn cursors_not_issued_by_the_server_are_107() {
        let (_node, app) = node_with_sessions(insecure(), 4, Arc::new(SurveyTurns::new(2)));
        let all = json!({"key": "region", "cmp": "ex"});
        let page = connections(&app, json!({"label_filter": all, "limit": 2})).await;
        let cursor = page["result"]["next_cursor"].as_str().unwrap().to_owned();
        let next = connections(&app, json!({"label_filter": all, "limit": 2, "cursor": cursor})).await;
        assert_eq!(next["result"]["connections"].as_object().unwrap().len(), 2, "{next}");
        let forged = [
            "garbage".to_string(),
            "0".repeat(31),
            "0".repeat(33),
            format!("+{}", "0".repeat(31)),
            "A".repeat(32),
            format!("{}g", &cursor[..31]),
            format!("{}\u{e9}", &cursor[..30]),
        ];
        for bad in forged {
            let r = connections(&app, json!({"label_filter": all, "cursor": bad})).await;
            assert_eq!(r["error"]["code"], 107, "cursor {bad:?}: {r}");
            assert_eq!(r["error"]["message"], "cursor: not a cursor returned by connections");
        }
    }
}
