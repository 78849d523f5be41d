//! Fuzzing regressions: every seed in `fuzz/seeds/<target>/` (which also holds each
//! input a fuzzer ever crashed on) replayed through the very property function the
//! cargo-fuzz target runs, so `cargo test` keeps them all passing without cargo-fuzz
//! or a nightly toolchain. The properties live in `fuzz/src/lib.rs`, included here as
//! a module; see that file and `fuzz/fuzz_targets/` for what each one checks.

use std::path::{Path, PathBuf};

use rotor::node::{Conn, Transport};
use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod props;

/// The seed files of one target, sorted; a target without seeds is a mistake.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("seed entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

/// Runs `property` on every seed of `target`, naming the seed that fails.
fn replay(target: &str, property: fn(&[u8])) {
    for path in seeds(target) {
        let data = std::fs::read(&path).expect("seed readable");
        if let Err(panic) = std::panic::catch_unwind(|| property(&data)) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("non-string panic");
            panic!("{target} seed {} failed: {why}", path.display());
        }
    }
}

#[test]
fn filter_compile_seeds() {
    replay("filter_compile", props::filter_compile);
}

#[test]
fn filter_vm_vs_reference_seeds() {
    replay("filter_vm_vs_reference", props::filter_vm_vs_reference);
}

#[test]
fn cel_translate_vs_interp_seeds() {
    replay("cel_translate_vs_interp", props::cel_translate_vs_interp);
}

#[test]
fn cel_native_vs_crate_seeds() {
    replay("cel_native_vs_crate", props::cel_native_vs_crate);
}

#[test]
fn client_command_seeds() {
    replay("client_command", props::client_command);
}

#[test]
fn protobuf_command_seeds() {
    replay("protobuf_command", props::protobuf_command);
}

#[test]
fn api_request_seeds() {
    replay("api_request", props::api_request);
}

#[test]
fn jwt_parse_seeds() {
    replay("jwt_parse", props::jwt_parse);
}

#[test]
fn ws_frames_seeds() {
    replay("ws_frames", props::ws_frames);
}

// ---------------------------------------------------------------- crashes found by fuzzing
//
// Each input below is also a seed (`fuzz/seeds/<target>/regress-*.bin`), replayed
// above; these tests add the exact behaviour the fix restored.

/// Connects a WebSocket client whose token carries `claims`; returns the connection
/// and the connect reply.
async fn connect(node: &std::sync::Arc<rotor::node::Node>, claims: Value) -> (Conn, Value) {
    let mut conn = Conn::new(node.clone(), Transport::WebSocket);
    let token = rotor::auth::sign_hs256(&claims, props::CONNECT_SECRET);
    conn.handle_frame(json!({"id": 1, "connect": {"token": token}}).to_string().as_bytes()).await.expect("connects");
    let reply = drain(&conn).into_iter().find(|m| m.get("connect").is_some()).expect("connect reply");
    (conn, reply)
}

fn drain(conn: &Conn) -> Vec<Value> {
    let mut out = Vec::new();
    conn.queue().drain(&mut out);
    out.iter().map(|m| serde_json::from_slice(m).expect("queued JSON")).collect()
}

