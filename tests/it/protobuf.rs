//! The protobuf client protocol against the real server: a raw client sending
//! prost-encoded, length-prefixed `Command`s over WebSocket (the `centrifuge-protobuf`
//! subprotocol and `?cf_protocol=protobuf`) and over the http_stream emulation, mixed
//! with JSON clients on the same channels, hostile frames, and the `connections` API's
//! `protocol`. centrifuge-js's protobuf build runs in `javascript_protobuf_sdk`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rotor::protocol::pb::{read_reply, wire};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::*;

/// A bidirectional WebSocket client speaking protobuf.
struct PbWs {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: Vec<wire::Reply>,
    next_id: u32,
}

impl PbWs {
    /// Opens with the `centrifuge-protobuf` subprotocol and checks the server chose it.
    async fn open(server: &Server) -> PbWs {
        let mut req = server.ws_url().into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "centrifuge-protobuf".parse().unwrap());
        let (stream, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket connect");
        assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), "centrifuge-protobuf");
        PbWs { stream, pending: Vec::new(), next_id: 1 }
    }

    /// Opens with `?cf_protocol=protobuf` instead of the subprotocol.
    async fn open_by_query(server: &Server) -> PbWs {
        let url = format!("{}?cf_protocol=protobuf", server.ws_url());
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connect");
        PbWs { stream, pending: Vec::new(), next_id: 1 }
    }

    async fn connect(server: &Server, user: &str) -> (PbWs, wire::ConnectResult) {
        let mut ws = PbWs::open(server).await;
        let connect =
            wire::ConnectRequest { token: token(user, json!({})), name: "pb-it".into(), ..Default::default() };
        let r = ws.call(wire::Command { connect: Some(connect), ..Default::default() }).await;
        let result = r.connect.unwrap_or_else(|| panic!("connect failed: {:?}", r.error));
        (ws, result)
    }

    async fn send_raw(&mut self, frame: Vec<u8>) {
        self.stream.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Sends `cmd` with the next id (several commands may share a frame: `call_many`).
    async fn call(&mut self, cmd: wire::Command) -> wire::Reply {
        self.call_many(vec![cmd]).await.pop().unwrap()
    }

    /// Sends the commands in one binary frame and returns their replies in order.
    async fn call_many(&mut self, cmds: Vec<wire::Command>) -> Vec<wire::Reply> {
        let mut frame = Vec::new();
        let mut ids = Vec::new();
        for mut c in cmds {
            c.id = self.next_id;
            self.next_id += 1;
            ids.push(c.id);
            frame.extend(c.encode_length_delimited_to_vec());
        }
        self.send_raw(frame).await;
        let mut out = Vec::new();
        for id in ids {
            out.push(self.reply(id).await);
        }
        out
    }

    async fn reply(&mut self, id: u32) -> wire::Reply {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(pos) = self.pending.iter().position(|r| r.id == id) {
                return self.pending.remove(pos);
            }
            assert!(Instant::now() < deadline, "no reply to {id}; pending {:?}", self.pending);
            self.read(deadline).await.expect("closed while waiting for a reply");
        }
    }

    async fn push_where(&mut self, pred: impl Fn(&wire::Push) -> bool) -> wire::Push {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(pos) = self.pending.iter().position(|r| r.push.as_ref().is_some_and(&pred)) {
                return self.pending.remove(pos).push.unwrap();
            }
            assert!(Instant::now() < deadline, "no matching push; pending {:?}", self.pending);
            self.read(deadline).await.expect("closed while waiting for a push");
        }
    }

    /// Reads one WebSocket message and queues every Reply in it; the raw bytes back.
    async fn read(&mut self, deadline: Instant) -> Result<Bytes, Closed> {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, self.stream.next()).await.map_err(|_| Closed::NoFrame)?;
        match msg {
            Some(Ok(Message::Binary(b))) => {
                let mut rest = b.clone();
                while !rest.is_empty() {
                    self.pending.push(read_reply(&mut rest).expect("server sent a malformed Reply"));
                }
                Ok(b)
            }
            Some(Ok(Message::Close(Some(f)))) => Err(Closed::Code(f.code.into(), f.reason.to_string())),
            Some(Ok(Message::Text(t))) => panic!("server sent text on the protobuf protocol: {t}"),
            Some(Ok(_)) => Ok(Bytes::new()),
            _ => Err(Closed::NoFrame),
        }
    }

    async fn closed(&mut self) -> Closed {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Err(c) = self.read(deadline).await {
                return c;
            }
        }
    }
}

