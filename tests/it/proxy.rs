//! Proxies to the application backend: a real HTTP backend (axum on a free loopback
//! port in this process) answers Rotor's connect, refresh, subscribe, publish and RPC
//! proxy requests; every request it saw is kept for assertions.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::harness::{Closed, Server, UniStream, Ws, now_secs, token};

/// One request the backend received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

type Answer = Arc<dyn Fn(&str, &Value, usize) -> (u16, Value, u64) + Send + Sync>;

/// A proxy backend: `answer(path, body, nth call to that path)` gives status, JSON
/// body and a delay in milliseconds.
struct Backend {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    async fn start(answer: impl Fn(&str, &Value, usize) -> (u16, Value, u64) + Send + Sync + 'static) -> Backend {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let answer: Answer = Arc::new(answer);
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (log, answer) = (log.clone(), answer.clone());
            async move {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let path = uri.path().to_string();
                let nth = {
                    let mut l = log.lock();
                    l.push(Seen { path: path.clone(), headers, body: body.clone() });
                    l.iter().filter(|s| s.path == path).count() - 1
                };
                let (status, reply, delay) = answer(&path, &body, nth);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                (StatusCode::from_u16(status).unwrap(), reply.to_string())
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Backend { url, seen }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn calls(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().iter().filter(|s| s.path == path).cloned().collect()
    }
}

fn connect_proxy(b: &Backend, extra: Value) -> Value {
    let mut p = json!({"enabled": true, "endpoint": b.at("/connect"), "timeout": "500ms"});
    crate::harness::merge(&mut p, &extra);
    json!({"client": {"proxy": {"connect": p}}})
}

async fn connect_no_token(s: &Server, params: Value) -> (Ws, Value) {
    let mut ws = Ws::open(&s.ws_url()).await;
    let reply = ws.call("connect", params).await;
    (ws, reply)
}

#[tokio::test]
async fn connect_proxy_result_sets_user_info_data_channels_meta_labels() {
    let exp = now_secs() + 3600;
    let b = Backend::start(move |_, _, _| {
        (
            200,
            json!({"result": {
                "user": "56", "expire_at": exp, "info": {"name": "ann"}, "data": {"hello": 1},
                "channels": ["news"], "meta": {"plan": "gold"}, "labels": {"tenant": "acme"}
            }}),
            0,
        )
    })
    .await;
    let cfg = connect_proxy(
        &b,
        json!({"http_headers": ["Authorization", "X-Both"], "emulated_headers": ["x-emu", "x-both"],
               "http": {"static_headers": {"x-static": "s", "authorization": "static-loses"}}}),
    );
    let s = Server::start(cfg).await;
    let mut ws = Ws::open_with_headers(
        &s.ws_url(),
        &[("authorization", "Bearer t"), ("cookie", "secret"), ("x-both", "transport")],
    )
    .await;
    let reply = ws
        .call(
            "connect",
            json!({"data": {"x": 1}, "name": "it", "version": "1.2",
                   "headers": {"x-emu": "e", "x-both": "emulated", "x-other": "no"}}),
        )
        .await;
    let r = &reply["connect"];
    assert_eq!(r["data"], json!({"hello": 1}), "{reply}");
    assert_eq!(r["expires"], true);
    assert!(r["ttl"].as_u64().unwrap() > 3500);
    assert!(r["subs"]["news"].is_object(), "{reply}");

    let calls = b.calls("/connect");
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.body["client"], r["client"]);
    assert_eq!(c.body["transport"], "websocket");
    assert_eq!(c.body["protocol"], "json");
    assert_eq!(c.body["encoding"], "json");
    assert_eq!(c.body["data"], json!({"x": 1}));
    assert_eq!(c.body["name"], "it");
    assert_eq!(c.body["version"], "1.2");
    assert!(c.body.get("headers").is_none());
    assert_eq!(c.headers["authorization"], "Bearer t");
    assert_eq!(c.headers["x-emu"], "e");
    assert_eq!(c.headers["x-both"], "transport");
    assert_eq!(c.headers["x-static"], "s");
    assert_eq!(c.headers["content-type"], "application/json");
    assert!(c.headers.get("cookie").is_none() && c.headers.get("x-other").is_none());

    let (_, conns) = s.api("connections", json!({"user": "56"})).await;
    let info = conns["result"]["connections"][r["client"].as_str().unwrap()].clone();
    assert_eq!(info["labels"]["tenant"], "acme", "{conns}");
    assert_eq!(info["state"]["meta"], json!({"plan": "gold"}), "{info}");
    let (_, p) = s.api("presence", json!({"channel": "news"})).await;
    let client = p["result"]["presence"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(client["conn_info"], json!({"name": "ann"}));
}

#[tokio::test]
async fn connect_proxy_failures_map_to_codes() {
    let b = Backend::start(|_, body, _| match body["name"].as_str().unwrap_or("") {
        "error" => (200, json!({"error": {"code": 1000, "message": "custom"}}), 0),
        "disconnect" => (200, json!({"disconnect": {"code": 4501, "reason": "go away"}}), 0),
        "both" => (
            200,
            json!({"disconnect": {"code": 4502, "reason": "wins"}, "error": {"code": 1001}, "result": {"user": "x"}}),
            0,
        ),
        "status500" => (500, json!({}), 0),
        "status403" => (403, json!({}), 0),
        "slow" => (200, json!({"result": {"user": "late"}}), 1500),
        "garbage" => (200, json!("not an object"), 0),
        "expired" => (200, json!({"result": {"user": "x", "expire_at": now_secs() - 10}}), 0),
        "empty" => (200, json!({}), 0),
        _ => (200, json!({"result": {"user": "ok"}}), 0),
    })
    .await;
    let mut cfg = connect_proxy(
        &b,
        json!({"http": {"status_to_code_transforms": [
            {"status_code": 403, "to_error": {"code": 403, "message": "forbidden", "temporary": false}}]}}),
    );
    crate::harness::merge(&mut cfg, &json!({"prometheus": {"enabled": true}}));
    let s = Server::start(cfg).await;
    let err = |name: &'static str| {
        let s = &s;
        async move {
            let (_, reply) = connect_no_token(s, json!({"name": name})).await;
            reply["error"].clone()
        }
    };
    assert_eq!(err("error").await, json!({"code": 1000, "message": "custom"}));
    assert_eq!(err("status500").await, json!({"code": 100, "message": "internal server error", "temporary": true}));
    assert_eq!(err("slow").await["code"], 100);
    assert_eq!(err("garbage").await["code"], 100);
    assert_eq!(err("status403").await, json!({"code": 403, "message": "forbidden"}));
    assert_eq!(err("expired").await["code"], 110);
    for (name, code) in [("disconnect", 4501), ("both", 4502), ("empty", 3501)] {
        let mut ws = Ws::open(&s.ws_url()).await;
        ws.send_text(&json!({"id": 1, "connect": {"name": name}}).to_string()).await;
        match ws.closed().await {
            Closed::Code(c, _) => assert_eq!(c, code, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Unidirectional clients get disconnect 3004 for a backend failure.
    let mut uni = UniStream::open(&s, json!({"name": "status500"})).await;
    let push = uni.next_push().await.unwrap();
    assert_eq!(push["disconnect"]["code"], 3004, "{push}");
    let mut uni = UniStream::open(&s, json!({"name": "disconnect"})).await;
    assert_eq!(uni.next_push().await.unwrap()["disconnect"]["code"], 4501);
    // A healthy answer still connects.
    let (_, ok) = connect_no_token(&s, json!({"name": "fine"})).await;
    assert!(ok["connect"]["client"].is_string(), "{ok}");
    // Every call was timed; the unavailable backend (two HTTP 500s, the timeout, the
    // unparsable body) counts as a proxy error, answers the application chose do not.
    let calls = b.calls("/connect").len() as f64;
    let m = crate::metrics::scrape_until(&s, "every connect proxy call timed", |m| {
        m.get("centrifugo_proxy_duration_seconds_count", &[("type", "connect")]) == calls
    })
    .await;
    assert_eq!(m.get("centrifugo_proxy_errors", &[("protocol", "http"), ("type", "connect")]), 4.0);
    assert_eq!(m.get("centrifugo_proxy_errors", &[("type", "refresh")]), 0.0);
    assert_eq!(m.get("centrifugo_proxy_duration_seconds_count", &[("type", "rpc")]), 0.0);
}

#[tokio::test]
async fn connect_proxy_labels_are_bounded_like_token_labels() {
    let b = Backend::start(|_, body, _| {
        let labels = match body["name"].as_str().unwrap() {
            "many" => Value::Object((0..5).map(|i| (format!("k{i}"), json!("v"))).collect()),
            "long" => json!({"k": "x".repeat(40)}),
            "number" => json!({"k": 1}),
            _ => json!({"k": "v"}),
        };
        (200, json!({"result": {"user": "u", "labels": labels}}), 0)
    })
    .await;
    let mut cfg = connect_proxy(&b, json!({}));
    crate::harness::merge(&mut cfg, &json!({"client": {"labels": {"max_count": 4, "max_value_length": 32}}}));
    let s = Server::start(cfg).await;
    for name in ["many", "long", "number"] {
        let mut ws = Ws::open(&s.ws_url()).await;
        ws.send_text(&json!({"id": 1, "connect": {"name": name}}).to_string()).await;
        match ws.closed().await {
            Closed::Code(c, reason) => assert!(c == 3500 && reason.contains("labels"), "{name}: {c} {reason}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let (_, ok) = connect_no_token(&s, json!({"name": "fine"})).await;
    assert!(ok["connect"].is_object(), "{ok}");
}

#[tokio::test]
async fn token_skips_the_proxy_and_proxy_labels_need_no_token() {
    let b =
        Backend::start(|_, _, _| (200, json!({"result": {"user": "proxy-user", "labels": {"src": "proxy"}}}), 0)).await;
    let s = Server::start(connect_proxy(&b, json!({}))).await;
    let (_ws, _) = Ws::connect(&s, &token("token-user", json!({"labels": {"src": "token"}}))).await;
    assert!(b.calls("/connect").is_empty(), "a token never goes to the connect proxy");
    let (_ws2, reply) = connect_no_token(&s, json!({})).await;
    assert!(reply["connect"].is_object());
    for (user, src) in [("proxy-user", "proxy"), ("token-user", "token")] {
        let (_, conns) = s.api("connections", json!({"user": user})).await;
        let list = conns["result"]["connections"].as_object().unwrap();
        assert_eq!(list.len(), 1, "{conns}");
        assert_eq!(list.values().next().unwrap()["labels"]["src"], src, "{conns}");
    }
}

#[tokio::test]
async fn refresh_proxy_retries_errors_extends_then_expires() {
    let b = Backend::start(|path, _, nth| match (path, nth) {
        ("/connect", _) => (200, json!({"result": {"user": "r", "expire_at": now_secs() + 1, "meta": {"m": 1}}}), 0),
        ("/refresh", 0) => (500, json!({}), 0),
        ("/refresh", 1) => (200, json!({"result": {"expire_at": now_secs() + 1}}), 0),
        _ => (200, json!({"result": {"expired": true}}), 0),
    })
    .await;
    let mut cfg = connect_proxy(&b, json!({}));
    crate::harness::merge(
        &mut cfg,
        &json!({"client": {"ping_interval": "1s", "pong_timeout": "500ms",
                "proxy": {"refresh": {"enabled": true, "endpoint": b.at("/refresh"), "include_connection_meta": true}}}}),
    );
    let s = Server::start(cfg).await;
    let mut uni = UniStream::open(&s, json!({"subs": {"news": {}}})).await;
    let connect = uni.next_push().await.unwrap();
    assert!(connect["connect"].get("expires").is_none(), "server-side refresh: no client expiry {connect}");
    // After the first (failed) refresh the connection is still served.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while b.calls("/refresh").is_empty() {
        assert!(std::time::Instant::now() < deadline, "refresh proxy never called");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.publish("news", json!({"still": "here"})).await;
    let p = uni.next_push().await.unwrap();
    assert_eq!(p["pub"]["data"], json!({"still": "here"}), "{p}");
    let end = loop {
        let m = uni.next_push().await.expect("stream ended without disconnect");
        if m.get("disconnect").is_some() {
            break m;
        }
    };
    assert_eq!(end["disconnect"]["code"], 3005, "{end}");
    let calls = b.calls("/refresh");
    assert!(calls.len() >= 3, "{calls:?}");
    let body = &calls[0].body;
    assert_eq!(body["user"], "r");
    assert_eq!(body["transport"], "uni_http_stream");
    assert_eq!(body["meta"], json!({"m": 1}));
}

fn channel_proxies(b: &Backend) -> Value {
    json!({
        "channel": {
            "proxy": {"subscribe": {"endpoint": b.at("/subscribe")}, "publish": {"endpoint": b.at("/publish")}},
            "namespaces": [
                {"name": "sp", "subscribe_proxy_enabled": true},
                {"name": "pp", "allow_subscribe_for_client": true, "publish_proxy_enabled": true}
            ]
        },
        "rpc": {
            "proxy": {"endpoint": b.at("/rpc"), "http_headers": ["x-token"]},
            "without_namespace": {"proxy_enabled": true},
            "namespaces": [{"name": "off"}]
        }
    })
}

fn channel_answer(path: &str, body: &Value) -> (u16, Value, u64) {
    let ch = body["channel"].as_str().unwrap_or("");
    match path {
        "/subscribe" if ch.ends_with("deny") => (200, json!({"error": {"code": 403, "message": "nope"}}), 0),
        "/subscribe" => (200, json!({"result": {"info": {"role": "x"}, "data": {"welcome": true}}}), 0),
        "/publish" if body["data"]["bad"] == true => (200, json!({"error": {"code": 1403, "message": "bad"}}), 0),
        "/publish" => (200, json!({"result": {"data": {"rewritten": body["data"]}}}), 0),
        "/rpc" if body["method"] == "fail" => (500, json!({}), 0),
        "/rpc" if body["method"] == "custom" => (200, json!({"error": {"code": 1500, "message": "custom"}}), 0),
        "/rpc" => (200, json!({"result": {"data": {"echo": body["data"], "user": body["user"]}}}), 0),
        _ => (404, json!({}), 0),
    }
}

#[tokio::test]
async fn subscribe_and_publish_proxies_decide_per_namespace() {
    let b = Backend::start(|p, body, _| channel_answer(p, body)).await;
    let s = Server::start(channel_proxies(&b)).await;
    let (mut ws, _) = Ws::connect(&s, &token("42", json!({}))).await;
    let r = ws.call("subscribe", json!({"channel": "sp:room", "data": {"ask": 1}})).await;
    assert_eq!(r["subscribe"]["data"], json!({"welcome": true}), "{r}");
    let sub = &b.calls("/subscribe")[0].body;
    assert_eq!((sub["channel"].as_str(), sub["user"].as_str()), (Some("sp:room"), Some("42")));
    assert_eq!(sub["data"], json!({"ask": 1}));
    let r = ws.call("subscribe", json!({"channel": "sp:deny"})).await;
    assert_eq!(r["error"]["code"], 403, "{r}");

    let r = ws.call("subscribe", json!({"channel": "pp:feed"})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    let r = ws.call("publish", json!({"channel": "pp:feed", "data": {"n": 1}})).await;
    assert!(r.get("publish").is_some(), "{r}");
    let p = ws.push_where(|p| p["channel"] == "pp:feed").await;
    assert_eq!(p["pub"]["data"], json!({"rewritten": {"n": 1}}), "{p}");
    let r = ws.call("publish", json!({"channel": "pp:feed", "data": {"bad": true}})).await;
    assert_eq!(r["error"]["code"], 1403, "{r}");
    // Without publish_proxy_enabled the namespace rules apply (no publish permission here).
    let r = ws.call("publish", json!({"channel": "sp:room", "data": {}})).await;
    assert_eq!(r["error"]["code"], 103, "{r}");
}

#[tokio::test]
async fn named_proxies_are_picked_per_namespace() {
    // One backend playing two applications: the unnamed subscribe proxy answers at
    // /default-subscribe, the named proxy "billing" at /billing (one endpoint for
    // every kind of call, as a named proxy is in Centrifugo).
    let b = Backend::start(|p, _, _| {
        let who = if p.starts_with("/billing") { "billing" } else { "default" };
        (200, json!({"result": {"data": {"by": who}}}), 0)
    })
    .await;
    let s = Server::start(json!({
        "proxies": [{"name": "billing", "endpoint": b.at("/billing"), "http_headers": ["x-bill"]}],
        "channel": {
            "proxy": {"subscribe": {"endpoint": b.at("/default-subscribe")}},
            "namespaces": [
                {"name": "pay", "subscribe_proxy_enabled": true, "subscribe_proxy_name": "billing",
                 "publish_proxy_enabled": true, "publish_proxy_name": "billing"},
                {"name": "chat", "subscribe_proxy_enabled": true, "subscribe_proxy_name": "default"}
            ]
        },
        "rpc": {"namespaces": [{"name": "bill", "proxy_enabled": true, "proxy_name": "billing"}]}
    }))
    .await;
    let mut ws = Ws::open_with_headers(&s.ws_url(), &[("x-bill", "b1")]).await;
    let r = ws.call("connect", json!({"token": token("9", json!({}))})).await;
    assert!(r.get("connect").is_some(), "{r}");
    let r = ws.call("subscribe", json!({"channel": "pay:feed"})).await;
    assert_eq!(r["subscribe"]["data"], json!({"by": "billing"}), "{r}");
    let r = ws.call("subscribe", json!({"channel": "chat:room"})).await;
    assert_eq!(r["subscribe"]["data"], json!({"by": "default"}), "{r}");
    let r = ws.call("publish", json!({"channel": "pay:feed", "data": {"n": 1}})).await;
    assert!(r.get("publish").is_some(), "{r}");
    let p = ws.push_where(|p| p["channel"] == "pay:feed").await;
    assert_eq!(p["pub"]["data"], json!({"by": "billing"}), "{p}");
    let r = ws.call("rpc", json!({"method": "bill:charge", "data": {}})).await;
    assert_eq!(r["rpc"]["data"], json!({"by": "billing"}), "{r}");
    // No proxy for methods outside the namespace: 104, as without any RPC proxy.
    let r = ws.call("rpc", json!({"method": "other", "data": {}})).await;
    assert_eq!(r["error"]["code"], 104, "{r}");
    let billing = b.calls("/billing");
    assert_eq!(billing.len(), 3, "subscribe, publish and rpc went to the named proxy: {billing:?}");
    assert!(billing.iter().all(|c| c.headers["x-bill"] == "b1"), "its http_headers are forwarded");
    assert_eq!(billing[2].body["method"], "bill:charge");
    assert_eq!(b.calls("/default-subscribe").len(), 1);
}

#[tokio::test]
async fn rpc_proxy_answers_and_forwards_headers() {
    let b = Backend::start(|p, body, _| channel_answer(p, body)).await;
    let s = Server::start(channel_proxies(&b)).await;
    let mut ws = Ws::open_with_headers(&s.ws_url(), &[("x-token", "abc"), ("x-private", "no")]).await;
    let r = ws.call("connect", json!({"token": token("7", json!({}))})).await;
    assert!(r.get("connect").is_some(), "{r}");
    let r = ws.call("rpc", json!({"method": "hello", "data": {"a": 1}})).await;
    assert_eq!(r["rpc"]["data"], json!({"echo": {"a": 1}, "user": "7"}), "{r}");
    let call = &b.calls("/rpc")[0];
    assert_eq!(call.headers["x-token"], "abc");
    assert!(call.headers.get("x-private").is_none());
    assert_eq!(ws.call("rpc", json!({"method": "fail"})).await["error"]["code"], 100);
    assert_eq!(ws.call("rpc", json!({"method": "custom"})).await["error"]["code"], 1500);
    assert_eq!(ws.call("rpc", json!({"method": "off:x"})).await["error"]["code"], 104);
    assert_eq!(ws.call("rpc", json!({"method": "unknown:x"})).await["error"]["code"], 104);
}

#[tokio::test]
async fn sub_refresh_proxy_extends_then_unsubscribes() {
    let b = Backend::start(|path, _, nth| match (path, nth) {
        ("/subscribe", _) => (200, json!({"result": {"expire_at": now_secs() + 1}}), 0),
        ("/sub_refresh", 0) => (500, json!({}), 0),
        ("/sub_refresh", 1) => (200, json!({"result": {"expire_at": now_secs() + 1, "info": {"v": 2}}}), 0),
        _ => (200, json!({"result": {"expired": true}}), 0),
    })
    .await;
    let cfg = json!({
        "channel": {
            "proxy": {"subscribe": {"endpoint": b.at("/subscribe")}, "sub_refresh": {"endpoint": b.at("/sub_refresh")}},
            "namespaces": [{"name": "sr", "subscribe_proxy_enabled": true, "sub_refresh_proxy_enabled": true}]
        }
    });
    let s = Server::start(cfg).await;
    let (mut ws, _) = Ws::connect(&s, &token("9", json!({}))).await;
    let r = ws.call("subscribe", json!({"channel": "sr:room"})).await;
    assert!(r["subscribe"].get("expires").is_none(), "the server refreshes it: {r}");
    // error (retried after 3 s), extension by 1 s, then expired: about 6 s in all.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let unsub = loop {
        if let Some(p) = ws.take_push(|p| p["channel"] == "sr:room" && p.get("unsubscribe").is_some()) {
            break p;
        }
        ws.read_frame(deadline).await.unwrap_or_else(|c| panic!("{c:?}; calls {:?}", b.calls("/sub_refresh")));
    };
    assert_eq!(unsub["unsubscribe"]["code"], 2501, "{unsub}");
    let calls = b.calls("/sub_refresh");
    assert!(calls.len() >= 3, "{calls:?}");
    assert_eq!(calls[0].body["channel"], "sr:room");
    assert_eq!(calls[0].body["user"], "9");
}

/// The refresh result's `info` and `meta` replace the connection's: a later client
/// publication and the presence entry carry the new info, the connections API shows
/// the new meta and the next refresh request sends it. A `b64info` that is not base64
/// is a failure: retried, the connection kept.
#[tokio::test]
async fn refresh_proxy_updates_info_and_meta() {
    let b = Backend::start(|path, _, nth| match (path, nth) {
        ("/connect", _) => {
            (200, json!({"result": {"user": "r", "expire_at": now_secs() + 1, "info": {"v": 1}, "meta": {"m": 1}}}), 0)
        }
        ("/refresh", 0) => (200, json!({"result": {"expire_at": now_secs() + 1, "b64info": "%%% not base64"}}), 0),
        ("/refresh", 1) => {
            (200, json!({"result": {"expire_at": now_secs() + 1, "info": {"v": 2}, "meta": {"m": 2}}}), 0)
        }
        _ => (200, json!({"result": {"expire_at": now_secs() + 3600}}), 0),
    })
    .await;
    let mut cfg = connect_proxy(&b, json!({}));
    crate::harness::merge(
        &mut cfg,
        &json!({"client": {"proxy": {"refresh": {"enabled": true, "endpoint": b.at("/refresh"), "include_connection_meta": true}}}}),
    );
    let s = Server::start(cfg).await;
    let (mut ws, reply) = connect_no_token(&s, json!({})).await;
    assert_eq!(reply["connect"].get("expires"), None, "{reply}");
    let r = ws.call("subscribe", json!({"channel": "news"})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while b.calls("/refresh").len() < 3 {
        assert!(std::time::Instant::now() < deadline, "refresh calls: {:?}", b.calls("/refresh"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = b.calls("/refresh");
    assert_eq!(calls[0].body["meta"], json!({"m": 1}));
    assert_eq!(calls[1].body["meta"], json!({"m": 1}), "the undecodable answer changed nothing");
    assert_eq!(calls[2].body["meta"], json!({"m": 2}), "the next refresh sends the new meta");

    let (_, conns) = s.api("connections", json!({"user": "r"})).await;
    let conn = conns["result"]["connections"].as_object().unwrap().values().next().cloned().unwrap();
    assert_eq!(conn["state"]["meta"], json!({"m": 2}), "{conns}");
    let (_, presence) = s.api("presence", json!({"channel": "news"})).await;
    let entry = presence["result"]["presence"].as_object().unwrap().values().next().cloned().unwrap();
    assert_eq!(entry["conn_info"], json!({"v": 2}), "{presence}");
    let r = ws.call("publish", json!({"channel": "news", "data": {"x": 1}})).await;
    assert!(r.get("publish").is_some(), "{r}");
    let p = ws.push_where(|p| p["pub"].is_object()).await;
    assert_eq!(p["pub"]["info"]["conn_info"], json!({"v": 2}), "{p}");
    assert_eq!(p["pub"]["info"]["user"], "r", "{p}");
}