/// api_request: `batch` re-parsed each method's encoded result into a `serde_json::Value`
/// and panicked ("our own JSON") when a result nested deeper than serde_json's limit of
/// 128 — e.g. `history` returning a publication whose data (raw JSON, never depth
/// limited) was published 200 levels deep.
#[test]
fn batch_embeds_deeply_nested_history_data() {
    let input = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/api_request/regress-api-deep.bin"))
        .expect("seed");
    props::api_request(&input);

    let node = props::fresh_node();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    // The server API now refuses data this deep (107, nesting limit), but clients'
    // publications are not depth-limited, so history can still hold it.
    let publish = format!(r#"{{"channel":"news","data":{deep}}}"#);
    let refused = props::block_on(rotor::api::call(&node, "publish", publish.as_bytes()));
    assert!(matches!(&refused, Ok(Err(e)) if e.code.code() == 107), "{:?}", refused.ok());
    let data: std::sync::Arc<serde_json::value::RawValue> =
        serde_json::value::RawValue::from_string(deep.clone()).expect("valid JSON").into();
    let published = props::block_on(node.publish("news", data, Default::default()));
    assert!(published.is_ok(), "{published:?}");
    let batch = br#"{"commands":[{"history":{"channel":"news","limit":-1}},{"info":{}},{"nope":{}}]}"#;
    let Ok(Ok(result)) = props::block_on(rotor::api::call(&node, "batch", batch)) else { panic!("batch failed") };
    let text = result.get();
    assert!(text.starts_with(r#"{"replies":[{"history":{"publications":[{"data":[[[["#), "{text}");
    assert!(text.contains(&deep));
    assert!(text.contains(r#"{"info":{"nodes":"#));
    assert!(text.ends_with(r#"{"error":{"code":104,"message":"not found"}}]}"#), "{text}");
}

/// api_request: `refresh` (and `subscribe`) with `expire_at` near `i64::MAX` made the
/// connection's expiry timer overflow (`expire_at + expired_close_delay`): a panic with
/// overflow checks, and in release builds a wrapped, past deadline that disconnected
/// the client as expired at once. Now the expiry is simply far away.
#[test]
fn huge_expire_at_from_the_api_neither_overflows_nor_expires() {
    for seed in ["regress-api-refresh.bin", "regress-api-expire.bin"] {
        let path = format!("{}/fuzz/seeds/api_request/{seed}", env!("CARGO_MANIFEST_DIR"));
        props::api_request(&std::fs::read(path).expect("seed"));
    }
    let node = props::fresh_node();
    props::block_on(async {
        let (mut conn, _) = connect(&node, json!({"sub": "u1"})).await;
        let refresh = format!(r#"{{"user":"u1","expire_at":{}}}"#, i64::MAX);
        assert!(matches!(rotor::api::call(&node, "refresh", refresh.as_bytes()).await, Ok(Ok(_))));
        let subscribe = format!(r#"{{"user":"u1","channel":"srv","expire_at":{}}}"#, i64::MAX);
        assert!(matches!(rotor::api::call(&node, "subscribe", subscribe.as_bytes()).await, Ok(Ok(_))));
        let pushes = drain(&conn);
        let refresh = pushes.iter().find_map(|p| p.pointer("/push/refresh")).expect("refresh push");
        assert_eq!(refresh, &json!({"expires": true, "ttl": u32::MAX}));
        let _ = conn.deadline();
        assert!(conn.on_deadline().is_ok(), "a far-future expiry must not disconnect");
    });
}

/// client_command: a connection token with `expire_at: i64::MIN` overflowed the connect
/// reply's `ttl` (`expire_at - now`); subscription tokens (whose `expire_at` is not
/// clamped) overflowed the subscribe reply's `ttl`, `sub_refresh`, and the sub-expiry
/// check and timer at `i64::MIN`/`i64::MAX`. Since expiry claims are NumericDates,
/// values beyond ±year 9999 make the token invalid (3500 / 103), a past one expires
/// it (109), and the farthest valid one saturates `ttl` without overflowing.
#[test]
fn extreme_token_expiry_saturates() {
    const YEAR_9999: i64 = 253_402_300_799;
    for seed in [
        "regress-client-expire-min.bin",
        "regress-client-sub-expire-max.bin",
        "regress-client-sub-expire-min.bin",
        "regress-client-refresh-min.bin",
    ] {
        let path = format!("{}/fuzz/seeds/client_command/{seed}", env!("CARGO_MANIFEST_DIR"));
        props::client_command(&std::fs::read(path).expect("seed"));
    }
    let node = props::fresh_node();
    props::block_on(async {
        for at in [i64::MIN, i64::MAX] {
            let mut conn = Conn::new(node.clone(), Transport::WebSocket);
            let token = rotor::auth::sign_hs256(&json!({"sub": "u1", "expire_at": at}), props::CONNECT_SECRET);
            let frame = json!({"id": 1, "connect": {"token": token}}).to_string();
            let err = conn.handle_frame(frame.as_bytes()).await.expect_err("out-of-range expire_at is invalid");
            assert_eq!(err.code, 3500, "{err:?}");
        }
        let (_conn, reply) = connect(&node, json!({"sub": "u1", "expire_at": YEAR_9999})).await;
        assert_eq!(reply["connect"]["expires"], json!(true));
        let ttl = reply["connect"]["ttl"].as_u64().unwrap();
        assert!(ttl > 360 * 24 * 3600, "clamped to a year at most, never overflowing: {reply}");

        let (mut conn, _) = connect(&node, json!({"sub": "u2"})).await;
        let cases = [
            (2, json!(YEAR_9999), "ttl"),
            (3, json!(i64::MAX), "103"),
            (4, json!(i64::MIN), "103"),
            (5, json!(-YEAR_9999), "109"),
        ];
        for (id, at, want) in cases {
            let channel = format!("$p{id}");
            let claims = json!({"sub": "u2", "channel": channel, "expire_at": at});
            let token = rotor::auth::sign_hs256(&claims, props::SUB_SECRET);
            let frame = json!({"id": id, "subscribe": {"channel": channel, "token": token}});
            conn.handle_frame(frame.to_string().as_bytes()).await.expect("a bad subscription token is an error reply");
            let reply = drain(&conn).into_iter().find(|m| m["id"] == json!(id)).expect("subscribe reply");
            match want {
                "ttl" => assert_eq!(reply["subscribe"]["ttl"], json!(u32::MAX), "{reply}"),
                code => assert_eq!(reply["error"]["code"].to_string(), code, "{reply}"),
            }
        }
        let _ = conn.deadline();
        assert!(conn.on_deadline().is_ok());
        assert!(conn.session().expect("connected").is_subscribed("$p2"), "the far subscription stays");
    });
}

#[test]
fn stream_request_seeds() {
    replay("stream_request", props::stream_request);
}
