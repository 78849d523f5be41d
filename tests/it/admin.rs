//! The admin endpoints over real sockets: login and its per-address throttle, the
//! legacy API behind the token (the connections explorer's calls: by user, label
//! filter and CEL, paging, a targeted disconnect), the embedded UI and its CSP.

use serde_json::{Value, json};

use crate::harness::{Closed, Server, Ws, token};

pub const PASSWORD: &str = "it-admin-password";

pub fn admin_config() -> Value {
    json!({"admin": {"enabled": true, "password": PASSWORD, "secret": "it-admin-secret"}})
}

pub struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    pub async fn login(server: &Server) -> Admin {
        let http = reqwest::Client::new();
        let (status, body) = auth(&http, server, PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_str().expect("token").to_string();
        Admin { base: server.http(), token, http }
    }

    /// One legacy command through `/admin/api`; returns its reply line.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/admin/api", self.base))
            .header("Authorization", format!("token {}", self.token))
            .body(json!({"method": method, "params": params}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        serde_json::from_str(&r.text().await.unwrap()).unwrap()
    }
}

async fn auth(http: &reqwest::Client, server: &Server, password: &str) -> (u16, Value) {
    let r = http
        .post(format!("{}/admin/auth", server.http()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("password={password}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
}

fn ids(reply: &Value) -> Vec<String> {
    reply["result"]["connections"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn admin_login_throttle_and_token() {
    let server = Server::start(json!({"admin": {"enabled": true, "password": PASSWORD, "secret": "s",
        "max_failed_logins": 2, "login_window": "30s"}}))
    .await;
    let http = reqwest::Client::new();
    let api = |t: Option<String>| {
        let mut b = http.post(format!("{}/admin/api", server.http())).body(r#"{"method":"info","params":{}}"#);
        if let Some(t) = t {
            b = b.header("Authorization", format!("token {t}"));
        }
        b.send()
    };
    assert_eq!(api(None).await.unwrap().status(), 401);
    let (status, body) = auth(&http, &server, PASSWORD).await;
    assert_eq!(status, 200);
    let t = body["token"].as_str().unwrap().to_string();
    let r = api(Some(t.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(info["result"]["nodes"][0]["num_clients"], 0, "{info}");
    assert_eq!(auth(&http, &server, "guess1").await.0, 400);
    assert_eq!(auth(&http, &server, "guess2").await.0, 400);
    assert_eq!(auth(&http, &server, PASSWORD).await.0, 429, "this address is throttled now");
    assert_eq!(api(Some(t)).await.unwrap().status(), 200, "tokens already issued still work");
}

#[tokio::test]
async fn admin_ui_served_with_csp() {
    let server = Server::start(admin_config()).await;
    let r = reqwest::get(format!("{}/", server.http())).await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains(">Log in</button>") && html.contains(r#"src="app.js""#));
    let js = reqwest::get(format!("{}/app.js", server.http())).await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    let init: Value = reqwest::get(format!("{}/admin/init", server.http())).await.unwrap().json().await.unwrap();
    assert_eq!(init, json!({"insecure": false, "edition": "oss", "authenticated": false}));
}

/// The explorer's calls: search by user, label filter and CEL, a bad filter's 107 with
/// its path, paging, and a row's Disconnect closing that connection only.
#[tokio::test]
async fn admin_explorer_calls() {
    let server = Server::start(admin_config()).await;
    let mut clients = Vec::new();
    for (user, region) in [("alice", "eu"), ("alice", "us"), ("bob", "eu"), ("carol", "eu")] {
        let (ws, connected) =
            Ws::connect(&server, &token(user, json!({"labels": {"region": region}, "meta": {"plan": "pro"}}))).await;
        clients.push((ws, connected["client"].as_str().unwrap().to_string(), user));
    }
    let admin = Admin::login(&server).await;
    assert_eq!(ids(&admin.call("connections", json!({"user": "alice", "limit": 100})).await).len(), 2);
    let eu = json!({"label_filter": {"key": "region", "cmp": "eq", "val": "eu"}, "limit": 100});
    assert_eq!(ids(&admin.call("connections", eu).await).len(), 3);
    let cel =
        admin.call("connections", json!({"expression": "meta.plan == \"pro\" && user != \"bob\"", "limit": 100})).await;
    assert_eq!(ids(&cel).len(), 3, "{cel}");
    let bad = admin
        .call("connections", json!({"label_filter": {"op": "and", "nodes": [{"key": "region", "cmp": "bogus"}]}}))
        .await;
    assert_eq!(bad["error"]["code"], 107);
    assert!(bad["error"]["message"].as_str().unwrap().starts_with("label_filter.nodes[0]"), "{bad}");

    let all = json!({"expression": "user != \"\"", "limit": 3});
    let first = admin.call("connections", all.clone()).await;
    let cursor = first["result"]["next_cursor"].as_str().expect("more than one page").to_string();
    let mut second_q = all;
    second_q["cursor"] = json!(cursor);
    let second = admin.call("connections", second_q).await;
    assert_eq!(ids(&first).len() + ids(&second).len(), 4);
    assert!(second["result"].get("next_cursor").is_none());

    let (victim, victim_user) = (clients[0].1.clone(), clients[0].2);
    let r = admin.call("disconnect", json!({"user": victim_user, "client": victim})).await;
    assert!(r.get("result").is_some(), "{r}");
    assert!(matches!(clients[0].0.closed().await, Closed::Code(..)), "the row's connection closed");
    // The hub lets go of a session just after writing its close frame: poll briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = ids(&admin.call("connections", json!({"user": "alice"})).await);
        if left == vec![clients[1].1.clone()] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only that connection left: {left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pong = clients[1].0.call("presence_stats", json!({"channel": "x"})).await;
    assert!(pong.get("id").is_some(), "the other alice connection still answers: {pong}");
}

/// With the Redis engine the admin API speaks for the fleet: `info` lists every node,
/// and a connection on another node is found and disconnected from this one.
#[tokio::test]
async fn admin_fleet_info_and_remote_disconnect() {
    let redis = crate::redis::Redis::start();
    let mut config = admin_config();
    crate::harness::merge(
        &mut config,
        &json!({"engine": {"type": "redis", "redis": {"address": [redis.url()], "survey_timeout": "2s"}}}),
    );
    let here = Server::start(config.clone()).await;
    let there = Server::start(config).await;
    let admin = Admin::login(&here).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while admin.call("info", json!({})).await["result"]["nodes"].as_array().map_or(0, Vec::len) < 2 {
        assert!(std::time::Instant::now() < deadline, "the admin never saw both nodes");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (mut remote, connected) = Ws::connect(&there, &token("dora", json!({"labels": {"region": "eu"}}))).await;
    let id = connected["client"].as_str().unwrap().to_string();
    let found = admin.call("connections", json!({"label_filter": {"key": "region", "cmp": "eq", "val": "eu"}})).await;
    assert_eq!(ids(&found), vec![id.clone()], "{found}");
    let r = admin.call("disconnect", json!({"user": "dora", "client": id})).await;
    assert!(r.get("result").is_some(), "{r}");
    assert!(matches!(remote.closed().await, Closed::Code(..)), "the remote connection closed");
}
