//! Server API request decoding, serde_json against simd-json, reported per request and
//! in bytes per second. Rule (design card): keep simd-json only where it wins.
//!
//! Bodies: `publish_small` (a 96-byte publish), `publish_64k` and `broadcast_64k`
//! (65,647 and 67,103 bytes: 64 KiB of structured `data`, the broadcast to 100
//! channels) and `connections_filter` (28,630 bytes: a `label_filter` that is an `or`
//! of 200 `and`s).
//!
//! Rotor decodes `data` as `Box<RawValue>`-style raw JSON (`protocol::Raw`), which only
//! serde_json's own deserializer can produce. So per body:
//! - `serde_json_raw`: serde_json into a local mirror of Rotor's request struct with
//!   raw `data` (what `api::call` does; the real publish/broadcast types are private);
//! - `serde_json_value` / `simd_json_value`: both into the same local struct with
//!   `data: serde_json::Value`;
//! - `simd_json_value_buffers`: the same, reusing simd-json's scratch `Buffers`.
//!
//! `connections_filter` uses Rotor's real `api::connections::ConnectionsRequest` (its
//! `label_filter` is a `serde_json::Value`, which simd-json can fill) for all three.
//! simd-json parses in place, so each of its iterations gets a fresh copy of the body;
//! the copy is made outside the timed region, which flatters simd-json slightly.
//!
//! Conclusion (2026-11-22, 2 shared AMD EPYC cores, system allocator): serde_json into raw `data` — what Rotor does — is the
//! fastest decode of every publish/broadcast body, 1.4× ahead of simd-json's best at
//! 96 bytes and 4.2–4.4× at 64 KiB, because raw `data` is only scanned, never built
//! into a tree. Where a tree must be built simd-json wins: 1.5× over serde_json on
//! 64 KiB of `Value` data, 1.7× on `connections_filter` into Rotor's real request
//! type, 1.2× on the small body only when its `Buffers` are reused (without them it
//! loses, 1.5× slower).
//! So: keep serde_json (raw `data`) for publish/broadcast; simd-json only pays off
//! for large `label_filter` bodies, and it stays a dev-dependency until that path is
//! worth a second JSON library.

// A bench's setup panics on broken fixtures; unwrap and expect say so tersely.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rotor::api::connections::ConnectionsRequest;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

// The server's allocator, so allocation-heavy paths cost here what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `publish` as Rotor's `api::publish::PublishRequest` declares it, `data` generic.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Publish<D> {
    #[serde(default)]
    channel: String,
    data: Option<D>,
    #[serde(default)]
    b64data: String,
    #[serde(default)]
    skip_history: bool,
    #[serde(default)]
    tags: HashMap<String, String>,
    #[serde(default)]
    idempotency_key: String,
}

/// `broadcast` as Rotor's `api::broadcast::BroadcastRequest` declares it.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Broadcast<D> {
    #[serde(default)]
    channels: Vec<String>,
    data: Option<D>,
    #[serde(default)]
    b64data: String,
    #[serde(default)]
    skip_history: bool,
    #[serde(default)]
    tags: HashMap<String, String>,
    #[serde(default)]
    idempotency_key: String,
}

/// Rotor's `protocol::Raw`.
type Raw = Arc<RawValue>;

/// About 64 KiB of JSON shaped like an application payload: a list of small records.
fn data_64k() -> Value {
    let mut items = Vec::new();
    let mut len = 0;
    while len < 64 * 1024 {
        let i = items.len();
        let item = json!({
            "id": i,
            "name": format!("item-{i}"),
            "price": 12.5,
            "tags": ["red", "large"],
            "active": i % 2 == 0,
            "note": "a short note about this item",
        });
        len += item.to_string().len() + 1;
        items.push(item);
    }
    json!({ "items": items })
}

fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let small =
        br#"{"channel":"chat:room-1","data":{"text":"hello there","from":"42"},"idempotency_key":"msg-0001"}"#.to_vec();
    let data = data_64k();
    let publish = json!({ "channel": "chat:room-1", "data": data, "tags": { "kind": "bulk" } });
    let channels: Vec<String> = (0..100).map(|i| format!("chat:room-{i}")).collect();
    let broadcast = json!({ "channels": channels, "data": data });
    vec![
        ("publish_small", small),
        ("publish_64k", serde_json::to_vec(&publish).unwrap()),
        ("broadcast_64k", serde_json::to_vec(&broadcast).unwrap()),
    ]
}

