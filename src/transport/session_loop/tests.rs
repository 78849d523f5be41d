//! The session loop driven by in-memory channels: connect, a command and its reply,
//! a push, ping and pong timing (on tokio's paused clock, checked to the tick), close codes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::sync::mpsc;

use super::*;
use crate::config::Config;
use crate::node::{Node, Transport};

type Out = Outbound<Bytes>;

/// A node with insecure (anonymous) connects and Centrifugo's default timers (25 s
/// ping, 8 s pong timeout, 10 s stale close). Timer tests run on tokio's paused clock
/// (`start_paused`): it jumps to the next timer whenever every task waits, so they
/// take no wall-clock time and can check *when* things happen, exactly.
const PING: Duration = Duration::from_secs(25);
const PONG: Duration = Duration::from_secs(8);
const STALE: Duration = Duration::from_secs(10);

fn node() -> Arc<Node> {
    let mut c = Config::default();
    c.client.insecure = true;
    c.client.ping_interval = crate::config::Duration(PING);
    c.client.pong_timeout = crate::config::Duration(PONG);
    c.client.stale_close_delay = crate::config::Duration(STALE);
    Node::new(c).unwrap()
}

/// In-memory ends for the loop: a stream fed by a channel, a sink into a channel.
fn ends() -> (
    mpsc::UnboundedSender<Inbound>,
    impl Stream<Item = Inbound> + Unpin,
    impl Sink<Out, Error = ()> + Unpin,
    mpsc::UnboundedReceiver<Out>,
) {
    let (to_loop, mut rx) = mpsc::unbounded_channel();
    let (tx, from_loop) = mpsc::unbounded_channel::<Out>();
    let inbound = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let sink =
        Box::pin(futures_util::sink::unfold(
            tx,
            |tx, item: Out| async move { tx.send(item).map(|()| tx).map_err(|_| ()) },
        ));
    (to_loop, inbound, sink, from_loop)
}

struct Harness {
    to_loop: mpsc::UnboundedSender<Inbound>,
    from_loop: mpsc::UnboundedReceiver<Out>,
    task: tokio::task::JoinHandle<()>,
}

fn start(node: &Arc<Node>) -> Harness {
    let (to_loop, inbound, sink, from_loop) = ends();
    let node = node.clone();
    let task = tokio::spawn(async move {
        let mut conn = Conn::new(node, Transport::WebSocket);
        run(&mut conn, inbound, sink, &JoinedLines, Mode::Bidirectional).await;
    });
    Harness { to_loop, from_loop, task }
}

impl Harness {
    fn send(&self, frame: &str) {
        self.to_loop.send(Inbound::Frame(Bytes::copy_from_slice(frame.as_bytes()))).unwrap();
    }

    async fn next(&mut self) -> Out {
        tokio::time::timeout(Duration::from_secs(60), self.from_loop.recv()).await.expect("loop wrote").expect("open")
    }

