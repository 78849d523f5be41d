//! Connection-token verification through `rotor::auth::Verifier::verify_connect`,
//! HS256, reported per token: header decode, key lookup, signature, time checks and
//! claim extraction (user, exp, info, channels, subs, meta, labels).
//!
//! - `minimal`: `{sub, exp, iat}` (~150-byte token);
//! - `rich`: plus `jti`, `info`, 8 `labels`, a nested `meta` object and 10 `channels`
//!   (~1 KiB token).
//!
//! No SPEC §13 target; these numbers are the baseline a connect storm is sized by.
//! `verify_connect` is async only for JWKS fetches; with an HMAC key it completes on
//! first poll, which the bench asserts (`now_or_never`), so no runtime is timed.

// A bench's setup panics on broken fixtures; unwrap and expect say so tersely.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use rotor::auth::{Verifier, sign_hs256};
use rotor::config::Config;
use serde_json::{Value, json};

// The server's allocator, so allocation-heavy paths cost here what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

fn verifier() -> Verifier {
    let mut config = Config::default();
    config.client.token.hmac_secret_key = SECRET.into();
    Verifier::new(&config.client).expect("HMAC key configures")
}

fn far_future() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    now + 24 * 3600
}

fn minimal_claims() -> Value {
    json!({ "sub": "42", "exp": far_future(), "iat": 1_700_000_000 })
}

fn rich_claims() -> Value {
    let channels: Vec<String> = (0..10).map(|i| format!("news:topic-{i}")).collect();
    json!({
        "sub": "user-4242",
        "exp": far_future(),
        "iat": 1_700_000_000,
        "jti": "5f0c6a1e-8d3b-4f7a-9c2e-1b4d6e8f0a2c",
        "info": { "name": "Ada Lovelace", "avatar": "https://example.com/a.png", "role": "admin" },
        "labels": {
            "region": "eu-west", "tier": "enterprise", "app": "mobile", "os": "ios",
            "version": "17.4.1", "beta": "1", "team": "core-platform", "shard": "s-17"
        },
        "meta": { "plan": "pro", "seats": 25, "features": ["sso", "audit", "export"], "org": { "id": 991, "name": "Acme" } },
        "channels": channels,
    })
}

fn verify_bench(c: &mut Criterion) {
    let verifier = verifier();
    let mut group = c.benchmark_group("jwt_hs256_verify_connect");
    group.throughput(Throughput::Elements(1));
    for (name, claims) in [("minimal", minimal_claims()), ("rich", rich_claims())] {
        let token = sign_hs256(&claims, SECRET);
        let verify = |t: &str| verifier.verify_connect(t).now_or_never().expect("HMAC verify never waits");
        let checked = verify(&token).expect("token verifies");
        assert_eq!(Some(checked.user.as_str()), claims["sub"].as_str(), "{name}: user claim");
        let forged = sign_hs256(&claims, "some-other-secret");
        assert!(verify(&forged).is_err(), "{name}: a token signed with another key is refused");
        group.bench_function(format!("{name}_{}b", token.len()), |b| b.iter(|| verify(black_box(&token)).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, verify_bench);
criterion_main!(benches);
