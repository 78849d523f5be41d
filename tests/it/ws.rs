//! Bidirectional WebSocket: every client command, pushes, timers.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn connect_result_has_client_ping_pong() {
    let s = Server::start(json!({})).await;
    let (_ws, r) = Ws::connect(&s, &token("42", json!({}))).await;
    assert_eq!(r["client"].as_str().unwrap().len(), 36, "{r}");
    assert_eq!(r["ping"], 25);
    assert_eq!(r["pong"], true);
    assert_eq!(r["expires"], true);
    assert!(r["ttl"].as_u64().unwrap() > 3500);
}

#[tokio::test]
async fn batched_connect_and_subscribe_then_publication() {
    let s = Server::start(json!({})).await;
    let mut ws = Ws::open(&s.ws_url()).await;
    let frame = format!(
        "{}\n{}",
        json!({"connect": {"token": token("42", json!({})), "name": "js"}, "id": 1}),
        json!({"subscribe": {"channel": "news", "flag": 1}, "id": 2})
    );
    ws.send_text(&frame).await;
    assert!(ws.reply(1).await.get("connect").is_some());
    let sub = ws.reply(2).await;
    assert!(sub.get("subscribe").is_some(), "{sub}");
    s.publish("news", json!({"text": "hi"})).await;
    let p = ws.push_where(|p| p["channel"] == "news").await;
    assert_eq!(p["pub"]["data"], json!({"text": "hi"}));
    assert_eq!(p["pub"]["offset"], 1);
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "a"})).await;
    ws.call("subscribe", json!({"channel": "b"})).await;
    let r = ws.call("unsubscribe", json!({"channel": "a"})).await;
    assert_eq!(r["unsubscribe"], json!({}));
    s.publish("a", json!(1)).await;
    s.publish("b", json!(2)).await;
    let p = ws.push_where(|p| p.get("pub").is_some()).await;
    assert_eq!(p["channel"], "b", "publication to an unsubscribed channel was delivered");
}

#[tokio::test]
async fn subscribe_errors() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "news"})).await;
    assert_eq!(ws.call("subscribe", json!({"channel": "news"})).await["error"]["code"], 105);
    assert_eq!(ws.call("subscribe", json!({"channel": "nope:x"})).await["error"]["code"], 102);
    assert_eq!(ws.call("subscribe", json!({"channel": "locked:x"})).await["error"]["code"], 103);
    assert_eq!(ws.call("subscribe", json!({"channel": "$private"})).await["error"]["code"], 103);
    assert_eq!(ws.call("subscribe", json!({"channel": ""})).await["error"]["code"], 107);
    assert_eq!(
        ws.call("subscribe", json!({"channel": "news2", "tf": {"key": "a", "cmp": "eq", "val": "b"}})).await["error"]["code"],
        107
    );
    let e = ws.call("subscribe", json!({"channel": "dm:room#2"})).await;
    assert_eq!(e["error"]["code"], 103, "user 1 is not in dm:room#2");
    let ok = ws.call("subscribe", json!({"channel": "dm:room#1,2"})).await;
    assert!(ok.get("subscribe").is_some(), "{ok}");
}

#[tokio::test]
async fn channel_limit_is_106() {
    let s = Server::start(json!({"client": {"channel_limit": 2}})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "a"})).await;
    ws.call("subscribe", json!({"channel": "b"})).await;
    assert_eq!(ws.call("subscribe", json!({"channel": "c"})).await["error"]["code"], 106);
}

#[tokio::test]
async fn private_channel_with_subscription_token() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("42", json!({}))).await;
    let good = rotor::auth::sign_hs256(&json!({"sub": "42", "channel": "$secret", "exp": now_secs() + 60}), SECRET);
    let r = ws.call("subscribe", json!({"channel": "$secret", "token": good})).await;
    assert_eq!(r["subscribe"]["expires"], true, "{r}");
    let expired = rotor::auth::sign_hs256(&json!({"sub": "42", "channel": "$other", "exp": now_secs() - 10}), SECRET);
    assert_eq!(ws.call("subscribe", json!({"channel": "$other", "token": expired})).await["error"]["code"], 109);
    let refreshed =
        rotor::auth::sign_hs256(&json!({"sub": "42", "channel": "$secret", "exp": now_secs() + 600}), SECRET);
    let r = ws.call("sub_refresh", json!({"channel": "$secret", "token": refreshed})).await;
    assert!(r["sub_refresh"]["ttl"].as_u64().unwrap() > 500, "{r}");
    assert_eq!(ws.call("sub_refresh", json!({"channel": "$secret", "token": ""})).await["error"]["code"], 107);
    let wrong_user = rotor::auth::sign_hs256(&json!({"sub": "7", "channel": "$third"}), SECRET);
    ws.send_text(&json!({"id": 99, "subscribe": {"channel": "$third", "token": wrong_user}}).to_string()).await;
    assert_eq!(ws.closed().await, Closed::Code(3500, "invalid token".into()));
}

