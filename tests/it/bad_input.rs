//! Hostile and malformed client input: each case gets its documented code and the
//! server keeps serving everyone else.

use serde_json::{Value, json};

use crate::harness::*;

/// After each bad client, a well-behaved client must still connect and get a publication.
async fn still_serving(s: &Server) {
    let (mut ws, _) = Ws::connect(s, &token("ok", json!({}))).await;
    ws.call("subscribe", json!({"channel": "alive"})).await;
    s.publish("alive", json!({"ok": true})).await;
    ws.push_where(|p| p["channel"] == "alive").await;
}

async fn closes_with(s: &Server, frames: &[&str], code: u16) {
    let mut ws = Ws::open(&s.ws_url()).await;
    for f in frames {
        ws.send_text(f).await;
    }
    match ws.closed().await {
        Closed::Code(c, _) => assert_eq!(c, code, "frames {frames:?}"),
        other => panic!("expected close {code} for {frames:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_frames_are_3501() {
    let s = Server::start(json!({})).await;
    let connect = json!({"id": 1, "connect": {"token": token("1", json!({}))}}).to_string();
    for bad in ["{not json", "[1,2,3]", "\"str\"", "", "\n\n", "{\"id\":-5,\"connect\":{}}", "\u{0}\u{1}"] {
        closes_with(&s, &[bad], 3501).await;
    }
    closes_with(&s, &[&connect, "{\"id\":2,\"no_such_command\":{}}"], 3501).await;
    closes_with(&s, &["{\"id\":1,\"subscribe\":{\"channel\":\"x\"}}"], 3501).await;
    closes_with(&s, &[&connect, &connect], 3501).await;
    closes_with(&s, &[&connect, "{}"], 3501).await;
    closes_with(&s, &["{\"id\":1,\"connect\":{\"token\":5}}"], 3501).await;
    still_serving(&s).await;
}

#[tokio::test]
async fn oversized_frame_is_1009() {
    let s = Server::start(json!({"websocket": {"message_size_limit": 1024}})).await;
    let big = format!("{{\"id\":1,\"connect\":{{\"token\":\"{}\"}}}}", "a".repeat(5000));
    closes_with(&s, &[&big], 1009).await;
    still_serving(&s).await;
}

#[tokio::test]
async fn bad_tokens() {
    let s = Server::start(json!({})).await;
    let connect = |t: &str| json!({"id": 1, "connect": {"token": t}}).to_string();
    // Garbage, wrong signature, alg none: invalid token, no reconnect.
    closes_with(&s, &[&connect("garbage")], 3500).await;
    let wrong_key = rotor::auth::sign_hs256(&json!({"sub": "1"}), "another-secret");
    closes_with(&s, &[&connect(&wrong_key)], 3500).await;
    let none = alg_none_token();
    closes_with(&s, &[&connect(&none)], 3500).await;
    // No token and anonymous not allowed: bad request.
    closes_with(&s, &["{\"id\":1,\"connect\":{}}"], 3501).await;
    // Expired: an error reply 109 (the SDK fetches a new token), not a disconnect.
    let mut ws = Ws::open(&s.ws_url()).await;
    let expired = token("1", json!({"exp": now_secs() - 5}));
    let r = ws.call("connect", json!({"token": expired})).await;
    assert_eq!(r["error"], json!({"code": 109, "message": "token expired"}));
    // After a failed connect the next command ends the connection.
    ws.send_text("{\"id\":2,\"subscribe\":{\"channel\":\"x\"}}").await;
    assert_eq!(ws.closed().await, Closed::Code(3501, "bad request".into()));
    still_serving(&s).await;
}

/// NumericDates of the wrong JSON type used to mean "never expires": a float `exp` in
/// the past connected and lived forever. Now a past date of any numeric form is 109
/// (bidirectional) or 3005 (unidirectional); any other JSON type is 3500.
#[tokio::test]
async fn token_dates_of_every_json_type() {
    let s = Server::start(json!({})).await;
    let n = now_secs();
    let bare = |extra: Value| {
        let mut c = json!({"sub": "1"});
        merge(&mut c, &extra);
        rotor::auth::sign_hs256(&c, SECRET)
    };
    let past = [
        json!({"exp": 1_700_000_000.5}),
        json!({"exp": -1.5}),
        json!({"nbf": n as f64 + 30.5}),
        json!({"exp": n + 60, "expire_at": 1_700_000_000.5}),
    ];
    for claims in &past {
        let mut ws = Ws::open(&s.ws_url()).await;
        let r = ws.call("connect", json!({"token": bare(claims.clone())})).await;
        assert_eq!(r["error"]["code"], 109, "{claims}: {r}");
        let mut uni = UniStream::open(&s, json!({"token": bare(claims.clone())})).await;
        let first = uni.next().await.unwrap();
        assert_eq!(first["disconnect"]["code"], 3005, "{claims}: {first}");
    }
    let invalid = [
        json!({"exp": "1700000000"}),
        json!({"exp": true}),
        json!({"exp": 18_446_744_073_709_551_615_u64}),
        json!({"nbf": "0"}),
        json!({"iat": false}),
        json!({"expire_at": "4102444800"}),
    ];
    for claims in &invalid {
        let connect = json!({"id": 1, "connect": {"token": bare(claims.clone())}}).to_string();
        closes_with(&s, &[&connect], 3500).await;
        let mut uni = UniStream::open(&s, json!({"token": bare(claims.clone())})).await;
        let first = uni.next().await.unwrap();
        assert_eq!(first["disconnect"]["code"], 3500, "{claims}: {first}");
    }
    // A non-integer future expiry is kept (rounded down), not dropped.
    let (_ws, r) = Ws::connect(&s, &bare(json!({"exp": n as f64 + 600.9}))).await;
    assert_eq!(r["expires"], true, "{r}");
    assert!((598..=600).contains(&r["ttl"].as_i64().unwrap()), "{r}");
    still_serving(&s).await;
}

/// Subscription tokens follow the same NumericDate rules: 109 for a past float `exp`,
/// invalid (103) for a string one.
#[tokio::test]
async fn subscription_token_dates() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let sub = |exp: Value| rotor::auth::sign_hs256(&json!({"sub": "1", "channel": "$p", "exp": exp}), SECRET);
    let r = ws.call("subscribe", json!({"channel": "$p", "token": sub(json!(1_700_000_000.5))})).await;
    assert_eq!(r["error"]["code"], 109, "{r}");
    let ok = ws.call("subscribe", json!({"channel": "$p", "token": sub(json!(now_secs() as f64 + 600.5))})).await;
    assert_eq!(ok["subscribe"]["expires"], true, "{ok}");
    // An invalid subscription token is 103, as for a bad signature (reference §3.4).
    let (mut ws2, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let r = ws2.call("subscribe", json!({"channel": "$p", "token": sub(json!("4102444800"))})).await;
    assert_eq!(r["error"]["code"], 103, "{r}");
}

#[tokio::test]
async fn labels_over_bounds_are_rejected() {
    let s = Server::start(json!({"client": {"labels": {"max_count": 2}}})).await;
    let many = token("1", json!({"labels": {"a": "1", "b": "2", "c": "3"}}));
    let mut ws = Ws::open(&s.ws_url()).await;
    ws.send_text(&json!({"id": 1, "connect": {"token": many}}).to_string()).await;
    match ws.closed().await {
        Closed::Code(3500, reason) => assert!(reason.contains("label"), "reason should name the labels: {reason}"),
        other => panic!("expected 3500, got {other:?}"),
    }
    let (_ok, _) = Ws::connect(&s, &token("1", json!({"labels": {"a": "1", "b": "2"}}))).await;
}

fn alg_none_token() -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = e.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = e.encode(json!({"sub": "1", "exp": now_secs() + 60}).to_string());
    format!("{header}.{claims}.")
}

#[tokio::test]
async fn binary_and_unknown_namespace_in_uni_subs() {
    let s = Server::start(json!({})).await;
    let mut uni = UniStream::open(&s, json!({"token": token("1", json!({})), "subs": {"nope:x": {}}})).await;
    let first = uni.next().await.unwrap();
    assert_eq!(first["disconnect"]["code"], 3501, "{first}");
    assert!(uni.next().await.is_none());
    still_serving(&s).await;
}

/// Regression: a publication larger than `client.queue_max_size` was queued for every
/// subscriber and disconnected each with 3008 "slow", however fast it read. Now the
/// publish is refused (107) and the subscriber stays connected and gets the next one.
#[tokio::test]
async fn publication_past_the_queue_limit_is_refused_not_3008() {
    let s = Server::start(json!({"client": {"queue_max_size": 4096}})).await;
    let (mut ws, _) = Ws::connect(&s, &token("fast", json!({}))).await;
    ws.call("subscribe", json!({"channel": "big"})).await;
    let (status, r) = s.api("publish", json!({"channel": "big", "data": {"blob": "x".repeat(5000)}})).await;
    assert_eq!((status, &r["error"]["code"]), (200, &json!(107)), "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("client.queue_max_size"), "{r}");
    s.publish("big", json!({"blob": "y".repeat(3000)})).await;
    let push = ws.push_where(|p| p["channel"] == "big").await;
    assert_eq!(push["pub"]["data"]["blob"].as_str().unwrap().len(), 3000, "{push}");
}
