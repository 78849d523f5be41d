//! Server API, first part: publish, broadcast, auth and error modes, /health.

use serde_json::{Value, json};

use crate::harness::*;

async fn raw_post(s: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut req = reqwest::Client::new().post(format!("{}{path}", s.http())).body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn publish_and_broadcast_shapes() {
    let s = Server::start(json!({"channel": {"namespaces": [{"name": "nohist"}]}})).await;
    let r = s.publish("news", json!({"a": 1})).await;
    assert_eq!(r["offset"], 1);
    assert_eq!(r["epoch"].as_str().unwrap().len(), 8);
    let (_, b) = s.api("publish", json!({"channel": "nohist:x", "data": {}})).await;
    assert_eq!(b, json!({"result": {}}), "no history ⇒ empty result");
    let (_, b) = s.api("broadcast", json!({"channels": ["news", "nope:x", "nohist:y"], "data": {"b": 2}})).await;
    let responses = b["result"]["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["result"]["offset"], 2);
    assert_eq!(responses[1]["error"]["code"], 102);
    assert_eq!(responses[2]["result"], json!({}));
    let (_, e) = s.api("broadcast", json!({"channels": [], "data": {}})).await;
    assert_eq!(e["error"]["code"], 107);
}

#[tokio::test]
async fn publish_errors() {
    let s = Server::start(json!({})).await;
    let (_, e) = s.api("publish", json!({"channel": "", "data": {}})).await;
    assert_eq!(e["error"]["code"], 107);
    let (_, e) = s.api("publish", json!({"channel": "nope:x", "data": {}})).await;
    assert_eq!(e["error"], json!({"code": 102, "message": "unknown channel"}));
    let (_, e) = s.api("publish", json!({"channel": "news"})).await;
    assert_eq!(e["error"]["code"], 107);
    let (_, ok) = s.api("publish", json!({"channel": "news", "data": {}, "unknown_field": [1, 2]})).await;
    assert!(ok.get("result").is_some(), "unknown fields are ignored: {ok}");
    let (status, e) = s.api("publish", json!({"channel": 5, "data": {}})).await;
    assert_eq!(status, 400, "wrong types are undecodable: {e}");
    assert_eq!(e["error"]["code"], 107, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("invalid type"), "{e}");
}

#[tokio::test]
async fn auth_variants() {
    let s = Server::start(json!({})).await;
    let body = r#"{"channel":"news","data":{}}"#;
    let (st, text) = raw_post(&s, "/api/publish", &[], body).await;
    assert_eq!((st, text.as_str()), (401, ""));
    let (st, _) = raw_post(&s, "/api/publish", &[("X-API-Key", "wrong")], body).await;
    assert_eq!(st, 401);
    let (st, _) = raw_post(&s, "/api/publish", &[("Authorization", &format!("apikey {API_KEY}"))], body).await;
    assert_eq!(st, 200);
    let (st, _) = raw_post(&s, &format!("/api/publish?api_key={API_KEY}"), &[], body).await;
    assert_eq!(st, 200);
    let key = [("X-API-Key", API_KEY)];
    assert_eq!(raw_post(&s, "/api/publish", &key, "{not json").await.0, 400);
    assert_eq!(raw_post(&s, "/api/publish", &key, "").await.0, 400);
    assert_eq!(raw_post(&s, "/api/no_such_method", &key, "{}").await.0, 404);
    let get = reqwest::Client::new()
        .get(format!("{}/api/publish", s.http()))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let health = reqwest::get(format!("{}/health", s.http())).await.unwrap();
    assert_eq!(health.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn transport_error_mode() {
    let s = Server::start(json!({})).await;
    let key = ("X-API-Key", API_KEY);
    let mode = ("X-Centrifugo-Error-Mode", "transport");
    let (st, text) = raw_post(&s, "/api/publish", &[key, mode], r#"{"channel":"nope:x","data":{}}"#).await;
    assert_eq!((st, text.as_str()), (404, r#"{"code":102,"message":"unknown channel"}"#));
    let (st, _) = raw_post(&s, "/api/publish", &[key, mode], r#"{"channel":"","data":{}}"#).await;
    assert_eq!(st, 400);
    let s2 = Server::start(json!({"http_api": {"error_mode": "transport"}})).await;
    let (st, _) = raw_post(&s2, "/api/publish", &[key], r#"{"channel":"nope:x","data":{}}"#).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn oversized_and_hostile_bodies() {
    let s = Server::start(json!({"http_api": {"max_request_body_size": 4096}})).await;
    let key = [("X-API-Key", API_KEY)];
    let huge = format!(r#"{{"channel":"news","data":"{}"}}"#, "x".repeat(10_000));
    assert_eq!(raw_post(&s, "/api/publish", &key, &huge).await.0, 413);
    // Valid JSON nested past the limit: 107 naming where, not a bare 400.
    let deep = format!("{}{}", "[".repeat(1500), "]".repeat(1500));
    let (status, text) = raw_post(&s, "/api/publish", &key, &deep).await;
    assert_eq!(status, 200, "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["error"]["code"], 107, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().starts_with("[0][0]"), "{r}");
    let garbage: String = (0..2000u32).map(|i| char::from_u32(i % 250 + 1).unwrap()).collect();
    assert_eq!(raw_post(&s, "/api/publish", &key, &garbage).await.0, 400);
    s.publish("news", json!({"still": "serving"})).await;
}
