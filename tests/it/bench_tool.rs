//! `rotor bench` against the real `rotor` binary: small fleets over both transports,
//! publish and connections loads, the baseline child, and the inputs it must refuse.
//! Assertions are about correctness (counts, fields, exit codes), never about timing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::*;
use rotor::cli::population::Population;
use serde_json::{Value, json};

/// The longest any bench run here may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// What one `rotor bench` run did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.stdout.lines().count(), 1, "exactly one JSON line on stdout:\n{}", self.stdout);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs `rotor bench ARGS` (with the test credentials) to completion or the limit.
fn bench(args: &[&str], scratch: &Path) -> Run {
    bench_with_key(API_KEY, args, scratch)
}

/// Runs `rotor bench ARGS` with the test HMAC secret and `api_key`.
fn bench_with_key(api_key: &str, args: &[&str], scratch: &Path) -> Run {
    let out = scratch.join(format!("bench-{}.out", std::process::id()));
    let err = scratch.join(format!("bench-{}.err", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("bench")
        .args(["--hmac-secret", SECRET, "--api-key", api_key, "--connect-concurrency", "16"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start rotor bench");
    let end = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rotor bench {args:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// A server with the shared base config (permissive channels, uni_http_stream on).
fn server() -> Rotor {
    Rotor::start(&base_config(free_port()))
}

fn ok_json(server: &mut Rotor, args: &[&str]) -> Value {
    let url = server.http();
    let mut all = vec!["--url", url.as_str(), "--json"];
    all.extend_from_slice(args);
    let run = bench(&all, &server.dir);
    assert_eq!(run.code, Some(0), "rotor bench {args:?} failed:\n{}\n--- server log ---\n{}", run.stderr, server.log());
    assert!(server.alive(), "the server died:\n{}", server.log());
    run.json()
}

fn assert_all_connected(r: &Value, n: u64) {
    let c = &r["connect"];
    assert_eq!(c["requested"], n, "{r}");
    assert_eq!(c["connected"], n, "{r}");
    assert_eq!(c["errors"], 0, "{r}");
    assert_eq!(c["dropped"], 0, "{r}");
    for q in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(c["latency"][q].is_number(), "connect latency {q}: {r}");
    }
}

fn assert_memory_known(r: &Value, pid: u32, source: &str) {
    let m = &r["memory"];
    assert_eq!(m["server_pid"], pid, "{r}");
    assert_eq!(m["pid_source"], source, "{r}");
    for f in ["rss_before_kib", "rss_connected_kib", "rss_end_kib", "per_connection_bytes"] {
        assert!(m[f].is_u64(), "memory.{f}: {r}");
    }
    assert!(m["rss_before_kib"].as_u64() > Some(0), "{r}");
    // The anonymous part (no code pages) is within the whole, on kernels that report it.
    if m["anon_before_kib"].is_u64() {
        assert!(m["anon_before_kib"].as_u64() <= m["rss_before_kib"].as_u64(), "{r}");
        assert!(m["anon_connected_kib"].as_u64() <= m["rss_connected_kib"].as_u64(), "{r}");
        assert!(m["anon_per_connection_bytes"].is_u64(), "{r}");
    }
    assert!(m["note"].is_null(), "{r}");
}

/// From 1,000 connections the fleet opens in two halves, and the RSS growth over the
/// second half is reported per connection beside the whole-run figure.
#[test]
fn a_large_fleet_reports_the_memory_of_an_added_connection() {
    let mut server = server();
    let r = ok_json(&mut server, &["--connections", "1000", "--duration", "1"]);
    assert_all_connected(&r, 1000);
    assert_memory_known(&r, server.pid(), "detected");
    let m = &r["memory"];
    let half = m["rss_half_kib"].as_u64().unwrap_or_else(|| panic!("rss_half_kib: {r}"));
    assert!(m["rss_before_kib"].as_u64() < Some(half), "{r}");
    assert!(m["marginal_per_connection_bytes"].is_u64(), "{r}");
}

fn assert_full_delivery(r: &Value, subscribers: u64) {
    let load = &r["load"];
    assert_eq!(load["errors"], 0, "{r}");
    let publishes = load["requests"].as_u64().unwrap();
    assert!(publishes > 0, "{r}");
    let d = &r["delivery"];
    assert_eq!(d["subscribers"], subscribers, "{r}");
    assert_eq!(d["publishes"], publishes, "{r}");
    assert_eq!(d["expected"], publishes * subscribers, "{r}");
    assert_eq!(d["delivered"], d["expected"], "every subscriber got every publication: {r}");
    assert_eq!(d["min_per_client"], publishes, "{r}");
}

#[test]
fn websocket_idle_fleet_reports_memory() {
    let mut server = server();
    let r = ok_json(&mut server, &["--connections", "50", "--duration", "1"]);
    assert_all_connected(&r, 50);
    assert_memory_known(&r, server.pid(), "detected");
    // Too few connections for the halves: no marginal figure.
    assert!(r["memory"]["rss_half_kib"].is_null() && r["memory"]["marginal_per_connection_bytes"].is_null(), "{r}");
    assert_eq!(r["transport"], "websocket");
    assert!(r["load"].is_null() && r["delivery"].is_null() && r["baseline"].is_null(), "{r}");

    let url = server.http();
    let text = bench(&["--url", &url, "--connections", "5", "--duration", "1"], &server.dir);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    assert!(text.stdout.contains("5/5 connected"), "{}", text.stdout);
    assert!(text.stdout.contains("per conn"), "{}", text.stdout);
}

/// 20 clients of a unidirectional transport, subscribed by their tokens, receive every
/// publication of a 2-second load.
fn uni_fleet_receives_publications(transport: &str) {
    let mut server = server();
    let args = ["--transport", transport, "--connections", "20", "--subscribe", "news"];
    let r =
        ok_json(&mut server, &[&args[..], &["--load", "publish", "--duration", "2", "--concurrency", "4"]].concat());
    assert_all_connected(&r, 20);
    assert_eq!(r["transport"], transport);
    assert_eq!(r["subscribe"]["subscribed"], 20, "{r}");
    assert_full_delivery(&r, 20);
    assert_memory_known(&r, server.pid(), "detected");
}

#[test]
fn uni_http_stream_fleet_receives_publications() {
    uni_fleet_receives_publications("uni_http_stream");
}

#[test]
fn uni_sse_fleet_receives_publications() {
    uni_fleet_receives_publications("uni_sse");
}

#[test]
fn uni_websocket_fleet_receives_publications() {
    uni_fleet_receives_publications("uni_websocket");
}

#[test]
fn websocket_publish_with_baseline() {
    let mut server = server();
    let pid = server.pid().to_string();
    let r = ok_json(
        &mut server,
        &[
            "--connections",
            "50",
            "--subscribe",
            "news",
            "--load",
            "publish",
            "--duration",
            "2",
            "--payload-size",
            "100",
            "--server-pid",
            &pid,
            "--baseline",
        ],
    );
    assert_all_connected(&r, 50);
    assert_eq!(r["subscribe"]["subscribed"], 50, "{r}");
    assert_eq!(r["subscribe"]["errors"], 0, "{r}");
    assert_full_delivery(&r, 50);
    assert_memory_known(&r, server.pid(), "flag");
    let b = &r["baseline"];
    assert!(b["requests"].as_u64() > Some(0), "{r}");
    assert_eq!(b["errors"], 0, "{r}");
    assert!(b["ratio"].as_f64().is_some_and(|x| x > 0.0), "{r}");
}

#[test]
fn broadcast_at_a_fixed_rate() {
    let mut server = server();
    let r = ok_json(
        &mut server,
        &["--connections", "10", "--subscribe", "news", "--load", "broadcast", "--rate", "50", "--duration", "1"],
    );
    assert_all_connected(&r, 10);
    assert_eq!(r["load"]["pacing"], "rate", "{r}");
    assert_full_delivery(&r, 10);
}

#[test]
fn connections_load_matches_the_population() {
    let mut server = server();
    let r = ok_json(&mut server, &["--connections", "50", "--users", "7", "--load", "connections", "--duration", "1"]);
    assert_all_connected(&r, 50);
    let load = &r["load"];
    assert_eq!(load["kind"], "connections");
    assert_eq!(load["errors"], 0, "{r}");
    assert!(load["requests"].as_u64() > Some(0), "{r}");
    // The default filter is region == region-0 over the default distribution.
    let population = Population { keys: Population::default_keys(), users: 7, meta: false, channels: Vec::new() };
    let expected = (0..50).filter(|&i| population.labels(i).contains(&("region".into(), "region-0".into()))).count();
    assert!(expected > 0);
    assert_eq!(load["matched"], expected as u64, "{r}");

    let custom = r#"{"key":"tier","cmp":"in","vals":["tier-0","tier-1","tier-2"]}"#;
    let r =
        ok_json(&mut server, &["--connections", "8", "--load", "connections", "--duration", "1", "--filter", custom]);
    assert_eq!(r["load"]["matched"], 8, "{r}");

    // A CEL expression, alone (translated: labels and transport; a channel conjunct)
    // and AND-ed with a filter.
    let expr = r#"transport == "websocket" && labels.region == "region-0""#;
    let r = ok_json(
        &mut server,
        &["--connections", "50", "--load", "connections", "--duration", "1", "--expression", expr],
    );
    assert_eq!((&r["load"]["matched"], &r["load"]["errors"]), (&json!(expected), &json!(0)), "{r}");
    let args = ["--connections", "6", "--subscribe", "news", "--load", "connections", "--duration", "1"];
    let r = ok_json(&mut server, &[&args[..], &["--expression", r#""news" in channels"#]].concat());
    assert_eq!(r["load"]["matched"], 6, "{r}");
    let r = ok_json(&mut server, &[&args[..], &["--expression", "user != \"\"", "--filter", custom]].concat());
    assert_eq!(r["load"]["matched"], 6, "{r}");
}

/// `--api grpc`: publish and connections loads through the gRPC API of a real server
/// (its key is the HTTP API's here, as `bench` passes `--api-key`), with every
/// publication delivered and the same matches as over HTTP.
#[test]
fn grpc_api_loads() {
    let grpc_port = free_port();
    let mut cfg = base_config(free_port());
    cfg["grpc_api"] = json!({"enabled": true, "address": "127.0.0.1", "port": grpc_port, "key": API_KEY});
    let mut server = Rotor::start(&cfg);
    let grpc_url = format!("http://127.0.0.1:{grpc_port}");
    let grpc = ["--api", "grpc", "--grpc-url", grpc_url.as_str(), "--duration", "1", "--concurrency", "4"];

    let publish = ["--connections", "10", "--subscribe", "news", "--load", "publish"];
    let r = ok_json(&mut server, &[&publish[..], &grpc[..]].concat());
    assert_all_connected(&r, 10);
    assert_eq!(r["load"]["api"], "grpc", "{r}");
    assert_eq!(r["load"]["kind"], "publish", "{r}");
    assert_full_delivery(&r, 10);

    let r = ok_json(
        &mut server,
        &[&["--connections", "30", "--users", "7", "--load", "connections"][..], &grpc[..]].concat(),
    );
    let load = &r["load"];
    assert_eq!((&load["api"], &load["kind"]), (&json!("grpc"), &json!("connections")), "{r}");
    assert_eq!(load["errors"], 0, "{r}");
    assert!(load["requests"].as_u64() > Some(0), "{r}");
    let population = Population { keys: Population::default_keys(), users: 7, meta: false, channels: Vec::new() };
    let expected = (0..30).filter(|&i| population.labels(i).contains(&("region".into(), "region-0".into()))).count();
    assert_eq!(load["matched"], expected as u64, "{r}");
    let expr = ["--expression", r#"labels.region == "region-0" && protocol == "json""#];
    let r = ok_json(
        &mut server,
        &[&["--connections", "30", "--users", "7", "--load", "connections"][..], &grpc[..], &expr[..]].concat(),
    );
    assert_eq!((&r["load"]["matched"], &r["load"]["errors"]), (&json!(expected), &json!(0)), "{r}");

    // A wrong key is counted as errors, not successes.
    let url = server.http();
    let args = [&["--url", url.as_str(), "--json", "--connections", "1", "--load", "publish"][..], &grpc[..]].concat();
    let run = bench_with_key("wrong", &args, &server.dir);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["load"]["errors"], r["load"]["requests"], "{r}");
    assert!(r["load"]["error_messages"].to_string().contains("Unauthenticated"), "{r}");
}

#[test]
fn refuses_bad_input() {
    let scratch = temp_dir("bench-bad-input");
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--url", "http://10.1.2.3:8000"], 1, "refusing"),
        (&["--url", "http://example.com:8000"], 1, "refusing"),
        (&["--url", "https://127.0.0.1:8000"], 1, "only http://"),
        (&["--label", "region"], 2, "label key"),
        (&["--label", "region:0"], 2, "cardinality"),
        (&["--connections", "0"], 2, "--connections"),
        (&["--connections", "200001"], 2, "--connections"),
        (&["--transport", "carrier-pigeon"], 2, "--transport"),
        (&["--duration", "601"], 2, "--duration"),
        (&["--load", "connections", "--filter", "{nope"], 1, "--filter"),
        (&["--load", "connections", "--expression", " "], 1, "--expression"),
        (&["--expression", "true"], 1, "--load connections"),
        (&["--baseline"], 1, "--load"),
        (&["--load", "publish", "--api", "grpc", "--grpc-url", "http://10.1.2.3:10000"], 1, "refusing"),
        (&["--load", "publish", "--api", "grpc", "--baseline"], 1, "drop --api grpc"),
        (&["--api", "carrier-pigeon"], 2, "--api"),
    ];
    for (args, code, needle) in cases {
        let run = bench(args, &scratch);
        assert_eq!(run.code, Some(*code), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: stderr lacks {needle:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: nothing on stdout: {}", run.stdout);
    }
    let _ = std::fs::remove_dir_all(scratch);
}

#[test]
fn missing_credentials_are_an_error() {
    let scratch = temp_dir("bench-no-credentials");
    let run = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args(["bench", "--connections", "1"])
        .current_dir(&scratch)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("no HMAC secret"), "{run:?}");
    let _ = std::fs::remove_dir_all(scratch);
}

#[test]
fn unreachable_server_is_reported_not_loaded() {
    let scratch = temp_dir("bench-unreachable");
    let url = format!("http://127.0.0.1:{}", free_port());
    let run = bench(&["--url", &url, "--connections", "3", "--load", "publish", "--json"], &scratch);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("no connection succeeded"), "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["connect"]["connected"], 0, "{r}");
    assert_eq!(r["connect"]["errors"], 3, "{r}");
    assert!(r["load"].is_null(), "no load without connections: {r}");
    assert!(r["memory"]["server_pid"].is_null() && r["memory"]["note"].is_string(), "{r}");
    let _ = std::fs::remove_dir_all(scratch);
}

/// `--compare-url` against a second Rotor: both runs complete with the same fleet and
/// load, and every ratio is peer ÷ this computed from the two reports.
#[test]
fn compare_runs_both_servers_and_reports_ratios() {
    let mut this = server();
    let mut peer = server();
    let (this_url, peer_url) = (this.http(), peer.http());
    let peer_pid = peer.pid().to_string();
    let args = [
        "--url",
        this_url.as_str(),
        "--compare-url",
        peer_url.as_str(),
        "--compare-pid",
        peer_pid.as_str(),
        "--json",
        "--connections",
        "20",
        "--subscribe",
        "news",
        "--load",
        "publish",
        "--duration",
        "1",
        "--concurrency",
        "4",
    ];
    let run = bench(&args, &this.dir);
    assert_eq!(run.code, Some(0), "{}\n--- this ---\n{}\n--- peer ---\n{}", run.stderr, this.log(), peer.log());
    assert!(this.alive() && peer.alive());
    let r = run.json();
    for (side, server, source) in [("this", &this, "detected"), ("peer", &peer, "flag")] {
        let report = &r[side];
        assert_eq!(report["url"], server.http().trim_end_matches('/'), "{side}: {r}");
        assert_all_connected(report, 20);
        assert_full_delivery(report, 20);
        assert_memory_known(report, server.pid(), source);
    }
    let ratio = |side: &str, pick: &dyn Fn(&Value) -> f64| pick(&r["peer"]) / pick(&r[side]);
    let ratios = &r["ratios"];
    let close = |name: &str, want: f64| {
        let got = ratios[name].as_f64().unwrap_or_else(|| panic!("ratios.{name}: {r}"));
        assert!((got - want).abs() <= want.abs() * 1e-9, "ratios.{name} = {got}, want {want}");
    };
    close("connects_per_sec", ratio("this", &|x| x["connect"]["per_sec"].as_f64().unwrap()));
    close("req_per_sec", ratio("this", &|x| x["load"]["req_per_sec"].as_f64().unwrap()));
    close("deliveries_per_sec", ratio("this", &|x| x["delivery"]["per_sec"].as_f64().unwrap()));
    close("delivery_p99", ratio("this", &|x| x["delivery"]["latency"]["p99_ms"].as_f64().unwrap()));
    // RSS can shrink while connecting (a zero growth has no ratio); when both grew, it is there.
    let mem = |x: &Value| x["memory"]["per_connection_bytes"].as_u64().unwrap();
    if mem(&r["this"]) > 0 {
        close("memory_per_connection", mem(&r["peer"]) as f64 / mem(&r["this"]) as f64);
    } else {
        assert!(ratios["memory_per_connection"].is_null(), "{r}");
    }

    // The text report names both servers and prints the ratio lines.
    let text =
        bench(&["--url", &this_url, "--compare-url", &peer_url, "--connections", "3", "--duration", "1"], &this.dir);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    assert!(text.stdout.contains("== peer ÷ this"), "{}", text.stdout);
    assert!(text.stdout.contains("connects per second"), "{}", text.stdout);
}

/// The peer is held to the same loopback rule, and the flags that make no sense
/// together are refused before anything connects.
#[test]
fn compare_refuses_remote_peers_and_conflicting_flags() {
    let server = server();
    let url = server.http();
    for (args, needle) in [
        (vec!["--compare-url", "http://10.1.2.3:8000"], "refusing"),
        (vec!["--compare-url", "not a url"], "--compare-url"),
        (vec!["--compare-url", "http://127.0.0.1:1/api"], "--compare-url"),
        (vec!["--compare-url", &url, "--load", "publish", "--baseline"], "separate comparisons"),
        (vec!["--compare-pid", "1"], "--compare-url"),
    ] {
        let mut all = vec!["--url", url.as_str(), "--connections", "1", "--duration", "1"];
        all.extend_from_slice(&args);
        let run = bench(&all, &server.dir);
        assert_ne!(run.code, Some(0), "{args:?} was accepted");
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
    }
}
