//! Session management that sticks (issue 15), end to end over real sockets: token
//! revocation by `jti`, invalidation of a user's older tokens (connection tokens and
//! per-channel subscription tokens), blocking, expiry of each entry, user status; and
//! across nodes on a real `redis-server`, including a node started after the fact.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::redis::Redis;

pub(crate) const REVOKED: u16 = 3510;
pub(crate) const BLOCKED: u16 = 3511;

/// Polls `check` until it holds (deadline 20 s).
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects with `token`: the client, or how the server closed the connection.
pub(crate) async fn try_connect(server: &Server, token: &str) -> Result<Ws, Closed> {
    let mut ws = Ws::open(&server.ws_url()).await;
    ws.send_text(&json!({"id": 1, "connect": {"token": token}}).to_string()).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let text = ws.read_frame(deadline).await?;
        if text.contains("\"connect\"") {
            return Ok(ws);
        }
        assert!(!text.contains("\"error\""), "connect answered with an error: {text}");
    }
}

pub(crate) async fn refused(server: &Server, token: &str) -> u16 {
    match try_connect(server, token).await {
        Ok(_) => panic!("connect accepted; expected a refusal"),
        Err(Closed::Code(code, _)) => code,
        Err(Closed::NoFrame) => panic!("connection dropped without a close frame"),
    }
}

async fn ok(server: &Server, method: &str, body: Value) -> Value {
    let (status, r) = server.api(method, body).await;
    assert_eq!(status, 200, "{method}: {r}");
    assert!(r.get("result").is_some(), "{method}: {r}");
    r["result"].clone()
}

/// Asserts the connection still answers commands (a subscribe to a fresh channel).
async fn assert_alive(ws: &mut Ws, what: &str) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ch = format!("alive-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let r = ws.call("subscribe", json!({"channel": ch})).await;
    assert!(r.get("subscribe").is_some(), "{what}: {r}");
}

fn closed_with(c: Closed) -> u16 {
    match c {
        Closed::Code(code, _) => code,
        Closed::NoFrame => 0,
    }
}

fn sub_token(user: &str, channel: &str, extra: Value) -> String {
    let mut claims = json!({"sub": user, "channel": channel, "iat": now_secs(), "exp": now_secs() + 3600});
    merge(&mut claims, &extra);
    rotor::auth::sign_hs256(&claims, SECRET)
}

#[tokio::test]
async fn revoked_token_is_disconnected_and_refused() {
    let s = Server::start(json!({})).await;
    let t = token("alice", json!({"jti": "tok-1"}));
    let (mut ws, _) = Ws::connect(&s, &t).await;
    let (mut other, _) = Ws::connect(&s, &token("alice", json!({"jti": "tok-2"}))).await;
    // The connections API shows the token uid a messenger would revoke.
    let conns = ok(&s, "connections", json!({"user": "alice"})).await;
    let uids: Vec<&str> = conns["connections"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|c| c["state"]["connection_token"]["uid"].as_str())
        .collect();
    assert!(uids.contains(&"tok-1"), "{conns}");

    ok(&s, "revoke_token", json!({"uid": "tok-1", "expire_at": now_secs() + 3600})).await;
    match ws.closed().await {
        Closed::Code(code, reason) => assert_eq!((code, reason.as_str()), (REVOKED, "token revoked")),
        c => panic!("{c:?}"),
    }
    assert_eq!(refused(&s, &t).await, REVOKED);
    // The user's other session is untouched.
    assert_alive(&mut other, "the user's other session is untouched").await;
    // A fresh token with another jti connects.
    try_connect(&s, &token("alice", json!({"jti": "tok-3"}))).await.unwrap();
}

#[tokio::test]
async fn refresh_with_a_revoked_token_disconnects() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("bob", json!({"jti": "a"}))).await;
    ok(&s, "revoke_token", json!({"uid": "b"})).await;
    ws.send_text(&json!({"id": 7, "refresh": {"token": token("bob", json!({"jti": "b"}))}}).to_string()).await;
    assert_eq!(closed_with(ws.closed().await), REVOKED);
    // A connection refreshed to a token that is revoked later is found by that token.
    let (mut ws, _) = Ws::connect(&s, &token("bob", json!({"jti": "c"}))).await;
    let r = ws.call("refresh", json!({"token": token("bob", json!({"jti": "d"}))})).await;
    assert!(r.get("refresh").is_some(), "{r}");
    ok(&s, "revoke_token", json!({"uid": "d"})).await;
    assert_eq!(closed_with(ws.closed().await), REVOKED);
}

