//! The connections API over real HTTP with real WebSocket and uni_http_stream clients
//! carrying `labels` and `meta` in their tokens: label filters, CEL expressions (both
//! translated and interpreted), their AND with `user`, paging with `limit`/`cursor`,
//! validation errors, and targeted ops by labels (`all_users`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::*;

/// A small fleet: (user, region, tier, transport). Returns the server, the live
/// WebSocket clients (kept open) and a map client id → (user, region, tier).
struct Fleet {
    server: Server,
    ws: Vec<Ws>,
    uni: Vec<UniStream>,
    /// (client id, user, region, tier)
    clients: Vec<(String, String, String, String)>,
}

const MEMBERS: [(&str, &str, &str, bool); 8] = [
    ("1", "eu", "pro", false),
    ("1", "us", "free", false),
    ("2", "eu", "free", false),
    ("2", "eu", "enterprise", true),
    ("3", "us", "pro", false),
    ("3", "asia", "pro", true),
    ("4", "eu", "pro", false),
    ("5", "us", "enterprise", false),
];

async fn fleet() -> Fleet {
    let server = Server::start(json!({})).await;
    let mut f = Fleet { server, ws: Vec::new(), uni: Vec::new(), clients: Vec::new() };
    for (i, (user, region, tier, uni)) in MEMBERS.iter().enumerate() {
        let plan = if i % 2 == 0 { "gold" } else { "basic" };
        let t = token(user, json!({"labels": {"region": region, "tier": tier}, "meta": {"plan": plan, "n": i}}));
        let client = if *uni {
            let mut u = UniStream::open(&f.server, json!({"token": t, "name": "uni-app"})).await;
            let c = u.next().await.unwrap()["connect"]["client"].as_str().unwrap().to_string();
            f.uni.push(u);
            c
        } else {
            let (mut ws, r) = Ws::connect(&f.server, &t).await;
            if i == 0 {
                ws.call("subscribe", json!({"channel": "news"})).await;
            }
            f.ws.push(ws);
            r["client"].as_str().unwrap().to_string()
        };
        f.clients.push((client, user.to_string(), region.to_string(), tier.to_string()));
    }
    f
}

impl Fleet {
    fn expect(&self, pred: impl Fn(&str, &str, &str) -> bool) -> BTreeSet<String> {
        self.clients.iter().filter(|(_, u, r, t)| pred(u, r, t)).map(|(c, ..)| c.clone()).collect()
    }

    async fn list(&self, body: Value) -> BTreeSet<String> {
        let (status, r) = self.server.api("connections", body.clone()).await;
        assert_eq!(status, 200);
        let conns = r["result"]["connections"].as_object().unwrap_or_else(|| panic!("{body} -> {r}"));
        conns.keys().cloned().collect()
    }

    async fn error(&self, method: &str, body: Value) -> (i64, String) {
        let (_, r) = self.server.api(method, body.clone()).await;
        let e = &r["error"];
        assert!(e.is_object(), "{method} {body} should fail, got {r}");
        (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap().to_string())
    }
}

fn eq(key: &str, val: &str) -> Value {
    json!({"key": key, "cmp": "eq", "val": val})
}

#[tokio::test]
async fn label_filter_and_user_select_exactly() {
    let f = fleet().await;
    assert_eq!(f.list(json!({"label_filter": eq("region", "eu")})).await, f.expect(|_, r, _| r == "eu"));
    let pro_or_ent = json!({"op": "and", "nodes": [eq("region", "eu"), {"key": "tier", "cmp": "in", "vals": ["pro", "enterprise"]}]});
    assert_eq!(
        f.list(json!({"label_filter": pro_or_ent})).await,
        f.expect(|_, r, t| r == "eu" && (t == "pro" || t == "enterprise"))
    );
    let not_us = json!({"op": "not", "nodes": [eq("region", "us")]});
    assert_eq!(f.list(json!({"label_filter": not_us})).await, f.expect(|_, r, _| r != "us"));
    // neq matches a missing key: nobody has `beta`, so everyone matches.
    assert_eq!(f.list(json!({"label_filter": {"key": "beta", "cmp": "neq", "val": "1"}})).await.len(), MEMBERS.len());
    assert!(f.list(json!({"label_filter": eq("beta", "1")})).await.is_empty());
    // AND with user, with and without cel's empty expression (cent sends it).
    assert_eq!(
        f.list(json!({"user": "2", "expression": "", "label_filter": eq("tier", "free")})).await,
        f.expect(|u, _, t| u == "2" && t == "free")
    );
    // The shape is the by-user shape.
    let (_, r) = f.server.api("connections", json!({"label_filter": eq("tier", "enterprise")})).await;
    for info in r["result"]["connections"].as_object().unwrap().values() {
        assert_eq!(info["labels"]["tier"], "enterprise");
        assert!(info["transport"].is_string() && info["protocol"] == "json");
        assert!(info["state"]["meta"]["plan"].is_string());
    }
}

