//! The connections API beyond the survey itself, per connection:
//!
//! - `predicate/*`: one predicate, `labels.region == "eu" && labels.tier in
//!   ["pro","enterprise"]`, over the same 100,000 synthetic connections three ways —
//!   the label bytecode in the hub survey (2 threads), the same CEL expression
//!   translated by `plan` (it lands on the same bytecode), and forced past the
//!   translation to per-connection evaluation (`plan_interpreted`, 2 threads: since stop
//!   20 Rotor's native evaluator, which this expression is in the subset of; the `cel`
//!   crate for expressions outside it). Target (SPEC §13): the bytecode at
//!   least 50× faster than the interpreter, in the same run. `cel_prefiltered_2t` adds
//!   an untranslatable conjunct (`app_version == ""`): the label conjuncts
//!   pre-filter on the survey and the interpreter runs on the ~13% they keep.
//! - `result_building`: ConnectionInfo for one matched session, encoded to JSON —
//!   `connection_info_json` on its own (a fresh `Vec` each time, as before),
//!   `into_buffer` appended to a reused buffer (how a listing writes rows), and
//!   `listing_1000` a whole 1,000-row `connections` result through the API's encoding
//!   (`Listing::encode`: the text that becomes the HTTP body as is), reported per row. Target (SPEC §13): ≤ 1 µs per matched
//!   connection; issue 13: ≤ 200 ns.

// A bench's setup panics on broken fixtures; unwrap and expect say so tersely.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::Mutex;
use rotor::api::connections::{ConnectionInfo, ConnectionsResult, Listing, write_info};
use rotor::filter::cel::{CelConn, CelLimits, CelPlan, MetaForm, plan, plan_interpreted};
use rotor::filter::{NoSymbols, compile_expr};
use rotor::hub::{Hub, Member};
use rotor::node::{MutableState, Queue, Session, SubSource, SubState, TokenInfo, Transport};

// The server's allocator, so allocation-heavy paths cost here what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: usize = 100_000;
const EXPR: &str = r#"labels.region == "eu" && labels.tier in ["pro", "enterprise"]"#;

struct Fake {
    id: u128,
    user: String,
    labels: Vec<(Arc<str>, Arc<str>)>,
}

impl Member for Fake {
    fn client_id(&self) -> u128 {
        self.id
    }
    fn user(&self) -> &str {
        &self.user
    }
    fn labels(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.labels
    }
}

fn hub() -> Hub<Fake, ()> {
    let hub = Hub::with_shards(2);
    for i in 0..N {
        let mut labels: Vec<(Arc<str>, Arc<str>)> = vec![
            ("region".into(), ["eu", "us", "asia", "sa", "af"][i % 5].into()),
            ("tier".into(), ["free", "pro", "enterprise"][(i / 5) % 3].into()),
        ];
        labels.sort();
        hub.add(Arc::new(Fake { id: i as u128 + 1, user: (i % 1000).to_string(), labels })).unwrap();
    }
    hub
}

/// What the interpreter sees of a synthetic connection.
fn conn<'a>(f: &'a Fake, no_channels: &'a [String]) -> CelConn<'a> {
    CelConn {
        user: &f.user,
        client: "",
        app_name: "",
        app_version: "",
        transport: "websocket",
        protocol: "json",
        meta_json: None,
        meta_form: MetaForm::UNCHECKED,
        labels: &f.labels,
        channels: no_channels,
        connected_at: 0,
    }
}

