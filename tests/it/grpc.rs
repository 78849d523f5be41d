//! The gRPC server API over real sockets: a tonic client generated from the repo's
//! proto calls every method of `centrifugal.centrifugo.api.CentrifugoApi` against the
//! real binary and checks each against the HTTP API and live WebSocket clients
//! (publications reach JSON clients byte for byte, Connections and Disconnect by label
//! filter act on real connections). Then the hostile side: missing and wrong keys,
//! oversized, malformed and deeply nested messages, unknown methods, both error modes.

use std::time::Duration;

use bytes::{Buf, BufMut};
use rotor::grpc::proto::centrifugo_api_client::CentrifugoApiClient;
use rotor::grpc::proto::*;
use serde_json::{Value, json};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::harness::*;

const KEY: &str = "grpc-test-key";

struct Grpc {
    server: Server,
    port: u16,
}

async fn start(extra: Value) -> Grpc {
    let port = free_port();
    let mut patch = json!({"grpc_api": {"enabled": true, "address": "127.0.0.1", "port": port, "key": KEY}});
    merge(&mut patch, &extra);
    let server = Server::start(patch).await;
    Grpc { server, port }
}

impl Grpc {
    async fn channel(&self) -> Channel {
        let url = format!("http://127.0.0.1:{}", self.port);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Channel::from_shared(url.clone()).unwrap().connect().await {
                Ok(c) => return c,
                Err(e) => assert!(std::time::Instant::now() < deadline, "gRPC port not answering: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn client(&self) -> CentrifugoApiClient<Channel> {
        CentrifugoApiClient::new(self.channel().await)
    }
}

/// A request with `authorization: apikey <KEY>`.
fn authed<T>(msg: T) -> Request<T> {
    with_key(msg, &format!("apikey {KEY}"))
}

fn with_key<T>(msg: T, value: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert("authorization", value.parse().unwrap());
    r
}

fn label(key: &str, val: &str) -> FilterNode {
    FilterNode { key: key.into(), cmp: "eq".into(), val: val.into(), ..Default::default() }
}

/// Every method, each checked against what the HTTP API or a live client sees.
#[tokio::test]
async fn every_method_against_live_clients() {
    let g = start(json!({})).await;
    let mut c = g.client().await;
    let s = &g.server;

    // Three live WebSocket clients: two in region eu, one in us; all on channel "news".
    let mut conns = Vec::new();
    for (user, region) in [("alice", "eu"), ("bob", "eu"), ("carol", "us")] {
        let t = token(user, json!({"labels": {"region": region}, "meta": {"plan": "gold"}}));
        let (mut ws, _) = Ws::connect(s, &t).await;
        let r = ws.call("subscribe", json!({"channel": "news"})).await;
        assert!(r.get("subscribe").is_some(), "{r}");
        conns.push(ws);
    }

    // Publish: JSON bytes reach JSON clients unchanged (spacing and key order kept).
    let data = br#"{"z": 1,  "a": [true, null, "x\u00e9"]}"#;
    let r = c
        .publish(authed(PublishRequest { channel: "news".into(), data: data.to_vec(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.is_none(), "{r:?}");
    let pos = r.result.unwrap();
    assert!(pos.offset >= 1 && !pos.epoch.is_empty());
    for ws in &mut conns {
        let push = ws.push_where(|p| p["channel"] == "news" && p.get("pub").is_some()).await;
        assert_eq!(push["pub"]["data"], serde_json::from_slice::<Value>(data).unwrap());
    }

    // History returns the same bytes; the HTTP API agrees on the stream position.
    let h = c
        .history(authed(HistoryRequest { channel: "news".into(), limit: -1, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(h.publications.len(), 1);
    assert_eq!(h.publications[0].data, data.to_vec());
    let (_, http) = s.api("history", json!({"channel": "news"})).await;
    assert_eq!(http["result"]["offset"], h.offset);
    assert_eq!(http["result"]["epoch"], h.epoch.as_str());

    // Broadcast: one response per channel, errors stay inside.
    let b = c
        .broadcast(authed(BroadcastRequest {
            channels: vec!["news".into(), "".into()],
            data: b"{\"n\":2}".to_vec(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!(b.responses[0].result.is_some());
    assert_eq!(b.responses[1].error.as_ref().unwrap().code, 107);

    // Presence and stats.
    let p = c.presence(authed(PresenceRequest { channel: "news".into() })).await.unwrap().into_inner();
    let presence = p.result.unwrap().presence;
    assert_eq!(presence.len(), 3);
    let mut users: Vec<_> = presence.values().map(|i| i.user.clone()).collect();
    users.sort();
    assert_eq!(users, ["alice", "bob", "carol"]);
    let st = c.presence_stats(authed(PresenceStatsRequest { channel: "news".into() })).await.unwrap().into_inner();
    let st = st.result.unwrap();
    assert_eq!((st.num_clients, st.num_users), (3, 3));

    // Channels and info.
    let ch = c.channels(authed(ChannelsRequest { pattern: "n*".into() })).await.unwrap().into_inner();
    assert_eq!(ch.result.unwrap().channels["news"].num_clients, 3);
    let info = c.info(authed(InfoRequest {})).await.unwrap().into_inner().result.unwrap();
    assert_eq!(info.nodes.len(), 1);
    assert_eq!(info.nodes[0].num_clients, 3);

    // RPC getUserConnections: params and data are JSON documents.
    let rpc = c
        .rpc(authed(RpcRequest { method: "getUserConnections".into(), params: br#"{"user":"alice"}"#.to_vec() }))
        .await
        .unwrap()
        .into_inner();
    let d: Value = serde_json::from_slice(&rpc.result.unwrap().data).unwrap();
    let entries = d.as_object().unwrap();
    assert_eq!(entries.len(), 1, "{d}");
    assert_eq!(entries.values().next().unwrap()["meta"]["plan"], "gold");
    let rpc = c.rpc(authed(RpcRequest { method: "nope".into(), ..Default::default() })).await.unwrap().into_inner();
    assert_eq!(rpc.error.unwrap().code, 104);

    // Connections: by label filter, by user, by expression, paged with limit/cursor.
    let lister = c.clone();
    let conn = |req: ConnectionsRequest| {
        let mut c = lister.clone();
        async move { c.connections(authed(req)).await.unwrap().into_inner() }
    };
    let eu = conn(ConnectionsRequest { label_filter: Some(label("region", "eu")), ..Default::default() }).await;
    let eu = eu.result.unwrap().connections;
    assert_eq!(eu.len(), 2);
    for info in eu.values() {
        assert_eq!(info.labels["region"], "eu");
        assert_eq!(info.transport, "websocket");
        assert_eq!(info.protocol, "json");
        assert_eq!(info.ping_pong_latency_ms, -1);
        let state = info.state.as_ref().unwrap();
        assert!(state.channels.contains_key("news"));
        assert_eq!(serde_json::from_slice::<Value>(&state.meta).unwrap()["plan"], "gold");
    }
    let by_user = conn(ConnectionsRequest { user: "carol".into(), ..Default::default() }).await;
    assert_eq!(by_user.result.unwrap().connections.values().next().unwrap().user, "carol");
    let by_cel = conn(ConnectionsRequest { expression: r#"labels.region == "us""#.into(), ..Default::default() }).await;
    assert_eq!(by_cel.result.unwrap().connections.len(), 1);
    let any = FilterNode { key: "region".into(), cmp: "ex".into(), ..Default::default() };
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    for _ in 0..3 {
        let page = conn(ConnectionsRequest { label_filter: Some(any.clone()), limit: 2, cursor, ..Default::default() })
            .await
            .result
            .unwrap();
        assert!(page.connections.len() <= 2);
        seen.extend(page.connections.into_keys());
        cursor = page.next_cursor;
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "paging lists every connection once");
    let blank = conn(ConnectionsRequest::default()).await;
    assert_eq!(blank.error.unwrap().code, 107);

    // Subscribe / unsubscribe by label filter across users: the eu clients get pushes.
    let r = c
        .subscribe(authed(SubscribeRequest {
            channel: "extra".into(),
            label_filter: Some(label("region", "eu")),
            all_users: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.is_none() && r.result.is_some(), "{r:?}");
    for ws in &mut conns[..2] {
        ws.push_where(|p| p["channel"] == "extra" && p.get("subscribe").is_some()).await;
    }
    let ch = c.channels(authed(ChannelsRequest { pattern: "extra".into() })).await.unwrap().into_inner();
    assert_eq!(ch.result.unwrap().channels["extra"].num_clients, 2);
    let r = c
        .unsubscribe(authed(UnsubscribeRequest { channel: "extra".into(), user: "alice".into(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.is_none());
    conns[0].push_where(|p| p["channel"] == "extra" && p.get("unsubscribe").is_some()).await;

    // Refresh (no expiry change is an empty success) and history_remove.
    let r = c.refresh(authed(RefreshRequest { user: "bob".into(), ..Default::default() })).await.unwrap();
    assert!(r.into_inner().error.is_none());
    let r = c.history_remove(authed(HistoryRemoveRequest { channel: "news".into() })).await.unwrap();
    assert!(r.into_inner().error.is_none());
    let h = c.history(authed(HistoryRequest { channel: "news".into(), limit: -1, ..Default::default() })).await;
    assert!(h.unwrap().into_inner().result.unwrap().publications.is_empty());

    // Batch: replies in order under each method, errors in place.
    let batch = c
        .batch(authed(BatchRequest {
            commands: vec![
                Command {
                    publish: Some(PublishRequest {
                        channel: "news".into(),
                        data: b"{\"b\":1}".to_vec(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Command { presence_stats: Some(PresenceStatsRequest { channel: "news".into() }), ..Default::default() },
                Command { publish: Some(PublishRequest::default()), ..Default::default() },
                Command {
                    connections: Some(ConnectionsRequest { user: "bob".into(), ..Default::default() }),
                    ..Default::default()
                },
                Command::default(),
            ],
            parallel: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.replies.len(), 5);
    assert!(batch.replies[0].publish.is_some());
    assert_eq!(batch.replies[1].presence_stats.as_ref().unwrap().num_clients, 3);
    assert_eq!(batch.replies[2].error.as_ref().unwrap().code, 107);
    assert_eq!(batch.replies[3].connections.as_ref().unwrap().connections.len(), 1);
    assert_eq!(batch.replies[4].error.as_ref().unwrap().code, 104);

    // Disconnect by label filter closes exactly the eu connections, with the code asked.
    let r = c
        .disconnect(authed(DisconnectRequest {
            label_filter: Some(label("region", "eu")),
            all_users: true,
            disconnect: Some(Disconnect { code: 4000, reason: "maintenance".into() }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.is_none(), "{r:?}");
    let mut carol = conns.pop().unwrap();
    for mut ws in conns {
        assert_eq!(ws.closed().await, Closed::Code(4000, "maintenance".into()));
    }
    assert!(carol.call("presence_stats", json!({"channel": "news"})).await.get("presence_stats").is_some());
    let left = conn(ConnectionsRequest { label_filter: Some(any), ..Default::default() }).await;
    assert_eq!(left.result.unwrap().connections.len(), 1);
}

/// Logical errors: in the `error` field by default, as statuses in transport mode
/// (per call with `x-centrifugo-error-mode`, or for all calls by config).
#[tokio::test]
async fn error_modes() {
    let g = start(json!({"channel": {"namespaces": [{"name": "plain"}]}})).await;
    let mut c = g.client().await;
    let r = c.publish(authed(PublishRequest { channel: "news".into(), ..Default::default() })).await.unwrap();
    let e = r.into_inner().error.unwrap();
    assert_eq!((e.code, e.message.as_str()), (107, "data required"));
    let r = c.presence(authed(PresenceRequest { channel: "nope:x".into() })).await.unwrap().into_inner();
    assert_eq!(r.error.unwrap().code, 102);
    let r = c.history(authed(HistoryRequest { channel: "plain:x".into(), ..Default::default() })).await.unwrap();
    assert_eq!(r.into_inner().error.unwrap().code, 108);

    let mut req = authed(PresenceRequest { channel: "nope:x".into() });
    req.metadata_mut().insert("x-centrifugo-error-mode", "transport".parse().unwrap());
    assert_eq!(c.presence(req).await.unwrap_err().code(), Code::NotFound);
    let mut req = authed(PublishRequest { channel: "news".into(), ..Default::default() });
    req.metadata_mut().insert("x-centrifugo-error-mode", "transport".parse().unwrap());
    let status = c.publish(req).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "data required"));

    let g = start(json!({"grpc_api": {"error_mode": "transport"}})).await;
    let mut c = g.client().await;
    let r = c.history(authed(HistoryRequest { channel: "".into(), ..Default::default() })).await;
    assert_eq!(r.unwrap_err().code(), Code::InvalidArgument);
    let r = c.publish(authed(PublishRequest { channel: "x".into(), data: b"{}".to_vec(), ..Default::default() }));
    assert!(r.await.unwrap().into_inner().result.is_some());
}

/// No key, a wrong key, another scheme: UNAUTHENTICATED, and nothing happens.
#[tokio::test]
async fn auth_failures() {
    let g = start(json!({})).await;
    let mut c = g.client().await;
    let publish = || PublishRequest { channel: "sec".into(), data: b"{}".to_vec(), ..Default::default() };
    let status = c.publish(Request::new(publish())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    for bad in ["apikey wrong", &format!("bearer {KEY}"), KEY, "apikey", &format!("apikey {KEY}x")] {
        let status = c.publish(with_key(publish(), bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{bad}");
    }
    let (_, h) = g.server.api("history", json!({"channel": "sec", "limit": -1})).await;
    assert_eq!(h["result"]["publications"].as_array().map_or(0, Vec::len), 0, "{h}");
    // The HTTP API's key is not the gRPC key.
    let status = c.info(with_key(InfoRequest {}, &format!("apikey {API_KEY}"))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

/// A codec passing raw bytes, to send what no generated client would.
#[derive(Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let v = src.chunk().to_vec();
        src.advance(v.len());
        Ok(Some(v))
    }
}

async fn raw(channel: &Channel, method: &str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let path = format!("/centrifugal.centrifugo.api.CentrifugoApi/{method}").parse().unwrap();
    grpc.unary(authed(body), path, RawCodec).await.map(|r| r.into_inner())
}

/// `n` FilterNodes nested through `nodes` (field 6), innermost a valid leaf.
fn nested_filter(n: usize) -> Vec<u8> {
    use prost::Message;
    let mut inner = label("region", "eu").encode_to_vec();
    for _ in 0..n {
        let mut outer = b"\x0a\x03not".to_vec(); // op = "not"
        outer.push(0x32); // field 6, length-delimited
        prost::encoding::encode_varint(inner.len() as u64, &mut outer);
        outer.extend_from_slice(&inner);
        inner = outer;
    }
    inner
}

/// Hostile bytes: malformed protobuf, wrong wire types, invalid UTF-8, nesting past
/// the decoder's and the filter's limits, oversized messages, unknown methods. Each
/// gets a gRPC error (or a 107 in the body), and the server keeps serving.
#[tokio::test]
async fn hostile_messages() {
    let g = start(json!({"grpc_api": {"max_receive_message_size": 65536}})).await;
    let ch = g.channel().await;
    let mut c = CentrifugoApiClient::new(ch.clone());

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", vec![0xff; 64]),
        ("truncated length", vec![0x0a, 0x7f, b'a']),
        ("endless varint", vec![0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ("wrong wire type for channel", vec![0x08, 0x01]),
        ("invalid UTF-8 channel", vec![0x0a, 0x02, 0xc3, 0x28]),
        ("reserved field number 0", vec![0x02, 0x00]),
    ];
    for (what, body) in cases {
        let status = raw(&ch, "Publish", body).await.unwrap_err();
        assert!(matches!(status.code(), Code::Internal | Code::InvalidArgument), "{what}: {status:?}");
    }

    // Nesting past prost's recursion limit is refused while decoding.
    let mut deep = vec![0x1a]; // ConnectionsRequest.label_filter
    let filter = nested_filter(5000);
    prost::encoding::encode_varint(filter.len() as u64, &mut deep);
    deep.extend_from_slice(&filter);
    assert!(deep.len() < 65536);
    let status = raw(&ch, "Connections", deep).await.unwrap_err();
    assert!(matches!(status.code(), Code::Internal | Code::InvalidArgument), "{status:?}");

    // Within the decoder's limit but past the filter's: a 107 naming the limit.
    let r = c
        .connections(authed(ConnectionsRequest {
            label_filter: Some(prost::Message::decode(&nested_filter(60)[..]).unwrap()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.error.unwrap().code, 107);

    // Oversized: refused before it is decoded (tonic answers OUT_OF_RANGE where
    // grpc-go answers RESOURCE_EXHAUSTED), nothing published.
    let big = PublishRequest { channel: "big".into(), data: vec![b'1'; 70_000], ..Default::default() };
    let status = c.publish(authed(big)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("65536"), "{status:?}");
    let h = c.history(authed(HistoryRequest { channel: "big".into(), limit: -1, ..Default::default() })).await;
    assert!(h.unwrap().into_inner().result.unwrap().publications.is_empty());

    // Data that is not JSON cannot reach JSON clients: 107, nothing published.
    for data in [b"\x00\x01binary".to_vec(), b"{\"a\":".to_vec(), b"1 2".to_vec()] {
        let r = c
            .publish(authed(PublishRequest { channel: "bin".into(), data, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.error.unwrap().code, 107);
    }
    let r = c
        .subscribe(authed(SubscribeRequest {
            channel: "x".into(),
            user: "u".into(),
            info: b"not json".to_vec(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let e = r.error.unwrap();
    assert!(e.code == 107 && e.message.contains("not JSON"), "{e:?}");
    let r = c.rpc(authed(RpcRequest { method: "getUserConnections".into(), params: b"\xff".to_vec() })).await;
    assert_eq!(r.unwrap().into_inner().error.unwrap().code, 107);

    // Methods Centrifugo has and Rotor does not, and made-up ones: UNIMPLEMENTED.
    for method in ["DeviceRegister", "MapPublish", "Nope"] {
        assert_eq!(raw(&ch, method, Vec::new()).await.unwrap_err().code(), Code::Unimplemented, "{method}");
    }

    // Still serving.
    let info = c.info(authed(InfoRequest {})).await.unwrap().into_inner();
    assert_eq!(info.result.unwrap().nodes.len(), 1);
}

fn closed_code(c: Closed) -> u16 {
    match c {
        Closed::Code(code, _) => code,
        Closed::NoFrame => 0,
    }
}

/// The session and user status methods (Centrifugo PRO's): each over gRPC against live
/// WebSocket clients, with the same effect as the HTTP API's own methods.
#[tokio::test]
async fn session_and_user_status_methods() {
    use crate::sessions::{BLOCKED, REVOKED, refused, try_connect};
    let g = start(json!({})).await;
    let mut c = g.client().await;
    let s = &g.server;

    // BlockUser closes the user's live connection and refuses a new one; others stay.
    let t = token("mallory", json!({}));
    let (mut ws, _) = Ws::connect(s, &t).await;
    let (mut bystander, _) = Ws::connect(s, &token("trent", json!({}))).await;
    let r = c.block_user(authed(BlockUserRequest { user: "mallory".into(), expire_at: 0 })).await.unwrap();
    let r = r.into_inner();
    assert!(r.error.is_none() && r.result.is_some(), "{r:?}");
    match ws.closed().await {
        Closed::Code(code, reason) => assert_eq!((code, reason.as_str()), (BLOCKED, "user blocked")),
        other => panic!("{other:?}"),
    }
    assert_eq!(refused(s, &t).await, BLOCKED);
    let alive = bystander.call("subscribe", json!({"channel": "still-here"})).await;
    assert!(alive.get("subscribe").is_some(), "{alive}");

    // UnblockUser lets the user back in.
    let r = c.unblock_user(authed(UnblockUserRequest { user: "mallory".into() })).await.unwrap().into_inner();
    assert!(r.error.is_none() && r.result.is_some(), "{r:?}");
    try_connect(s, &t).await.unwrap();

    // RevokeToken by the token's jti: that connection closes, a token with another jti
    // of the same user is untouched, the revoked token is refused.
    let revoked = token("alice", json!({"jti": "grpc-tok-1"}));
    let (mut ws, _) = Ws::connect(s, &revoked).await;
    let (mut other, _) = Ws::connect(s, &token("alice", json!({"jti": "grpc-tok-2"}))).await;
    let req = RevokeTokenRequest { uid: "grpc-tok-1".into(), expire_at: now_secs() + 3600 };
    let r = c.revoke_token(authed(req)).await.unwrap().into_inner();
    assert!(r.error.is_none() && r.result.is_some(), "{r:?}");
    assert_eq!(closed_code(ws.closed().await), REVOKED);
    assert_eq!(refused(s, &revoked).await, REVOKED);
    let alive = other.call("subscribe", json!({"channel": "alive-2"})).await;
    assert!(alive.get("subscribe").is_some(), "{alive}");

    // InvalidateUserTokens by issued_before: older tokens close and are refused, newer connect.
    let now = now_secs();
    let old = token("carol", json!({"iat": now - 100}));
    let (mut ws, _) = Ws::connect(s, &old).await;
    let req = InvalidateUserTokensRequest {
        user: "carol".into(),
        issued_before: now - 10,
        expire_at: now + 3600,
        channel: String::new(),
    };
    let r = c.invalidate_user_tokens(authed(req)).await.unwrap().into_inner();
    assert!(r.error.is_none() && r.result.is_some(), "{r:?}");
    assert_eq!(closed_code(ws.closed().await), REVOKED);
    assert_eq!(refused(s, &old).await, REVOKED);
    try_connect(s, &token("carol", json!({"iat": now}))).await.unwrap();

    // Logical errors come back in `error`, with the HTTP API's code and message.
    let r = c.block_user(authed(BlockUserRequest::default())).await.unwrap().into_inner();
    let e = r.error.unwrap();
    assert_eq!((e.code, e.message.as_str()), (107, "user required"));
    let past = RevokeTokenRequest { uid: "x".into(), expire_at: 1 };
    let e = c.revoke_token(authed(past)).await.unwrap().into_inner().error.unwrap();
    assert_eq!((e.code, e.message.as_str()), (107, "expire_at is in the past"));

    // User status: `trent` is connected (online), 43 only gets an active time and a state.
    let before = now_secs();
    let req = UpdateUserStatusRequest { users: vec!["43".into(), "44".into()], state: "away".into() };
    let r = c.update_user_status(authed(req)).await.unwrap().into_inner();
    assert!(r.error.is_none() && r.result.is_some(), "{r:?}");
    let users = vec!["44".to_string(), "43".into(), "trent".into(), "nobody".into()];
    let req = GetUserStatusRequest { users: users.clone() };
    let st = c.get_user_status(authed(req)).await.unwrap().into_inner().result.unwrap().statuses;
    assert_eq!(st.iter().map(|s| s.user.as_str()).collect::<Vec<_>>(), users);
    assert_eq!(st[0].state, "away");
    assert!(st[1].active >= before && st[1].active <= now_secs(), "{st:?}");
    assert_eq!(st[1].online, 0, "43 never connected: {st:?}");
    assert!(st[2].online >= before - 2 && st[2].active == 0, "{st:?}");
    assert_eq!(st[3], UserStatus { user: "nobody".into(), ..Default::default() });
    // Same numbers (Unix seconds) as the HTTP API's result.
    let (_, http) = s.api("get_user_status", json!({"users": ["43"]})).await;
    assert_eq!(http["result"]["statuses"][0]["active"], st[1].active);

    let req = DeleteUserStatusRequest { users: vec!["43".into()] };
    let r = c.delete_user_status(authed(req)).await.unwrap().into_inner();
    assert!(r.error.is_none() && r.result.is_some(), "{r:?}");
    let req = GetUserStatusRequest { users: vec!["43".into()] };
    let st = c.get_user_status(authed(req)).await.unwrap().into_inner().result.unwrap().statuses;
    assert_eq!(st, vec![UserStatus { user: "43".into(), ..Default::default() }]);
    let e = c.get_user_status(authed(GetUserStatusRequest::default())).await.unwrap().into_inner().error.unwrap();
    assert_eq!((e.code, e.message.as_str()), (107, "users required"));

    // The same methods inside Batch (Command/Reply fields 18–24, as in Centrifugo's
    // api.proto): each reply carries its result under the method, or its error.
    let (mut dave, _) = Ws::connect(s, &token("dave", json!({}))).await;
    let commands = vec![
        Command { block_user: Some(BlockUserRequest { user: "dave".into(), expire_at: 0 }), ..Default::default() },
        Command { unblock_user: Some(UnblockUserRequest { user: "dave".into() }), ..Default::default() },
        Command {
            update_user_status: Some(UpdateUserStatusRequest { users: vec!["45".into()], state: "busy".into() }),
            ..Default::default()
        },
        Command { get_user_status: Some(GetUserStatusRequest { users: vec!["45".into()] }), ..Default::default() },
        Command {
            delete_user_status: Some(DeleteUserStatusRequest { users: vec!["45".into()] }),
            ..Default::default()
        },
        Command {
            revoke_token: Some(RevokeTokenRequest { uid: "batch-jti".into(), expire_at: now_secs() + 60 }),
            ..Default::default()
        },
        Command {
            invalidate_user_tokens: Some(InvalidateUserTokensRequest {
                user: "erin".into(),
                issued_before: now_secs(),
                expire_at: now_secs() + 60,
                channel: String::new(),
            }),
            ..Default::default()
        },
        Command { block_user: Some(BlockUserRequest::default()), ..Default::default() },
    ];
    let r = c.batch(authed(BatchRequest { commands, parallel: false })).await.unwrap().into_inner();
    let rs = &r.replies;
    assert_eq!(rs.len(), 8, "{r:?}");
    assert!(rs[0].block_user.is_some() && rs[1].unblock_user.is_some() && rs[2].update_user_status.is_some(), "{r:?}");
    let st = &rs[3].get_user_status.as_ref().expect("get_user_status reply").statuses;
    assert_eq!((st[0].user.as_str(), st[0].state.as_str()), ("45", "busy"));
    assert!(
        rs[4].delete_user_status.is_some() && rs[5].revoke_token.is_some() && rs[6].invalidate_user_tokens.is_some()
    );
    assert!(rs[..7].iter().all(|r| r.error.is_none()), "{r:?}");
    assert_eq!(rs[7].error.as_ref().map(|e| e.code), Some(107), "{r:?}");
    assert_eq!(closed_code(dave.closed().await), BLOCKED, "block_user inside a batch closes the connection");
}

/// Reflection is served only when `grpc_api.reflection` is on; the server stops with
/// the HTTP server on SIGTERM.
#[tokio::test]
async fn reflection_and_shutdown() {
    let g = start(json!({"grpc_api": {"reflection": true}})).await;
    let ch = g.channel().await;
    // The reflection service answers (any well-formed reply; its content is tonic's).
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".parse().unwrap();
    // list_services = field 7 (string) of ServerReflectionRequest.
    let req = tokio_stream::iter(vec![vec![0x3a, 0x00]]);
    let mut stream = grpc.streaming(Request::new(req), path, RawCodec).await.unwrap().into_inner();
    let reply = stream.message().await.unwrap().unwrap();
    assert!(memchr::memmem::find(&reply, b"centrifugal.centrifugo.api.CentrifugoApi").is_some());

    let g2 = start(json!({})).await;
    let ch2 = g2.channel().await;
    let mut grpc = tonic::client::Grpc::new(ch2);
    grpc.ready().await.unwrap();
    let path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".parse().unwrap();
    let req = tokio_stream::iter(vec![vec![0x3a, 0x00]]);
    let status = grpc.streaming(Request::new(req), path, RawCodec).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);

    let mut g = g;
    let port = g.port;
    assert!(g.server.terminate().success());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "gRPC port still open after exit");
}

/// A self-signed certificate for `localhost` and 127.0.0.1 with its key, made by the
/// `openssl` command line in `dir`: (certificate path, key path). OpenSSL marks a
/// self-signed certificate as a CA by default, which rustls refuses as a server's own
/// certificate (`CaUsedAsEndEntity`); `CA:FALSE` makes it a plain leaf the client
/// trusts directly.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command line is needed to make a test certificate");
    assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// TLS on the real binary: the server starts with `grpc_api.tls` (no crypto provider
/// panic), a client trusting the self-signed certificate calls Info and Publish, and a
/// plaintext client gets nowhere.
#[tokio::test]
async fn grpc_api_over_tls() {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("grpc-tls");
    let (cert, key) = self_signed(&dir);
    let tls = json!({"enabled": true, "cert_pem": cert.to_str().unwrap(), "key_pem": key.to_str().unwrap()});
    let g = start(json!({"grpc_api": {"tls": tls}})).await;

    let ca = Certificate::from_pem(std::fs::read(&cert).unwrap());
    let tls = ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost");
    let endpoint = Channel::from_shared(format!("https://localhost:{}", g.port)).unwrap().tls_config(tls).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let channel = loop {
        match endpoint.connect().await {
            Ok(c) => break c,
            Err(e) => assert!(std::time::Instant::now() < deadline, "gRPC TLS port not answering: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut c = CentrifugoApiClient::new(channel);
    let info = c.info(authed(InfoRequest {})).await.unwrap().into_inner();
    assert_eq!(info.result.unwrap().nodes.len(), 1);
    let published = c
        .publish(authed(PublishRequest {
            channel: "news".into(),
            data: b"{\"tls\":true}".to_vec(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(published.error.is_none() && published.result.is_some(), "{published:?}");
    let (_, http) = g.server.api("history", json!({"channel": "news", "limit": 1})).await;
    assert_eq!(http["result"]["publications"][0]["data"], json!({"tls": true}), "{http}");

    // Plaintext HTTP/2 to the TLS port: the handshake or the call fails, within bounds.
    let plain = async {
        let url = format!("http://127.0.0.1:{}", g.port);
        let ch = Channel::from_shared(url).unwrap().connect().await.map_err(|e| e.to_string())?;
        CentrifugoApiClient::new(ch).info(authed(InfoRequest {})).await.map(|_| ()).map_err(|e| e.to_string())
    };
    let plain = tokio::time::timeout(Duration::from_secs(10), plain).await.expect("plaintext call did not end");
    assert!(plain.is_err(), "a plaintext client got an answer from the TLS port");
    drop(g);
    let _ = std::fs::remove_dir_all(dir);
}
