//! Publication fan-out through the real node: `Node::publish` into a channel with
//! 10,000 local WebSocket subscribers (memory engine, no history), reported per
//! subscriber (criterion's throughput in elements). One publish encodes the
//! publication once, copies the channel's subscriber list and pushes the same bytes
//! onto every session's bounded queue.
//!
//! Sessions are built as a connect builds them (a client id, a bounded queue of
//! `client.queue_max_size` bytes), registered in the hub and subscribed server-side
//! with `Node::subscribe_sessions`. Between
//! publishes, outside the timed region, every queue is drained — as the sessions'
//! writers would — and checked to hold exactly the one publication, so no queue ever
//! overflows (an overflow would close the session as slow); after the bench all
//! 10,000 must still be subscribed with open queues.
//!
//! SPEC §13 sets no fan-out target; the measured per-subscriber cost is the baseline:
//! 81.6 ns per subscriber (816 µs per publish) on 2 shared AMD EPYC cores, 2026-11-22.

// A bench's setup panics on broken fixtures; unwrap and expect say so tersely.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::Mutex;
use rotor::config::Config;
use rotor::node::{MutableState, Node, PublishOptions, Queue, ServerSubscribe, Session, Transport};
use rotor::protocol::Raw;
use serde_json::value::RawValue;

// The server's allocator, so allocation-heavy paths cost here what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SUBSCRIBERS: usize = 10_000;
const CHANNEL: &str = "news";

/// Runs a future of the memory engine, which completes without waiting.
fn now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the memory engine never waits"),
    }
}

fn node_with_subscribers() -> (Arc<Node>, Vec<Arc<Session>>) {
    let node = Node::new(Config::default()).expect("default config builds a node");
    let sessions: Vec<Arc<Session>> = (0..SUBSCRIBERS)
        .map(|i| {
            let s = Arc::new(session(i as u128 + 1, node.config.client.queue_max_size));
            node.hub.add(s.clone()).unwrap();
            s
        })
        .collect();
    let sub = ServerSubscribe { channel: CHANNEL.into(), ..Default::default() };
    now(node.subscribe_sessions(&sessions, &sub)).expect("channel resolves");
    drain(&sessions, 1);
    (node, sessions)
}

fn session(id: u128, queue_max_size: usize) -> Session {
    Session {
        id,
        user: format!("user-{}", id % 1000),
        transport: Transport::WebSocket,
        encoding: rotor::protocol::Encoding::Json,
        app_name: "bench".into(),
        app_version: "1.0".into(),
        info: None.into(),
        meta: None.into(),
        labels: Vec::new(),
        connected_at_ms: 1_700_000_000_000,
        session_id: 0,
        token: None,
        queue: Arc::new(Queue::new(queue_max_size)),
        state: Mutex::new(MutableState { subs: HashMap::new(), expire_at: None, refreshed: None }),
        proxy_headers: Arc::default(),
        proxied: false,
    }
}

/// Empties every queue as its writer would, checking each held `expect` messages.
fn drain(sessions: &[Arc<Session>], expect: usize) {
    let mut out: Vec<Bytes> = Vec::with_capacity(expect);
    for s in sessions {
        out.clear();
        assert!(s.queue.drain(&mut out).is_none(), "queue closed");
        assert_eq!(out.len(), expect, "each subscriber gets each message once");
    }
}

fn assert_all_subscribed(node: &Node, sessions: &[Arc<Session>]) {
    assert_eq!(node.hub.channels().num_subscribers(CHANNEL), SUBSCRIBERS);
    assert!(sessions.iter().all(|s| s.is_subscribed(CHANNEL) && !s.queue.is_closed()));
}

fn fanout(c: &mut Criterion) {
    let (node, sessions) = node_with_subscribers();
    assert_all_subscribed(&node, &sessions);
    let data: Raw = Arc::from(RawValue::from_string(r#"{"text":"hello, subscribers","seq":1}"#.into()).unwrap());

    let mut group = c.benchmark_group(format!("fanout_{SUBSCRIBERS}"));
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("publish_websocket", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                black_box(now(node.publish(CHANNEL, data.clone(), PublishOptions::default())).unwrap());
                timed += start.elapsed();
                drain(&sessions, 1);
            }
            timed
        })
    });
    group.finish();
    assert_all_subscribed(&node, &sessions);
}

criterion_group!(benches, fanout);
criterion_main!(benches);
