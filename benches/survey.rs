//! The connections survey: a label filter over 10k / 100k / 1M synthetic connections
//! on 1 and 2 threads, reported per connection (criterion's throughput in elements).
//! Target (SPEC §13): ≤ 5 ns per connection at 1M on 2 threads, stretch 1.5 ns.
//!
//! Each connection carries `region` (5 values), `tier` (3) and, on a tenth of them,
//! `beta` = "1". The filters are a single equality (20% match), an `and` of an
//! equality and an `in` set (~13%), and a `not ex` (90%).

// A bench's setup panics on broken fixtures; unwrap and expect say so tersely.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rotor::filter::{FilterNode, Limits, compile};
use rotor::hub::{Hub, Member};

// The server's allocator, so allocation-heavy paths cost here what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

const REGIONS: [&str; 5] = ["eu", "us", "asia", "sa", "af"];
const TIERS: [&str; 3] = ["free", "pro", "enterprise"];

fn hub(n: usize) -> Hub<Fake, ()> {
    let hub = Hub::with_shards(2);
    for i in 0..n {
        let mut labels: Vec<(Arc<str>, Arc<str>)> =
            vec![("region".into(), REGIONS[i % 5].into()), ("tier".into(), TIERS[(i / 5) % 3].into())];
        if i % 10 == 0 {
            labels.push(("beta".into(), "1".into()));
        }
        labels.sort();
        hub.add(Arc::new(Fake { id: i as u128 + 1, user: (i % 1000).to_string(), labels })).unwrap();
    }
    hub
}

fn filters() -> Vec<(&'static str, FilterNode)> {
    let parse = |s: &str| serde_json::from_str::<FilterNode>(s).unwrap();
    vec![
        ("eq", parse(r#"{"key":"region","cmp":"eq","val":"eu"}"#)),
        (
            "and_eq_in",
            parse(
                r#"{"op":"and","nodes":[{"key":"region","cmp":"eq","val":"eu"},{"key":"tier","cmp":"in","vals":["pro","enterprise"]}]}"#,
            ),
        ),
        ("nex", parse(r#"{"key":"beta","cmp":"nex"}"#)),
    ]
}

fn survey(c: &mut Criterion) {
    for n in [10_000, 100_000, 1_000_000] {
        let hub = hub(n);
        let mut group = c.benchmark_group(format!("survey_{n}"));
        group.throughput(Throughput::Elements(n as u64));
        if n >= 1_000_000 {
            group.sample_size(20);
        }
        for (name, node) in filters() {
            let program = compile(&node, "label_filter", &Limits::default(), hub.label_values()).unwrap();
            for threads in [1, 2] {
                group.bench_with_input(BenchmarkId::new(name, format!("{threads}t")), &threads, |b, &t| {
                    b.iter(|| hub.survey(&program, t).len())
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, survey);
criterion_main!(benches);