#[tokio::test]
async fn invalidation_refuses_older_tokens_and_accepts_newer() {
    let s = Server::start(json!({})).await;
    let now = now_secs();
    let old = token("carol", json!({"iat": now - 100}));
    let (mut ws, _) = Ws::connect(&s, &old).await;
    let (mut bystander, _) = Ws::connect(&s, &token("dave", json!({"iat": now - 100}))).await;
    ok(&s, "invalidate_user_tokens", json!({"user": "carol", "issued_before": now - 10, "expire_at": now + 3600}))
        .await;
    assert_eq!(closed_with(ws.closed().await), REVOKED);
    assert_eq!(refused(&s, &old).await, REVOKED);
    try_connect(&s, &token("carol", json!({"iat": now}))).await.unwrap();
    assert_alive(&mut bystander, "another user is untouched").await;
    // Without issued_before the server uses the current time.
    let (mut ws, _) = Ws::connect(&s, &token("erin", json!({"iat": now - 5}))).await;
    ok(&s, "invalidate_user_tokens", json!({"user": "erin"})).await;
    assert_eq!(closed_with(ws.closed().await), REVOKED);
}

#[tokio::test]
async fn per_channel_invalidation_applies_to_subscription_tokens() {
    let s = Server::start(json!({})).await;
    let now = now_secs();
    let (mut ws, _) = Ws::connect(&s, &token("frank", json!({}))).await;
    let old = sub_token("frank", "$room", json!({"iat": now - 100}));
    let r = ws.call("subscribe", json!({"channel": "$room", "token": old})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    let r = ws
        .call(
            "subscribe",
            json!({"channel": "$other", "token": sub_token("frank", "$other", json!({"iat": now - 100}))}),
        )
        .await;
    assert!(r.get("subscribe").is_some(), "{r}");

    ok(&s, "invalidate_user_tokens", json!({"user": "frank", "channel": "$room", "issued_before": now - 10})).await;
    let push = ws.push_where(|p| p["channel"] == "$room" && p.get("unsubscribe").is_some()).await;
    assert_eq!(push["unsubscribe"], json!({"code": 2000, "reason": "token revoked"}));
    // The connection and its other subscription stay.
    assert_alive(&mut ws, "the connection stays").await;
    let r = ws.call("subscribe", json!({"channel": "$other", "token": sub_token("frank", "$other", json!({}))})).await;
    assert_eq!(r["error"]["code"], 105, "the other subscription stays: {r}");
    let r = ws.call("subscribe", json!({"channel": "$room", "token": old})).await;
    assert_eq!(r["error"]["code"], 103, "{r}");
    let r = ws.call("subscribe", json!({"channel": "$room", "token": sub_token("frank", "$room", json!({}))})).await;
    assert!(r.get("subscribe").is_some(), "a newer subscription token works: {r}");
    // Revoking a subscription token by jti unsubscribes it too.
    let (mut ws2, _) = Ws::connect(&s, &token("gina", json!({}))).await;
    let t = sub_token("gina", "$x", json!({"jti": "sub-1"}));
    assert!(ws2.call("subscribe", json!({"channel": "$x", "token": t})).await.get("subscribe").is_some());
    ok(&s, "revoke_token", json!({"uid": "sub-1"})).await;
    let push = ws2.push_where(|p| p["channel"] == "$x" && p.get("unsubscribe").is_some()).await;
    assert_eq!(push["unsubscribe"]["code"], 2000);
    let r = ws2.call("subscribe", json!({"channel": "$x", "token": t})).await;
    assert_eq!(r["error"]["code"], 103, "{r}");
}

#[tokio::test]
async fn block_closes_at_once_and_unblock_lets_back_in() {
    let s = Server::start(json!({})).await;
    let t = token("mallory", json!({}));
    let (mut a, _) = Ws::connect(&s, &t).await;
    let (mut b, _) = Ws::connect(&s, &t).await;
    ok(&s, "block_user", json!({"user": "mallory"})).await;
    for ws in [&mut a, &mut b] {
        match ws.closed().await {
            Closed::Code(code, reason) => assert_eq!((code, reason.as_str()), (BLOCKED, "user blocked")),
            c => panic!("{c:?}"),
        }
    }
    assert_eq!(refused(&s, &t).await, BLOCKED);
    assert_eq!(refused(&s, &token("mallory", json!({"jti": "fresh"}))).await, BLOCKED);
    try_connect(&s, &token("trent", json!({}))).await.unwrap();
    ok(&s, "unblock_user", json!({"user": "mallory"})).await;
    try_connect(&s, &t).await.unwrap();
}

#[tokio::test]
async fn every_entry_expires_at_its_expire_at() {
    let s = Server::start(json!({})).await;
    let exp = now_secs() + 4;
    let revoked = token("u1", json!({"jti": "short"}));
    let old = token("u2", json!({"iat": now_secs() - 100}));
    let blocked = token("u3", json!({}));
    ok(&s, "revoke_token", json!({"uid": "short", "expire_at": exp})).await;
    ok(&s, "invalidate_user_tokens", json!({"user": "u2", "issued_before": now_secs(), "expire_at": exp})).await;
    ok(&s, "block_user", json!({"user": "u3", "expire_at": exp})).await;
    assert_eq!(refused(&s, &revoked).await, REVOKED);
    assert_eq!(refused(&s, &old).await, REVOKED);
    assert_eq!(refused(&s, &blocked).await, BLOCKED);
    for (what, t) in [("revocation", &revoked), ("invalidation", &old), ("block", &blocked)] {
        until(what, || async { now_secs() > exp && try_connect(&s, t).await.is_ok() }).await;
    }
}

#[tokio::test]
async fn user_status_active_online_state_and_delete() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("42", json!({}))).await;
    let r = ok(&s, "get_user_status", json!({"users": ["42", "43"]})).await;
    let st = &r["statuses"];
    assert_eq!(st[0]["user"], "42");
    assert!(st[0]["online"].as_i64().unwrap() >= now_secs() - 2, "{r}");
    assert!(st[0].get("active").is_none(), "{r}");
    assert_eq!(st[1], json!({"user": "43"}), "{r}");

    // The client marks itself active through the built-in RPC.
    let before = now_secs();
    let reply = ws.call("rpc", json!({"method": "update_user_status", "data": {}})).await;
    assert!(reply.get("rpc").is_some(), "{reply}");
    let r = ok(&s, "get_user_status", json!({"users": ["42"]})).await;
    assert!(r["statuses"][0]["active"].as_i64().unwrap() >= before, "{r}");

    ok(&s, "update_user_status", json!({"users": ["43", "44"], "state": "away"})).await;
    let r = ok(&s, "get_user_status", json!({"users": ["44", "43"]})).await;
    assert_eq!(r["statuses"][0]["user"], "44");
    assert_eq!(r["statuses"][0]["state"], "away");
    assert!(r["statuses"][1]["active"].as_i64().is_some(), "{r}");
    assert!(r["statuses"][1].get("online").is_none(), "43 never connected: {r}");

    ok(&s, "delete_user_status", json!({"users": ["43"]})).await;
    let r = ok(&s, "get_user_status", json!({"users": ["43"]})).await;
    assert_eq!(r["statuses"][0], json!({"user": "43"}));
    // Hundreds of users in one call, in the order asked.
    let many: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
    ok(&s, "update_user_status", json!({"users": many})).await;
    let r = ok(&s, "get_user_status", json!({"users": many})).await;
    let st = r["statuses"].as_array().unwrap();
    assert_eq!(st.len(), 500);
    assert!(st.iter().zip(&many).all(|(s, u)| s["user"] == *u && s["active"].is_i64()), "{r}");
}