#[tokio::test]
async fn server_side_subscriptions_from_token() {
    let s = Server::start(json!({})).await;
    let (mut ws, r) = Ws::connect(&s, &token("42", json!({"channels": ["news", "chat:room#42"]}))).await;
    assert!(r["subs"].get("news").is_some(), "{r}");
    assert!(r["subs"].get("chat:room#42").is_some(), "{r}");
    s.publish("chat:room#42", json!({"x": 1})).await;
    let p = ws.push_where(|p| p["channel"] == "chat:room#42").await;
    assert_eq!(p["pub"]["data"], json!({"x": 1}));
    let mut bad = Ws::open(&s.ws_url()).await;
    let reply = bad.call("connect", json!({"token": token("42", json!({"channels": ["nope:x"]}))})).await;
    assert_eq!(reply["error"]["code"], 102);
}

#[tokio::test]
async fn client_publish_presence_history_and_join_leave() {
    let s = Server::start(json!({})).await;
    let (mut a, ar) = Ws::connect(&s, &token("1", json!({"info": {"name": "alice"}}))).await;
    let (mut b, _) = Ws::connect(&s, &token("2", json!({}))).await;
    assert_eq!(a.call("publish", json!({"channel": "room", "data": {"m": 0}})).await["error"]["code"], 103);
    a.call("subscribe", json!({"channel": "room", "join_leave": true})).await;
    b.call("subscribe", json!({"channel": "room"})).await;
    let join = a.push_where(|p| p.get("join").is_some() && p["join"]["info"]["user"] == "2").await;
    assert_eq!(join["channel"], "room");
    assert_eq!(a.call("publish", json!({"channel": "room", "data": {"m": 1}})).await["publish"], json!({}));
    let p = b.push_where(|p| p.get("pub").is_some()).await;
    assert_eq!(p["pub"]["info"]["user"], "1");
    assert_eq!(p["pub"]["info"]["client"], ar["client"]);
    assert_eq!(p["pub"]["info"]["conn_info"], json!({"name": "alice"}));
    let pres = a.call("presence", json!({"channel": "room"})).await;
    assert_eq!(pres["presence"]["presence"].as_object().unwrap().len(), 2);
    let stats = a.call("presence_stats", json!({"channel": "room"})).await;
    assert_eq!(stats["presence_stats"], json!({"num_clients": 2, "num_users": 2}));
    let hist = a.call("history", json!({"channel": "room", "limit": 10})).await;
    assert_eq!(hist["history"]["publications"].as_array().unwrap().len(), 1);
    assert_eq!(hist["history"]["offset"], 1);
    let pos = a.call("history", json!({"channel": "room", "limit": 0})).await;
    assert_eq!(pos["history"]["publications"], json!([]));
    let bad =
        a.call("history", json!({"channel": "room", "limit": 10, "since": {"offset": 0, "epoch": "wrong"}})).await;
    assert_eq!(bad["error"]["code"], 112);
    assert_eq!(a.call("presence", json!({"channel": "locked:x"})).await["error"]["code"], 108);
    drop(b);
    let leave = a.push_where(|p| p.get("leave").is_some()).await;
    assert_eq!(leave["leave"]["info"]["user"], "2");
}

#[tokio::test]
async fn recovery_returns_missed_publications() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let r = ws.call("subscribe", json!({"channel": "feed", "recoverable": true})).await;
    let epoch = r["subscribe"]["epoch"].as_str().unwrap().to_string();
    assert_eq!(r["subscribe"]["recoverable"], true);
    drop(ws);
    for i in 1..=3 {
        s.publish("feed", json!({"n": i})).await;
    }
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let r = ws.call("subscribe", json!({"channel": "feed", "recover": true, "epoch": epoch, "offset": 1})).await;
    let sub = &r["subscribe"];
    assert_eq!(sub["recovered"], true, "{r}");
    assert_eq!(sub["was_recovering"], true);
    let offsets: Vec<u64> =
        sub["publications"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, vec![2, 3]);
}

#[tokio::test]
async fn rpc_send_and_refresh() {
    let s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("42", json!({}))).await;
    assert_eq!(ws.call("rpc", json!({"method": "anything"})).await["error"]["code"], 104);
    let r = ws.call("refresh", json!({"token": token("42", json!({"exp": now_secs() + 7200}))})).await;
    assert!(r["refresh"]["ttl"].as_u64().unwrap() > 7000, "{r}");
    ws.send_text(&json!({"id": 9, "refresh": {"token": token("43", json!({}))}}).to_string()).await;
    assert_eq!(ws.closed().await, Closed::Code(3500, "invalid token".into()));
    let (mut ws, _) = Ws::connect(&s, &token("42", json!({}))).await;
    ws.send_text(&json!({"send": {"data": {}}}).to_string()).await;
    assert_eq!(ws.closed().await, Closed::Code(3508, "not available".into()));
}