fn subscribe(channel: &str) -> wire::Command {
    let req = wire::SubscribeRequest {
        channel: channel.into(),
        join_leave: true,
        recoverable: true,
        positioned: true,
        ..Default::default()
    };
    wire::Command { subscribe: Some(req), ..Default::default() }
}

fn publish(channel: &str, data: &[u8]) -> wire::Command {
    wire::Command {
        publish: Some(wire::PublishRequest { channel: channel.into(), data: data.to_vec() }),
        ..Default::default()
    }
}

#[tokio::test]
async fn protobuf_session_with_json_subscribers() {
    let s = Server::start(json!({})).await;
    let (mut pb, connected) = PbWs::connect(&s, "pb-user").await;
    assert!(!connected.client.is_empty() && connected.pong && connected.ping > 0, "{connected:?}");
    let (mut js, _) = Ws::connect(&s, &token("json-user", json!({}))).await;
    assert!(js.call("subscribe", json!({"channel": "mixed", "join_leave": true})).await.get("subscribe").is_some());

    // Subscribe and a first publish in one frame: two replies, in order.
    let replies = pb.call_many(vec![subscribe("mixed"), publish("mixed", br#"{"from":"pb"}"#)]).await;
    let sub = replies[0].subscribe.as_ref().unwrap_or_else(|| panic!("{:?}", replies[0]));
    assert!(sub.recoverable && sub.positioned && !sub.epoch.is_empty(), "{sub:?}");
    assert!(replies[1].publish.is_some(), "{:?}", replies[1]);

    // The JSON subscriber got the protobuf client's JSON payload as JSON, with info.
    let p = js.push_where(|p| p.get("pub").is_some()).await;
    assert_eq!(p["pub"]["data"], json!({"from": "pb"}));
    assert_eq!(p["pub"]["info"]["user"], "pb-user");
    // ... and the join of the protobuf client.
    let joined = js.push_where(|p| p.get("join").is_some_and(|j| j["info"]["user"] == "pb-user")).await;
    assert_eq!(joined["channel"], "mixed");

    // The protobuf client gets its own publication as bytes, and JSON from the API.
    let own = pb.push_where(|p| p.r#pub.is_some()).await;
    assert_eq!((own.channel.as_str(), own.r#pub.unwrap().data), ("mixed", br#"{"from":"pb"}"#.to_vec()));
    s.publish("mixed", json!({"from": "api", "n": [1, 2]})).await;
    let api = pb.push_where(|p| p.r#pub.is_some()).await.r#pub.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&api.data).unwrap(), json!({"from": "api", "n": [1, 2]}));
    assert_eq!(api.offset, 2);
    // A JSON client's publish reaches the protobuf subscriber with info and offset.
    assert!(js.call("publish", json!({"channel": "mixed", "data": {"from": "json"}})).await.get("publish").is_some());
    let from_js = pb.push_where(|p| p.r#pub.is_some()).await.r#pub.unwrap();
    assert_eq!(from_js.data, br#"{"from":"json"}"#);
    assert_eq!(from_js.info.unwrap().user, "json-user");

    // Presence, presence stats, history.
    let r = pb
        .call(wire::Command { presence: Some(wire::PresenceRequest { channel: "mixed".into() }), ..Default::default() })
        .await;
    let users: Vec<String> = r.presence.unwrap().presence.values().map(|i| i.user.clone()).collect();
    assert!(users.contains(&"pb-user".to_string()) && users.contains(&"json-user".to_string()), "{users:?}");
    let r = pb
        .call(wire::Command {
            presence_stats: Some(wire::PresenceStatsRequest { channel: "mixed".into() }),
            ..Default::default()
        })
        .await;
    let st = r.presence_stats.unwrap();
    assert_eq!((st.num_clients, st.num_users), (2, 2));
    let history = wire::HistoryRequest { channel: "mixed".into(), limit: 10, ..Default::default() };
    let r = pb.call(wire::Command { history: Some(history), ..Default::default() }).await;
    let h = r.history.unwrap();
    assert_eq!(h.publications.len(), 3);
    assert_eq!(h.offset, 3);
    assert_eq!(h.publications[1].data, br#"{"from":"api","n":[1,2]}"#);

    // RPC without a proxy: the same error as on JSON (104 method not found).
    let rpc = wire::RpcRequest { method: "anything".into(), data: b"{}".to_vec() };
    let r = pb.call(wire::Command { rpc: Some(rpc), ..Default::default() }).await;
    assert_eq!(r.error.map(|e| e.code), Some(104));

    // Refresh with a later token.
    let refresh = wire::RefreshRequest { token: token("pb-user", json!({"exp": now_secs() + 7200})) };
    let r = pb.call(wire::Command { refresh: Some(refresh), ..Default::default() }).await;
    let rr = r.refresh.unwrap_or_else(|| panic!("{:?}", r.error));
    assert!(rr.expires && rr.ttl > 7000, "{rr:?}");

    // The connections API reports each client's protocol.
    for (user, protocol) in [("pb-user", "protobuf"), ("json-user", "json")] {
        let (status, body) = s.api("connections", json!({"user": user})).await;
        assert_eq!(status, 200, "{body}");
        let conns = body["result"]["connections"].as_object().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(conns.len(), 1, "{body}");
        assert_eq!(conns.values().next().unwrap()["protocol"], protocol, "{body}");
        // and a CEL expression sees the same protocol
        let expression = format!("protocol == \"{protocol}\" && user.endsWith(\"-user\")");
        let (status, body) = s.api("connections", json!({ "expression": expression })).await;
        assert_eq!(status, 200, "{body}");
        let users: Vec<&str> = body["result"]["connections"]
            .as_object()
            .unwrap_or_else(|| panic!("{body}"))
            .values()
            .filter_map(|c| c["user"].as_str())
            .collect();
        assert_eq!(users, [user], "{expression}: {body}");
    }

    // A server-side unsubscribe reaches the protobuf client as an unsubscribe push.
    let (status, _) = s.api("unsubscribe", json!({"user": "pb-user", "channel": "mixed"})).await;
    assert_eq!(status, 200);
    let u = pb.push_where(|p| p.unsubscribe.is_some()).await;
    assert_eq!((u.channel.as_str(), u.unsubscribe.unwrap().code), ("mixed", 2000));
    // ... and the JSON client sees the leave.
    let left = js.push_where(|p| p.get("leave").is_some()).await;
    assert_eq!(left["leave"]["info"]["user"], "pb-user");

    // Client unsubscribe: subscribe again and leave.
    assert!(pb.call(subscribe("mixed")).await.subscribe.is_some());
    let unsub = wire::UnsubscribeRequest { channel: "mixed".into() };
    let r = pb.call(wire::Command { unsubscribe: Some(unsub), ..Default::default() }).await;
    assert!(r.unsubscribe.is_some() && r.error.is_none(), "{r:?}");

    // A server disconnect is a WebSocket close frame, as on JSON.
    let (status, _) = s.api("disconnect", json!({"user": "pb-user"})).await;
    assert_eq!(status, 200);
    assert_eq!(pb.closed().await, Closed::Code(3503, "force disconnect".into()));
}

#[tokio::test]
async fn protobuf_by_query_with_pings_and_server_pushes() {
    let s = Server::start(json!({"client": {"ping_interval": "1s", "pong_timeout": "900ms"}})).await;
    let mut pb = PbWs::open_by_query(&s).await;
    let connect = wire::ConnectRequest { token: token("q", json!({})), ..Default::default() };
    let r = pb.call(wire::Command { connect: Some(connect), ..Default::default() }).await;
    assert_eq!(r.connect.unwrap().ping, 1);

    // The server ping is an empty Reply (one zero byte); the pong an empty Command.
    for _ in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let raw = pb.read(deadline).await.expect("a ping");
            if raw[..] == [0] {
                break;
            }
        }
        pb.pending.retain(|r| *r != wire::Reply::default());
        pb.send_raw(vec![0]).await;
    }

    // Server-side subscribe and refresh arrive as protobuf pushes.
    let (status, body) = s.api("subscribe", json!({"user": "q", "channel": "srv", "data": {"hello": 1}})).await;
    assert_eq!(status, 200, "{body}");
    let sub = pb.push_where(|p| p.subscribe.is_some()).await;
    assert_eq!((sub.channel.as_str(), sub.subscribe.unwrap().data), ("srv", br#"{"hello":1}"#.to_vec()));
    s.publish("srv", json!("text")).await;
    let p = pb.push_where(|p| p.r#pub.is_some()).await;
    assert_eq!(p.r#pub.unwrap().data, br#""text""#);
    let (status, _) = s.api("refresh", json!({"user": "q", "expire_at": now_secs() + 600})).await;
    assert_eq!(status, 200);
    let r = pb.push_where(|p| p.refresh.is_some()).await.refresh.unwrap();
    assert!(r.expires && r.ttl > 500, "{r:?}");
}

/// A protobuf payload that is not JSON is answered with 107 and the connection lives.
#[tokio::test]
async fn binary_payload_is_refused_per_command() {
    let s = Server::start(json!({})).await;
    let (mut pb, _) = PbWs::connect(&s, "bin").await;
    assert!(pb.call(subscribe("bin")).await.subscribe.is_some());
    let r = pb.call(publish("bin", &[0xde, 0xad, 0xbe, 0xef])).await;
    assert_eq!(r.error.map(|e| e.code), Some(107));
    let r = pb.call(publish("bin", b"[1]")).await;
    assert!(r.publish.is_some(), "{r:?}");
    assert_eq!(pb.push_where(|p| p.r#pub.is_some()).await.r#pub.unwrap().data, b"[1]");
}

/// Hostile frames: each ends the connection with 3501 (or 1009 over the size limit),
/// never a crash — the server keeps serving.
#[tokio::test]
async fn hostile_protobuf_frames() {
    let s = Server::start(json!({"websocket": {"message_size_limit": 4096}})).await;
    // A valid connect: only the framing makes each case below a violation.
    let connect = wire::Command {
        id: 1,
        connect: Some(wire::ConnectRequest { token: token("hostile", json!({})), ..Default::default() }),
        ..Default::default()
    };
    let msg = connect.encode_to_vec();
    let prefixed = |len: usize, body: &[u8]| {
        let mut f = Vec::new();
        prost::encoding::encode_varint(len as u64, &mut f);
        f.extend_from_slice(body);
        f
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("endless varint", vec![0xff; 64]),
        ("length past the frame", prefixed(msg.len() + 4, &msg)),
        ("truncated message", prefixed(msg.len() - 5, &msg[..msg.len() - 5])),
        ("a valid command then half a prefix", [prefixed(msg.len(), &msg), vec![0x80]].concat()),
        ("garbage", b"\x04\xff\xff\xff\xff".to_vec()),
        ("wrong wire type for id", vec![0x02, 0x0a, 0x00]),
        ("no command field", wire::Command { id: 3, ..Default::default() }.encode_length_delimited_to_vec()),
        ("empty frame", Vec::new()),
    ];
    for (what, frame) in cases {
        let mut pb = PbWs::open(&s).await;
        pb.send_raw(frame).await;
        assert_eq!(pb.closed().await, Closed::Code(3501, "bad request".into()), "{what}");
    }
    // Text on a protobuf connection is a 3501 too.
    let mut pb = PbWs::open(&s).await;
    pb.stream.send(Message::Text(r#"{"id":1,"connect":{}}"#.into())).await.unwrap();
    assert_eq!(pb.closed().await, Closed::Code(3501, "bad request".into()));
    // Over the message size limit: 1009.
    let mut pb = PbWs::open(&s).await;
    let big = publish("x", &vec![b'1'; 8192]).encode_length_delimited_to_vec();
    pb.send_raw(big).await;
    assert!(matches!(pb.closed().await, Closed::Code(1009, _)));
    // A valid connect after all that still works; unknown fields are skipped.
    let mut pb = PbWs::open(&s).await;
    let mut msg = msg.clone();
    msg.extend_from_slice(&[0xf8, 0x3e, 0x05]); // field 1007, varint 5
    msg.extend_from_slice(&[0xfa, 0x3e, 0x01, 0x00]); // field 1007 again, as bytes
    pb.send_raw(prefixed(msg.len(), &msg)).await;
    assert!(pb.reply(1).await.connect.is_some());
}

/// http_stream with `application/octet-stream` and protobuf `/emulation` requests.
#[tokio::test]
async fn protobuf_http_stream_emulation() {
    let s = Server::start(json!({"http_stream": {"enabled": true}, "sse": {"enabled": true}})).await;
    let http = reqwest::Client::new();
    let connect = wire::Command {
        id: 1,
        connect: Some(wire::ConnectRequest { token: token("emu", json!({})), ..Default::default() }),
        ..Default::default()
    };
    let resp = http
        .post(format!("{}/connection/http_stream", s.http()))
        .header("Content-Type", "application/octet-stream")
        .body(connect.encode_length_delimited_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let mut body = Box::pin(resp.bytes_stream());
    let mut buf = bytes::BytesMut::new();
    let mut next = async || -> wire::Reply {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut view = buf.clone().freeze();
            if let Ok(r) = wire::Reply::decode_length_delimited(&mut view) {
                let used = buf.len() - view.len();
                let _ = buf.split_to(used);
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, body.next()).await.expect("a reply in time");
            buf.extend_from_slice(&chunk.expect("stream open").unwrap());
        }
    };
    let c = next().await.connect.expect("connect result");
    assert!(!c.session.is_empty() && !c.node.is_empty(), "{c:?}");
    let emulate = |cmd: wire::Command| {
        let req = wire::EmulationRequest {
            node: c.node.clone(),
            session: c.session.clone(),
            data: cmd.encode_length_delimited_to_vec(),
        };
        http.post(format!("{}/emulation", s.http()))
            .header("Content-Type", "application/octet-stream")
            .body(req.encode_to_vec())
            .send()
    };
    let mut sub = subscribe("emu");
    sub.id = 2;
    assert_eq!(emulate(sub).await.unwrap().status(), 204);
    assert!(next().await.subscribe.is_some());
    s.publish("emu", json!({"over": "http_stream"})).await;
    // Its own join comes first (join_leave), then the publication.
    let data = loop {
        if let Some(p) = next().await.push.and_then(|p| p.r#pub) {
            break p.data;
        }
    };
    assert_eq!(data, br#"{"over":"http_stream"}"#);
    // A malformed protobuf /emulation body is a 400.
    let bad = http
        .post(format!("{}/emulation", s.http()))
        .header("Content-Type", "application/octet-stream")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // SSE carries text only.
    let sse = http
        .post(format!("{}/connection/sse", s.http()))
        .header("Content-Type", "application/octet-stream")
        .body(connect.encode_length_delimited_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 415);
    // The API's disconnect ends the stream with a protobuf disconnect push.
    let (status, _) = s.api("disconnect", json!({"user": "emu"})).await;
    assert_eq!(status, 200);
    let d = loop {
        if let Some(d) = next().await.push.and_then(|p| p.disconnect) {
            break d;
        }
    };
    assert_eq!((d.code, d.reason.as_str()), (3503, "force disconnect"));
}

/// centrifuge-js's protobuf build (`centrifuge/build/protobuf`) against the server,
/// next to the JSON build on the same channel (`tests/compat/js/protobuf_client.mjs`).
#[test]
fn javascript_protobuf_sdk() {
    use crate::process::*;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_modules = crate::compat_env::node_modules();
    let mut config = base_config(free_port());
    config["http_stream"] = json!({"enabled": true});
    let mut server = Rotor::start(&config);
    run_script(
        "node",
        &root.join("tests/compat/js/protobuf_client.mjs"),
        &mut server,
        &[("NODE_PATH", &node_modules.to_string_lossy())],
    );
}
