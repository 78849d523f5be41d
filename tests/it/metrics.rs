//! Prometheus metrics: the real server with `prometheus.enabled`, real WebSocket
//! clients and API calls, then `/metrics` parsed as Prometheus text (format 0.0.4) and
//! its numbers checked against what the test did. Also the internal listener
//! (`http_server.internal_port`) and `/metrics` off or elsewhere.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{API_KEY, Closed, Server, Ws, free_port, token};

/// One sample line: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: samples, and each family's `# TYPE`.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    samples: Vec<Sample>,
    types: HashMap<String, String>,
}

impl Scrape {
    /// The value of the one sample named `name` whose labels include `labels`; 0 when
    /// there is none (a counter not yet created reads as zero).
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} is ambiguous: {found:?}");
        found.first().map_or(0.0, |s| s.value)
    }
}

/// Parses the Prometheus text format strictly enough to catch a malformed
/// exposition: every sample belongs to a family with a `# TYPE`, label values are
/// quoted with `\\`, `\"`, `\n` escapes, values are floats (or NaN/±Inf).
fn parse(text: &str) -> Result<Scrape, String> {
    let mut out = Scrape::default();
    for (n, line) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if line.is_empty() || line.starts_with("# HELP ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| at("TYPE without a type"))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at("unknown type"));
            }
            if out.types.insert(name.to_string(), kind.to_string()).is_some() {
                return Err(at("family declared twice"));
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("unknown comment"));
        }
        let sample = parse_sample(line).map_err(|e| at(&e))?;
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suf| sample.name.strip_suffix(suf).filter(|base| out.types.contains_key(*base)))
            .unwrap_or(&sample.name);
        if !out.types.contains_key(family) {
            return Err(at("sample without a # TYPE"));
        }
        out.samples.push(sample);
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err("bad metric name".into());
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            let (start, c) = chars.next().ok_or("unterminated labels")?;
            if c == '}' {
                rest = &body[start + 1..];
                break;
            }
            let eq = body[start..].find('=').ok_or("label without =")? + start;
            let key = body[start..eq].trim_start_matches(',');
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '"' => break,
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        _ => return Err("bad escape".into()),
                    },
                    c => value.push(c),
                }
            }
            if labels.insert(key.to_string(), value).is_some() {
                return Err("label repeated".into());
            }
            if chars.peek().is_some_and(|(_, c)| *c == ',') {
                chars.next();
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok(Sample { name: name.to_string(), labels, value })
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::Client::new().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) async fn scrape(s: &Server) -> Scrape {
    let (status, text) = get(&format!("{}/metrics", s.internal_http())).await;
    assert_eq!(status, 200, "{text}");
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Scrapes until `ok` holds (the server counts some things after it answered).
pub(crate) async fn scrape_until(s: &Server, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = scrape(s).await;
        if ok(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what} never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn prometheus() -> Value {
    json!({"prometheus": {"enabled": true}})
}

const WS: (&str, &str) = ("transport", "websocket");

#[test]
fn the_test_parser_refuses_malformed_expositions() {
    let ok = "# TYPE a counter\na{x=\"q\\\"\\\\\\n\",y=\"\"} 1\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n";
    let m = parse(ok).unwrap();
    assert_eq!(m.get("a", &[("x", "q\"\\\n")]), 1.0);
    assert_eq!(m.get("h_count", &[]), 2.0);
    for bad in [
        "a 1",
        "# TYPE a counter\na{x=\"1} 1",
        "# TYPE a counter\na{x=1} 1",
        "# TYPE a counter\na{x=\"1\",x=\"2\"} 1",
        "# TYPE a counter\na one",
        "# TYPE a counter\na{x=\"\\q\"} 1",
        "# TYPE a thing",
        "# TYPE a counter\n# TYPE a counter",
        "# TYPE a counter\nb-c 1",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
}

#[tokio::test]
async fn metrics_count_what_clients_and_the_api_did() {
    let s = Server::start(prometheus()).await;
    let before = scrape(&s).await;
    assert_eq!(before.types["centrifugo_node_num_clients"], "gauge");
    assert_eq!(before.types["centrifugo_transport_messages_sent"], "counter");
    assert_eq!(before.types["centrifugo_client_command_duration_seconds"], "summary");
    assert_eq!(before.types["centrifugo_client_command_duration_seconds_histogram"], "histogram");
    assert_eq!(before.get("centrifugo_node_num_nodes", &[]), 1.0);
    assert_eq!(before.get("centrifugo_node_build", &[("version", "0.1.0 rotor")]), 1.0);

    let mut clients = Vec::new();
    for user in ["u1", "u2", "u3"] {
        let (mut ws, reply) = Ws::connect(&s, &token(user, json!({}))).await;
        assert!(reply.get("client").is_some(), "{reply}");
        let r = ws.call("subscribe", json!({"channel": "news"})).await;
        assert!(r.get("subscribe").is_some(), "{r}");
        clients.push(ws);
    }
    const N: usize = 4;
    for i in 0..N {
        s.publish("news", json!({"n": i})).await;
    }
    for ws in &mut clients {
        for i in 0..N {
            let p = ws.push_where(|p| p["pub"].is_object()).await;
            assert_eq!(p["pub"]["data"]["n"], i, "{p}");
        }
    }
    let m = scrape(&s).await;
    assert_eq!(m.get("centrifugo_node_num_clients", &[]), 3.0);
    assert_eq!(m.get("centrifugo_node_num_users", &[]), 3.0);
    assert_eq!(m.get("centrifugo_node_num_subscriptions", &[]), 3.0);
    assert_eq!(m.get("centrifugo_node_num_channels", &[]), 1.0);
    assert_eq!(m.get("centrifugo_transport_connect_count", &[WS]), 3.0);
    let sent = |m: &Scrape, frame: &str| m.get("centrifugo_transport_messages_sent", &[WS, ("frame_type", frame)]);
    let received =
        |m: &Scrape, frame: &str| m.get("centrifugo_transport_messages_received", &[WS, ("frame_type", frame)]);
    assert_eq!(sent(&m, "publication") - sent(&before, "publication"), (3 * N) as f64, "fan-out count");
    assert!(
        m.get("centrifugo_transport_messages_sent_size", &[WS, ("frame_type", "publication")]) > (3 * N * 10) as f64
    );
    assert_eq!(sent(&m, "connect"), 3.0);
    assert_eq!(sent(&m, "subscribe"), 3.0);
    assert_eq!(received(&m, "connect"), 3.0);
    assert_eq!(received(&m, "subscribe"), 3.0);
    assert!(m.get("centrifugo_transport_messages_received_size", &[WS, ("frame_type", "subscribe")]) >= 3.0 * 30.0);
    let node = |m: &Scrape, name: &str| m.get(name, &[("type", "publication")]);
    assert_eq!(node(&m, "centrifugo_node_messages_sent_count"), N as f64);
    assert_eq!(node(&m, "centrifugo_node_messages_received_count"), N as f64);
    let api = [("protocol", "http"), ("method", "publish")];
    assert_eq!(m.get("centrifugo_api_command_duration_seconds_count", &api), N as f64);
    assert_eq!(m.get("centrifugo_api_command_duration_seconds_histogram_count", &api), N as f64);
    assert_eq!(
        m.get("centrifugo_api_command_duration_seconds_histogram_bucket", &[api[0], api[1], ("le", "+Inf")]),
        N as f64
    );
    let p50 = m.get("centrifugo_api_command_duration_seconds", &[api[0], api[1], ("quantile", "0.5")]);
    assert!(p50 > 0.0 && p50 <= 10.0, "p50 {p50}");
    let sub = [("method", "subscribe")];
    assert_eq!(m.get("centrifugo_client_command_duration_seconds_count", &sub), 3.0);

    // A failed command: `locked` allows no client subscribe (103).
    let r = clients[0].call("subscribe", json!({"channel": "locked:x"})).await;
    assert_eq!(r["error"]["code"], 103, "{r}");
    let errors = [("method", "subscribe"), ("code", "103")];
    let m = scrape(&s).await;
    assert_eq!(m.get("centrifugo_client_num_reply_errors", &errors), 1.0);
    assert_eq!(sent(&m, "subscribe"), 4.0, "the error reply is a frame too");

    // A server disconnect through the API.
    let (status, r) = s.api("disconnect", json!({"user": "u3", "disconnect": {"code": 4321, "reason": "bye"}})).await;
    assert_eq!((status, r.get("result").is_some()), (200, true), "{r}");
    assert!(matches!(clients[2].closed().await, Closed::Code(4321, _)));
    let m = scrape_until(&s, "u3 gone", |m| m.get("centrifugo_node_num_clients", &[]) == 2.0).await;
    assert_eq!(m.get("centrifugo_client_num_server_disconnects", &[("code", "4321")]), 1.0);
    assert_eq!(m.get("centrifugo_node_num_users", &[]), 2.0);
    let api_disconnect = [("protocol", "http"), ("method", "disconnect")];
    assert_eq!(m.get("centrifugo_api_command_duration_seconds_count", &api_disconnect), 1.0);
}

#[tokio::test]
async fn connections_api_metrics_count_rows_matches_and_compile_errors() {
    let s = Server::start(prometheus()).await;
    let mut clients = Vec::new();
    for (user, region) in [("a", "eu"), ("b", "eu"), ("c", "us")] {
        let (ws, reply) = Ws::connect(&s, &token(user, json!({"labels": {"region": region}}))).await;
        assert!(reply.get("client").is_some(), "{reply}");
        clients.push(ws);
    }
    let eu = json!({"label_filter": {"key": "region", "cmp": "eq", "val": "eu"}});
    let (_, r) = s.api("connections", eu).await;
    assert_eq!(r["result"]["connections"].as_object().unwrap().len(), 2, "{r}");
    let (_, r) = s.api("connections", json!({"label_filter": {"key": "region", "cmp": "nope", "val": "x"}})).await;
    assert_eq!(r["error"]["code"], 107, "{r}");
    let (_, r) = s.api("connections", json!({"expression": "labels.region =="})).await;
    assert_eq!(r["error"]["code"], 107, "{r}");
    let m = scrape(&s).await;
    assert_eq!(m.get("rotor_connections_rows_scanned", &[]), 3.0);
    assert_eq!(m.get("rotor_connections_matches", &[]), 2.0);
    assert_eq!(m.get("rotor_connections_filter_compile_errors", &[]), 1.0);
    assert_eq!(m.get("rotor_connections_cel_compile_errors", &[]), 1.0);
    // Every request that may survey waited for a turn, even if for no time at all.
    assert_eq!(m.get("rotor_connections_survey_queue_wait_seconds_count", &[]), 3.0);
    assert_eq!(m.get("centrifugo_api_command_duration_seconds_count", &[("method", "connections")]), 3.0);
}

#[tokio::test]
async fn internal_port_moves_api_admin_metrics_and_health() {
    let internal = free_port();
    let cfg = json!({"prometheus": {"enabled": true}, "admin": {"enabled": true, "insecure": true},
                     "http_server": {"internal_port": internal, "internal_address": "127.0.0.1"}});
    let s = Server::start(cfg).await;
    let public = s.http();
    let inside = s.internal_http();
    assert_ne!(public, inside);
    for path in ["/metrics", "/health", "/admin/init"] {
        assert_eq!(get(&format!("{public}{path}")).await.0, 404, "{path} on the public port");
        assert_eq!(get(&format!("{inside}{path}")).await.0, 200, "{path} on the internal port");
    }
    let post = |base: String| async move {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/info"))
            .header("X-API-Key", API_KEY)
            .body("{}")
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    };
    assert_eq!(post(public.clone()).await, 404, "API on the public port");
    assert_eq!(post(inside.clone()).await, 200, "API on the internal port");
    // Clients connect on the public port only.
    let (mut ws, reply) = Ws::connect(&s, &token("x", json!({}))).await;
    assert!(reply.get("client").is_some(), "{reply}");
    assert_eq!(get(&format!("{inside}/connection/websocket")).await.0, 404);
    let m = scrape(&s).await;
    assert_eq!(m.get("centrifugo_node_num_clients", &[]), 1.0);
    let r = ws.call("subscribe", json!({"channel": "news"})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
}

#[tokio::test]
async fn metrics_off_by_default_and_movable() {
    let s = Server::start(json!({})).await;
    assert_eq!(get(&format!("{}/metrics", s.http())).await.0, 404);
    let s = Server::start(json!({"prometheus": {"enabled": true, "handler_prefix": "/stats"}})).await;
    assert_eq!(get(&format!("{}/metrics", s.http())).await.0, 404);
    let (status, text) = get(&format!("{}/stats", s.http())).await;
    assert_eq!(status, 200);
    parse(&text).unwrap();
}

#[tokio::test]
async fn hostile_requests_cannot_add_series_or_break_the_exposition() {
    let s = Server::start(prometheus()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", s.http());
    let r = client.post(&url).body("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405, "metrics are read with GET only");
    // An oversized query string is ignored, not echoed.
    let (status, text) = get(&format!("{url}?{}", "a=%22%0A".repeat(2000))).await;
    assert_eq!(status, 200);
    assert!(!text.contains("%22"));
    // Method names from requests never become label values: a legacy command or a
    // batch command with a quote and a newline in its method is refused, and no
    // series names it.
    let body = "{\"method\":\"evil\\\"\\nname\",\"params\":{}}";
    let r = client.post(format!("{}/api", s.http())).header("X-API-Key", API_KEY).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (_, r) = s.api("batch", json!({"commands": [{"evil\"\nname": {}}]})).await;
    assert_eq!(r["replies"][0]["error"]["code"], 104, "{r}");
    let (_, text) = get(&url).await;
    let m = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(!text.contains("evil"), "a request's method name became a label");
    assert_eq!(m.get("centrifugo_api_command_duration_seconds_count", &[("method", "unknown")]), 0.0);
    assert_eq!(m.get("centrifugo_api_command_duration_seconds_count", &[("method", "batch")]), 1.0);
    // A client command frame too big for the connection closes it and counts once.
    let (mut ws, _) = Ws::connect(&s, &token("big", json!({}))).await;
    ws.send_text(&format!("{{\"id\":2,\"rpc\":{{\"method\":\"{}\"}}}}", "x".repeat(70_000))).await;
    assert!(matches!(ws.closed().await, Closed::Code(1009, _)));
    let m = scrape_until(&s, "big gone", |m| m.get("centrifugo_node_num_clients", &[]) == 0.0).await;
    assert_eq!(m.get("centrifugo_transport_messages_received", &[WS, ("frame_type", "rpc")]), 0.0);
}

/// The series Centrifugo v6 exposes about connections, subscriptions and node actions,
/// with its OSS label values (`client_name` unnamed/unregistered, `client_version`
/// unversioned/unregistered, empty `accept_protocol` and `channel_namespace`).
#[tokio::test]
async fn connection_subscription_and_action_series_follow_what_clients_did() {
    let s = Server::start(prometheus()).await;
    let m = scrape(&s).await;
    assert_eq!(m.types["centrifugo_client_connections_accepted"], "counter");
    assert_eq!(m.types["centrifugo_client_connections_inflight"], "gauge");
    assert_eq!(m.types["centrifugo_client_subscriptions_inflight"], "gauge");
    assert_eq!(m.types["centrifugo_node_action_count"], "counter");
    assert_eq!(m.types["centrifugo_node_broadcast_duration_seconds"], "histogram");
    assert_eq!(m.types["centrifugo_node_pub_sub_lag_seconds"], "histogram");
    assert_eq!(m.types["centrifugo_node_client_connection_limit"], "counter");
    assert_eq!(m.types["centrifugo_broker_redis_pub_sub_dropped_messages"], "counter");

    // Two named clients (the harness sends name "it", no version) and one that sends
    // neither, all subscribed to one channel with presence.
    let mut clients = Vec::new();
    for user in ["a", "b"] {
        let (mut ws, _) = Ws::connect(&s, &token(user, json!({}))).await;
        let r = ws.call("subscribe", json!({"channel": "room"})).await;
        assert!(r.get("subscribe").is_some(), "{r}");
        clients.push(ws);
    }
    let mut bare = crate::harness::Ws::open(&s.ws_url()).await;
    let r = bare.call("connect", json!({"token": token("c", json!({}))})).await;
    assert!(r.get("connect").is_some(), "{r}");
    let r = bare.call("subscribe", json!({"channel": "room"})).await;
    assert!(r.get("subscribe").is_some(), "{r}");

    const N: usize = 3;
    for i in 0..N {
        s.publish("room", json!({"n": i})).await;
    }
    for ws in clients.iter_mut().chain([&mut bare]) {
        for _ in 0..N {
            ws.push_where(|p| p["pub"].is_object()).await;
        }
    }
    let (status, r) = s.api("history", json!({"channel": "room", "limit": 1})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = s.api("presence", json!({"channel": "room"})).await;
    assert_eq!(status, 200, "{r}");

    let named = [WS, ("accept_protocol", ""), ("client_name", "unregistered"), ("client_version", "unversioned")];
    let unnamed = [WS, ("accept_protocol", ""), ("client_name", "unnamed"), ("client_version", "unversioned")];
    let action =
        |m: &Scrape, a: &str| m.get("centrifugo_node_action_count", &[("action", a), ("channel_namespace", "")]);
    let m = scrape(&s).await;
    assert_eq!(m.get("centrifugo_client_connections_accepted", &named), 2.0);
    assert_eq!(m.get("centrifugo_client_connections_inflight", &named), 2.0);
    assert_eq!(m.get("centrifugo_client_connections_accepted", &unnamed), 1.0);
    assert_eq!(m.get("centrifugo_client_connections_inflight", &unnamed), 1.0);
    let subs = |m: &Scrape, name: &str| {
        m.get("centrifugo_client_subscriptions_inflight", &[("channel_namespace", ""), ("client_name", name)])
    };
    assert_eq!((subs(&m, "unregistered"), subs(&m, "unnamed")), (2.0, 1.0));
    assert_eq!(action(&m, "add_client"), 3.0);
    assert_eq!(action(&m, "add_subscription"), 3.0);
    assert_eq!(action(&m, "broker_subscribe"), 1.0, "one channel: the broker listens once");
    assert_eq!(action(&m, "add_presence"), 3.0);
    assert_eq!(action(&m, "history"), 1.0);
    assert_eq!(action(&m, "presence"), 1.0);
    assert_eq!(action(&m, "remove_client"), 0.0);
    let publication = [("type", "publication"), ("channel_namespace", "")];
    assert_eq!(m.get("centrifugo_node_broadcast_duration_seconds_count", &publication), N as f64);
    assert_eq!(
        m.get("centrifugo_node_broadcast_duration_seconds_bucket", &[publication[0], publication[1], ("le", "10")]),
        N as f64
    );
    assert_eq!(m.get("centrifugo_node_pub_sub_lag_seconds_count", &[("channel_namespace", "")]), N as f64);

    // One named client unsubscribes, the bare one leaves: every gauge comes down.
    let r = clients[0].call("unsubscribe", json!({"channel": "room"})).await;
    assert!(r.get("unsubscribe").is_some(), "{r}");
    drop(bare);
    let m = scrape_until(&s, "the bare client gone", |m| m.get("centrifugo_node_num_clients", &[]) == 2.0).await;
    assert_eq!(m.get("centrifugo_client_connections_inflight", &unnamed), 0.0);
    assert_eq!(m.get("centrifugo_client_connections_accepted", &unnamed), 1.0);
    assert_eq!(m.get("centrifugo_client_connections_inflight", &named), 2.0);
    assert_eq!((subs(&m, "unregistered"), subs(&m, "unnamed")), (1.0, 0.0));
    assert_eq!(action(&m, "remove_client"), 1.0);
    assert_eq!(action(&m, "remove_subscription"), 2.0);
    assert_eq!(action(&m, "remove_presence"), 2.0);
    assert_eq!(action(&m, "broker_unsubscribe"), 0.0, "one subscriber is left");
    drop(clients);
    let m = scrape_until(&s, "everyone gone", |m| m.get("centrifugo_node_num_clients", &[]) == 0.0).await;
    assert_eq!(m.get("centrifugo_client_connections_inflight", &named), 0.0);
    assert_eq!(action(&m, "broker_unsubscribe"), 1.0);
    assert_eq!(subs(&m, "unregistered"), 0.0);
}

/// `client.connection_limit`: a connection past the node's cap gets HTTP 503 on every
/// connection endpoint and is counted; `/emulation` is not guarded. Once a
/// connection leaves, a new one gets in.
#[tokio::test]
async fn the_node_connection_limit_answers_503_and_is_counted() {
    let s = Server::start(json!({"prometheus": {"enabled": true}, "client": {"connection_limit": 1}})).await;
    let (first, _) = Ws::connect(&s, &token("a", json!({}))).await;
    let refused = tokio_tungstenite::connect_async(s.ws_url()).await.expect_err("over the limit");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status().as_u16(), 503),
        e => panic!("expected an HTTP 503, got {e}"),
    }
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/connection/uni_http_stream", s.http()))
        .body(json!({"token": token("b", json!({}))}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let m = scrape(&s).await;
    assert_eq!(m.get("centrifugo_node_client_connection_limit", &[]), 2.0);
    drop(first);
    scrape_until(&s, "the first client gone", |m| m.get("centrifugo_node_num_clients", &[]) == 0.0).await;
    let (_second, reply) = Ws::connect(&s, &token("b", json!({}))).await;
    assert!(reply.get("client").is_some(), "{reply}");
}

/// `client.connection_rate_limit`: new connections per second past the rate get 503.
#[tokio::test]
async fn the_connection_rate_limit_answers_503() {
    let s = Server::start(json!({"prometheus": {"enabled": true}, "client": {"connection_rate_limit": 1}})).await;
    let mut statuses = Vec::new();
    let http = reqwest::Client::new();
    for _ in 0..10 {
        let r = http.get(format!("{}/connection/websocket", s.http())).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    // One token a second: the first request reaches the handler (which refuses a GET
    // without an upgrade on its own terms), and ten requests cannot all have earned a
    // token unless they took nine seconds.
    assert_ne!(statuses[0], 503, "{statuses:?}");
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert!(refused >= 1, "{statuses:?}");
    let m = scrape(&s).await;
    assert_eq!(m.get("centrifugo_node_client_connection_limit", &[]), refused as f64);
}