fn predicate(c: &mut Criterion) {
    let hub = hub();
    let CelPlan::Translated { labels: Some(expr), .. } = plan(EXPR, &CelLimits::default()).unwrap() else {
        panic!("{EXPR} should translate");
    };
    let translated = compile_expr(&expr, "expression", hub.label_values()).unwrap();
    let interpreted = plan_interpreted(EXPR, &CelLimits::default()).unwrap();
    let no_channels: Vec<String> = Vec::new();
    let expected = N * 2 / 15;

    let mut group = c.benchmark_group("predicate");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("bytecode_survey_2t", |b| {
        b.iter(|| assert_eq!(hub.survey(&translated, 2).len(), expected));
    });
    group.sample_size(10);
    group.bench_function("cel_interpreted_2t", |b| {
        b.iter(|| {
            let got = hub.scan(2, |f| interpreted.matches(&conn(f, &no_channels)));
            assert_eq!(got.len(), expected);
        });
    });
    // Partly translatable: the label conjuncts pre-filter on the bytecode survey, the
    // interpreter sees only the ~13% they keep (how `connections` runs it).
    let mixed = format!("{EXPR} && app_version == \"\"");
    let CelPlan::Interpreted(mixed) = plan(&mixed, &CelLimits::default()).unwrap() else {
        panic!("{mixed} should be interpreted");
    };
    let Some(pre) = mixed.prefilter().and_then(|c| c.labels.as_ref()) else { panic!("a label pre-filter") };
    let pre = compile_expr(pre, "expression", hub.label_values()).unwrap();
    group.bench_function("cel_prefiltered_2t", |b| {
        b.iter(|| {
            let ids = hub.survey(&pre, 2);
            let kept = hub.resolve(&ids);
            let got = kept.iter().filter(|f| mixed.matches(&conn(f, &no_channels))).count();
            assert_eq!(got, expected);
        });
    });
    group.finish();

    // The string-mode VM on one connection's sorted labels (how `user` + filter runs).
    let plain = compile_expr(&expr, "expression", &NoSymbols).unwrap();
    let labels: HashMap<String, String> =
        [("region", "eu"), ("tier", "pro")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    c.bench_function("predicate/string_vm_one_connection", |b| b.iter(|| plain.matches_map(&labels)));
}

fn session() -> Session {
    let mut subs = HashMap::new();
    for ch in ["news", "chat:room-1", "updates"] {
        subs.insert(
            ch.to_string(),
            SubState {
                source: SubSource::Client,
                token: None,
                expire_at: None,
                presence: true,
                join_leave: false,
                chan_info: None,
            },
        );
    }
    let id = 0x1234_5678_9abc_def0_1234_5678_9abc_def0u128;
    Session {
        id,
        user: "42".into(),
        transport: Transport::WebSocket,
        encoding: rotor::protocol::Encoding::Json,
        app_name: "app".into(),
        app_version: "1.2.3".into(),
        info: None.into(),
        meta: Some(Arc::from(serde_json::value::RawValue::from_string(r#"{"plan":"pro","n":1}"#.into()).unwrap()))
            .into(),
        labels: vec![("region".into(), "eu".into()), ("tier".into(), "pro".into())],
        connected_at_ms: 1_700_000_000_000,
        session_id: 0,
        token: Some(TokenInfo { uid: "tok-1".into(), issued_at: 1_700_000_000 }),
        queue: Arc::new(Queue::new(1 << 20)),
        state: Mutex::new(MutableState { subs, expire_at: None, refreshed: None }),
        proxy_headers: Arc::default(),
        proxied: false,
    }
}

fn result_building(c: &mut Criterion) {
    let s = session();
    c.bench_function("result_building/connection_info_json", |b| {
        b.iter(|| serde_json::to_vec(&ConnectionInfo(&s, "rotor-1")).unwrap().len())
    });
    let mut buf = String::with_capacity(4096);
    c.bench_function("result_building/into_buffer", |b| {
        b.iter(|| {
            buf.clear();
            write_info(&mut buf, &s, "rotor-1");
            buf.len()
        })
    });
    let rows = 1000;
    let result = Listing::from(ConnectionsResult {
        connections: (0..rows).map(|_| Arc::new(session())).collect(),
        next_cursor: String::new(),
        total: rows as u64,
        node: "rotor-1".into(),
    });
    let mut group = c.benchmark_group("result_building");
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("listing_1000", |b| b.iter(|| result.encode().get().len()));
    group.finish();
}

criterion_group!(benches, predicate, result_building);
criterion_main!(benches);