#[tokio::test]
async fn pings_flow_and_missing_pong_disconnects() {
    let s = Server::start(json!({"client": {"ping_interval": "1s", "pong_timeout": "500ms"}})).await;
    let (mut ws, r) = Ws::connect(&s, &token("1", json!({}))).await;
    assert_eq!(r["ping"], 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let frame = ws.read_frame(deadline).await.expect("a ping before close");
    assert_eq!(frame, "{}");
    // Not answering: the server gives up with 3012.
    assert_eq!(ws.closed().await, Closed::Code(3012, "no pong".into()));
}

#[tokio::test]
async fn answering_pings_keeps_the_connection_while_data_flows() {
    // The pong timeout leaves room for a test machine busy with many servers at once:
    // this test checks that pings keep coming while data flows, not pong latency.
    let s = Server::start(json!({"client": {"ping_interval": "1s", "pong_timeout": "900ms"}})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "tick"})).await;
    let end = std::time::Instant::now() + std::time::Duration::from_millis(4000);
    let (mut pings, mut pubs, mut n) = (0, 0, 0);
    while std::time::Instant::now() < end {
        n += 1;
        s.publish("tick", json!(n)).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while let Ok(frame) = ws.read_frame(deadline).await {
            pings += frame.split('\n').filter(|l| *l == "{}").count();
            pubs += frame.matches("\"pub\"").count();
            if frame.split('\n').any(|l| l == "{}") {
                ws.send_text("{}").await;
            }
        }
    }
    assert!(pings >= 2, "pings must be sent on schedule while data flows (got {pings})");
    assert!(pubs >= n - 1, "publications kept flowing ({pubs}/{n})");
    assert!(ws.call("presence_stats", json!({"channel": "tick"})).await.get("presence_stats").is_some());
}

#[tokio::test]
async fn stale_connection_is_closed() {
    let s = Server::start(json!({"client": {"stale_close_delay": "300ms"}})).await;
    let mut ws = Ws::open(&s.ws_url()).await;
    assert_eq!(ws.closed().await, Closed::Code(3502, "stale".into()));
}

#[tokio::test]
async fn slow_client_is_disconnected() {
    let s = Server::start(json!({"client": {"queue_max_size": 2000}, "websocket": {"write_timeout": "30s"}})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    ws.call("subscribe", json!({"channel": "flood"})).await;
    // Publications that each fit the queue (a bigger one is refused at publish time),
    // pushed back to back by one batch: two queued at once overflow it. A writer that
    // kept up with the batch would still fill the socket buffers of a client that does
    // not read, and the long write timeout leaves the 3008 to the queue.
    let one = json!({"publish": {"channel": "flood", "data": {"big": "x".repeat(1500)}}});
    let (status, r) = s.api("batch", json!({"commands": vec![one; 1000]})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(ws.closed().await, Closed::Code(3008, "slow".into()));
    let (mut other, _) = Ws::connect(&s, &token("2", json!({}))).await;
    assert!(other.call("subscribe", json!({"channel": "flood"})).await.get("subscribe").is_some());
}

/// WebSocket over HTTP/2 (RFC 8441 extended CONNECT): the server advertises it, a
/// CONNECT with `:protocol websocket` gets 200, and the stream then carries the same
/// frames as an HTTP/1.1 upgrade: a connect command in, its reply out, a close echoed.
/// A CONNECT without `:protocol` is refused.
#[tokio::test]
async fn websocket_over_http2_extended_connect() {
    use axum::body::Body;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s = Server::start(json!({})).await;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake::<_, _, Body>(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let url = format!("http://127.0.0.1:{}/connection/websocket", s.port);

    // One round trip first, so the server's SETTINGS (extended CONNECT on) have arrived.
    let get = hyper::Request::get(format!("http://127.0.0.1:{}/", s.port)).body(Body::empty()).unwrap();
    send.send_request(get).await.unwrap();
    let plain = hyper::Request::connect(&url).header("sec-websocket-version", "13").body(Body::empty()).unwrap();
    let refused = send.send_request(plain).await;
    assert!(refused.is_err() || refused.unwrap().status() != hyper::StatusCode::OK, "CONNECT without :protocol");

    let mut req = hyper::Request::connect(&url).header("sec-websocket-version", "13").body(Body::empty()).unwrap();
    req.extensions_mut().insert(hyper::ext::Protocol::from_static("websocket"));
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), hyper::StatusCode::OK);
    let mut io = TokioIo::new(hyper::upgrade::on(res).await.unwrap());

    let mask = [7u8, 1, 9, 3];
    let frame = |op: u8, payload: &[u8]| {
        let mut f = vec![0x80 | op];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    };
    let connect = json!({"id": 1, "connect": {"token": token("42", json!({}))}}).to_string();
    io.write_all(&frame(0x1, connect.as_bytes())).await.unwrap();
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], 0x81, "a text frame");
    let len = match head[1] {
        126 => io.read_u16().await.unwrap() as usize,
        n => n as usize,
    };
    let mut body = vec![0; len];
    io.read_exact(&mut body).await.unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["connect"]["client"].as_str().unwrap().len(), 36, "{reply}");

    io.write_all(&frame(0x8, &4000u16.to_be_bytes())).await.unwrap();
    let mut close = [0u8; 4];
    io.read_exact(&mut close).await.unwrap();
    assert_eq!(close, [0x88, 2, 0x0f, 0xa0], "close 4000 echoed");
}
