//! In-process tests of the API router (`tower::ServiceExt::oneshot`, no sockets): every
//! method's success shape and error paths, the HTTP-level refusals (method, key, body
//! size, unknown method, undecodable body) and the transport error mode's statuses.
//! The real-binary tests in `tests/it/` keep the wire and SDK view; these keep the
//! table of answers cheap to run and complete.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{METHODS, SurveyTurns, router_with_turns};
use crate::config::{Config, ErrorMode};
use crate::node::Node;

const KEY: &str = "test-api-key";

fn app_with(edit: impl FnOnce(&mut Config)) -> Router {
    let mut c = Config::default();
    c.http_api.key = KEY.into();
    c.channel.without_namespace.history_size = 10;
    c.channel.without_namespace.history_ttl = crate::config::Duration::from_secs(60);
    c.channel.without_namespace.presence = true;
    edit(&mut c);
    let node = Node::new(c).unwrap();
    router_with_turns(&node, Arc::new(SurveyTurns::new(2))).with_state(node)
}

fn app() -> Router {
    app_with(|_| {})
}

struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

async fn send(app: &Router, method: Method, path: &str, key: Option<&str>, body: impl Into<Body>) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let resp = app.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
}

async fn post(app: &Router, method: &str, body: Value) -> Answer {
    send(app, Method::POST, &format!("/api/{method}"), Some(KEY), body.to_string()).await
}

/// The error code of an answer in the default mode (HTTP 200, `{"error":{…}}`).
fn error_code(a: &Answer) -> Option<u64> {
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body["error"]["code"].as_u64()
}

#[tokio::test]
async fn every_method_answers_a_minimal_valid_request_with_a_result() {
    let app = app();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let in_an_hour = now + 3600;
    let valid = [
        ("publish", json!({"channel": "news", "data": {"text": "hi"}})),
        ("broadcast", json!({"channels": ["a", "b"], "data": {"x": 1}})),
        ("subscribe", json!({"user": "nobody", "channel": "news"})),
        ("unsubscribe", json!({"user": "nobody", "channel": "news"})),
        ("disconnect", json!({"user": "nobody"})),
        ("refresh", json!({"user": "nobody", "expired": false})),
        ("presence", json!({"channel": "news"})),
        ("presence_stats", json!({"channel": "news"})),
        ("history", json!({"channel": "news", "limit": 10})),
        ("history_remove", json!({"channel": "news"})),
        ("channels", json!({})),
        ("info", json!({})),
        ("batch", json!({"commands": [{"publish": {"channel": "news", "data": {}}}]})),
        ("rpc", json!({"method": "getUserConnections", "params": {"user": "nobody"}})),
        ("connections", json!({"user": "nobody"})),
        ("revoke_token", json!({"uid": "some-token-id", "expire_at": in_an_hour})),
        ("invalidate_user_tokens", json!({"user": "nobody", "expire_at": in_an_hour})),
        ("block_user", json!({"user": "blocked-one", "expire_at": in_an_hour})),
        ("unblock_user", json!({"user": "blocked-one"})),
        ("update_user_status", json!({"users": ["nobody"], "state": "away"})),
        ("get_user_status", json!({"users": ["nobody"]})),
        ("delete_user_status", json!({"users": ["nobody"]})),
    ];
    assert_eq!(valid.len(), METHODS.len(), "a method without a case here");
    for (method, body) in valid {
        assert!(METHODS.contains(&method));
        let a = post(&app, method, body).await;
        assert_eq!(a.status, StatusCode::OK, "{method}: {}", a.text);
        if method == "batch" {
            assert!(a.body["replies"].is_array(), "{method}: {}", a.text);
        } else {
            assert!(a.body.get("error").is_none() && a.body["result"].is_object(), "{method}: {}", a.text);
        }
    }
    // history_remove emptied the stream; the batch's publication came after it.
    let a = post(&app, "history", json!({"channel": "news", "limit": 10})).await;
    let publications = a.body["result"]["publications"].as_array().cloned().unwrap_or_default();
    assert_eq!(publications.len(), 1, "{}", a.text);
    assert_eq!(publications[0]["offset"], 2, "{}", a.text);
}

#[tokio::test]
async fn every_method_refuses_a_body_that_is_not_json_of_its_request_with_400_and_107() {
    let app = app();
    for method in METHODS {
        for body in ["", "not json", "{\"channel\":", "\"text\"", "{} trailing", "\u{0}"] {
            let a = send(&app, Method::POST, &format!("/api/{method}"), Some(KEY), body).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method} {body:?}: {}", a.text);
            assert_eq!(a.body["error"]["code"], 107, "{method} {body:?}: {}", a.text);
            let message = a.body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("bad request: "), "{method} {body:?}: {}", a.text);
        }
    }
    // A field of the wrong type is undecodable too.
    for (method, body) in [
        ("publish", json!({"channel": 5, "data": {}})),
        ("history", json!({"channel": "a", "limit": "ten"})),
        ("disconnect", json!({"user": ["u"]})),
        ("connections", json!({"limit": -1})),
        ("batch", json!({"commands": {}})),
    ] {
        let a = post(&app, method, body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method} {body}: {}", a.text);
        // The message says where the decoder stopped.
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("line 1 column"), "{method} {body}: {}", a.text);
    }
}

