//! Every server API method over real HTTP, and its effect on live WebSocket and
//! uni_http_stream clients.

use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn subscribe_unsubscribe_reach_live_clients() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("42", json!({}))).await;
    let mut uni = UniStream::open(&s, json!({"token": token("42", json!({}))})).await;
    uni.next().await.unwrap();
    let (_, r) = s.api("subscribe", json!({"user": "42", "channel": "srv", "data": {"hello": 1}})).await;
    assert_eq!(r, json!({"result": {}}));
    let push = ws.push_where(|p| p.get("subscribe").is_some()).await;
    assert_eq!(push["channel"], "srv");
    assert_eq!(push["subscribe"]["data"], json!({"hello": 1}));
    assert_eq!(uni.next_push().await.unwrap()["channel"], "srv");
    s.publish("srv", json!({"x": 1})).await;
    assert_eq!(ws.push_where(|p| p.get("pub").is_some()).await["pub"]["data"], json!({"x": 1}));
    assert_eq!(uni.next_push().await.unwrap()["pub"]["data"], json!({"x": 1}));
    let (_, r) = s.api("unsubscribe", json!({"user": "42", "channel": "srv"})).await;
    assert_eq!(r, json!({"result": {}}));
    let push = ws.push_where(|p| p.get("unsubscribe").is_some()).await;
    assert_eq!(push["unsubscribe"], json!({"code": 2000, "reason": "server unsubscribe"}));
    assert_eq!(uni.next_push().await.unwrap()["unsubscribe"]["code"], 2000);
    let (_, e) = s.api("subscribe", json!({"user": "42", "channel": "nope:x"})).await;
    assert_eq!(e["error"]["code"], 102);
    let (_, e) = s.api("subscribe", json!({"user": "42"})).await;
    assert_eq!(e["error"]["code"], 107);
}

#[tokio::test]
async fn disconnect_defaults_custom_client_whitelist() {
    let s = Server::start(json!({})).await;
    let (mut a, ar) = Ws::connect(&s, &token("7", json!({}))).await;
    let (mut b, br) = Ws::connect(&s, &token("7", json!({}))).await;
    let (mut c, _) = Ws::connect(&s, &token("7", json!({}))).await;
    let a_id = ar["client"].as_str().unwrap();
    let (_, r) = s.api("disconnect", json!({"user": "7", "client": a_id})).await;
    assert_eq!(r, json!({"result": {}}));
    assert_eq!(a.closed().await, Closed::Code(3503, "force disconnect".into()));
    let keep = br["client"].as_str().unwrap();
    s.api("disconnect", json!({"user": "7", "whitelist": [keep], "disconnect": {"code": 4001, "reason": "bye"}})).await;
    assert_eq!(c.closed().await, Closed::Code(4001, "bye".into()));
    assert!(b.call("subscribe", json!({"channel": "x"})).await.get("subscribe").is_some(), "whitelisted stays");
    let (_, e) = s.api("disconnect", json!({"user": "7", "disconnect": {"code": 1, "reason": "x"}})).await;
    assert_eq!(e["error"]["code"], 107);
}

