//! The filter pipeline on its own, per filter and per connection:
//!
//! - `compile/*`: validate + fold + compile one FilterNode (`rotor::filter::compile`:
//!   parse → IR → bytecode), reported per compile. `eq` is a single equality; `nested`
//!   is 12 nodes of `and`/`or`/`not` over `eq`, `in`, `sw`, `gt`, `neq` and `ex`. Each
//!   runs with no symbol table (string mode, as tags filters compile) and against a
//!   small hub's value interner (as `label_filter` compiles); `*_json` adds decoding the
//!   wire JSON first. No SPEC target; the numbers are the baseline.
//! - `predicate_<filter>/*`: the same predicate on ONE connection's labels three ways —
//!   the string-mode bytecode VM (`Program::matches_map` over a `HashMap`), the naive
//!   reference evaluator (`reference_matches`, the test oracle) and per-connection CEL
//!   (`plan_interpreted(..).matches`: Rotor's native evaluator where the expression is in
//!   its subset, as these are, else the `cel` crate). Target (SPEC §13): the VM at least
//!   50× faster than interpreted CEL; interpreted CEL ≤ 300 ns per connection.
//!
//! - `cel_<expression>/*`: expressions over `meta` and arithmetic on one connection,
//!   Rotor's native evaluator (reading `meta`'s JSON text in place, checked on each
//!   evaluation or once when stored) against the `cel` crate (which parses `meta` into
//!   values per evaluation), in the same run.
//!
//! Every way is checked to give the same answer before it is timed.

// A bench's setup panics on broken fixtures; unwrap and expect say so tersely.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rotor::filter::cel::{CelConn, CelLimits, MetaForm, plan_interpreted};
use rotor::filter::{FilterNode, Limits, NoSymbols, compile, reference_matches};
use rotor::hub::{Hub, Member};

// The server's allocator, so allocation-heavy paths cost here what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EQ_JSON: &str = r#"{"key":"region","cmp":"eq","val":"eu"}"#;

/// 12 nodes: and(eq, or(in, sw), not(eq), gt, or(neq, ex)).
const NESTED_JSON: &str = r#"{"op":"and","nodes":[
  {"key":"region","cmp":"eq","val":"eu"},
  {"op":"or","nodes":[
    {"key":"tier","cmp":"in","vals":["pro","enterprise","team"]},
    {"key":"device","cmp":"sw","val":"ios-"}]},
  {"op":"not","nodes":[{"key":"beta","cmp":"eq","val":"1"}]},
  {"key":"score","cmp":"gt","val":"10"},
  {"op":"or","nodes":[
    {"key":"plan","cmp":"neq","val":"trial"},
    {"key":"vip","cmp":"ex"}]}]}"#;

/// `EQ_JSON` and `NESTED_JSON` in CEL. Every key the CEL reads is present on the
/// benched connection (a missing key is an error in CEL, `""` or absent in the filter
/// language), so the two languages agree there.
const EQ_CEL: &str = r#"labels.region == "eu""#;
const NESTED_CEL: &str = r#"labels.region == "eu"
  && (labels.tier in ["pro", "enterprise", "team"] || labels.device.startsWith("ios-"))
  && !(labels.beta == "1")
  && int(labels.score) > 10
  && (labels.plan != "trial" || has(labels.vip))"#;

/// The one connection every predicate runs on; it matches both filters.
const LABELS: [(&str, &str); 6] =
    [("beta", "0"), ("device", "ios-17"), ("plan", "paid"), ("region", "eu"), ("score", "42"), ("tier", "pro")];

struct Fake {
    id: u128,
    labels: Vec<(Arc<str>, Arc<str>)>,
}

impl Member for Fake {
    fn client_id(&self) -> u128 {
        self.id
    }
    fn user(&self) -> &str {
        ""
    }
    fn labels(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.labels
    }
}

/// A hub whose interner knows the values the filters mention (and a few more).
fn small_hub() -> Hub<Fake, ()> {
    let hub = Hub::with_shards(1);
    let regions = ["eu", "us", "asia"];
    let tiers = ["free", "pro", "enterprise", "team"];
    for i in 0..64 {
        let mut labels = vec![
            (Arc::from("region"), Arc::from(regions[i % 3])),
            (Arc::from("tier"), Arc::from(tiers[i % 4])),
            (Arc::from("plan"), Arc::from(if i % 2 == 0 { "trial" } else { "paid" })),
        ];
        labels.sort();
        hub.add(Arc::new(Fake { id: i as u128 + 1, labels })).unwrap();
    }
    hub
}

fn node(json: &str) -> FilterNode {
    serde_json::from_str(json).expect("bench filter decodes")
}