#[tokio::test]
async fn missing_or_invalid_fields_are_107_naming_the_field() {
    let app = app();
    let cases = [
        ("publish", json!({"data": {}}), "channel"),
        ("publish", json!({"channel": "", "data": {}}), "channel"),
        ("broadcast", json!({"channels": [], "data": {}}), "channels"),
        ("presence", json!({"channel": ""}), "channel"),
        ("history", json!({"channel": ""}), "channel"),
        ("subscribe", json!({"user": "u"}), "channel"),
        ("disconnect", json!({"user": "u", "disconnect": {"code": 200, "reason": "x"}}), "code"),
        ("disconnect", json!({"user": "u", "disconnect": {"code": 4000, "reason": "r".repeat(200)}}), "reason"),
        ("connections", json!({"label_filter": {"op": "bogus"}}), "label_filter"),
        ("connections", json!({"expression": "user =="}), "expression"),
        ("connections", json!({"user": "u", "cursor": "not-ours"}), "cursor"),
        ("rpc", json!({"method": "getUserConnections", "params": {}}), "user"),
    ];
    for (method, body, field) in cases {
        let a = post(&app, method, body.clone()).await;
        assert_eq!(error_code(&a), Some(107), "{method} {body}: {}", a.text);
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{method} {body}: message {message:?} does not name {field}");
    }
}

#[tokio::test]
async fn unknown_rpc_method_and_unknown_namespace_use_the_tables_codes() {
    let app = app();
    let a = post(&app, "rpc", json!({"method": "noSuchMethod", "params": {}})).await;
    assert_eq!(error_code(&a), Some(104), "{}", a.text);
    let a = post(&app, "publish", json!({"channel": "nons:news", "data": {}})).await;
    assert_eq!(error_code(&a), Some(102), "{}", a.text);
    let a = post(&app, "history", json!({"channel": "nons:news"})).await;
    assert_eq!(error_code(&a), Some(102), "{}", a.text);
}

#[tokio::test]
async fn transport_error_mode_answers_with_the_tables_http_status() {
    for by_config in [true, false] {
        let app = app_with(|c| {
            if by_config {
                c.http_api.error_mode = ErrorMode::Transport;
            }
        });
        let call = |method: &'static str, body: Value| {
            let app = app.clone();
            async move {
                let mut req = Request::post(format!("/api/{method}")).header("X-API-Key", KEY);
                if !by_config {
                    req = req.header("X-Centrifugo-Error-Mode", "transport");
                }
                let resp = app.oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap())
            }
        };
        let (status, body) = call("publish", json!({"channel": "nons:x", "data": {}})).await;
        assert_eq!((status, body["code"].as_u64()), (StatusCode::NOT_FOUND, Some(102)), "{body}");
        let (status, body) = call("publish", json!({"channel": "", "data": {}})).await;
        assert_eq!((status, body["code"].as_u64()), (StatusCode::BAD_REQUEST, Some(107)), "{body}");
        let (status, body) = call("rpc", json!({"method": "nope"})).await;
        assert_eq!((status, body["code"].as_u64()), (StatusCode::NOT_FOUND, Some(104)), "{body}");
        let (status, body) = call("publish", json!({"channel": "ok", "data": {}})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["result"].is_object(), "{body}");
    }
}

#[tokio::test]
async fn http_level_refusals() {
    let app = app_with(|c| c.http_api.max_request_body_size = 1024);
    // No key or a wrong key is 401 before any method runs.
    let a = send(&app, Method::POST, "/api/info", None, "{}").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(&app, Method::POST, "/api/info", Some("wrong"), "{}").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(&app, Method::POST, "/api/info?api_key=wrong", None, "{}").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // `Authorization: apikey <KEY>` is Centrifugo's other form.
    let req =
        Request::post("/api/info").header("Authorization", format!("apikey {KEY}")).body(Body::from("{}")).unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
    // Only POST; unknown methods are 404 as Centrifugo's mux answers.
    let a = send(&app, Method::GET, "/api/info", Some(KEY), "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    let a = send(&app, Method::POST, "/api/no_such_method", Some(KEY), "{}").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // A body over max_request_body_size is 413, whatever the method.
    let big = json!({"channel": "x", "data": "a".repeat(2048)}).to_string();
    let a = send(&app, Method::POST, "/api/publish", Some(KEY), big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
}

#[tokio::test]
async fn legacy_endpoint_runs_each_line_and_refuses_garbage() {
    let app = app();
    // Method 13 is a number Centrifugo's enum has but Rotor does not serve: 104.
    let body = "{\"method\":\"publish\",\"params\":{\"channel\":\"a\",\"data\":{}}}\n{\"method\":13,\"params\":{}}\n{\"method\":\"INFO\",\"params\":{}}";
    let a = send(&app, Method::POST, "/api", Some(KEY), body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let lines: Vec<Value> = a.text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{}", a.text);
    assert!(lines[0]["result"].is_object(), "{}", a.text);
    assert_eq!(lines[1]["error"]["code"], 104, "{}", a.text);
    assert!(lines[2]["result"]["nodes"].is_array(), "{}", a.text);
    // An unknown method name fails the whole request, as in Centrifugo.
    for bad in ["definitely not json", "", "{\"method\":\"nope\",\"params\":{}}", "{\"method\":[1]}"] {
        let a = send(&app, Method::POST, "/api", Some(KEY), bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", a.text);
        assert_eq!(a.body["error"]["code"], 107, "{bad:?}: {}", a.text);
    }
    let a = send(&app, Method::POST, "/api", None, "{\"method\":\"info\"}").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