#[tokio::test]
async fn disconnect_by_session_of_uni_client() {
    let s = Server::start(json!({})).await;
    let mut u1 = UniStream::open(&s, json!({"token": token("5", json!({}))})).await;
    let mut u2 = UniStream::open(&s, json!({"token": token("5", json!({}))})).await;
    let session = u1.next().await.unwrap()["connect"]["session"].as_str().unwrap().to_string();
    u2.next().await.unwrap();
    s.api("disconnect", json!({"user": "5", "session": session})).await;
    assert_eq!(u1.next().await.unwrap(), json!({"disconnect": {"code": 3503, "reason": "force disconnect"}}));
    assert!(u1.next().await.is_none());
    let (_, r) = s.api("connections", json!({"user": "5"})).await;
    assert_eq!(r["result"]["connections"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn refresh_pushes_and_expires() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("3", json!({}))).await;
    let at = now_secs() + 1000;
    s.api("refresh", json!({"user": "3", "expire_at": at})).await;
    let push = ws.push_where(|p| p.get("refresh").is_some()).await;
    assert_eq!(push["refresh"]["expires"], true);
    assert!(push["refresh"]["ttl"].as_u64().unwrap() > 990);
    s.api("refresh", json!({"user": "3", "expired": true})).await;
    assert_eq!(ws.closed().await, Closed::Code(3005, "connection expired".into()));
}

#[tokio::test]
async fn presence_history_channels_info() {
    let s = Server::start(json!({"channel": {"namespaces": [{"name": "plain"}]}})).await;
    let (mut ws, r) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "room"})).await;
    ws.call("subscribe", json!({"channel": "other"})).await;
    let (_, p) = s.api("presence", json!({"channel": "room"})).await;
    let entry = &p["result"]["presence"][r["client"].as_str().unwrap()];
    assert_eq!(entry["user"], "1");
    let (_, st) = s.api("presence_stats", json!({"channel": "room"})).await;
    assert_eq!(st["result"], json!({"num_clients": 1, "num_users": 1}));
    assert_eq!(s.api("presence", json!({"channel": "plain:x"})).await.1["error"]["code"], 108);
    for i in 0..3 {
        s.publish("room", json!({"i": i})).await;
    }
    let (_, h) = s.api("history", json!({"channel": "room"})).await;
    assert_eq!(h["result"]["publications"], json!([]), "no limit ⇒ position only");
    assert_eq!(h["result"]["offset"], 3);
    let (_, h) = s.api("history", json!({"channel": "room", "limit": -1, "reverse": true})).await;
    let pubs = h["result"]["publications"].as_array().unwrap();
    assert_eq!(pubs.iter().map(|p| p["offset"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 2, 1]);
    let (_, h) = s.api("history", json!({"channel": "room", "limit": 2})).await;
    assert_eq!(h["result"]["publications"].as_array().unwrap().len(), 2);
    assert_eq!(s.api("history_remove", json!({"channel": "room"})).await.1, json!({"result": {}}));
    let (_, h) = s.api("history", json!({"channel": "room", "limit": -1})).await;
    assert_eq!(h["result"]["publications"], json!([]));
    assert_eq!(s.api("history", json!({"channel": "plain:x", "limit": 1})).await.1["error"]["code"], 108);
    let (_, c) = s.api("channels", json!({})).await;
    assert_eq!(c["result"]["channels"], json!({"room": {"num_clients": 1}, "other": {"num_clients": 1}}));
    let (_, c) = s.api("channels", json!({"pattern": "ro*"})).await;
    assert_eq!(c["result"]["channels"], json!({"room": {"num_clients": 1}}));
    let (_, c) = s.api("channels", json!({"pattern": "zzz"})).await;
    assert_eq!(c["result"]["channels"], json!({}), "empty map, never null");
    let (_, i) = s.api("info", json!({})).await;
    let node = &i["result"]["nodes"][0];
    assert_eq!(node["num_clients"], 1);
    assert_eq!(node["num_channels"], 2);
    assert!(node["uid"].is_string() && node["name"].is_string());
}

#[tokio::test]
async fn batch_replies_are_top_level() {
    let s = Server::start(json!({})).await;
    let body = json!({"commands": [
        {"publish": {"channel": "a", "data": {}}},
        {"publish": {"channel": "nope:x", "data": {}}},
        {"info": {}},
        {"nonsense": {}},
        null
    ], "parallel": true});
    let (_, r) = s.api("batch", body).await;
    let replies = r["replies"].as_array().expect("top-level replies");
    assert_eq!(replies[0]["publish"]["offset"], 1);
    assert_eq!(replies[1]["error"]["code"], 102);
    assert!(replies[2]["info"]["nodes"].is_array());
    assert_eq!(replies[3]["error"]["code"], 104);
    assert_eq!(replies[4]["error"]["code"], 107);
}

