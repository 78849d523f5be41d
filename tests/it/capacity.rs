//! `rotor capacity` as a user runs it: the real binary, small hubs. Checks the exact
//! `--json` shape, that the same predicate matches the same connections by every
//! route (label filter, translated CEL, interpreted CEL), the per-N series and the SVG
//! plot, and that bad flags fail with a clear message and exit code 1. Timing values
//! are only checked to be present and non-negative — tests never assert speed.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use serde_json::Value;

fn capacity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rotor")).arg("capacity").args(args).output().expect("run rotor capacity")
}

fn json(args: &[&str]) -> Value {
    let out = capacity(args);
    assert!(out.status.success(), "rotor capacity {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(text.trim().lines().count(), 1, "exactly one JSON object on stdout: {text}");
    serde_json::from_str(text.trim()).expect("stdout is JSON")
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().expect("an object").keys().map(String::as_str).collect()
}

fn check_report(r: &Value, n: u64) {
    assert_eq!(keys(r), BTreeSet::from(["connections", "threads", "memory_bytes_per_connection", "survey"]));
    assert_eq!(r["connections"], n);
    assert!(r["threads"].as_u64().unwrap() >= 1);
    assert!(r["memory_bytes_per_connection"].as_f64().unwrap() >= 0.0);
    for probe in r["survey"].as_array().unwrap() {
        assert_eq!(keys(probe), BTreeSet::from(["name", "kind", "matched", "ns_per_connection"]));
        let kind = probe["kind"].as_str().unwrap();
        let kinds = ["label_filter", "cel_translated", "cel_interpreted", "user", "channel_planned"];
        assert!(kinds.contains(&kind) || kind == "channel_index" || kind == "channel_survey", "{kind}");
        let ns = &probe["ns_per_connection"];
        assert_eq!(keys(ns), BTreeSet::from(["p50", "p90", "max"]));
        let (p50, p90, max) = (ns["p50"].as_f64().unwrap(), ns["p90"].as_f64().unwrap(), ns["max"].as_f64().unwrap());
        assert!(0.0 <= p50 && p50 <= p90 && p90 <= max, "{ns}");
    }
}

/// The report's probes as (name, kind), in order.
fn probes(r: &Value) -> Vec<(&str, &str)> {
    r["survey"].as_array().unwrap().iter().map(|p| (p["name"].as_str().unwrap(), p["kind"].as_str().unwrap())).collect()
}

fn find<'a>(r: &'a Value, name: &str, kind: &str) -> &'a Value {
    r["survey"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name && p["kind"] == kind)
        .unwrap_or_else(|| panic!("no probe {name} ({kind}) in {r}"))
}

#[test]
fn default_set_has_the_same_predicate_by_every_route() {
    let r = json(&["--connections", "3000", "--threads", "2", "--runs", "2", "--users", "100", "--json"]);
    check_report(&r, 3000);
    assert_eq!(r["threads"], 2);
    let label = find(&r, "predicate", "label_filter")["matched"].as_u64().unwrap();
    assert!(label > 0 && label < 3000, "the predicate selects some connections: {label}");
    assert_eq!(find(&r, "predicate", "cel_translated")["matched"], label);
    assert_eq!(find(&r, "predicate", "cel_interpreted")["matched"], label);
    // Connection i belongs to user i % 100: user 0 has 30 connections.
    assert_eq!(find(&r, "user 0", "user")["matched"], 30);
    // region has 5 values spread evenly: roughly a fifth match `region eq`.
    let eq = find(&r, "region eq", "label_filter")["matched"].as_u64().unwrap();
    assert!((450..750).contains(&eq), "region-0 on about 600 of 3000, got {eq}");
}

#[test]
fn custom_labels_filters_expressions_and_users() {
    let r = json(&[
        "-n",
        "1000",
        "--runs",
        "1",
        "--label",
        "zone:4",
        "--label",
        "canary:1:0.5",
        "--users",
        "10",
        "--filter",
        r#"{"key":"zone","cmp":"in","vals":["zone-0","zone-1"]}"#,
        "--filter",
        r#"{"key":"canary","cmp":"ex"}"#,
        "--expression",
        r#"labels.zone == "zone-3""#,
        "--expression",
        r#"user == "3" && labels.zone == "zone-3""#,
        "--expression",
        r#"app_name == "capacity" && labels.zone != "zone-3""#,
        "--user",
        "7",
        "--json",
    ]);
    check_report(&r, 1000);
    assert_eq!(
        probes(&r),
        [
            ("filter 1", "label_filter"),
            ("filter 2", "label_filter"),
            ("expression 1", "cel_translated"),
            ("expression 1", "cel_interpreted"),
            ("expression 2", "user"),
            ("expression 2", "cel_interpreted"),
            ("expression 3", "cel_interpreted"),
            ("user 7", "user"),
        ]
    );
    let zone3 = find(&r, "expression 1", "cel_translated")["matched"].as_u64().unwrap();
    assert_eq!(find(&r, "expression 1", "cel_interpreted")["matched"], zone3);
    assert_eq!(find(&r, "expression 3", "cel_interpreted")["matched"], 1000 - zone3);
    assert_eq!(find(&r, "expression 2", "user")["matched"], find(&r, "expression 2", "cel_interpreted")["matched"]);
    assert_eq!(find(&r, "user 7", "user")["matched"], 100);
    let canary = find(&r, "filter 2", "label_filter")["matched"].as_u64().unwrap();
    assert!((350..650).contains(&canary), "canary on about half: {canary}");
}

