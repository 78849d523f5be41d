//! The revocation check on the connect path: `Sessions::check_connection` (blocked
//! user, connection tokens issued before an invalidation, revoked `jti`) and
//! `check_subscription`, with 100 000 revoked token ids and 100 000 users carrying an
//! invalidation or a block present — the tables a busy messenger keeps for a day.
//!
//! - `clean`: a user and token no entry names (the common connect): two lookups, both
//!   misses;
//! - `revoked_jti`: the token's `jti` is revoked;
//! - `invalidated_user`: the user has an invalidation the token predates;
//! - `empty_tables`: the same clean check with no entries at all (the floor).
//!
//! Issue 15 holds the check to "a hash lookup, not a scan": the number must not grow
//! with the table size (compare `clean` with `empty_tables`), and stay well under a
//! microsecond, next to the tens of microseconds a JWT verification costs (`jwt`).

// A bench's setup panics on broken fixtures; unwrap and expect say so tersely.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rotor::node::sessions::{Entry, Sessions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_800_000_000;
const ENTRIES: usize = 100_000;

fn filled() -> Sessions {
    let s = Sessions::default();
    for i in 0..ENTRIES {
        s.apply(&Entry::Revoked { uid: format!("jti-{i:08}"), expire_at: NOW + 3600 }, NOW);
        let user = format!("user-{i:08}");
        let e = if i % 2 == 0 {
            Entry::Invalidated { user, channel: String::new(), issued_before: NOW - 60, expire_at: NOW + 3600 }
        } else {
            Entry::Blocked { user, expire_at: NOW + 3600 }
        };
        s.apply(&e, NOW);
    }
    s
}

fn check(c: &mut Criterion) {
    let full = filled();
    assert_eq!(full.counts().revoked, ENTRIES);
    let empty = Sessions::default();
    let mut g = c.benchmark_group("revocation_check");
    g.bench_function("clean", |b| {
        b.iter(|| full.check_connection(black_box("someone-else"), black_box(Some(("fresh-jti", NOW))), NOW))
    });
    g.bench_function("revoked_jti", |b| {
        b.iter(|| full.check_connection(black_box("someone-else"), black_box(Some(("jti-00004242", NOW))), NOW))
    });
    g.bench_function("invalidated_user", |b| {
        b.iter(|| full.check_connection(black_box("user-00004242"), black_box(Some(("fresh-jti", NOW - 120))), NOW))
    });
    g.bench_function("subscription_clean", |b| {
        b.iter(|| full.check_subscription(black_box("user-00004242"), black_box("$room"), "fresh-jti", NOW, NOW))
    });
    g.bench_function("empty_tables", |b| {
        b.iter(|| empty.check_connection(black_box("someone-else"), black_box(Some(("fresh-jti", NOW))), NOW))
    });
    g.finish();
    assert!(full.check_connection("user-00004242", Some(("x", NOW - 120)), NOW).is_err());
    assert!(full.check_connection("user-00004243", None, NOW).is_err());
    assert!(full.check_connection("someone-else", Some(("jti-00000001", NOW)), NOW).is_err());
    assert!(full.check_connection("someone-else", Some(("fresh", NOW)), NOW).is_ok());
}

criterion_group!(benches, check);
criterion_main!(benches);