#[tokio::test]
async fn connections_by_user_shape_and_blank_request() {
    let s = Server::start(json!({})).await;
    let t = token(
        "42",
        json!({"jti": "tok-1", "meta": {"device": "phone"}, "labels": {"region": "eu"}, "channels": ["news"]}),
    );
    let mut ws = Ws::open(&s.ws_url()).await;
    let r = ws.call("connect", json!({"token": t, "name": "app", "version": "1.2.0"})).await;
    let client = r["connect"]["client"].as_str().unwrap().to_string();
    ws.call("subscribe", json!({"channel": "room"})).await;
    let (_, r) = s.api("connections", json!({"user": "42", "expression": ""})).await;
    let info = &r["result"]["connections"][&client];
    assert_eq!(info["app_name"], "app");
    assert_eq!(info["app_version"], "1.2.0");
    assert_eq!(info["transport"], "websocket");
    assert_eq!(info["protocol"], "json");
    assert_eq!(info["user"], "42");
    assert_eq!(info["labels"], json!({"region": "eu"}));
    assert_eq!(info["state"]["meta"], json!({"device": "phone"}));
    assert_eq!(info["state"]["connection_token"]["uid"], "tok-1");
    assert_eq!(info["state"]["channels"]["news"]["source"], 1);
    assert_eq!(info["state"]["channels"]["room"], json!({}));
    assert!(info["connected_at_ms"].as_i64().unwrap() > 1_600_000_000_000);
    assert!(!info["node"].as_str().unwrap().is_empty(), "the node holding it: {info}");
    assert_eq!(r["result"]["total"], 1, "{r}");
    let (_, r) = s.api("connections", json!({"user": "nobody"})).await;
    assert_eq!(r, json!({"result": {"connections": {}, "total": 0}}));
    for blank in [json!({}), json!({"user": "", "expression": ""}), json!({"expression": "   "})] {
        let (_, e) = s.api("connections", blank.clone()).await;
        assert_eq!(e["error"]["code"], 107, "{blank}");
        assert!(e["error"]["message"].as_str().unwrap().contains("at least one"));
    }
}

#[tokio::test]
async fn legacy_endpoint_and_get_user_connections() {
    let s = Server::start(json!({})).await;
    let mut t1 = UniStream::open(&s, json!({"token": token("42", json!({})), "name": "terminal"})).await;
    let mut t2 = UniStream::open(&s, json!({"token": token("42", json!({})), "name": "terminal"})).await;
    let c1 = t1.next().await.unwrap()["connect"]["client"].as_str().unwrap().to_string();
    let c2 = t2.next().await.unwrap()["connect"]["client"].as_str().unwrap().to_string();
    let body = json!({"method": "rpc", "params": {"method": "getUserConnections", "params": {"user": "42"}}});
    let r = reqwest::Client::new()
        .post(format!("{}/api", s.http()))
        .header("Authorization", format!("apikey {API_KEY}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v, json!({"result": {"data": {c1: {"app_name": "terminal"}, c2: {"app_name": "terminal"}}}}));
    let two = format!(
        "{}\n{}",
        json!({"id": 1, "method": "publish", "params": {"channel": "x", "data": {}}}),
        json!({"id": 2, "method": 14, "params": {"user": "42"}})
    );
    let text = legacy(&s, &two).await.1;
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["result"]["offset"], 1);
    assert_eq!(lines[1]["result"]["connections"].as_object().unwrap().len(), 2);
    assert_eq!(legacy(&s, r#"{"method":"no_such","params":{}}"#).await.0, 400);
    assert_eq!(legacy(&s, "").await.0, 400);
    let (_, e) = legacy(&s, r#"{"method":"rpc","params":{"method":"unknownRpc"}}"#).await;
    assert_eq!(serde_json::from_str::<Value>(&e).unwrap()["error"]["code"], 104);
}

async fn legacy(s: &Server, body: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/api", s.http()))
        .header("X-API-Key", API_KEY)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Memory engine: a publish repeated with the same idempotency key returns the first
/// position and is not delivered or stored again.
#[tokio::test]
async fn idempotent_publish() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "once"})).await;
    let body = json!({"channel": "once", "data": {"n": 1}, "idempotency_key": "k"});
    let (_, first) = s.api("publish", body.clone()).await;
    let (_, again) = s.api("publish", body).await;
    assert_eq!(first["result"]["offset"], 1, "{first}");
    assert_eq!(first["result"], again["result"]);
    s.publish("once", json!({"n": 2})).await;
    let p1 = ws.push_where(|p| p.get("pub").is_some()).await;
    let p2 = ws.push_where(|p| p.get("pub").is_some()).await;
    assert_eq!((p1["pub"]["data"]["n"].clone(), p2["pub"]["data"]["n"].clone()), (json!(1), json!(2)));
}
