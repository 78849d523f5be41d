//! Several real `rotor` nodes on a real `redis-server`: publications cross nodes,
//! history and presence are shared, the connections API and targeted operations
//! cover the fleet, and the fleet survives a killed node and a restarted Redis.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::redis::Redis;

fn fleet_config(redis: &Redis) -> Value {
    json!({"engine": {"type": "redis", "redis": {
        "address": [redis.url()],
        "presence_ttl": "2s",
        "survey_timeout": "2s"
    }}})
}

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

async fn node_count(s: &Server) -> usize {
    s.api("info", json!({})).await.1["result"]["nodes"].as_array().map_or(0, Vec::len)
}

/// Starts `n` nodes on one Redis and waits until each sees all of them.
async fn fleet(redis: &Redis, n: usize) -> Vec<Server> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut config = fleet_config(redis);
        config["node"] = json!({"name": format!("node-{i}")});
        nodes.push(Server::start(config).await);
    }
    for s in &nodes {
        until("every node in info", || async { node_count(s).await == n }).await;
    }
    nodes
}

fn client_ids(result: &Value) -> HashSet<String> {
    result["connections"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn publications_history_and_presence_cross_nodes() {
    let redis = Redis::start();
    let nodes = fleet(&redis, 2).await;
    let (mut a, _) = Ws::connect(&nodes[0], &token("1", json!({}))).await;
    let (mut b, _) = Ws::connect(&nodes[1], &token("2", json!({}))).await;
    a.call("subscribe", json!({"channel": "news"})).await;
    b.call("subscribe", json!({"channel": "news"})).await;
    // Published on node 1, delivered on both, with history offsets.
    let r = nodes[1].publish("news", json!({"n": 1})).await;
    assert_eq!(r["offset"], 1, "{r}");
    let pa = a.push_where(|p| p["channel"] == "news" && p.get("pub").is_some()).await;
    let pb = b.push_where(|p| p["channel"] == "news" && p.get("pub").is_some()).await;
    assert_eq!(pa["pub"]["data"], json!({"n": 1}));
    assert_eq!((pa["pub"]["offset"].clone(), pb["pub"]["offset"].clone()), (json!(1), json!(1)));
    nodes[0].publish("news", json!({"n": 2})).await;
    let (_, h) = nodes[1].api("history", json!({"channel": "news", "limit": -1})).await;
    let offsets: Vec<u64> =
        h["result"]["publications"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, vec![1, 2], "{h}");
    // The publish time the broker keeps (for the PUB/SUB lag metric) stays inside it.
    assert!(pa["pub"].get("time").is_none() && pb["pub"].get("time").is_none(), "{pa} {pb}");
    assert!(h["result"]["publications"].as_array().unwrap().iter().all(|p| p.get("time").is_none()), "{h}");
    assert_eq!(h["result"]["epoch"], r["epoch"]);
    // Client history and recovery read the same stream.
    let ch = a.call("history", json!({"channel": "news", "limit": 10})).await;
    assert_eq!(ch["history"]["publications"].as_array().unwrap().len(), 2, "{ch}");
    // Presence: both clients, from either node.
    until("presence of both clients", || async {
        let (_, p) = nodes[1].api("presence", json!({"channel": "news"})).await;
        p["result"]["presence"].as_object().is_some_and(|m| m.len() == 2)
    })
    .await;
    let (_, st) = nodes[0].api("presence_stats", json!({"channel": "news"})).await;
    assert_eq!(st["result"], json!({"num_clients": 2, "num_users": 2}));
    // history_remove on one node empties the shared stream.
    nodes[0].api("history_remove", json!({"channel": "news"})).await;
    let (_, h) = nodes[1].api("history", json!({"channel": "news", "limit": -1})).await;
    assert!(h["result"].get("publications").is_none_or(|p| p.as_array().unwrap().is_empty()), "{h}");
    // Recovery by offset/epoch across nodes: publish 2 more, a client reconnecting on
    // the other node recovers them.
    let top = nodes[0].publish("news", json!({"n": 3})).await;
    nodes[0].publish("news", json!({"n": 4})).await;
    let (mut c, _) = Ws::connect(&nodes[1], &token("3", json!({}))).await;
    let since = top["offset"].as_u64().unwrap() - 1;
    let rec =
        c.call("subscribe", json!({"channel": "news", "recover": true, "offset": since, "epoch": top["epoch"]})).await;
    assert_eq!(rec["subscribe"]["recovered"], true, "{rec}");
    assert_eq!(rec["subscribe"]["publications"].as_array().unwrap().len(), 2, "{rec}");
}

#[tokio::test]
async fn join_leave_cross_nodes() {
    let redis = Redis::start();
    let nodes = fleet(&redis, 2).await;
    let (mut a, _) = Ws::connect(&nodes[0], &token("1", json!({}))).await;
    a.call("subscribe", json!({"channel": "room", "join_leave": true})).await;
    let (mut b, _) = Ws::connect(&nodes[1], &token("2", json!({}))).await;
    b.call("subscribe", json!({"channel": "room"})).await;
    let j = a.push_where(|p| p.get("join").is_some() && p["join"]["info"]["user"] == "2").await;
    assert_eq!(j["channel"], "room");
    drop(b);
    let l = a.push_where(|p| p.get("leave").is_some()).await;
    assert_eq!(l["leave"]["info"]["user"], "2");
}

#[tokio::test]
async fn connections_api_covers_the_fleet_with_paging() {
    let redis = Redis::start();
    let nodes = fleet(&redis, 3).await;
    let mut conns = Vec::new();
    let mut eu = HashSet::new();
    let mut owner = std::collections::HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for j in 0..3 {
            let region = if j == 2 { "us" } else { "eu" };
            let (ws, r) = Ws::connect(node, &token(&format!("u{i}"), json!({"labels": {"region": region}}))).await;
            owner.insert(r["client"].as_str().unwrap().to_string(), format!("node-{i}"));
            if region == "eu" {
                eu.insert(r["client"].as_str().unwrap().to_string());
            }
            conns.push(ws);
        }
    }
    let filter = json!({"key": "region", "cmp": "eq", "val": "eu"});
    for node in &nodes {
        let (_, r) = node.api("connections", json!({"label_filter": filter})).await;
        assert_eq!(client_ids(&r["result"]), eu, "{r}");
        assert!(r["result"].get("missing_nodes").is_none(), "{r}");
        assert_eq!(r["result"]["total"], eu.len(), "{r}");
        // Each ConnectionInfo names the node holding the connection, kept in the merge.
        for (client, info) in r["result"]["connections"].as_object().unwrap() {
            assert_eq!(info["node"], owner[client].as_str(), "{client}: {info}");
        }
    }
    // By user and CEL, from another node than the connections'.
    let (_, r) = nodes[2].api("connections", json!({"user": "u0"})).await;
    assert_eq!(client_ids(&r["result"]).len(), 3, "{r}");
    let (_, r) = nodes[0].api("connections", json!({"expression": "labels.region == 'us'"})).await;
    assert_eq!(client_ids(&r["result"]).len(), 3, "{r}");
    // Paging: limit 2 over 6 matches on three nodes, each connection exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (_, r) = nodes[1].api("connections", json!({"label_filter": filter, "limit": 2, "cursor": cursor})).await;
        let page = client_ids(&r["result"]);
        assert!(page.len() <= 2, "{r}");
        assert_eq!(r["result"]["total"], eu.len(), "the total sums every node's matches: {r}");
        seen.extend(page);
        match r["result"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), eu.len(), "duplicates or gaps: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), eu);
    // Legacy getUserConnections over the fleet.
    let (_, r) = nodes[0].api("rpc", json!({"method": "getUserConnections", "params": {"user": "u2"}})).await;
    assert_eq!(r["result"]["data"].as_object().unwrap().len(), 3, "{r}");
    // channels: counts summed over nodes.
    for (i, ws) in conns.iter_mut().enumerate().take(4) {
        let _ = i;
        ws.call("subscribe", json!({"channel": "shared"})).await;
    }
    let (_, r) = nodes[2].api("channels", json!({})).await;
    assert_eq!(r["result"]["channels"]["shared"]["num_clients"], 4, "{r}");
    // Fleet-wide disconnect by labels from one node reaches every node.
    let (_, r) = nodes[0].api("disconnect", json!({"label_filter": filter, "all_users": true})).await;
    assert_eq!(r["result"], json!({}), "{r}");
    until("eu connections gone everywhere", || async {
        let (_, r) = nodes[1].api("connections", json!({"label_filter": filter})).await;
        client_ids(&r["result"]).is_empty()
    })
    .await;
    let (_, r) = nodes[1].api("connections", json!({"expression": "labels.region == 'us'"})).await;
    assert_eq!(client_ids(&r["result"]).len(), 3, "us connections untouched: {r}");
}

#[tokio::test]
async fn killed_node_is_dropped_and_its_presence_expires() {
    let redis = Redis::start();
    let mut nodes = fleet(&redis, 2).await;
    let (mut a, _) = Ws::connect(&nodes[0], &token("1", json!({"labels": {"k": "v"}}))).await;
    a.call("subscribe", json!({"channel": "news"})).await;
    let (mut b, _) = Ws::connect(&nodes[1], &token("2", json!({"labels": {"k": "v"}}))).await;
    b.call("subscribe", json!({"channel": "news"})).await;
    let filter = json!({"key": "k", "cmp": "eq", "val": "v"});
    until("both connections listed", || async {
        let (_, r) = nodes[0].api("connections", json!({"label_filter": filter})).await;
        client_ids(&r["result"]).len() == 2
    })
    .await;
    nodes[1].kill();
    // Until the peer is dropped a survey reports it missing rather than failing; after,
    // the listing is node 0's alone and nothing is missing.
    until("killed node dropped", || async {
        let (_, r) = nodes[0].api("connections", json!({"label_filter": filter})).await;
        assert!(r.get("result").is_some(), "the survey must not fail: {r}");
        client_ids(&r["result"]).len() == 1 && r["result"].get("missing_nodes").is_none()
    })
    .await;
    assert_eq!(node_count(&nodes[0]).await, 1);
    until("dead node's presence expired", || async {
        let (_, p) = nodes[0].api("presence", json!({"channel": "news"})).await;
        p["result"]["presence"].as_object().is_some_and(|m| m.len() == 1)
    })
    .await;
    // Publishing still works and reaches the survivor.
    nodes[0].publish("news", json!("still here")).await;
    a.push_where(|p| p.get("pub").is_some()).await;
}

#[tokio::test]
async fn redis_restart_is_survived() {
    let mut redis = Redis::start();
    let nodes = fleet(&redis, 2).await;
    let (mut a, _) = Ws::connect(&nodes[0], &token("1", json!({}))).await;
    a.call("subscribe", json!({"channel": "news"})).await;
    redis.kill();
    // Redis down: API calls that need it answer 100; nothing else breaks.
    let (status, r) = nodes[1].api("publish", json!({"channel": "news", "data": 1})).await;
    assert_eq!(status, 200);
    assert_eq!(r["error"]["code"], 100, "{r}");
    let (_, r) = nodes[1].api("history", json!({"channel": "news", "limit": 1})).await;
    assert_eq!(r["error"]["code"], 100, "{r}");
    let rpc = a.call("presence", json!({"channel": "news"})).await;
    assert_eq!(rpc["error"]["code"], 100, "client stays connected and gets 100: {rpc}");
    redis.restart();
    // Without restarting a node: reconnect, resubscribe, publications flow again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "publications did not flow again after Redis came back");
        let (_, r) = nodes[1].api("publish", json!({"channel": "news", "data": "back"})).await;
        if r.get("result").is_some() {
            let wait = Instant::now() + Duration::from_millis(500);
            while a.read_frame(wait).await.is_ok() {}
            if a.take_push(|p| p.get("pub").is_some() && p["pub"]["data"] == "back").is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until("both nodes back in info", || async { node_count(&nodes[0]).await == 2 }).await;
}

/// Redis Cluster mode: keys hash-tagged per channel so the Lua scripts touch one slot;
/// publications, history, presence and surveys work across two nodes.
#[tokio::test]
async fn redis_cluster_mode() {
    let cluster = crate::redis::RedisCluster::start();
    let config = json!({"engine": {"type": "redis", "redis": {"cluster_address": cluster.urls()}}});
    let a_node = Server::start(config.clone()).await;
    let b_node = Server::start(config).await;
    until("both nodes in info", || async { node_count(&a_node).await == 2 && node_count(&b_node).await == 2 }).await;
    let (mut a, _) = Ws::connect(&a_node, &token("1", json!({"labels": {"k": "v"}}))).await;
    let (_b, _) = Ws::connect(&b_node, &token("2", json!({"labels": {"k": "v"}}))).await;
    // Channels whose keys land on different masters.
    for ch in ["news", "sport", "weather", "a.b.c"] {
        a.call("subscribe", json!({"channel": ch})).await;
        let r = b_node.publish(ch, json!({"ch": ch})).await;
        assert_eq!(r["offset"], 1, "{ch}: {r}");
        let p = a.push_where(|p| p["channel"] == ch).await;
        assert_eq!(p["pub"]["data"]["ch"], ch);
        let (_, h) = a_node.api("history", json!({"channel": ch, "limit": -1})).await;
        assert_eq!(h["result"]["publications"].as_array().map(Vec::len), Some(1), "{ch}: {h}");
    }
    until("presence in cluster", || async {
        let (_, p) = b_node.api("presence", json!({"channel": "news"})).await;
        p["result"]["presence"].as_object().is_some_and(|m| m.len() == 1)
    })
    .await;
    let (_, r) = b_node.api("connections", json!({"label_filter": {"key": "k", "cmp": "eq", "val": "v"}})).await;
    assert_eq!(client_ids(&r["result"]).len(), 2, "{r}");
}

/// An unreachable Redis is a clear error at start, not a node that serves alone.
#[tokio::test]
async fn unreachable_redis_fails_at_start() {
    let port = free_port();
    let dir = temp_dir("no-redis");
    let mut cfg = base_config(free_port());
    merge(&mut cfg, &json!({"engine": {"type": "redis", "redis": {"address": format!("redis://127.0.0.1:{port}")}}}));
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("-c")
        .arg(dir.join("config.json"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Redis") && err.contains(&port.to_string()), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Several `address` entries shard channels over independent Redis servers by a
/// stable hash: every node agrees on each channel's shard, and both shards get keys.
#[tokio::test]
async fn channels_are_sharded_over_several_redis() {
    let (r1, r2) = (Redis::start(), Redis::start());
    let config = json!({"engine": {"type": "redis", "redis": {"address": [r1.url(), r2.url()]}}});
    let n1 = Server::start(config.clone()).await;
    let n2 = Server::start(config).await;
    until("both nodes in info", || async { node_count(&n1).await == 2 && node_count(&n2).await == 2 }).await;
    let (mut ws, _) = Ws::connect(&n1, &token("1", json!({}))).await;
    let channels: Vec<String> = (0..12).map(|i| format!("shard-{i}")).collect();
    for ch in &channels {
        ws.call("subscribe", json!({"channel": ch})).await;
    }
    for ch in &channels {
        let r = n2.publish(ch, json!({"ch": ch})).await;
        assert_eq!(r["offset"], 1, "{ch}: {r}");
        let p = ws.push_where(|p| p["channel"] == *ch).await;
        assert_eq!(p["pub"]["data"]["ch"], *ch);
    }
    let keys = |port: u16| {
        let out = std::process::Command::new("redis-cli").args(["-p", &port.to_string(), "dbsize"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap_or(0)
    };
    assert!(keys(r1.port) > 0 && keys(r2.port) > 0, "both shards hold streams: {} / {}", keys(r1.port), keys(r2.port));
}

/// Server-side subscribe and refresh by user, sent to one node, act on the user's
/// connections on every node.
#[tokio::test]
async fn targeted_ops_by_user_reach_every_node() {
    let redis = Redis::start();
    let nodes = fleet(&redis, 2).await;
    let (mut a, _) = Ws::connect(&nodes[0], &token("7", json!({}))).await;
    let (mut b, _) = Ws::connect(&nodes[1], &token("7", json!({}))).await;
    let (_, r) = nodes[0].api("subscribe", json!({"user": "7", "channel": "srv"})).await;
    assert_eq!(r["result"], json!({}), "{r}");
    a.push_where(|p| p["channel"] == "srv" && p.get("subscribe").is_some()).await;
    b.push_where(|p| p["channel"] == "srv" && p.get("subscribe").is_some()).await;
    nodes[1].publish("srv", json!("to both")).await;
    a.push_where(|p| p["channel"] == "srv" && p.get("pub").is_some()).await;
    b.push_where(|p| p["channel"] == "srv" && p.get("pub").is_some()).await;
    let (_, r) = nodes[1].api("refresh", json!({"user": "7", "expired": true})).await;
    assert_eq!(r["result"], json!({}), "{r}");
    assert!(matches!(a.closed().await, Closed::Code(3005, _)));
    assert!(matches!(b.closed().await, Closed::Code(3005, _)));
}

/// An idempotency key makes a repeated publish (to any node) return the first
/// publish's position without publishing again.
#[tokio::test]
async fn idempotent_publish_across_nodes() {
    let redis = Redis::start();
    let nodes = fleet(&redis, 2).await;
    let (mut ws, _) = Ws::connect(&nodes[0], &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "once"})).await;
    let body = json!({"channel": "once", "data": {"n": 1}, "idempotency_key": "k-1"});
    let (_, first) = nodes[0].api("publish", body.clone()).await;
    let (_, again) = nodes[1].api("publish", body).await;
    assert_eq!(first["result"]["offset"], 1, "{first}");
    assert_eq!(first["result"], again["result"], "a repeat returns the first position");
    nodes[1].publish("once", json!({"n": 2})).await;
    let p1 = ws.push_where(|p| p.get("pub").is_some()).await;
    let p2 = ws.push_where(|p| p.get("pub").is_some()).await;
    assert_eq!((p1["pub"]["data"]["n"].clone(), p2["pub"]["data"]["n"].clone()), (json!(1), json!(2)));
    let (_, h) = nodes[0].api("history", json!({"channel": "once", "limit": -1})).await;
    assert_eq!(h["result"]["publications"].as_array().unwrap().len(), 2, "{h}");
}

/// PUB/SUB lag and the node actions across nodes: a publication made on one node is
/// measured on the node that delivers it, from the time the broker carried.
#[tokio::test]
async fn pub_sub_lag_is_measured_where_publications_arrive() {
    let redis = Redis::start();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let mut config = fleet_config(&redis);
        config["node"] = json!({"name": format!("node-{i}")});
        config["prometheus"] = json!({"enabled": true});
        nodes.push(Server::start(config).await);
    }
    for s in &nodes {
        until("every node in info", || async { node_count(s).await == 2 }).await;
    }
    let (mut a, _) = Ws::connect(&nodes[0], &token("1", json!({}))).await;
    a.call("subscribe", json!({"channel": "lag"})).await;
    for n in 0..3 {
        nodes[1].publish("lag", json!({"n": n})).await;
        a.push_where(|p| p["channel"] == "lag" && p.get("pub").is_some()).await;
    }
    let text = reqwest::get(format!("{}/metrics", nodes[0].http())).await.unwrap().text().await.unwrap();
    let value = |line: &str| {
        text.lines().find_map(|l| l.strip_prefix(line)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(-1.0)
    };
    assert_eq!(value("centrifugo_node_pub_sub_lag_seconds_count{channel_namespace=\"\"}"), 3.0, "{text}");
    assert_eq!(
        value("centrifugo_node_broadcast_duration_seconds_count{channel_namespace=\"\",type=\"publication\"}"),
        3.0
    );
    assert_eq!(value("centrifugo_node_action_count{action=\"broker_subscribe\",channel_namespace=\"\"}"), 1.0);
    assert_eq!(
        value("centrifugo_broker_redis_pub_sub_dropped_messages{broker_name=\"\",channel_type=\"client\"}"),
        0.0
    );
    // Both nodes count the fleet; a fleet-wide connections call surveys the other node
    // and is timed and counted where it was asked.
    for s in &nodes {
        assert_eq!(crate::metrics::scrape(s).await.get("centrifugo_node_num_nodes", &[]), 2.0);
    }
    let (status, r) = nodes[1].api("connections", json!({"user": "1"})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["result"]["connections"].as_object().map(|c| c.len()), Some(1), "{r}");
    let m = crate::metrics::scrape(&nodes[1]).await;
    assert_eq!(m.get("centrifugo_node_survey_duration_seconds_count", &[("op", "connections")]), 1.0);
    assert_eq!(m.get("centrifugo_node_action_count", &[("action", "survey")]), 1.0);
    let m = crate::metrics::scrape(&nodes[0]).await;
    assert_eq!(m.get("centrifugo_node_survey_duration_seconds_count", &[("op", "connections")]), 0.0);
}

/// gRPC `Connections` on a fleet: the node's own rows (built straight from its
/// sessions) and the peer's (read from its JSON answer) together equal the HTTP
/// API's answer, field for field, and paging visits each connection once.
#[tokio::test]
async fn grpc_connections_cover_the_fleet() {
    use rotor::grpc::proto::centrifugo_api_client::CentrifugoApiClient;
    use rotor::grpc::proto::{ConnectionsRequest, FilterNode};
    let redis = Redis::start();
    let grpc_port = free_port();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let mut config = fleet_config(&redis);
        config["node"] = json!({"name": format!("node-{i}")});
        if i == 0 {
            config["grpc_api"] = json!({"enabled": true, "address": "127.0.0.1", "port": grpc_port, "key": "k"});
        }
        nodes.push(Server::start(config).await);
    }
    for s in &nodes {
        until("every node in info", || async { node_count(s).await == 2 }).await;
    }
    let mut conns = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for j in 0..3 {
            let claims = json!({"labels": {"region": "eu", "n": j.to_string()}, "meta": {"j": j}});
            let (mut ws, _) = Ws::connect(node, &token(&format!("u{i}"), claims)).await;
            ws.call("subscribe", json!({"channel": format!("c{j}")})).await;
            conns.push(ws);
        }
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = CentrifugoApiClient::new(channel);
    let call = |limit: u64, cursor: String| {
        let filter = FilterNode { key: "region".into(), cmp: "eq".into(), val: "eu".into(), ..Default::default() };
        let mut r =
            tonic::Request::new(ConnectionsRequest { label_filter: Some(filter), limit, cursor, ..Default::default() });
        r.metadata_mut().insert("authorization", "apikey k".parse().unwrap());
        r
    };
    let all = c.connections(call(0, String::new())).await.unwrap().into_inner().result.unwrap();
    let (_, http) =
        nodes[0].api("connections", json!({"label_filter": {"key": "region", "cmp": "eq", "val": "eu"}})).await;
    let http = http["result"]["connections"].as_object().unwrap().clone();
    assert_eq!(all.connections.len(), 6);
    assert_eq!(all.connections.keys().cloned().collect::<HashSet<_>>(), http.keys().cloned().collect());
    for (client, info) in &all.connections {
        let h = &http[client];
        assert_eq!(info.user, h["user"].as_str().unwrap(), "{client}");
        assert_eq!(info.transport, h["transport"].as_str().unwrap());
        assert_eq!(info.connected_at_ms, h["connected_at_ms"].as_i64().unwrap());
        assert_eq!(info.ping_pong_latency_ms, -1);
        let labels: serde_json::Map<String, Value> = info.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        assert_eq!(Value::Object(labels), h["labels"]);
        let state = info.state.as_ref().unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&state.meta).unwrap(), h["state"]["meta"]);
        let channels: HashSet<_> = state.channels.keys().cloned().collect();
        assert_eq!(channels, h["state"]["channels"].as_object().unwrap().keys().cloned().collect());
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = c.connections(call(4, cursor.clone())).await.unwrap().into_inner().result.unwrap();
        assert!(page.connections.len() <= 4);
        seen.extend(page.connections.into_keys());
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen.len(), 6, "duplicates or gaps: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), all.connections.into_keys().collect());
    drop(conns);
}
