//! Unidirectional transports: uni_http_stream, uni_sse, uni_websocket.

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;

#[tokio::test]
async fn uni_http_stream_connect_publications_and_pings() {
    let s = Server::start(json!({"client": {"ping_interval": "1s", "pong_timeout": "500ms"}})).await;
    let t = token("42", json!({"channels": ["news"]}));
    let mut uni = UniStream::open(&s, json!({"token": t, "name": "terminal", "subs": {"extra": {}}})).await;
    let connect = uni.next().await.unwrap();
    let c = &connect["connect"];
    assert_eq!(c["client"].as_str().unwrap().len(), 36, "{connect}");
    assert!(c.get("pong").is_none(), "uni clients cannot pong");
    assert_eq!(c["ping"], 1);
    assert!(!c["session"].as_str().unwrap().is_empty());
    assert!(c["subs"].get("news").is_some() && c["subs"].get("extra").is_some(), "{connect}");
    s.publish("news", json!({"input": 1})).await;
    s.publish("extra", json!({"input": 2})).await;
    assert_eq!(uni.next_push().await.unwrap(), json!({"channel": "news", "pub": {"data": {"input": 1}, "offset": 1}}));
    assert_eq!(uni.next_push().await.unwrap()["pub"]["data"], json!({"input": 2}));
    let mut saw_ping = false;
    for _ in 0..5 {
        if uni.next().await.unwrap() == json!({}) {
            saw_ping = true;
            break;
        }
    }
    assert!(saw_ping, "uni stream must carry {{}} pings");
}

#[tokio::test]
async fn uni_http_stream_http_errors() {
    let s = Server::start(json!({"uni_http_stream": {"max_request_body_size": 1000}})).await;
    let url = format!("{}/connection/uni_http_stream", s.http());
    let c = reqwest::Client::new();
    assert_eq!(c.get(&url).send().await.unwrap().status().as_u16(), 405);
    assert_eq!(c.post(&url).body("{bad").send().await.unwrap().status().as_u16(), 400);
    assert_eq!(c.post(&url).body("").send().await.unwrap().status().as_u16(), 400);
    assert_eq!(c.post(&url).body("x".repeat(5000)).send().await.unwrap().status().as_u16(), 413);
    let pre = c.request(reqwest::Method::OPTIONS, &url).header("Origin", "http://a.test").send().await.unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    assert_eq!(pre.headers()["access-control-allow-methods"], "POST, OPTIONS");
    // Invalid token: still 200, a single disconnect push, then the end.
    let mut uni = UniStream::open(&s, json!({"token": "bad"})).await;
    assert_eq!(uni.next().await.unwrap(), json!({"disconnect": {"code": 3500, "reason": "invalid token"}}));
    assert!(uni.next().await.is_none());
    // Expired token maps to 3005 on unidirectional transports.
    let mut uni = UniStream::open(&s, json!({"token": token("1", json!({"exp": now_secs() - 5}))})).await;
    assert_eq!(uni.next().await.unwrap()["disconnect"]["code"], 3005);
}

#[tokio::test]
async fn uni_http_stream_client_gone_is_cleaned_up() {
    let s = Server::start(json!({"channel": {"without_namespace": {"presence": true}}})).await;
    let t = token("9", json!({"channels": ["room"]}));
    let mut uni = UniStream::open(&s, json!({"token": t})).await;
    uni.next().await.unwrap();
    let (_, before) = s.api("publish", json!({"channel": "room", "data": {}})).await;
    assert!(before.get("result").is_some());
    drop(uni);
    // Presence is maintained by the node: wait for the departed client to vanish.
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "room"})).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = ws.call("presence_stats", json!({"channel": "room"})).await;
        if r["presence_stats"]["num_clients"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "dropped uni client stayed in presence: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn uni_sse_streams_events() {
    let s = Server::start(json!({})).await;
    let connect = json!({"token": token("5", json!({"channels": ["sse"]}))}).to_string();
    let url = format!("{}/connection/uni_sse", s.http());
    let r = reqwest::Client::new().get(&url).query(&[("cf_connect", connect)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = r.bytes_stream();
    let mut text = String::new();
    let deadline = std::time::Instant::now() + WAIT;
    let mut published = false;
    while !text.contains("\"pub\"") {
        assert!(std::time::Instant::now() < deadline, "no publication event; got {text:?}");
        let chunk = tokio::time::timeout(WAIT, body.next()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        if text.contains("\"connect\"") && !published {
            s.publish("sse", json!({"e": 1})).await;
            published = true;
        }
    }
    assert!(text.starts_with("\r\ndata: {\"connect\":"), "{text:?}");
    assert!(text.contains("data: {\"channel\":\"sse\",\"pub\":{\"data\":{\"e\":1}"), "{text:?}");
    let bad = reqwest::Client::new().get(&url).query(&[("cf_connect", "{oops")]).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test]
async fn uni_websocket_pushes_and_disconnect() {
    let s = Server::start(json!({})).await;
    let url = format!("ws://127.0.0.1:{}/connection/uni_websocket", s.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let req = json!({"token": token("5", json!({"channels": ["uw"]}))});
    ws.send(Message::Text(req.to_string().into())).await.unwrap();
    let next = |m: Option<Result<Message, _>>| match m {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<serde_json::Value>(&t).unwrap(),
        other => panic!("unexpected {other:?}"),
    };
    let first = next(tokio::time::timeout(WAIT, ws.next()).await.unwrap());
    assert!(first["connect"]["client"].is_string(), "{first}");
    s.publish("uw", json!({"w": 1})).await;
    let p = next(tokio::time::timeout(WAIT, ws.next()).await.unwrap());
    assert_eq!(p["pub"]["data"], json!({"w": 1}));
    // A bad first message: disconnect push then close 3501.
    let (mut bad, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    bad.send(Message::Text("{nope".into())).await.unwrap();
    let d = next(tokio::time::timeout(WAIT, bad.next()).await.unwrap());
    assert_eq!(d["disconnect"]["code"], 3501);
}
