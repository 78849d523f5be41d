//! Publication tags filter (`tf` in SubscribeRequest): compiled by the filter
//! compiler, evaluated per subscriber on each publication's `tags`, applied to live
//! delivery and to recovered publications; refused (107) where the namespace does not
//! allow it or the filter is invalid.

use serde_json::{Value, json};

use crate::harness::*;

async fn publish(s: &Server, channel: &str, n: u32, tags: Value) {
    let (_, r) = s.api("publish", json!({"channel": channel, "data": {"n": n}, "tags": tags})).await;
    assert!(r.get("result").is_some(), "{r}");
}

#[tokio::test]
async fn tags_filter_selects_publications_per_subscriber() {
    let s = Server::start(json!({})).await;
    let (mut filtered, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let (mut plain, _) = Ws::connect(&s, &token("2", json!({}))).await;
    let tf = json!({"op": "and", "nodes": [
        {"key": "ticker", "cmp": "eq", "val": "AAPL"},
        {"key": "price", "cmp": "gte", "val": "100"}
    ]});
    let r = filtered.call("subscribe", json!({"channel": "tags:quotes", "tf": tf, "flag": 1})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    plain.call("subscribe", json!({"channel": "tags:quotes"})).await;

    publish(&s, "tags:quotes", 1, json!({"ticker": "AAPL", "price": "99.5"})).await;
    publish(&s, "tags:quotes", 2, json!({"ticker": "MSFT", "price": "300"})).await;
    publish(&s, "tags:quotes", 3, json!({"ticker": "AAPL", "price": "100.00"})).await;
    publish(&s, "tags:quotes", 4, json!({})).await;

    // The unfiltered subscriber gets all four, in order; the filtered one only n=3.
    for n in 1..=4 {
        let p = plain.push_where(|p| p.get("pub").is_some()).await;
        assert_eq!(p["pub"]["data"]["n"], n);
    }
    let p = filtered.push_where(|p| p.get("pub").is_some()).await;
    assert_eq!(p["pub"]["data"]["n"], 3);
    assert_eq!(p["pub"]["tags"]["ticker"], "AAPL");
    // Nothing else arrives for the filtered subscriber: a later matching publication
    // is the next one it sees.
    publish(&s, "tags:quotes", 5, json!({"ticker": "AAPL", "price": "1e3"})).await; // not a decimal → no match
    publish(&s, "tags:quotes", 6, json!({"ticker": "AAPL", "price": "120"})).await;
    let p = filtered.push_where(|p| p.get("pub").is_some()).await;
    assert_eq!(p["pub"]["data"]["n"], 6);
}

#[tokio::test]
async fn recovery_omits_filtered_publications() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let r = ws.call("subscribe", json!({"channel": "tags:rec", "recoverable": true})).await;
    let epoch = r["subscribe"]["epoch"].as_str().unwrap().to_string();
    ws.call("unsubscribe", json!({"channel": "tags:rec"})).await;
    for (n, kind) in [(1, "a"), (2, "b"), (3, "a")] {
        publish(&s, "tags:rec", n, json!({"kind": kind})).await;
    }
    let tf = json!({"key": "kind", "cmp": "eq", "val": "a"});
    let r = ws
        .call("subscribe", json!({"channel": "tags:rec", "recover": true, "offset": 0, "epoch": epoch, "tf": tf}))
        .await;
    let sub = &r["subscribe"];
    assert_eq!(sub["recovered"], true, "{r}");
    let ns: Vec<i64> =
        sub["publications"].as_array().unwrap().iter().map(|p| p["data"]["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, vec![1, 3]);
}

#[tokio::test]
async fn tags_filter_errors() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let ok = json!({"key": "k", "cmp": "eq", "val": "v"});
    // Namespace without allow_tags_filter.
    let r = ws.call("subscribe", json!({"channel": "chat:x", "tf": ok})).await;
    assert_eq!(r["error"]["code"], 107, "{r}");
    let r = ws.call("subscribe", json!({"channel": "plain", "tf": ok})).await;
    assert_eq!(r["error"]["code"], 107, "{r}");
    // Invalid filters.
    let mut deep = ok.clone();
    for _ in 0..100 {
        deep = json!({"op": "not", "nodes": [deep]});
    }
    for bad in [
        json!({"key": "k", "cmp": "like", "val": "v"}),
        json!({"key": "k", "cmp": "in", "val": "v"}),
        json!({"op": "not", "nodes": []}),
        json!({"op": "xor", "nodes": [ok]}),
        json!("a string"),
        deep,
    ] {
        let r = ws.call("subscribe", json!({"channel": "tags:y", "tf": bad})).await;
        assert_eq!(r["error"]["code"], 107, "{r}");
    }
    // The connection is still usable.
    let r = ws.call("subscribe", json!({"channel": "tags:y", "tf": ok})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
}