    async fn next_json(&mut self) -> serde_json::Value {
        match self.next().await {
            Outbound::Frame(f) => serde_json::from_slice(&f).unwrap(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame that is not a ping.
    async fn next_reply(&mut self) -> serde_json::Value {
        loop {
            let v = self.next_json().await;
            if v != serde_json::json!({}) {
                return v;
            }
        }
    }

    async fn connect(&mut self) -> serde_json::Value {
        self.send(r#"{"id":1,"connect":{}}"#);
        let reply = self.next_json().await;
        assert_eq!(reply["id"], 1);
        reply
    }
}

#[tokio::test(start_paused = true)]
async fn connect_command_reply_and_push() {
    let node = node();
    let mut h = start(&node);
    let reply = h.connect().await;
    assert!(reply["connect"]["client"].is_string());
    assert_eq!(reply["connect"]["pong"], true);
    h.send(r#"{"id":2,"unsubscribe":{"channel":"news"}}"#);
    let r = h.next_reply().await;
    assert_eq!(r, serde_json::json!({"id":2,"unsubscribe":{}}));
    let session = node.hub.all().into_iter().next().expect("registered");
    session.push(Bytes::from_static(br#"{"push":{"channel":"x","pub":{"data":1}}}"#));
    assert_eq!(h.next_reply().await["push"]["pub"]["data"], 1);
}

#[tokio::test(start_paused = true)]
async fn ping_then_no_pong_closes_3012() {
    let node = node();
    let mut h = start(&node);
    h.connect().await;
    let connected = tokio::time::Instant::now();
    // The first ping comes within one interval of connect (at a random point of its
    // second half, so a fleet's reconnecting clients do not ping in step); answering
    // it keeps the session.
    assert_eq!(h.next_json().await, serde_json::json!({}));
    let first = tokio::time::Instant::now();
    assert!((PING / 2..=PING).contains(&(first - connected)), "first ping after {:?}", first - connected);
    tokio::time::advance(Duration::from_secs(1)).await;
    h.send("{}");
    // The next ping is left unanswered: closed for no pong, one pong timeout after it.
    assert_eq!(h.next_json().await, serde_json::json!({}));
    let second = tokio::time::Instant::now();
    assert_eq!(second - first, PING, "the pong reset nothing but the wait for it");
    match h.next().await {
        Outbound::Close(d) => assert_eq!(d.code, 3012),
        other => panic!("expected a close, got {other:?}"),
    }
    assert_eq!(tokio::time::Instant::now() - second, PONG, "closed one pong timeout after the ping");
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bad_frames_and_unsupported_close_3501() {
    for bad in [Inbound::Frame(Bytes::from_static(b"not json")), Inbound::Unsupported] {
        let node = node();
        let mut h = start(&node);
        h.to_loop.send(bad).unwrap();
        match h.next().await {
            Outbound::Close(d) => assert_eq!(d.code, 3501),
            other => panic!("expected a close, got {other:?}"),
        }
        h.task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn stale_connection_closes_3502() {
    let node = node();
    let opened = tokio::time::Instant::now();
    let mut h = start(&node);
    match h.next().await {
        Outbound::Close(d) => assert_eq!(d.code, 3502),
        other => panic!("expected a close, got {other:?}"),
    }
    assert_eq!(tokio::time::Instant::now() - opened, STALE, "closed one stale_close_delay after opening");
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn peer_close_is_echoed_and_broken_peer_told() {
    let node = node();
    let mut h = start(&node);
    h.connect().await;
    h.to_loop.send(Inbound::PeerClosed).unwrap();
    assert_eq!(h.next().await, Outbound::EchoClose);
    h.task.await.unwrap();
    assert_eq!(node.hub.len(), 0, "the session is gone with its loop");

    let mut h = start(&node);
    h.to_loop.send(Inbound::Broken(Some(crate::protocol::Disconnect::message_too_big()))).unwrap();
    match h.next().await {
        Outbound::Close(d) => assert_eq!(d.code, 1009),
        other => panic!("expected a close, got {other:?}"),
    }
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn server_disconnect_is_written_as_close() {
    let node = node();
    let mut h = start(&node);
    h.connect().await;
    node.shutdown();
    match h.next().await {
        Outbound::Close(d) => assert_eq!(d.code, 3001),
        other => panic!("expected a close, got {other:?}"),
    }
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unidirectional_mode_ignores_frames() {
    let node = node();
    let (to_loop, inbound, sink, mut from_loop) = ends();
    let n = node.clone();
    let task = tokio::spawn(async move {
        let mut conn = Conn::new(n, Transport::UniWebSocket);
        conn.connect_uni(Default::default()).await.unwrap();
        run(&mut conn, inbound, sink, &JoinedLines, Mode::Unidirectional).await;
    });
    let Outbound::Frame(first) = from_loop.recv().await.unwrap() else { panic!("connect push first") };
    assert!(first.starts_with(b"{\"connect\""));
    to_loop.send(Inbound::Frame(Bytes::from_static(b"garbage"))).unwrap();
    to_loop.send(Inbound::Unsupported).unwrap();
    // Nothing is closed: the next thing written is the first ping.
    assert_eq!(from_loop.recv().await.unwrap(), Outbound::Frame(Bytes::from_static(b"{}")));
    drop(to_loop);
    task.await.unwrap();
}

#[test]
fn codecs_frame_batches() {
    let batch = vec![Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{}")];
    let mut out = Vec::new();
    JoinedLines.frames(batch.clone(), &mut out);
    assert_eq!(out, vec![Bytes::from_static(b"{\"a\":1}\n{}")]);
    // One item holding the batch: the socket writes a frame per message, together.
    let mut each = Vec::new();
    OnePerMessage.frames(batch.clone(), &mut each);
    assert_eq!(each.len(), 1);
    assert_eq!(each[0].0, batch);
}
