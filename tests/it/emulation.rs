//! Bidirectional emulation over raw HTTP: `/connection/http_stream` and
//! `/connection/sse` streams, commands through `POST /emulation`, and its refusals
//! (malformed, oversized, unknown node or session, a session that closed).

use serde_json::{Value, json};

use crate::harness::*;

fn config() -> Value {
    json!({
        "http_stream": {"enabled": true},
        "sse": {"enabled": true},
        "emulation": {"max_request_body_size": 2000},
        "channel": {"without_namespace": {"allow_subscribe_for_client": true}},
    })
}

/// Opens an http_stream session; returns the stream, `session` and `node`.
async fn open(s: &Server, user: &str) -> (UniStream, String, String) {
    let url = format!("{}/connection/http_stream", s.http());
    let mut stream = UniStream::open_url(&url, &json!({"id": 1, "connect": {"token": token(user, json!({}))}})).await;
    let reply = stream.next_push().await.unwrap();
    assert_eq!(reply["id"], 1, "{reply}");
    let c = &reply["connect"];
    assert_eq!(c["pong"], true, "{reply}");
    let (session, node) = (c["session"].as_str().unwrap().to_string(), c["node"].as_str().unwrap().to_string());
    assert_eq!(session.len(), 36);
    assert!(!node.is_empty());
    (stream, session, node)
}

async fn post_emulation(base: &str, body: String) -> u16 {
    reqwest::Client::new().post(format!("{base}/emulation")).body(body).send().await.unwrap().status().as_u16()
}

fn emulation_body(session: &str, node: &str, commands: &[Value]) -> String {
    let data: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
    json!({"session": session, "node": node, "data": data.join("\n")}).to_string()
}

#[tokio::test]
async fn http_stream_commands_through_emulation() {
    let s = Server::start(config()).await;
    let (mut stream, session, node) = open(&s, "7").await;
    let sub = emulation_body(&session, &node, &[json!({"id": 2, "subscribe": {"channel": "news"}})]);
    assert_eq!(post_emulation(&s.http(), sub).await, 204);
    assert_eq!(stream.next_push().await.unwrap()["id"], 2);
    s.publish("news", json!({"n": 1})).await;
    let push = stream.next_push().await.unwrap();
    assert_eq!(push["push"]["pub"]["data"], json!({"n": 1}), "{push}");
    let two = emulation_body(
        &session,
        &node,
        &[
            json!({"id": 3, "publish": {"channel": "news", "data": {"n": 2}}}),
            json!({"id": 4, "history": {"channel": "news"}}),
        ],
    );
    assert_eq!(post_emulation(&s.http(), two).await, 204);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let v = stream.next_push().await.unwrap();
        if let Some(id) = v["id"].as_u64() {
            ids.push(id);
        }
    }
    assert!(ids.contains(&3) && ids.contains(&4), "{ids:?}");
}

#[tokio::test]
async fn pings_are_answered_through_emulation() {
    let mut c = config();
    c["client"] = json!({"ping_interval": "1s", "pong_timeout": "500ms"});
    let s = Server::start(c).await;
    let (mut stream, session, node) = open(&s, "8").await;
    for _ in 0..3 {
        assert_eq!(stream.next().await.unwrap(), json!({}));
        assert_eq!(post_emulation(&s.http(), emulation_body(&session, &node, &[json!({})])).await, 204);
    }
    // Without a pong the session closes with 3012, as over WebSocket.
    assert_eq!(stream.next().await.unwrap(), json!({}));
    let end = stream.next_push().await.unwrap();
    assert_eq!(end["push"]["disconnect"]["code"], 3012, "{end}");
    assert!(stream.next().await.is_none());
    let late = emulation_body(&session, &node, &[json!({"id": 9, "presence": {"channel": "x"}})]);
    assert_eq!(post_emulation(&s.http(), late).await, 404, "a closed session is unknown");
}