fn compile_bench(c: &mut Criterion) {
    let hub = small_hub();
    let limits = Limits::default();
    let mut group = c.benchmark_group("compile");
    for (name, json) in [("eq", EQ_JSON), ("nested", NESTED_JSON)] {
        let tree = node(json);
        group.bench_function(format!("{name}_string"), |b| {
            b.iter(|| compile(black_box(&tree), "label_filter", &limits, &NoSymbols).unwrap())
        });
        group.bench_function(format!("{name}_interned"), |b| {
            b.iter(|| compile(black_box(&tree), "label_filter", &limits, hub.label_values()).unwrap())
        });
        group.bench_function(format!("{name}_json_interned"), |b| {
            b.iter(|| {
                let tree: FilterNode = serde_json::from_str(black_box(json)).unwrap();
                compile(&tree, "label_filter", &limits, hub.label_values()).unwrap()
            })
        });
    }
    group.finish();
}

/// The connection every CEL bench evaluates.
fn cel_conn<'a>(labels: &'a [(Arc<str>, Arc<str>)], channels: &'a [String], meta: Option<&'a str>) -> CelConn<'a> {
    CelConn {
        user: "42",
        client: "6f1c2a5e-0b7d-4a53-9d1e-2f4b8c7a9e10",
        app_name: "app",
        app_version: "1.2.3",
        transport: "websocket",
        protocol: "json",
        meta_json: meta,
        meta_form: MetaForm::UNCHECKED,
        labels,
        channels,
        connected_at: 1_700_000_000_000,
    }
}

fn predicate_bench(c: &mut Criterion) {
    let map: HashMap<String, String> = LABELS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let sorted: Vec<(Arc<str>, Arc<str>)> = LABELS.iter().map(|(k, v)| (Arc::from(*k), Arc::from(*v))).collect();
    let no_channels: Vec<String> = Vec::new();
    let conn = cel_conn(&sorted, &no_channels, None);
    for (name, json, cel) in [("eq", EQ_JSON, EQ_CEL), ("nested", NESTED_JSON, NESTED_CEL)] {
        let tree = node(json);
        let program = compile(&tree, "label_filter", &Limits::default(), &NoSymbols).unwrap();
        let interpreted = plan_interpreted(cel, &CelLimits::default()).unwrap();
        assert!(program.matches_map(&map), "{name}: VM should match");
        assert!(reference_matches(&tree, &map), "{name}: reference should match");
        assert!(interpreted.matches(&conn), "{name}: CEL should match");

        let mut group = c.benchmark_group(format!("predicate_{name}"));
        group.bench_function("vm_string", |b| b.iter(|| black_box(&program).matches_map(black_box(&map))));
        group.bench_function("reference", |b| b.iter(|| reference_matches(black_box(&tree), black_box(&map))));
        group.bench_function("cel_interpreted", |b| b.iter(|| black_box(&interpreted).matches(black_box(&conn))));
        group.finish();
    }
}

/// Expressions over `meta` and arithmetic, which the native evaluator reads in place
/// (`native`: `meta`'s text checked on each evaluation; `native_stored`: checked once
/// when stored, as sessions hold it) and the cel crate evaluates after parsing `meta`
/// into its values (`cel_crate`), on one connection with a 124-byte `meta`.
fn cel_meta_bench(c: &mut Criterion) {
    let sorted: Vec<(Arc<str>, Arc<str>)> = LABELS.iter().map(|(k, v)| (Arc::from(*k), Arc::from(*v))).collect();
    let no_channels: Vec<String> = Vec::new();
    const META: &str = r#"{"plan":"pro","geo":{"country":"DE","city":"Berlin"},"roles":["editor","admin"],"age":34,"beta":true,"team":"core-platform"}"#;
    let conn = cel_conn(&sorted, &no_channels, Some(META));
    // as a session holds it: checked once when stored
    let stored = CelConn { meta_form: MetaForm::of(META), ..cel_conn(&sorted, &no_channels, Some(META)) };
    assert!(stored.meta_form.plain());
    for (name, src) in [
        ("meta_fields", r#"meta.plan == "pro" && meta.geo.country == "DE""#),
        ("meta_in_list", r#""admin" in meta.roles"#),
        ("arithmetic", "connected_at + 3600000 > 1700000000000 && connected_at % 1000 == 0"),
    ] {
        let p = plan_interpreted(src, &CelLimits::default()).unwrap();
        assert_eq!(p.matches_natively(&conn), Some(true), "{name}: decided in place");
        assert!(p.matches_cel_crate(&conn), "{name}: the cel crate agrees");
        let mut group = c.benchmark_group(format!("cel_{name}"));
        assert_eq!(p.matches_natively(&stored), Some(true), "{name}: decided in place, meta checked when stored");
        group.bench_function("native", |b| b.iter(|| black_box(&p).matches(black_box(&conn))));
        group.bench_function("native_stored", |b| b.iter(|| black_box(&p).matches(black_box(&stored))));
        group.bench_function("cel_crate", |b| b.iter(|| black_box(&p).matches_cel_crate(black_box(&conn))));
        group.finish();
    }
}

criterion_group!(benches, compile_bench, predicate_bench, cel_meta_bench);
criterion_main!(benches);