/// `{"label_filter": or(200 × and(eq, in[4])), "limit": 100}`.
fn connections_body() -> Vec<u8> {
    let nodes: Vec<Value> = (0..200)
        .map(|i| {
            json!({"op": "and", "nodes": [
                {"key": "region", "cmp": "eq", "val": format!("region-{i}")},
                {"key": "tier", "cmp": "in", "vals": ["free", "pro", "enterprise", format!("custom-{i}")]},
            ]})
        })
        .collect();
    serde_json::to_vec(&json!({ "label_filter": { "op": "or", "nodes": nodes }, "limit": 100 })).unwrap()
}

fn simd<T: DeserializeOwned>(body: &[u8]) -> T {
    simd_json::serde::from_slice(&mut body.to_vec()).expect("simd-json decodes")
}

/// All decoders agree on the body before any is timed.
fn check_publish_like(name: &str, body: &[u8]) {
    let data = |raw: Option<Raw>, value: Option<Value>, simd_value: Option<Value>| {
        let raw: Value = serde_json::from_str(raw.expect("data").get()).unwrap();
        assert_eq!(Some(&raw), value.as_ref(), "{name}: serde_json data");
        assert_eq!(Some(&raw), simd_value.as_ref(), "{name}: simd-json data");
    };
    if name.starts_with("broadcast") {
        let r: Broadcast<Raw> = serde_json::from_slice(body).unwrap();
        let v: Broadcast<Value> = serde_json::from_slice(body).unwrap();
        let s: Broadcast<Value> = simd(body);
        assert_eq!(r.channels, s.channels);
        data(r.data, v.data, s.data);
    } else {
        let r: Publish<Raw> = serde_json::from_slice(body).unwrap();
        let v: Publish<Value> = serde_json::from_slice(body).unwrap();
        let s: Publish<Value> = simd(body);
        assert_eq!((r.channel.as_str(), &r.tags), (s.channel.as_str(), &s.tags));
        data(r.data, v.data, s.data);
    }
}

/// The four ways for one publish-like body, `R`/`V` being its raw and Value structs.
fn bench_body<R: DeserializeOwned, V: DeserializeOwned>(c: &mut Criterion, name: &str, body: &[u8]) {
    let mut group = c.benchmark_group(format!("decode_{name}"));
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("serde_json_raw", |b| b.iter(|| serde_json::from_slice::<R>(black_box(body)).unwrap()));
    group.bench_function("serde_json_value", |b| b.iter(|| serde_json::from_slice::<V>(black_box(body)).unwrap()));
    bench_simd::<V>(&mut group, "simd_json_value", body);
    group.finish();
}

/// simd-json decoding `body` into `T`, without and with reused `Buffers`. It parses in
/// place, so each iteration gets a fresh copy, made outside the timed region.
fn bench_simd<T: DeserializeOwned>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, body: &[u8]) {
    group.bench_function(name, |b| {
        b.iter_batched_ref(
            || body.to_vec(),
            |buf| simd_json::serde::from_slice::<T>(buf).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let mut buffers = simd_json::Buffers::new(body.len());
    group.bench_function(format!("{name}_buffers"), |b| {
        b.iter_batched_ref(
            || body.to_vec(),
            |buf| simd_json::serde::from_slice_with_buffers::<T>(buf, &mut buffers).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

fn publish_like(c: &mut Criterion) {
    for (name, body) in bodies() {
        check_publish_like(name, &body);
        if name.starts_with("broadcast") {
            bench_body::<Broadcast<Raw>, Broadcast<Value>>(c, name, &body);
        } else {
            bench_body::<Publish<Raw>, Publish<Value>>(c, name, &body);
        }
    }
}

fn connections(c: &mut Criterion) {
    let body = connections_body();
    let a: ConnectionsRequest = serde_json::from_slice(&body).unwrap();
    let b: ConnectionsRequest = simd(&body);
    assert_eq!((a.label_filter, a.limit), (b.label_filter, b.limit), "decoders agree");

    let mut group = c.benchmark_group("decode_connections_filter");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("serde_json_rotor", |b| {
        b.iter(|| serde_json::from_slice::<ConnectionsRequest>(black_box(&body)).unwrap())
    });
    bench_simd::<ConnectionsRequest>(&mut group, "simd_json_rotor", &body);
    group.finish();
}

criterion_group!(benches, publish_like, connections);
criterion_main!(benches);