#[tokio::test]
async fn user_status_expires_after_expire_interval() {
    // Long enough that the first read comes well within it, even on a busy machine.
    let s = Server::start(json!({"user_status": {"expire_interval": "4s"}})).await;
    ok(&s, "update_user_status", json!({"users": ["x"]})).await;
    let r = ok(&s, "get_user_status", json!({"users": ["x"]})).await;
    assert!(r["statuses"][0]["active"].is_i64(), "{r}");
    until("status to expire", || async {
        ok(&s, "get_user_status", json!({"users": ["x"]})).await["statuses"][0] == json!({"user": "x"})
    })
    .await;
}

#[tokio::test]
async fn anonymous_clients_cannot_update_a_status() {
    let s = Server::start(json!({"client": {"allow_anonymous_connect_without_token": true}})).await;
    let mut ws = Ws::open(&s.ws_url()).await;
    let r = ws.call("connect", json!({})).await;
    assert!(r.get("connect").is_some(), "{r}");
    let r = ws.call("rpc", json!({"method": "update_user_status"})).await;
    assert_eq!(r["error"]["code"], 103, "{r}");
}

#[tokio::test]
async fn malformed_and_hostile_input_is_refused() {
    let s = Server::start(json!({})).await;
    let long = "x".repeat(1025);
    let past = now_secs() - 10;
    let cases = [
        ("revoke_token", json!({}), "uid required"),
        ("revoke_token", json!({"uid": ""}), "uid required"),
        ("revoke_token", json!({"uid": long}), "uid longer than 1024 bytes"),
        ("revoke_token", json!({"uid": "a", "expire_at": -1}), "expire_at must not be negative"),
        ("revoke_token", json!({"uid": "a", "expire_at": past}), "expire_at is in the past"),
        ("invalidate_user_tokens", json!({}), "user required"),
        ("invalidate_user_tokens", json!({"user": "u", "issued_before": -5}), "issued_before must not be negative"),
        ("invalidate_user_tokens", json!({"user": "u", "channel": long}), "channel longer than 1024 bytes"),
        ("block_user", json!({"user": ""}), "user required"),
        ("block_user", json!({"user": "u", "expire_at": past}), "expire_at is in the past"),
        ("unblock_user", json!({}), "user required"),
        ("update_user_status", json!({"users": []}), "users required"),
        ("update_user_status", json!({"users": ["a", ""]}), "users[1]: empty user ID"),
        ("update_user_status", json!({"users": ["a"], "state": "s".repeat(257)}), "state longer than 256 bytes"),
        ("get_user_status", json!({}), "users required"),
        ("get_user_status", json!({"users": [long]}), "users[0]: longer than 1024 bytes"),
        ("delete_user_status", json!({"users": vec!["u"; 1001]}), "1001 users; at most 1000 per call"),
    ];
    for (method, body, message) in cases {
        let (status, r) = s.api(method, body.clone()).await;
        assert_eq!(status, 200, "{method} {body}: {r}");
        assert_eq!(r["error"], json!({"code": 107, "message": message}), "{method} {body}");
    }
    // Wrong types and broken JSON are a plain 400, as for every method.
    for (method, body) in [
        ("revoke_token", json!({"uid": 5})),
        ("block_user", json!({"user": "u", "expire_at": "soon"})),
        ("get_user_status", json!({"users": "u"})),
        ("invalidate_user_tokens", json!([1, 2])),
    ] {
        assert_eq!(s.api(method, body.clone()).await.0, 400, "{method} {body}");
    }
    let r = reqwest::Client::new()
        .post(format!("{}/api/block_user", s.http()))
        .header("X-API-Key", API_KEY)
        .body("{\"user\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Without the API key nothing is recorded.
    let r = reqwest::Client::new()
        .post(format!("{}/api/block_user", s.http()))
        .body(json!({"user": "victim"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    try_connect(&s, &token("victim", json!({}))).await.unwrap();
}

#[tokio::test]
async fn legacy_endpoint_and_batch_know_the_methods() {
    let s = Server::start(json!({})).await;
    let t = token("leg", json!({}));
    let body = [
        json!({"method": "block_user", "params": {"user": "leg"}}),
        json!({"method": "get_user_status", "params": {"users": ["leg"]}}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let r = reqwest::Client::new()
        .post(format!("{}/api", s.http()))
        .header("X-API-Key", API_KEY)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], json!({"result": {}}), "{text}");
    assert_eq!(lines[1]["result"]["statuses"][0]["user"], "leg", "{text}");
    assert_eq!(refused(&s, &t).await, BLOCKED);
    let (_, r) = s.api("batch", json!({"commands": [{"unblock_user": {"user": "leg"}}, {"revoke_token": {}}]})).await;
    assert_eq!(r["replies"][0], json!({"unblock_user": {}}), "{r}");
    assert_eq!(r["replies"][1]["error"]["code"], 107, "{r}");
    try_connect(&s, &t).await.unwrap();
}

// ------------------------------------------------------------------ Redis fleet

fn fleet_config(redis: &Redis) -> Value {
    json!({"engine": {"type": "redis", "redis": {
        "address": [redis.url()],
        "presence_ttl": "2s",
        "survey_timeout": "2s"
    }}})
}

async fn node_count(s: &Server) -> usize {
    s.api("info", json!({})).await.1["result"]["nodes"].as_array().map_or(0, Vec::len)
}

async fn two_nodes(redis: &Redis) -> (Server, Server) {
    let a = Server::start(fleet_config(redis)).await;
    let b = Server::start(fleet_config(redis)).await;
    for s in [&a, &b] {
        until("both nodes in info", || async { node_count(s).await == 2 }).await;
    }
    (a, b)
}

#[tokio::test]
async fn entries_reach_every_node_on_redis() {
    let redis = Redis::start();
    let (a, b) = two_nodes(&redis).await;
    let (mut on_b, _) = Ws::connect(&b, &token("zed", json!({"jti": "z1"}))).await;
    let (mut blocked_on_b, _) = Ws::connect(&b, &token("yan", json!({}))).await;
    ok(&a, "revoke_token", json!({"uid": "z1"})).await;
    assert_eq!(closed_with(on_b.closed().await), REVOKED);
    assert_eq!(refused(&b, &token("zed", json!({"jti": "z1"}))).await, REVOKED);
    ok(&a, "block_user", json!({"user": "yan"})).await;
    assert_eq!(closed_with(blocked_on_b.closed().await), BLOCKED);
    assert_eq!(refused(&b, &token("yan", json!({}))).await, BLOCKED);
    ok(&b, "unblock_user", json!({"user": "yan"})).await;
    try_connect(&a, &token("yan", json!({}))).await.unwrap();

    // Status written on one node, online kept by the node the user is connected to.
    let (_ws, _) = Ws::connect(&b, &token("online-user", json!({}))).await;
    ok(&b, "update_user_status", json!({"users": ["online-user"], "state": "busy"})).await;
    until("online status seen from the other node", || async {
        let r = ok(&a, "get_user_status", json!({"users": ["online-user", "nobody"]})).await;
        let st = &r["statuses"][0];
        st["online"].is_i64()
            && st["active"].is_i64()
            && st["state"] == "busy"
            && r["statuses"][1] == json!({"user": "nobody"})
    })
    .await;
    ok(&a, "delete_user_status", json!({"users": ["online-user"]})).await;
    let r = ok(&a, "get_user_status", json!({"users": ["online-user"]})).await;
    assert!(r["statuses"][0].get("active").is_none(), "{r}");
}

#[tokio::test]
async fn restarted_and_new_nodes_still_refuse() {
    let redis = Redis::start();
    let t = token("rick", json!({"jti": "kept"}));
    let old = token("sue", json!({"iat": now_secs() - 100}));
    {
        let a = Server::start(fleet_config(&redis)).await;
        ok(&a, "revoke_token", json!({"uid": "kept", "expire_at": now_secs() + 3600})).await;
        ok(&a, "invalidate_user_tokens", json!({"user": "sue", "issued_before": now_secs()})).await;
        ok(&a, "block_user", json!({"user": "ted"})).await;
        ok(&a, "block_user", json!({"user": "short", "expire_at": now_secs() + 3})).await;
        assert_eq!(refused(&a, &t).await, REVOKED);
    }
    // Every node that starts afterwards loads the entries from Redis.
    let c = Server::start(fleet_config(&redis)).await;
    assert_eq!(refused(&c, &t).await, REVOKED);
    assert_eq!(refused(&c, &old).await, REVOKED);
    assert_eq!(refused(&c, &token("ted", json!({}))).await, BLOCKED);
    try_connect(&c, &token("rick", json!({"jti": "other"}))).await.unwrap();
    until("the short block to expire", || async { try_connect(&c, &token("short", json!({}))).await.is_ok() }).await;
}

#[tokio::test]
async fn memory_mode_forgets_entries_on_restart() {
    let t = token("mem", json!({"jti": "m1"}));
    {
        let s = Server::start(json!({})).await;
        ok(&s, "revoke_token", json!({"uid": "m1"})).await;
        assert_eq!(refused(&s, &t).await, REVOKED);
    }
    let s = Server::start(json!({})).await;
    try_connect(&s, &t).await.unwrap();
}

/// Redis Cluster: entries and statuses live on several masters (the user's or token's
/// key decides the slot); both nodes enforce them, a node started later loads them,
/// and a bulk status read for hundreds of users spans every master.
#[tokio::test]
async fn entries_and_statuses_on_redis_cluster() {
    let cluster = crate::redis::RedisCluster::start();
    let config = json!({"engine": {"type": "redis", "redis": {"cluster_address": cluster.urls()}}});
    let a = Server::start(config.clone()).await;
    let b = Server::start(config.clone()).await;
    for s in [&a, &b] {
        until("both nodes in info", || async { node_count(s).await == 2 }).await;
    }
    // Several users and token ids, so the keys land on different masters.
    let users: Vec<String> = (0..6).map(|i| format!("cl-user-{i}")).collect();
    let mut revoked = Vec::new();
    let mut blocked = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let jti = format!("cl-tok-{i}");
        let (r, _) = Ws::connect(&b, &token(u, json!({"jti": jti}))).await;
        revoked.push((r, jti));
        let (bl, _) = Ws::connect(&b, &token(&format!("{u}-b"), json!({}))).await;
        blocked.push((bl, format!("{u}-b")));
    }
    for (_, jti) in &revoked {
        ok(&a, "revoke_token", json!({"uid": jti, "expire_at": now_secs() + 3600})).await;
    }
    for (_, user) in &blocked {
        ok(&a, "block_user", json!({"user": user, "expire_at": now_secs() + 3600})).await;
    }
    for (ws, jti) in &mut revoked {
        assert_eq!(closed_with(ws.closed().await), REVOKED, "{jti}");
    }
    for (ws, user) in &mut blocked {
        assert_eq!(closed_with(ws.closed().await), BLOCKED, "{user}");
    }
    // A node started now knows every entry.
    let c = Server::start(config).await;
    for (i, u) in users.iter().enumerate() {
        assert_eq!(refused(&c, &token(u, json!({"jti": format!("cl-tok-{i}")}))).await, REVOKED);
        assert_eq!(refused(&c, &token(&format!("{u}-b"), json!({}))).await, BLOCKED);
    }
    try_connect(&c, &token(&users[0], json!({"jti": "a-fresh-one"}))).await.unwrap();

    // Statuses for hundreds of users across the masters, written on one node and read
    // on another, in the order asked.
    let many: Vec<String> = (0..300).map(|i| format!("st{i}")).collect();
    ok(&a, "update_user_status", json!({"users": many, "state": "here"})).await;
    let r = ok(&b, "get_user_status", json!({"users": many})).await;
    let st = r["statuses"].as_array().unwrap();
    assert_eq!(st.len(), 300);
    assert!(st.iter().zip(&many).all(|(s, u)| s["user"] == *u && s["active"].is_i64() && s["state"] == "here"), "{r}");
    ok(&b, "delete_user_status", json!({"users": many})).await;
    let r = ok(&a, "get_user_status", json!({"users": many})).await;
    assert!(r["statuses"].as_array().unwrap().iter().all(|s| s.get("active").is_none()), "{r}");
}