/// `--channel` subscribes a share of the connections through the server API's
/// subscribe path; a channel expression is timed by the API's plan and by each route
/// forced, and all three select the same connections. With channels and no probes
/// given, the default set gains the first channel alone and with the equality.
#[test]
fn channel_expressions_run_by_every_route() {
    let r = json(&[
        "-n",
        "4000",
        "--runs",
        "1",
        "--channel",
        "room:0.25",
        "--channel",
        "lobby:1",
        "--expression",
        r#""room" in channels && labels.region == "region-1""#,
        "--expression",
        r#""lobby" in channels"#,
        "--expression",
        r#""room" in channels && user.endsWith("7")"#,
        "--json",
    ]);
    check_report(&r, 4000);
    assert_eq!(
        probes(&r),
        [
            ("expression 1", "channel_planned"),
            ("expression 1", "channel_index"),
            ("expression 1", "channel_survey"),
            ("expression 2", "channel_planned"),
            ("expression 3", "channel_planned"),
        ]
    );
    let both = find(&r, "expression 1", "channel_planned")["matched"].as_u64().unwrap();
    assert!((120..280).contains(&both), "a quarter of a fifth of 4000 is about 200: {both}");
    assert_eq!(find(&r, "expression 1", "channel_index")["matched"], both);
    assert_eq!(find(&r, "expression 1", "channel_survey")["matched"], both);
    assert_eq!(find(&r, "expression 2", "channel_planned")["matched"], 4000, "share 1 subscribes everyone");
    let room7 = find(&r, "expression 3", "channel_planned")["matched"].as_u64().unwrap();
    assert!((50..150).contains(&room7), "a quarter of the 400 connections of users ending in 7: {room7}");

    let d = json(&["-n", "2000", "--runs", "1", "--channel", "news:0.5", "--json"]);
    assert!(find(&d, "news in channels", "channel_planned")["matched"].as_u64().unwrap() > 0);
    for kind in ["channel_planned", "channel_index", "channel_survey"] {
        find(&d, "news in channels && region eq", kind);
    }
}

/// `--meta` gives every connection the documented `meta`, so expressions over it match
/// exactly the connections the formula says, natively and on the cel crate alike.
#[test]
fn meta_population_is_selectable() {
    let r = json(&[
        "--connections",
        "1500",
        "--runs",
        "1",
        "--meta",
        "--expression",
        r#"meta.plan == "plan-0""#,
        "--expression",
        r#"meta.plan == "plan-0" && meta.geo.country == "country-1" && meta.n >= 0"#,
        "--expression",
        r#"meta.plan == "plan-0" && type(user) == string"#,
        "--json",
    ]);
    check_report(&r, 1500);
    // i % 3 == 0 for 500 of 1500; and i % 5 == 1 too for 100 of them
    assert_eq!(find(&r, "expression 1", "cel_interpreted")["matched"], 500);
    assert_eq!(find(&r, "expression 2", "cel_interpreted")["matched"], 100);
    assert_eq!(find(&r, "expression 3", "cel_interpreted")["matched"], 500);
    // without the flag there is no meta: nothing matches
    let r = json(&["--connections", "300", "--runs", "1", "--expression", r#"meta.plan == "plan-0""#, "--json"]);
    assert_eq!(find(&r, "expression 1", "cel_interpreted")["matched"], 0);
}

#[test]
fn several_sizes_give_a_series_and_a_plot() {
    let dir = std::env::temp_dir().join(format!("rotor-capacity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("capacity.svg");
    let r = json(&["--connections", "500,2000", "--runs", "1", "--json", "--plot", svg.to_str().unwrap()]);
    assert_eq!(keys(&r), BTreeSet::from(["connections", "threads", "memory_bytes_per_connection", "survey", "series"]));
    assert_eq!(r["connections"], 2000, "the top level is the largest N");
    let series = r["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    check_report(&series[0], 500);
    check_report(&series[1], 2000);
    let text = std::fs::read_to_string(&svg).expect("plot written");
    assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(text.trim_end().ends_with("</svg>"));
    assert!(text.contains("<polyline"), "lines drawn across the two sizes");
    assert!(text.contains("predicate (cel_interpreted)"), "legend names each probe");
    assert!(text.contains("memory per connection"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn human_output_names_the_ratio() {
    let out = capacity(&["-n", "2000", "--runs", "1"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2000 connections"), "{text}");
    assert!(text.contains("faster than the CEL interpreter"), "{text}");
}

#[test]
fn bad_input_fails_clearly() {
    let cases: &[(&[&str], &str)] = &[
        (&["-n", "0"], "--connections 0"),
        (&["-n", "20000000"], "--connections 20000000"),
        (&["-n", "ten"], "invalid value"),
        (&["--label", "region"], "name:cardinality"),
        (&["--label", "region:0"], "cardinality"),
        (&["--label", "beta:2:1.5"], "share"),
        (&["--label", "a:2", "--label", "a:3"], "once"),
        (&["--channel", "room"], "name:share"),
        (&["--channel", "room:0"], "share"),
        (&["--channel", ":0.5"], "name"),
        (&["--channel", "room:2"], "share"),
        (&["--channel", "a:0.5", "--channel", "a:0.1"], "once"),
        (&["-n", "10", "--channel", "chat:lobby:1"], "unknown channel"),
        (&["--runs", "0"], "--runs"),
        (&["--threads", "0"], "--threads"),
        (&["--users", "0"], "--users"),
        (&["--plot", "chart.png"], ".svg"),
        (&["-n", "10", "--filter", "{not json"], "--filter"),
        (&["-n", "10", "--filter", r#"{"key":"a","cmp":"like","val":"x"}"#], "--filter"),
        (&["-n", "10", "--filter", r#"{"key":"a","cmp":"in"}"#], "--filter"),
        (&["-n", "10", "--expression", "labels.region =="], "--expression"),
        (&["-n", "10", "--expression", &"(".repeat(5000)], "--expression"),
    ];
    for (args, needle) in cases {
        let out = capacity(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}