#[tokio::test]
async fn sse_stream_with_cf_connect() {
    let s = Server::start(config()).await;
    let connect = json!({"id": 1, "connect": {"token": token("5", json!({}))}}).to_string();
    let r = reqwest::Client::new()
        .get(format!("{}/connection/sse", s.http()))
        .query(&[("cf_connect", connect)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut body = Box::pin(r.bytes_stream());
    let mut text = String::new();
    use futures_util::StreamExt;
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next()).await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(text.starts_with("\r\ndata: "), "{text:?}");
    let event = text.trim_start().strip_prefix("data: ").unwrap().split("\n\n").next().unwrap();
    let reply: Value = serde_json::from_str(event).unwrap();
    assert!(reply["connect"]["session"].is_string() && reply["connect"]["node"].is_string(), "{reply}");
    // Missing or broken cf_connect is a 400.
    let c = reqwest::Client::new();
    let url = format!("{}/connection/sse", s.http());
    assert_eq!(c.get(&url).send().await.unwrap().status().as_u16(), 400);
    assert_eq!(c.get(&url).query(&[("cf_connect", "{nope")]).send().await.unwrap().status().as_u16(), 400);
}

#[tokio::test]
async fn emulation_refusals() {
    let mut cfg = config();
    cfg["client"] = json!({"allowed_origins": ["http://good.test"]});
    let s = Server::start(cfg).await;
    let (_stream, session, node) = open(&s, "1").await;
    let base = s.http();
    let c = reqwest::Client::new();
    let stream_url = format!("{base}/connection/http_stream");
    assert_eq!(c.get(&stream_url).send().await.unwrap().status().as_u16(), 405);
    assert_eq!(c.post(&stream_url).body("{bad").send().await.unwrap().status().as_u16(), 400);
    assert_eq!(c.post(&stream_url).body("").send().await.unwrap().status().as_u16(), 400);
    assert_eq!(c.post(&stream_url).body("x".repeat(70_000)).send().await.unwrap().status().as_u16(), 413);
    // A protobuf stream whose connect frame is cut short is malformed; SSE has no protobuf form.
    let proto = c.post(&stream_url).header("content-type", "application/octet-stream").body("\u{1}").send();
    assert_eq!(proto.await.unwrap().status().as_u16(), 400);
    let sse_proto = c.get(format!("{base}/connection/sse")).query(&[("cf_protocol", "protobuf")]).send();
    assert_eq!(sse_proto.await.unwrap().status().as_u16(), 415);
    assert_eq!(c.get(format!("{base}/emulation")).send().await.unwrap().status().as_u16(), 405);
    let ok_cmd = [json!({"id": 5, "presence_stats": {"channel": "a"}})];
    for bad in [
        "".to_string(),
        "{".to_string(),
        "[]".to_string(),
        json!({"session": session, "node": node}).to_string(),
        json!({"session": session, "node": node, "data": 5}).to_string(),
        json!({"session": session, "node": node, "data": "not a command"}).to_string(),
        json!({"session": session, "node": node, "data": ""}).to_string(),
        json!({"session": "", "node": node, "data": "{}"}).to_string(),
        json!({"session": "s".repeat(100), "node": node, "data": "{}"}).to_string(),
    ] {
        assert_eq!(post_emulation(&base, bad.clone()).await, 400, "{bad}");
    }
    assert_eq!(post_emulation(&base, "x".repeat(3000)).await, 413);
    assert_eq!(post_emulation(&base, emulation_body("no-such-session", &node, &ok_cmd)).await, 404);
    assert_eq!(post_emulation(&base, emulation_body(&session, "no-such-node", &ok_cmd)).await, 404);
    assert_eq!(post_emulation(&base, emulation_body(&session, &node, &ok_cmd)).await, 204);
    // An Origin not in client.allowed_origins is refused, as on the WebSocket endpoint.
    let r = c
        .post(format!("{base}/emulation"))
        .header("origin", "http://evil.test")
        .body(emulation_body(&session, &node, &ok_cmd));
    assert_eq!(r.send().await.unwrap().status().as_u16(), 403);
}

#[tokio::test]
async fn disabled_by_default() {
    let s = Server::start(json!({})).await;
    let c = reqwest::Client::new();
    for path in ["/connection/http_stream", "/emulation"] {
        assert_eq!(c.post(format!("{}{path}", s.http())).body("{}").send().await.unwrap().status().as_u16(), 404);
    }
}

/// Two nodes on one Redis: the stream on node A, `/emulation` posted to node B; the
/// reply arrives on A's stream. A session B forwards to A that A does not have is 404.
#[tokio::test]
async fn emulation_request_reaches_the_owning_node() {
    let redis = crate::redis::Redis::start();
    let mut cfg = config();
    merge(&mut cfg, &json!({"engine": {"type": "redis", "redis": {"address": [redis.url()], "survey_timeout": "2s"}}}));
    let a = Server::start(cfg.clone()).await;
    let b = Server::start(cfg).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for s in [&a, &b] {
        while s.api("info", json!({})).await.1["result"]["nodes"].as_array().map_or(0, Vec::len) < 2 {
            assert!(std::time::Instant::now() < deadline, "nodes never saw each other");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let (mut stream, session, node) = open(&a, "3").await;
    let sub = emulation_body(&session, &node, &[json!({"id": 2, "subscribe": {"channel": "news"}})]);
    assert_eq!(post_emulation(&b.http(), sub).await, 204);
    assert_eq!(stream.next_push().await.unwrap()["id"], 2);
    b.publish("news", json!({"via": "b"})).await;
    assert_eq!(stream.next_push().await.unwrap()["push"]["pub"]["data"], json!({"via": "b"}));
    let ghost = emulation_body("no-such-session", &node, &[json!({})]);
    assert_eq!(post_emulation(&b.http(), ghost).await, 404);
}