#[tokio::test]
async fn cel_expressions_translated_and_interpreted() {
    let f = fleet().await;
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (r#"labels.region == "eu""#, f.expect(|_, r, _| r == "eu")),
        (
            r#"labels.region == "eu" && labels.tier in ["pro", "enterprise"]"#,
            f.expect(|_, r, t| r == "eu" && t != "free"),
        ),
        (r#"!(labels.region == "us") || labels.tier == "pro""#, f.expect(|_, r, t| r != "us" || t == "pro")),
        (r#"has(labels.tier) && labels.tier.startsWith("ent")"#, f.expect(|_, _, t| t == "enterprise")),
        (r#"user == "3" && labels.tier == "pro""#, f.expect(|u, _, t| u == "3" && t == "pro")),
        (r#"user == "1""#, f.expect(|u, _, _| u == "1")),
        // Several users: each one's connections from the index.
        (r#"user in ["1", "4"] && labels.region == "eu""#, f.expect(|u, r, _| (u == "1" || u == "4") && r == "eu")),
        (r#"user in ["2", "3", "9"]"#, f.expect(|u, _, _| u == "2" || u == "3")),
        (r#"user in ["2", "3"] && user in ["3", "4"]"#, f.expect(|u, _, _| u == "3")),
        // Outside the label subset: the interpreter.
        (r#"meta.plan == "gold" && labels.region == "eu""#, {
            let gold: BTreeSet<String> = f.clients.iter().step_by(2).map(|c| c.0.clone()).collect();
            gold.intersection(&f.expect(|_, r, _| r == "eu")).cloned().collect()
        }),
        // The per-user index, then the interpreter on that user's connections.
        (r#"user == "2" && meta.n > 2"#, BTreeSet::from([f.clients[3].0.clone()])),
        (r#"transport == "uni_http_stream""#, {
            MEMBERS.iter().zip(&f.clients).filter(|(m, _)| m.3).map(|(_, c)| c.0.clone()).collect()
        }),
        // `transport` and `protocol` are translated too: the survey reads them from the
        // columns beside the labels, alone, with labels, and after the user index.
        (r#"transport == "websocket" && labels.region == "eu""#, {
            let ws: BTreeSet<String> = uni_members(&f, false);
            ws.intersection(&f.expect(|_, r, _| r == "eu")).cloned().collect()
        }),
        (r#"protocol == "json" && transport.startsWith("uni_") || labels.tier == "free""#, {
            uni_members(&f, true).union(&f.expect(|_, _, t| t == "free")).cloned().collect()
        }),
        (r#"user == "2" && transport != "uni_http_stream""#, BTreeSet::from([f.clients[2].0.clone()])),
        (r#"protocol == "protobuf""#, BTreeSet::new()),
        // A label key in the attributes' namespace reads no attribute.
        (r#"labels["\u0000transport"] == "websocket""#, BTreeSet::new()),
        (r#""news" in channels"#, BTreeSet::from([f.clients[0].0.clone()])),
        (r#"connected_at > 0 && user in ["4", "5"]"#, f.expect(|u, _, _| u == "4" || u == "5")),
        (r#"labels.nokey == "x""#, BTreeSet::new()),
        // The native evaluator's subset (not translatable, not the cel crate either).
        (r#"channels.exists(c, c.startsWith("new")) && size(channels) == 1"#, BTreeSet::from([f.clients[0].0.clone()])),
        (r#"labels.region == "eu" ? labels.tier != "free" : false"#, f.expect(|_, r, t| r == "eu" && t != "free")),
        (r#"labels.nokey == "x" || user in ["4", "5"]"#, f.expect(|u, _, _| u == "4" || u == "5")),
        // `meta` read in place and arithmetic, natively too.
        (
            r#"meta.n % 2 == 0 && "plan" in meta && size(meta) == 2"#,
            f.clients.iter().step_by(2).map(|c| c.0.clone()).collect(),
        ),
        (r#"meta.n * 10 + 1 == 31 || meta.plan.startsWith("x")"#, BTreeSet::from([f.clients[3].0.clone()])),
        (r#"meta.nokey == 1 || meta.n > 100"#, BTreeSet::new()),
    ];
    for (expr, want) in cases {
        assert_eq!(f.list(json!({"expression": expr})).await, want, "expression {expr}");
    }
    // AND of all three.
    let got = f
        .list(json!({"user": "2", "expression": r#"labels.region == "eu""#, "label_filter": eq("tier", "enterprise")}))
        .await;
    assert_eq!(got, f.expect(|u, r, t| u == "2" && r == "eu" && t == "enterprise"));
    // Contradicting users select nothing.
    assert!(f.list(json!({"user": "2", "expression": r#"user == "3""#})).await.is_empty());
    assert!(f.list(json!({"user": "1", "expression": r#"user in ["2", "3"]"#})).await.is_empty());
    assert_eq!(f.list(json!({"user": "3", "expression": r#"user in ["2", "3"]"#})).await, f.expect(|u, _, _| u == "3"));
}

/// The clients on a unidirectional stream (`true`) or on WebSocket (`false`).
fn uni_members(f: &Fleet, uni: bool) -> BTreeSet<String> {
    MEMBERS.iter().zip(&f.clients).filter(|(m, _)| m.3 == uni).map(|(_, c)| c.0.clone()).collect()
}

/// A label filter reads labels only: a key where the attributes are kept is a key no
/// connection has, for `connections` and for targeted ops.
#[tokio::test]
async fn a_label_filter_never_reads_an_attribute() {
    let f = fleet().await;
    let key = rotor::filter::attribute::TRANSPORT;
    assert!(f.list(json!({"label_filter": eq(key, "websocket")})).await.is_empty());
    let all = f.expect(|_, _, _| true);
    assert_eq!(f.list(json!({"label_filter": {"key": key, "cmp": "neq", "val": "websocket"}})).await, all);
    assert_eq!(f.list(json!({"label_filter": {"key": key, "cmp": "nex"}})).await, all);
    let (status, r) =
        f.server.api("disconnect", json!({"all_users": true, "label_filter": eq(key, "websocket")})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(f.list(json!({"label_filter": {"key": "region", "cmp": "ex"}})).await, all, "nobody was disconnected");
}

#[tokio::test]
async fn validation_errors_are_107_with_paths() {
    let f = fleet().await;
    let bad = json!({"op": "and", "nodes": [eq("region", "eu"), {"key": "tier", "cmp": "like", "val": "x"}]});
    let (code, msg) = f.error("connections", json!({"label_filter": bad})).await;
    assert_eq!(code, 107);
    assert!(msg.contains("label_filter.nodes[1]"), "{msg}");
    let (code, msg) =
        f.error("connections", json!({"label_filter": {"key": "k", "cmp": "in", "vals": "notalist"}})).await;
    assert_eq!(code, 107, "{msg}");
    let mut deep = eq("a", "b");
    for _ in 0..40 {
        deep = json!({"op": "not", "nodes": [deep]});
    }
    let (code, msg) = f.error("connections", json!({"label_filter": deep})).await;
    assert_eq!(code, 107);
    assert!(msg.contains("deep") || msg.contains("depth"), "{msg}");
    let (code, msg) = f.error("connections", json!({"expression": "labels.region == "})).await;
    assert_eq!(code, 107);
    assert!(msg.starts_with("expression"), "{msg}");
    let (code, _) = f.error("connections", json!({"expression": "x".repeat(100_000)})).await;
    assert_eq!(code, 107);
    let (code, _) = f.error("connections", json!({"user": "1", "cursor": "not-a-cursor"})).await;
    assert_eq!(code, 107);
    // The server still serves.
    assert_eq!(f.list(json!({"user": "1"})).await.len(), 2);
}

#[tokio::test]
async fn limit_and_cursor_page_without_duplicates() {
    let f = fleet().await;
    let all = f.expect(|_, _, _| true);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let filter = json!({"key": "region", "cmp": "ex"});
    for page in 0.. {
        assert!(page < 10, "paging does not end");
        let (_, r) = f.server.api("connections", json!({"label_filter": filter, "limit": 3, "cursor": cursor})).await;
        let conns = r["result"]["connections"].as_object().unwrap();
        assert!(conns.len() <= 3);
        assert_eq!(r["result"]["total"], all.len(), "the total of the whole listing on every page: {r}");
        seen.extend(conns.keys().cloned());
        match r["result"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), all.len(), "every connection exactly once: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);
    // Without limit there is no cursor.
    let (_, r) = f.server.api("connections", json!({"label_filter": filter})).await;
    assert!(r["result"].get("next_cursor").is_none());
}

#[tokio::test]
async fn targeted_ops_by_labels() {
    let mut f = fleet().await;
    // Guard rails.
    let (code, msg) = f.error("disconnect", json!({"all_users": true})).await;
    assert_eq!(code, 107);
    assert!(msg.contains("label_filter"), "{msg}");
    let (code, _) =
        f.error("disconnect", json!({"all_users": true, "user": "1", "label_filter": eq("region", "eu")})).await;
    assert_eq!(code, 107);

    // subscribe fleet-wide by label: only eu connections get the push.
    let (_, r) = f
        .server
        .api("subscribe", json!({"all_users": true, "channel": "eu-news", "label_filter": eq("region", "eu")}))
        .await;
    assert_eq!(r, json!({"result": {}}));
    let (_, r) = f.server.api("connections", json!({"expression": r#""eu-news" in channels"#})).await;
    let subscribed: BTreeSet<String> = r["result"]["connections"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(subscribed, f.expect(|_, r, _| r == "eu"));
    let push = f.ws[0].push_where(|p| p.get("subscribe").is_some()).await;
    assert_eq!(push["channel"], "eu-news");

    // unsubscribe within one user by label.
    f.server.api("unsubscribe", json!({"user": "2", "channel": "eu-news", "label_filter": eq("tier", "free")})).await;
    let (_, r) = f.server.api("connections", json!({"expression": r#""eu-news" in channels"#})).await;
    let still: BTreeSet<String> = r["result"]["connections"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(still, f.expect(|u, r, t| r == "eu" && !(u == "2" && t == "free")));

    // Without user and all_users, label ops keep Centrifugo's meaning: anonymous only.
    f.server.api("disconnect", json!({"label_filter": eq("region", "us")})).await;
    assert_eq!(f.list(json!({"label_filter": eq("region", "us")})).await.len(), 3);

    // disconnect fleet-wide by label: us connections close with 3503, others stay.
    f.server
        .api("refresh", json!({"all_users": true, "label_filter": eq("region", "asia"), "expire_at": now_secs() + 600}))
        .await;
    let (_, r) = f.server.api("disconnect", json!({"all_users": true, "label_filter": eq("region", "us")})).await;
    assert_eq!(r, json!({"result": {}}));
    assert_eq!(f.ws[1].closed().await, Closed::Code(3503, "force disconnect".into()));
    let left = f.list(json!({"label_filter": {"key": "region", "cmp": "ex"}})).await;
    assert_eq!(left, f.expect(|_, r, _| r != "us"));
}

/// Waits (with a deadline) until `user` has no connection left on the server.
async fn until_gone(s: &Server, user: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, r) = s.api("connections", json!({"user": user})).await;
        if r["result"]["connections"].as_object().is_some_and(|c| c.is_empty()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{user}'s connections never left: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Regression (label keys were never freed): under a cap of 4 distinct keys, a fifth
/// key is refused with 3500 naming the limit while four are live, and 40 clients with a
/// unique key each, connecting one after another, all get in — a key leaves the node
/// with its last connection.
#[tokio::test]
async fn label_keys_are_capped_and_freed() {
    let s = Server::start(json!({"client": {"labels": {"max_keys_per_node": 4}}})).await;
    let labelled = |key: String| token("churn", json!({"labels": {key: "v"}}));
    let mut live = Vec::new();
    for i in 0..4 {
        live.push(Ws::connect(&s, &labelled(format!("k{i}"))).await.0);
    }
    let mut refused = Ws::open(&s.ws_url()).await;
    refused.send_text(&json!({"id": 1, "connect": {"token": labelled("k4".into())}}).to_string()).await;
    match refused.closed().await {
        Closed::Code(3500, reason) => assert!(reason.contains("max_keys_per_node"), "{reason}"),
        other => panic!("a fifth distinct key should be refused with 3500, got {other:?}"),
    }
    live.push(Ws::connect(&s, &labelled("k0".into())).await.0);
    drop(live);
    until_gone(&s, "churn").await;
    for i in 0..40 {
        let (ws, _) = Ws::connect(&s, &labelled(format!("unique{i}"))).await;
        drop(ws);
        until_gone(&s, "churn").await;
    }
}

/// A top-level `"c" in channels` selects through the channel index: with no label
/// program, or when the channel's subscribers are few beside the node's connections,
/// only its subscribers are examined (the rows-scanned metric says which route ran);
/// otherwise the survey runs, and then either its matches' channels are checked or,
/// when the subscribers are fewer than twice the matches, the subscribers are. Every
/// route gives exactly the subscribed connections, before and after an unsubscribe.
#[tokio::test]
async fn channel_conjuncts_select_through_the_channel_index() {
    use crate::metrics::scrape;
    let server = Server::start(json!({"prometheus": {"enabled": true}})).await;
    let mut clients = Vec::new();
    for i in 0..40 {
        let region = if i % 2 == 0 { "eu" } else { "us" };
        let labels = match i % 10 {
            0 => json!({"region": region, "tier": "gold"}),
            _ => json!({"region": region}),
        };
        let (mut ws, r) = Ws::connect(&server, &token(&format!("u{i}"), json!({ "labels": labels }))).await;
        if i < 30 {
            ws.call("subscribe", json!({"channel": "wide"})).await;
        }
        if i == 4 {
            ws.call("subscribe", json!({"channel": "rare"})).await;
        }
        if i == 6 || i == 7 {
            ws.call("subscribe", json!({"channel": "pair"})).await;
        }
        clients.push((r["client"].as_str().unwrap().to_string(), ws));
    }
    let client_ids: Vec<String> = clients.iter().map(|c| c.0.clone()).collect();
    let ids = |pick: &dyn Fn(usize) -> bool| -> BTreeSet<String> {
        client_ids.iter().enumerate().filter(|(i, _)| pick(*i)).map(|(_, c)| c.clone()).collect()
    };
    let scanned = || async { scrape(&server).await.get("rotor_connections_rows_scanned", &[]) };
    let list = |expr: &'static str| {
        let server = &server;
        async move {
            let (status, r) = server.api("connections", json!({"expression": expr})).await;
            assert_eq!(status, 200, "{r}");
            r["result"]["connections"].as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>()
        }
    };
    let cases: [(&str, BTreeSet<String>, f64); 8] = [
        // One subscriber among 40: the index, then the label program on it.
        (r#""rare" in channels && labels.region == "eu""#, ids(&|i| i == 4), 1.0),
        // 30 of 40: the survey, then the channel on its 4 matches.
        (r#""wide" in channels && labels.tier == "gold""#, ids(&|i| i < 30 && i % 10 == 0), 40.0),
        // The survey's 20 matches, doubled, outnumber the 30 subscribers, which are
        // then checked instead.
        (r#""wide" in channels && labels.region == "eu""#, ids(&|i| i < 30 && i % 2 == 0), 70.0),
        // 2 of 40 is not few, so the survey runs; its 20 or 40 matches outnumber the 2
        // subscribers, which are then checked instead.
        (r#""pair" in channels && labels.region == "eu""#, ids(&|i| i == 6), 42.0),
        (r#""pair" in channels && labels.region in ["eu", "us"]"#, ids(&|i| i == 6 || i == 7), 42.0),
        // No label program: the channel with fewer subscribers, whatever their number.
        (r#""wide" in channels && "rare" in channels"#, ids(&|i| i == 4), 1.0),
        (r#""wide" in channels"#, ids(&|i| i < 30), 30.0),
        // Interpreted, with the channel as its pre-filter.
        (r#""wide" in channels && user.endsWith("1")"#, ids(&|i| i < 30 && i % 10 == 1), 30.0),
    ];
    for (expr, want, rows) in cases {
        let before = scanned().await;
        assert_eq!(list(expr).await, want, "{expr}");
        assert_eq!(scanned().await - before, rows, "{expr}: rows examined");
    }
    clients[4].1.call("unsubscribe", json!({"channel": "rare"})).await;
    assert!(list(r#""rare" in channels && labels.region == "eu""#).await.is_empty());
    assert_eq!(list(r#""wide" in channels && !("rare" in channels)"#).await, ids(&|i| i < 30));
}
