//! The properties behind Rotor's fuzz targets, one public function per target, each
//! taking the raw fuzz input and panicking when its property is violated.
//!
//! They live here rather than in `fuzz_targets/` so that `tests/it/fuzz_regressions.rs`
//! in the main crate can replay every seed and every past crash through exactly the
//! same code: that test includes this file with `#[path]`. This file may therefore only
//! use crates the main crate itself depends on (`rotor`, `serde`, `serde_json`,
//! `tokio`, `jsonwebtoken`, `axum`, `bytes`), and no unsafe code.
//!
//! | function                  | property                                                        |
//! |---------------------------|-----------------------------------------------------------------|
//! | [`filter_compile`]        | any JSON FilterNode parses/compiles without panicking, consistently with the reference validator |
//! | [`filter_vm_vs_reference`]| string VM, interned VM and hub survey all agree with `reference_matches` |
//! | [`cel_translate_vs_interp`]| a CEL expression translated to bytecode agrees with the interpreter |
//! | [`client_command`]        | frame decoding and a live connection never panic; every queued message is one line of JSON |
//! | [`protobuf_command`]      | protobuf frame decoding and a live protobuf connection never panic; every queued message is one length-prefixed Reply |
//! | [`api_request`]           | server API calls never panic; `connections` agrees with the reference and the interpreter |
//! | [`jwt_parse`]             | token verification never panics, and accepts exactly the genuinely signed, acceptable tokens |
//! | [`ws_frames`]             | the WebSocket frame reader never panics, gives the same events however the bytes are split into reads, and never passes text that is not UTF-8 or a message over the limit |
//! | [`cel_native_vs_crate`]   | Rotor's native CEL evaluator (meta read in place, arithmetic) gives the cel crate's verdict on any `meta` text, or says it is unsure |
//! | [`stream_request`]        | the streaming path's request judge never panics, takes a request only once all of it is there (never from a prefix, never past the peek bound), and what it takes becomes an `http` request with exactly the announced body |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use jsonwebtoken::{Algorithm, EncodingKey};
use rotor::api::ApiError;
use rotor::auth::{TokenError, Verifier, sign_hs256};
use rotor::config::Config;
use rotor::filter::cel::{CelConn, CelLimits, CelPlan, MetaForm, plan, plan_interpreted};
use rotor::filter::reference::reference_valid;
use rotor::filter::{
    FilterErrorKind, FilterNode, Instr, Limits, NoSymbols, Program, attribute, compile, compile_expr, parse,
    reference_matches,
};
use rotor::hub::{Hub, Member, SortedLabels};
use rotor::node::{Conn, Node, Queue, Transport};
use rotor::protocol::codec::{decode_frame, encode_reply};
use rotor::protocol::{Empty, Encoding, Method, Raw, one_line, pb};
use serde_json::value::RawValue;
use serde_json::{Value, json};

// ------------------------------------------------------------------------ input reader

/// Reads structure out of fuzz bytes. Past the end every read yields zero, so any
/// input (even an empty one) decodes to something and generation always terminates.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number in `0..n` (0 when `n` is 0 or 1).
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => self.byte() as usize % n,
            _ => (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n,
        }
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Whatever is left, consumed.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

// ------------------------------------------------------------------------ shared helpers

thread_local! {
    /// One single-threaded runtime per thread (token verification and connections are
    /// async, but nothing here waits on I/O or timers).
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}

/// Secrets of the fuzzing configuration: connection tokens (current and previous key)
/// and subscription tokens, which have a key of their own.
pub const CONNECT_SECRET: &str = "fuzz-connect-secret";
pub const PREVIOUS_SECRET: &str = "fuzz-previous-connect-secret";
pub const SUB_SECRET: &str = "fuzz-subscription-secret";
/// A key nothing is configured with.
pub const WRONG_SECRET: &str = "fuzz-wrong-secret";

/// Token expiry used by fixtures and seeds: 2100-01-01.
pub const FAR_FUTURE: i64 = 4_102_444_800;

/// The configuration every node-level target runs: HMAC tokens (with a previous key
/// and separate subscription keys), anonymous connects, and channels exercising
/// history, presence, join/leave, recovery, tags filters, user-limited channels,
/// a channel regex and a namespace that allows nothing.
pub fn fuzz_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let open = json!({
            "presence": true, "join_leave": true, "history_size": 5, "history_ttl": "300s",
            "allow_subscribe_for_client": true, "allow_subscribe_for_anonymous": true,
            "allow_publish_for_client": true, "allow_publish_for_anonymous": true,
            "allow_presence_for_client": true, "allow_presence_for_anonymous": true,
            "allow_history_for_client": true, "allow_history_for_anonymous": true,
            "allow_recovery": true, "allow_positioning": true, "allow_tags_filter": true
        });
        let cfg = json!({
            "node": {"name": "fuzz"},
            "client": {
                "token": {"hmac_secret_key": CONNECT_SECRET, "hmac_previous_secret_key": PREVIOUS_SECRET},
                "subscription_token": {"enabled": true, "hmac_secret_key": SUB_SECRET},
                "allow_anonymous_connect_without_token": true,
                "channel_limit": 16,
                "queue_max_size": 262_144
            },
            "rpc": {"ping": {"enabled": true, "method": "ping"}},
            "channel": {
                "without_namespace": open,
                "namespaces": [
                    {"name": "locked"},
                    {"name": "dm", "allow_user_limited_channels": true},
                    {"name": "re", "channel_regex": "^[a-z0-9]+$", "allow_subscribe_for_client": true,
                     "allow_subscribe_for_anonymous": true},
                    {"name": "sub", "presence": true, "allow_presence_for_subscriber": true,
                     "allow_history_for_subscriber": true, "allow_publish_for_subscriber": true,
                     "history_size": 3, "history_ttl": "60s", "force_recovery": true, "force_positioning": true,
                     "force_push_join_leave": true, "allow_tags_filter": true}
                ]
            }
        });
        let config: Config = serde_json::from_value(cfg).expect("fuzz config decodes");
        rotor::config::validate(&config).expect("fuzz config is valid");
        config
    })
}

/// A fresh node per input, so every run starts from the same state.
pub fn fresh_node() -> Arc<Node> {
    Node::new(fuzz_config().clone()).expect("fuzz node")
}

/// Every message a connection queued must be exactly one line of valid JSON: the
/// bidirectional transports frame messages with newlines.
fn check_queue(queue: &Queue) {
    let mut out = Vec::new();
    let closed = queue.drain(&mut out);
    for msg in &out {
        assert!(!msg.contains(&b'\n'), "queued message spans lines: {:?}", String::from_utf8_lossy(msg));
        assert!(serde_json::from_slice::<Box<RawValue>>(msg).is_ok(), "queued message is not JSON: {msg:?}");
    }
    if let Some(d) = closed {
        let push = rotor::protocol::codec::encode_push(false, "", "disconnect", &d);
        assert!(!push.contains(&b'\n'));
    }
}

/// Replaces every JSON string `"jwt:<claims>"` (or `"subjwt:"`, `"prevjwt:"`,
/// `"badjwt:"`) in each line of `frame` with a token signing those claims, so that
/// fuzz inputs can carry tokens whose claims mutate freely. Lines without one are
/// left byte for byte.
pub fn sign_placeholders(frame: &[u8]) -> Vec<u8> {
    if !frame.windows(4).any(|w| w == b"jwt:") {
        return frame.to_vec();
    }
    let mut out = Vec::with_capacity(frame.len() + 256);
    for (i, line) in frame.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(mut v) if line.windows(4).any(|w| w == b"jwt:") => {
                sign_in_place(&mut v);
                out.extend(serde_json::to_vec(&v).expect("re-encodes"));
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

fn sign_in_place(v: &mut Value) {
    match v {
        Value::String(s) => {
            let signed = [("jwt:", CONNECT_SECRET), ("subjwt:", SUB_SECRET), ("prevjwt:", PREVIOUS_SECRET)]
                .into_iter()
                .chain([("badjwt:", WRONG_SECRET)])
                .find_map(|(prefix, secret)| s.strip_prefix(prefix).map(|claims| (claims, secret)))
                .and_then(|(claims, secret)| Some(sign_hs256(&serde_json::from_str(claims).ok()?, secret)));
            if let Some(token) = signed {
                *s = token;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sign_in_place),
        Value::Object(fields) => fields.values_mut().for_each(sign_in_place),
        _ => {}
    }
}

// ------------------------------------------------------------------------ 1. filter_compile

/// Limit kinds: a tree rejected only for these may still be valid for Centrifugo.
fn is_limit(kind: FilterErrorKind) -> bool {
    matches!(
        kind,
        FilterErrorKind::TooDeep
            | FilterErrorKind::TooManyNodes
            | FilterErrorKind::TooManyValues
            | FilterErrorKind::ValueTooLong
            | FilterErrorKind::KeyTooLong
            | FilterErrorKind::TooManyKeys
    )
}

/// Jumps only go forward and land inside the program or on its end.
fn check_jumps(p: &Program) {
    let code = p.instructions();
    for (i, ins) in code.iter().enumerate() {
        if let Instr::JumpIfFalse(t) | Instr::JumpIfTrue(t) = *ins {
            assert!(t as usize > i && t as usize <= code.len(), "bad jump at {i}: {p:?}");
        }
    }
}

/// Labels built from the filter's own keys and values, so that arbitrary trees match
/// something: each key gets the first value seen with it.
fn labels_from_constants(n: &FilterNode, out: &mut HashMap<String, String>) {
    let first = if n.val.is_empty() { n.vals.first() } else { Some(&n.val) };
    if let Some(v) = first {
        out.entry(n.key.clone()).or_insert_with(|| v.clone());
    }
    for child in &n.nodes {
        labels_from_constants(child, out);
    }
}

/// Arbitrary bytes as a JSON FilterNode → parse (validation) → compile, under the
/// default limits, tight limits and the largest limits. Never panics; `parse` and
/// `compile` agree; a compiled tree is valid for the reference validator and a tree
/// rejected for anything but a size limit is invalid for it; compiled programs only
/// jump forward and agree with the reference on two label sets.
pub fn filter_compile(data: &[u8]) {
    let Ok(node) = serde_json::from_slice::<FilterNode>(data) else { return };
    let tight = Limits { max_depth: 3, max_nodes: 6, max_values: 2, max_value_len: 4, max_key_len: 2 };
    let huge = Limits {
        max_depth: usize::MAX,
        max_nodes: usize::MAX,
        max_values: usize::MAX,
        max_value_len: usize::MAX,
        max_key_len: usize::MAX,
    };
    let empty = HashMap::new();
    let mut own = HashMap::new();
    labels_from_constants(&node, &mut own);
    for limits in [Limits::default(), tight, huge] {
        let parsed = parse(&node, "tf", &limits);
        let compiled = compile(&node, "tf", &limits, &NoSymbols);
        match (&parsed, &compiled) {
            (Ok(_), Ok(p)) => {
                assert!(reference_valid(&node), "compiled a tree the reference rejects: {node:?}");
                check_jumps(p);
                let _ = format!("{p:?}");
                for labels in [&empty, &own] {
                    assert_eq!(
                        p.matches_map(labels),
                        reference_matches(&node, labels),
                        "{node:?} on {labels:?}\n{p:?}"
                    );
                }
            }
            (Ok(_), Err(e)) => assert_eq!(e.kind, FilterErrorKind::TooManyKeys, "{e}"),
            (Err(a), Err(b)) => assert_eq!(a, b),
            (Err(e), Ok(_)) => panic!("parse rejected ({e}) what compile accepted"),
        }
        if let Err(e) = &parsed {
            assert!(e.path.starts_with("tf"), "{e:?}");
            assert!(e.to_string().starts_with(&format!("{}: ", e.path)), "{e}");
            assert!(e.subject.len() <= 64, "{e:?}");
            if !is_limit(e.kind) {
                assert!(!reference_valid(&node), "rejected ({e}) a tree the reference accepts: {node:?}");
            }
        }
    }
}

// ------------------------------------------------------------------------ 2. filter_vm_vs_reference

const FILTER_KEYS: &[&str] = &["a", "b", "c", "ab", ""];
const CMPS: &[&str] =
    &["eq", "neq", "in", "nin", "ex", "nex", "sw", "ew", "ct", "lt", "lte", "gt", "gte", "", "exists", "EQ"];

/// Label and constant values: plain strings that prefix/contain each other, the empty
/// string, and numbers at every edge of the decimal grammar.
fn filter_values() -> &'static [String] {
    static VALUES: OnceLock<Vec<String>> = OnceLock::new();
    VALUES.get_or_init(|| {
        let mut v: Vec<String> = [
            "",
            "x",
            "y",
            "xy",
            "yx",
            "0",
            "1",
            "-1",
            "1.0",
            "1.5",
            "01",
            "-0",
            "+1",
            "10",
            "9",
            "-2",
            "0.5",
            "-0.5",
            "1e3",
            " 1",
            "1.",
            ".5",
            "+",
            "-",
            "--1",
            "1.2.3",
            "Zürich",
            "1.0000000000000000001",
            "1.00000000000000000000",
            "00.10",
            "-0.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("9".repeat(41));
        v.push(format!("-+{}", "1".repeat(40)));
        v.push(format!("-+{}", "1".repeat(39)));
        v.push(format!("+-{}", "1".repeat(40)));
        v.push("9".repeat(200));
        v.push("9".repeat(201));
        v.push(format!("-{}", "9".repeat(199)));
        v.push(format!("0.{}", "0".repeat(18) + "1"));
        v
    })
}

fn filter_value(r: &mut Reader) -> String {
    let values = filter_values();
    let i = r.below(values.len() + 1);
    match values.get(i) {
        Some(v) => v.clone(),
        None => {
            let n = r.below(6);
            let bytes: Vec<u8> = (0..n).map(|_| r.byte()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

/// A FilterNode from a small alphabet, at most `depth` levels below this one: mostly
/// well-formed, sometimes with the wrong operands, an unknown op/cmp or a bad arity.
pub fn gen_filter(r: &mut Reader, depth: usize) -> FilterNode {
    let kind = if depth == 0 { 0 } else { r.below(9) };
    let mut n = match kind {
        0..=3 => gen_leaf(r),
        4 | 5 => {
            let count = r.below(5);
            let nodes = (0..count).map(|_| gen_filter(r, depth - 1)).collect();
            FilterNode { op: if kind == 4 { "and" } else { "or" }.into(), nodes, ..FilterNode::default() }
        }
        6 | 7 => {
            let count = r.pick(&[1, 1, 1, 1, 1, 0, 2]);
            let nodes = (0..count).map(|_| gen_filter(r, depth - 1)).collect();
            FilterNode { op: "not".into(), nodes, ..FilterNode::default() }
        }
        _ => {
            let nodes = vec![gen_filter(r, depth - 1)];
            FilterNode { op: r.pick(&["xor", "AND", " and", "nand"]).into(), nodes, ..FilterNode::default() }
        }
    };
    // Stray fields, which Centrifugo ignores on operators.
    if kind >= 4 && r.below(8) == 0 {
        n.key = r.pick(FILTER_KEYS).into();
        n.val = filter_value(r);
    }
    n
}

fn gen_leaf(r: &mut Reader) -> FilterNode {
    let cmp = r.pick(CMPS);
    let wants = match cmp {
        "in" | "nin" => 1,
        "ex" | "nex" => 2,
        _ => 0,
    };
    // 0 = val, 1 = vals, 2 = neither, 3 = both.
    let shape = match r.below(8) {
        0..=5 => wants,
        6 => (wants + 1) % 3,
        _ => 3,
    };
    let mut n = FilterNode { key: r.pick(FILTER_KEYS).into(), cmp: cmp.into(), ..FilterNode::default() };
    if shape == 0 || shape == 3 {
        n.val = filter_value(r);
    }
    if shape == 1 || shape == 3 {
        n.vals = (0..r.below(5)).map(|_| filter_value(r)).collect();
    }
    if r.below(16) == 0 {
        // Children of a leaf are ignored.
        n.nodes.push(FilterNode::leaf("a", "eq", "x"));
    }
    n
}

fn gen_labels(r: &mut Reader) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for k in FILTER_KEYS {
        if r.below(2) == 1 {
            m.insert(k.to_string(), filter_value(r));
        }
    }
    m
}

/// A connection as the hub sees it, for surveys.
pub struct FuzzConn {
    id: u128,
    labels: Vec<(Arc<str>, Arc<str>)>,
}

impl Member for FuzzConn {
    fn client_id(&self) -> u128 {
        self.id
    }

    fn user(&self) -> &str {
        "fuzz"
    }

    fn labels(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.labels
    }
}

/// A table case as in `tests/data/filter/cases.json`: `{"filter": …, "labels": {…}}`.
fn table_case(data: &[u8]) -> Option<(FilterNode, BTreeMap<String, String>)> {
    if data.first() != Some(&b'{') {
        return None;
    }
    let v: Value = serde_json::from_slice(data).ok()?;
    let node = serde_json::from_value(v.get("filter")?.clone()).ok()?;
    let labels = serde_json::from_value(v.get("labels").cloned().unwrap_or_else(|| json!({}))).ok()?;
    Some((node, labels))
}

/// A FilterNode and label sets built from the input (or, for input starting with
/// `{`, a table case plus labels made from its own constants): if the tree compiles, the
/// string-mode VM (`matches_map` and sorted labels), the interned VM on sorted labels,
/// and the hub's columnar survey (block evaluation, with string and interned programs,
/// across freed and reused rows and 64-row block boundaries) all equal
/// `reference_matches`. A tree that compiles is valid for the reference.
pub fn filter_vm_vs_reference(data: &[u8]) {
    let (node, mut rows, mut r) = match table_case(data) {
        Some((node, labels)) => {
            let mut own = HashMap::new();
            labels_from_constants(&node, &mut own);
            (node, vec![labels, own.into_iter().collect(), BTreeMap::new()], Reader::new(&[]))
        }
        None => {
            let mut r = Reader::new(data);
            let node = gen_filter(&mut r, 5);
            let rows: Vec<BTreeMap<String, String>> = (0..1 + r.below(12)).map(|_| gen_labels(&mut r)).collect();
            (node, rows, r)
        }
    };
    if r.below(4) == 0 {
        // Enough rows to span several 64-row blocks.
        let base = rows.clone();
        rows = base.iter().cycle().take(65 + r.below(80)).cloned().collect();
    }
    let removed = u128::from(r.byte()) | u128::from(r.byte()) << 8;
    let extra: Vec<String> = (0..r.below(4)).map(|_| filter_value(&mut r)).collect();

    let text = serde_json::to_string(&node).expect("FilterNode encodes");
    assert_eq!(serde_json::from_str::<FilterNode>(&text).expect("FilterNode decodes"), node, "{text}");

    let limits = Limits::default();
    let strings = compile(&node, "tf", &limits, &NoSymbols);
    let hub: Hub<FuzzConn, ()> = Hub::with_shards(1 + r.below(2));
    for v in &extra {
        hub.label_values().intern(v);
    }
    // First half in, the marked ones out again (freeing rows), then the rest (reusing them).
    let conns: Vec<Arc<FuzzConn>> = rows
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let labels = m.iter().map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str()))).collect();
            Arc::new(FuzzConn { id: i as u128 + 1, labels })
        })
        .collect();
    let half = conns.len() / 2;
    let gone = |i: usize| i < half && i < 16 && removed >> i & 1 == 1;
    for c in &conns[..half] {
        hub.add(c.clone()).expect("uncapped hub");
    }
    for (i, c) in conns[..half].iter().enumerate() {
        if gone(i) {
            hub.remove(c.id);
        }
    }
    for c in &conns[half..] {
        hub.add(c.clone()).expect("uncapped hub");
    }
    // Every label value is interned before compiling, as in the hub.
    let interned = compile(&node, "label_filter", &limits, hub.label_values());
    match (&strings, &interned) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a.kind, b.kind),
        _ => panic!("string and interned compilation disagree: {strings:?} vs {interned:?}"),
    }
    let (Ok(p), Ok(pi)) = (strings, interned) else { return };
    assert!(reference_valid(&node), "compiled a tree the reference rejects: {node:?}");
    check_jumps(&p);
    check_jumps(&pi);

    let mut expected = HashSet::new();
    for (i, (m, c)) in rows.iter().zip(&conns).enumerate() {
        let map: HashMap<String, String> = m.clone().into_iter().collect();
        let want = reference_matches(&node, &map);
        let ctx = || format!("{node:?} on {m:?}\nstrings: {p:?}\ninterned: {pi:?}");
        assert_eq!(p.matches_map(&map), want, "matches_map: {}", ctx());
        assert_eq!(p.matches(&SortedLabels::of(&p, &**c)), want, "sorted: {}", ctx());
        assert_eq!(pi.matches(&SortedLabels::of(&pi, &**c)), want, "sorted/i: {}", ctx());
        if let Some(b) = p.constant() {
            assert_eq!(b, want, "constant program: {}", ctx());
        }
        if want && !gone(i) {
            expected.insert(c.id);
        }
    }
    for (program, mode) in [(&pi, "interned"), (&p, "strings")] {
        let got: HashSet<u128> = hub.survey(program, 1).into_iter().collect();
        assert_eq!(got, expected, "{mode} survey of {node:?} over {rows:?}\n{program:?}");
    }
}

// ------------------------------------------------------------------------ 3. cel_translate_vs_interp

const CEL_KEYS: &[&str] = &["a", "b", "c"];
/// Keys only the bracket form can name.
const CEL_ODD_KEYS: &[&str] = &["x-y", "", "a b", "é"];
/// String literals, in several spellings.
const CEL_LITERALS: &[&str] = &[
    "\"\"",
    "\"x\"",
    "'y'",
    "\"xy\"",
    "r\"x\"",
    "\"\"\"xy\"\"\"",
    "\"\\u0078\"",
    "\"1\"",
    "\"é\"",
    "\"x\\\"y\"",
    "'yx'",
    "\"websocket\"",
    "\"uni_sse\"",
    "'json'",
    "\"protobuf\"",
    "\"uni\"",
];
const CEL_VALUES: &[&str] = &["", "x", "y", "xy", "yx", "1", "é", "x\"y"];
const CEL_USERS: &[&str] = &["u1", "u2", ""];

/// Transports and protocols a connection has, and literals beside them.
const CEL_TRANSPORTS: &[&str] = &["websocket", "uni_sse", "sse"];
const CEL_PROTOCOLS: &[&str] = &["json", "protobuf"];

fn cel_key_ref(r: &mut Reader) -> String {
    match r.below(12) {
        0 | 1 => return format!("labels[\"{}\"]", r.pick(CEL_ODD_KEYS)),
        // The attributes, and a label key in their namespace (no label has one).
        2 => return r.pick(&["transport", "protocol"]).to_owned(),
        3 if r.below(3) == 0 => return r.pick(&["labels[\"\\u0000transport\"]", "labels[\"\\u0000x\"]"]).to_owned(),
        _ => {}
    }
    let k = r.pick(CEL_KEYS);
    match r.below(4) {
        0 => format!("labels[\"{k}\"]"),
        1 => format!("labels['{k}']"),
        _ => format!("labels.{k}"),
    }
}

fn cel_leaf(r: &mut Reader) -> String {
    let lit = |r: &mut Reader| r.pick(CEL_LITERALS).to_owned();
    match r.below(18) {
        0 => format!("{} == {}", cel_key_ref(r), lit(r)),
        1 => format!("{} == {}", lit(r), cel_key_ref(r)),
        2 => format!("{} != {}", cel_key_ref(r), lit(r)),
        3 => format!("{} != {}", lit(r), cel_key_ref(r)),
        4 => {
            let items: Vec<String> = (0..r.below(4)).map(|_| lit(r)).collect();
            format!("{} in [{}]", cel_key_ref(r), items.join(", "))
        }
        5 => format!("has(labels.{})", r.pick(CEL_KEYS)),
        6 => format!("{} in labels", lit(r)),
        7..=9 => {
            let f = r.pick(&["startsWith", "endsWith", "contains"]);
            format!("{}.{f}({})", cel_key_ref(r), lit(r))
        }
        10 if r.below(2) == 0 => format!("{} in channels", r.pick(&["\"news\"", "'chat'", "\"x\""])),
        10 => r.pick(&["true", "false"]).to_owned(),
        11 if r.below(2) == 0 => {
            let users: Vec<String> = (0..r.below(4)).map(|_| format!("\"{}\"", r.pick(CEL_USERS))).collect();
            format!("user in [{}]", users.join(", "))
        }
        11 | 12 => {
            let u = r.pick(CEL_USERS);
            if r.below(2) == 0 { format!("user == \"{u}\"") } else { format!("\"{u}\" == user") }
        }
        // Outside the label subset: the whole expression must be interpreted.
        13 => format!("user != \"{}\"", r.pick(CEL_USERS)),
        14 => r
            .pick(&[
                "size(labels) > 1",
                "labels.a < \"x\"",
                "labels.a == 1",
                "labels.a.matches(\"^x\")",
                "labels.exists(k, k == \"a\")",
                "user.startsWith(\"u\")",
                "labels.?a.orValue(\"\") == \"x\"",
                "client == \"c\"",
            ])
            .to_owned(),
        15 => format!("{} == {}", cel_key_ref(r), cel_key_ref(r)),
        16 => format!("{} in [{}, 1]", cel_key_ref(r), lit(r)),
        _ => format!("{} == b{}", cel_key_ref(r), lit(r)),
    }
}

/// A CEL expression over the label subset (and a little beyond), at most `depth`
/// operators deep.
pub fn gen_cel(r: &mut Reader, depth: usize) -> String {
    if depth == 0 || r.below(3) == 0 {
        return cel_leaf(r);
    }
    match r.below(7) {
        0 => format!("!({})", gen_cel(r, depth - 1)),
        1 => format!("({}) && ({})", gen_cel(r, depth - 1), gen_cel(r, depth - 1)),
        2 => format!("({}) || ({})", gen_cel(r, depth - 1), gen_cel(r, depth - 1)),
        3 => format!("{} && {}", gen_cel(r, depth - 1), gen_cel(r, depth - 1)),
        4 => format!("{} || {}", gen_cel(r, depth - 1), gen_cel(r, depth - 1)),
        5 => format!("!{}", cel_leaf(r)),
        _ => format!("({})", gen_cel(r, depth - 1)),
    }
}

/// A CEL expression from a small grammar (or, for inputs starting with `#`, the rest
/// as raw source) and a few connections: planning never panics, `plan` and
/// `plan_interpreted` accept the same sources, and when `plan` translates the
/// expression to bytecode, its verdict (user and channel conjuncts plus the label
/// program, attributes included) equals the interpreter's on every connection.
pub fn cel_translate_vs_interp(data: &[u8]) {
    let limits = CelLimits::default();
    let mut r = Reader::new(data);
    let src = match data.split_first() {
        Some((b'#', raw)) => String::from_utf8_lossy(raw).into_owned(),
        _ => gen_cel(&mut r, 4),
    };
    // (user, labels, (transport, protocol), channels) of each connection.
    type Fuzzed = (&'static str, BTreeMap<String, String>, (&'static str, &'static str), Vec<String>);
    let conns: Vec<Fuzzed> = (0..1 + r.below(6))
        .map(|_| {
            let user = r.pick(CEL_USERS);
            let mut m = BTreeMap::new();
            for k in CEL_KEYS.iter().chain(CEL_ODD_KEYS) {
                if r.below(2) == 1 {
                    m.insert(k.to_string(), r.pick(CEL_VALUES).to_owned());
                }
            }
            let channels = ["news", "chat"].iter().filter(|_| r.below(2) == 1).map(|c| c.to_string()).collect();
            (user, m, (r.pick(CEL_TRANSPORTS), r.pick(CEL_PROTOCOLS)), channels)
        })
        .collect();
    let planned = plan(&src, &limits);
    let interp = plan_interpreted(&src, &limits);
    let (planned, interp) = match (planned, interp) {
        (Ok(p), Ok(i)) => (p, i),
        (Err(_), Err(_)) => return,
        (p, i) => panic!("plan and plan_interpreted disagree on {src:?}: {:?} vs {:?}", p.err(), i.err()),
    };
    let CelPlan::Translated { user, users, channels, labels } = planned else { return };
    let program = labels.map(|e| compile_expr(&e, "expression", &NoSymbols).expect("translated IR compiles"));
    if let Some(p) = &program {
        check_jumps(p);
    }
    for (conn_user, m, (transport, protocol), subscribed) in &conns {
        let sorted: Vec<(Arc<str>, Arc<str>)> =
            m.iter().map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str()))).collect();
        // The bytecode sees the attributes beside the labels, as in the hub's columns.
        let mut map: HashMap<String, String> = m.clone().into_iter().collect();
        map.insert(attribute::TRANSPORT.to_owned(), transport.to_string());
        map.insert(attribute::PROTOCOL.to_owned(), protocol.to_string());
        let want = interp.matches(&CelConn {
            user: conn_user,
            client: "c-1",
            app_name: "app",
            app_version: "1.0",
            transport,
            protocol,
            meta_json: None,
            meta_form: MetaForm::UNCHECKED,
            labels: &sorted,
            channels: subscribed,
            connected_at: 0,
        });
        let user_ok = user.as_deref().is_none_or(|u| u == *conn_user)
            && (users.is_empty() || users.iter().any(|u| u == conn_user))
            && channels.iter().all(|c| subscribed.contains(c));
        let got = user_ok && program.as_ref().is_none_or(|p| p.matches_map(&map));
        assert_eq!(
            got, want,
            "{src} as {conn_user:?} on {m:?} {transport} {protocol} {subscribed:?}\nuser: {user:?} {users:?} {channels:?}\n{program:?}"
        );
    }
}

// ------------------------------------------------------------------------ 4. client_command

/// Compiles a client's `tf` the way the node does (`FilterNode` JSON, default limits).
fn tags_filter(tf: &Raw) {
    if let Ok(node) = serde_json::from_str::<FilterNode>(tf.get())
        && let Ok(p) = compile(&node, "tf", &Limits::default(), &NoSymbols)
    {
        check_jumps(&p);
    }
}

fn check_one_line(raw: &Raw) {
    let line = one_line(raw.clone());
    assert!(!line.get().contains('\n') && !line.get().contains('\r'), "one_line left a newline: {}", line.get());
}

/// Arbitrary bytes as a client frame: `decode_frame`, then for each command `is_pong`,
/// `into_method`, its name and the conversions the node applies (tags filter
/// compilation, `one_line`) never panic, and a reply encodes as one line. Then the
/// input — NUL-separated frames, with `"jwt:{claims}"` strings signed on the fly, or
/// after a `uni:` prefix a unidirectional connect request — drives a live connection
/// on a fresh node: it never panics, every queued message is one line of JSON, and the
/// connection's timers (`deadline`, `on_deadline`) never panic.
pub fn client_command(data: &[u8]) {
    if let Ok(cmds) = decode_frame(data) {
        assert!(!cmds.is_empty(), "decode_frame returned no command");
        for cmd in cmds {
            let id = cmd.id;
            let _ = cmd.is_pong();
            let Some(method) = cmd.into_method() else { continue };
            match &method {
                Method::Connect(c) => c.subs.values().filter_map(|s| s.tf.as_ref()).for_each(tags_filter),
                Method::Subscribe(s) => {
                    s.tf.iter().for_each(tags_filter);
                    s.data.iter().for_each(check_one_line);
                }
                Method::Publish(p) => p.data.iter().for_each(check_one_line),
                Method::Send(s) => s.data.iter().for_each(check_one_line),
                Method::Rpc(rpc) => rpc.data.iter().for_each(check_one_line),
                _ => {}
            }
            let reply = encode_reply(id, method.name(), &Empty {});
            assert!(!reply.contains(&b'\n'));
        }
    }

    let node = fresh_node();
    block_on(async {
        let (transport, frames) = match data.strip_prefix(b"uni:") {
            Some(rest) => (Transport::UniHttpStream, rest),
            None => (Transport::WebSocket, data),
        };
        let mut conn = Conn::new(node.clone(), transport);
        let mut frames = frames.split(|b| *b == 0).take(8).map(sign_placeholders);
        if transport.unidirectional() {
            let first = frames.next().unwrap_or_default();
            let Ok(req) = serde_json::from_slice(&first) else { return };
            let ok = conn.connect_uni(req).await.is_ok();
            check_queue(conn.queue());
            if !ok {
                return;
            }
        }
        for frame in frames {
            let r = conn.handle_frame(&frame).await;
            check_queue(conn.queue());
            let _ = conn.deadline();
            if r.is_err() {
                break;
            }
        }
        let _ = conn.deadline();
        let _ = conn.on_deadline();
        check_queue(conn.queue());
    });
}

// ------------------------------------------------------------------------ 4b. protobuf_command

/// Every message a protobuf connection queued is exactly one length-prefixed Reply.
fn check_pb_queue(queue: &Queue) {
    let mut out = Vec::new();
    let closed = queue.drain(&mut out);
    for msg in &out {
        let replies = pb::decode_replies(msg).unwrap_or_else(|| panic!("queued message is not a Reply: {msg:?}"));
        assert_eq!(replies.len(), 1, "queued message holds {} replies", replies.len());
    }
    if let Some(d) = closed {
        let push = pb::encode_push("", "disconnect", &d);
        assert!(pb::decode_replies(&push).is_some_and(|r| r.len() == 1));
    }
}

/// Arbitrary bytes as a protobuf client frame (varint-length-delimited `Command`s):
/// `pb::decode_frame` never panics and never returns an empty list; each command's
/// `into_method` and JSON payloads behave as on JSON; a reply round-trips. Then the
/// input — up to eight frames, each a length byte and that many bytes (the last takes
/// the rest) — drives a live protobuf connection on a fresh node (anonymous connects
/// are allowed): it never panics, every queued message is one length-prefixed Reply,
/// and the timers never panic.
pub fn protobuf_command(data: &[u8]) {
    if let Ok(cmds) = pb::decode_frame(data) {
        assert!(!cmds.is_empty(), "decode_frame returned no command");
        for cmd in cmds {
            let id = cmd.id;
            let _ = cmd.is_pong();
            let Some(method) = cmd.into_method() else { continue };
            match &method {
                Method::Connect(c) => c.subs.values().filter_map(|s| s.tf.as_ref()).for_each(tags_filter),
                Method::Subscribe(s) => {
                    s.tf.iter().for_each(tags_filter);
                    s.data.iter().for_each(check_one_line);
                }
                Method::Publish(p) => p.data.iter().for_each(check_one_line),
                Method::Send(s) => s.data.iter().for_each(check_one_line),
                Method::Rpc(rpc) => rpc.data.iter().for_each(check_one_line),
                _ => {}
            }
            let reply = pb::encode_reply(id, method.name(), &Empty {});
            let back = pb::decode_replies(&reply).expect("an encoded reply decodes");
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].id, id);
        }
    }

    let mut frames = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && frames.len() < 8 {
        let n = (rest[0] as usize).min(rest.len() - 1);
        let last = frames.len() == 7;
        let (frame, tail) = if last { (&rest[1..], &[][..]) } else { rest[1..].split_at(n) };
        frames.push(frame);
        rest = tail;
    }
    let node = fresh_node();
    block_on(async {
        let mut conn = Conn::new(node.clone(), Transport::WebSocket).with_encoding(Encoding::Protobuf);
        for frame in frames {
            let r = conn.handle_frame(frame).await;
            check_pb_queue(conn.queue());
            let _ = conn.deadline();
            if r.is_err() {
                break;
            }
        }
        let _ = conn.deadline();
        let _ = conn.on_deadline();
        check_pb_queue(conn.queue());
    });
}

// ------------------------------------------------------------------------ 5. api_request

/// Connections every API input runs against: (user, connect token claims or None for
/// an anonymous connect). Labels and channels give `connections`, `label_filter`,
/// presence and the targeted ops something to find.
fn api_fixture_tokens() -> &'static [(String, String)] {
    static TOKENS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let claims = [
            json!({"sub": "u1", "exp": FAR_FUTURE, "labels": {"region": "eu", "tier": "pro", "n": "10"}}),
            json!({"sub": "u1", "exp": FAR_FUTURE, "labels": {"region": "us", "n": "9.5"}, "meta": {"a": [1, 2]}}),
            json!({"sub": "u2", "labels": {"region": "eu", "tier": ""}, "channels": ["news", "sub:room"]}),
            json!({"sub": "u3", "jti": "j", "iat": 1, "expire_at": FAR_FUTURE, "info": {"x": 1}}),
        ];
        let mut out: Vec<(String, String)> = claims
            .iter()
            .map(|c| (c["sub"].as_str().unwrap_or_default().to_owned(), sign_hs256(c, CONNECT_SECRET)))
            .collect();
        out.push((String::new(), String::new()));
        out
    })
}

/// `"epoch":"…"`, `"client":"…"`… of a result, to substitute into later calls.
fn capture(result: &str, field: &str) -> Option<String> {
    let start = result.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let len = result[start..].find('"')?;
    Some(result[start..start + len].to_owned())
}

fn replace_all(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// The client ids a `connections` result lists.
fn listed(result: &str) -> HashSet<String> {
    let v: Value = serde_json::from_str(result).expect("connections result is JSON");
    v["connections"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// When a successful `connections` call selected by `label_filter` alone or by
/// `expression` alone, its listing equals the reference evaluator's / interpreter's
/// verdict on every live session.
fn check_connections(node: &Node, body: &[u8], result: &str) {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else { return };
    let keys: Vec<&str> = req.keys().map(String::as_str).collect();
    let sessions = node.hub.all();
    let want: HashSet<String> = match keys.as_slice() {
        ["label_filter"] => {
            let Ok(f) = serde_json::from_value::<FilterNode>(req["label_filter"].clone()) else { return };
            sessions
                .iter()
                .filter(|s| {
                    let m: HashMap<String, String> =
                        s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    reference_matches(&f, &m)
                })
                .map(|s| s.client().to_string())
                .collect()
        }
        ["expression"] => {
            let Some(src) = req["expression"].as_str() else { return };
            let interp = plan_interpreted(src, &CelLimits::default()).expect("connections accepted the expression");
            sessions
                .iter()
                .filter(|s| rotor::api::select::cel_matches(&interp, s))
                .map(|s| s.client().to_string())
                .collect()
        }
        _ => return,
    };
    assert_eq!(listed(result), want, "connections {}", String::from_utf8_lossy(body));
}

/// Server API calls on a fresh node with five live connections (labels, meta,
/// token channels, an anonymous one). The input is NUL-separated calls, each a
/// method-selector byte (index into `rotor::api::METHODS`, or an unknown name) then
/// the JSON body; `@epoch`, `@client`, `@cursor` in a body stand for the last epoch,
/// the first connection's client id and the last `next_cursor`. Never panics; errors
/// carry a code; results are one line of JSON; `connections` by `label_filter` or by
/// `expression` alone lists exactly what the reference evaluator / the CEL
/// interpreter selects; every connection's queue holds only one-line JSON messages
/// and its timers never panic.
pub fn api_request(data: &[u8]) {
    let node = fresh_node();
    block_on(async {
        let mut conns = Vec::new();
        for (_, token) in api_fixture_tokens() {
            let mut c = Conn::new(node.clone(), Transport::WebSocket);
            let frame = json!({"id": 1, "connect": {"token": token, "name": "app", "version": "1.0"}});
            c.handle_frame(frame.to_string().as_bytes()).await.expect("fixture connection");
            check_queue(c.queue());
            conns.push(c);
        }
        let first_client = conns[0].session().map(|s| s.client().to_string()).unwrap_or_default();
        let mut epoch = String::new();
        let mut cursor = String::new();
        for chunk in data.split(|b| *b == 0).take(6) {
            let Some((&selector, body)) = chunk.split_first() else { continue };
            let methods = rotor::api::METHODS;
            let name = methods.get(selector as usize % (methods.len() + 1)).copied().unwrap_or("no_such_method");
            let body = replace_all(body, "@epoch", &epoch);
            let body = replace_all(&body, "@client", &first_client);
            let body = replace_all(&body, "@cursor", &cursor);
            match rotor::api::call(&node, name, &body).await {
                Err(_undecodable) => {}
                Ok(Err(ApiError { code, message })) => {
                    // The code is one of the table's by type; its message must say something.
                    assert!(!message.is_empty(), "{name}: error {} without a message", code.code());
                }
                Ok(Ok(result)) => {
                    let text = result.get();
                    assert!(!text.contains('\n'), "{name}: multi-line result {text}");
                    if name == "connections" {
                        check_connections(&node, &body, text);
                    }
                    epoch = capture(text, "epoch").unwrap_or(epoch);
                    cursor = capture(text, "next_cursor").unwrap_or(cursor);
                }
            }
            for c in &conns {
                check_queue(c.queue());
                let _ = c.deadline();
            }
        }
        for c in &mut conns {
            let _ = c.deadline();
            let _ = c.on_deadline();
            check_queue(c.queue());
        }
    });
}

// ------------------------------------------------------------------------ 6. jwt_parse

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new(&fuzz_config().client).expect("fuzz verifier"))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Whether `token` is `header.payload.signature` with an HMAC signature by one of
/// `secrets` under the algorithm its header names — computed independently of the
/// verifier, with the JWT library's signing primitive.
fn genuinely_signed(token: &str, secrets: &[&str]) -> bool {
    let Some((input, signature)) = token.rsplit_once('.') else { return false };
    let Ok(header) = jsonwebtoken::decode_header(token) else { return false };
    if !matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return false;
    }
    secrets.iter().any(|secret| {
        let key = EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, header.alg).is_ok_and(|s| s == signature)
    })
}

/// What the verifier must answer for claims signed with a key it trusts: Some(ok),
/// or None when a time claim is too close to now to say.
fn expect_connect(c: &Value, now: i64) -> Option<bool> {
    let Some(obj) = c.as_object() else { return Some(false) };
    if obj.contains_key("channel") {
        return Some(false);
    }
    let times = expect_times(c, now)?;
    let channels_ok = match obj.get("channels") {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.iter().all(Value::is_string),
        Some(_) => false,
    };
    let meta_ok = matches!(obj.get("meta"), None | Some(Value::Null | Value::Object(_)));
    let limits = &fuzz_config().client.labels;
    let labels_ok = match obj.get("labels") {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => {
            m.len() <= limits.max_count
                && m.iter().all(|(k, v)| {
                    !k.is_empty()
                        && k.len() <= limits.max_key_length
                        && v.as_str().is_some_and(|v| v.len() <= limits.max_value_length)
                })
        }
        Some(_) => false,
    };
    Some(times && channels_ok && meta_ok && labels_ok)
}

fn expect_subscribe(c: &Value, now: i64) -> Option<bool> {
    let Some(obj) = c.as_object() else { return Some(false) };
    let channel_ok = obj.get("channel").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    Some(expect_times(c, now)? && channel_ok)
}

/// `exp` strictly in the future and `nbf` not in the future, with a margin of
/// uncertainty around now. `exp`, `nbf`, `iat` and `expire_at` are NumericDates: a
/// number (integer or not, rounded toward the stricter second) within ±year 9999;
/// any other JSON type makes the token invalid (`expire_at` may also be null or 0,
/// meaning "no expiry", and otherwise must be in the future too). The user claim
/// `sub` must be a string, `null` or absent: any other type makes the token invalid.
fn expect_times(c: &Value, now: i64) -> Option<bool> {
    const MARGIN: i64 = 5;
    const MAX: f64 = 253_402_300_799.0;
    if !matches!(c.get("sub"), None | Some(Value::String(_) | Value::Null)) {
        return Some(false);
    }
    // Some(Err(())) = present but not a NumericDate.
    let date = |name: &str, up: bool| -> Option<Result<i64, ()>> {
        let v = c.get(name)?;
        let f = v.as_f64().filter(|f| f.abs() <= MAX && v.is_number());
        Some(f.map(|f| if up { f.ceil() as i64 } else { f.floor() as i64 }).ok_or(()))
    };
    let near = |t: i64| (now - MARGIN..=now + MARGIN).contains(&t);
    let exp = date("exp", false);
    let nbf = date("nbf", true);
    let iat = date("iat", false);
    let expire_at = match c.get("expire_at") {
        Some(Value::Null) => None,
        _ => date("expire_at", false),
    };
    if [exp, nbf, iat, expire_at].iter().any(|d| matches!(d, Some(Err(())))) {
        return Some(false);
    }
    let mut ok = true;
    if let Some(Ok(exp)) = exp {
        if near(exp) {
            return None;
        }
        ok &= exp > now;
    }
    if let Some(Ok(nbf)) = nbf {
        if near(nbf) {
            return None;
        }
        ok &= nbf <= now;
    }
    if let Some(Ok(at)) = expire_at
        && at != 0
    {
        if near(at) {
            return None;
        }
        ok &= at > now;
    }
    Some(ok)
}

fn verify_both(token: &str) -> (Result<(), TokenError>, Result<(), TokenError>) {
    let v = verifier();
    block_on(async {
        let connect = v.verify_connect(token).await.map(|t| {
            assert!(t.labels.windows(2).all(|w| w[0].0 < w[1].0), "labels not sorted: {:?}", t.labels);
        });
        let subscribe = v.verify_subscribe(token).await.map(|t| assert!(!t.channel.is_empty()));
        (connect, subscribe)
    })
}

/// Tokens against the fuzzing configuration's verifier (HMAC connect key plus a
/// previous key, a separate subscription key). The first byte picks a mode:
///
/// - raw: the rest as a token string. Never panics, and a token verifies only if it
///   is genuinely HMAC-signed by a key trusted for that kind of token.
/// - claims: the rest as claims JSON, signed with a current, previous, subscription or
///   unknown key. The connect / subscribe verdicts are exactly what the claims and the
///   key call for: unknown keys never verify, a subscription key never verifies a
///   connection token and vice versa; bad claims are rejected with a clean error.
/// - tamper: claims signed with the connect key, then one byte replaced: a token that
///   differs from the signed one never verifies.
/// - header: an arbitrary header and payload (base64url-encoded here) with a genuine
///   HS256 signature: never panics.
pub fn jwt_parse(data: &[u8]) {
    let mut r = Reader::new(data);
    let mode = r.byte() % 4;
    match mode {
        0 => {
            let token = String::from_utf8_lossy(r.rest()).into_owned();
            let (connect, subscribe) = verify_both(&token);
            if connect.is_ok() {
                assert!(genuinely_signed(&token, &[CONNECT_SECRET, PREVIOUS_SECRET]), "forged connect token: {token}");
            }
            if subscribe.is_ok() {
                assert!(genuinely_signed(&token, &[SUB_SECRET]), "forged subscription token: {token}");
            }
        }
        1 => {
            let key = r.byte() % 4;
            let Ok(claims) = serde_json::from_slice::<Value>(r.rest()) else { return };
            let secret = [CONNECT_SECRET, PREVIOUS_SECRET, SUB_SECRET, WRONG_SECRET][key as usize];
            let token = sign_hs256(&claims, secret);
            let now = now();
            let (connect, subscribe) = verify_both(&token);
            let connect_key = secret == CONNECT_SECRET || secret == PREVIOUS_SECRET;
            let want_connect = if connect_key { expect_connect(&claims, now) } else { Some(false) };
            let want_subscribe = if secret == SUB_SECRET { expect_subscribe(&claims, now) } else { Some(false) };
            if let Some(want) = want_connect {
                assert_eq!(connect.is_ok(), want, "connect verdict {connect:?} for {claims} signed with {secret}");
            }
            if let Some(want) = want_subscribe {
                assert_eq!(
                    subscribe.is_ok(),
                    want,
                    "subscribe verdict {subscribe:?} for {claims} signed with {secret}"
                );
            }
        }
        2 => {
            let at = r.below(1 << 16);
            let with = b' ' + r.byte() % 95;
            let Ok(claims) = serde_json::from_slice::<Value>(r.rest()) else { return };
            let token = sign_hs256(&claims, CONNECT_SECRET);
            let mut bytes = token.clone().into_bytes();
            let at = at % bytes.len();
            bytes[at] = with;
            let tampered = String::from_utf8(bytes).expect("tokens are ASCII");
            if tampered != token {
                let (connect, subscribe) = verify_both(&tampered);
                assert!(connect.is_err(), "tampered token verified: {tampered} (from {token})");
                assert!(subscribe.is_err(), "tampered token verified as subscription: {tampered}");
            }
        }
        _ => {
            use base64::Engine as _;
            let rest = r.rest();
            let (header, payload) = match rest.iter().position(|b| *b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b"{\"sub\":\"1\"}"[..]),
            };
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let input = format!("{}.{}", b64.encode(header), b64.encode(payload));
            let key = EncodingKey::from_secret(CONNECT_SECRET.as_bytes());
            let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).expect("HS256 signs");
            let token = format!("{input}.{signature}");
            let (_connect, subscribe) = verify_both(&token);
            assert!(subscribe.is_err(), "connect-key token verified as subscription: {token}");
        }
    }
}

/// ws_frames: the first byte picks the message size limit and a read size; the rest is
/// what a client sent. Read whole or in reads of that size, the frame reader gives the
/// same events and the same violation; text messages are UTF-8, no message is over the
/// limit, ping payloads fit a control frame, and close codes are ones a peer may send.
pub fn ws_frames(data: &[u8]) {
    use rotor::transport::ws_frame::{Event, Reader, sendable_close_code};
    let Some((&knob, bytes)) = data.split_first() else { return };
    let limit = [0usize, 1, 16, 125, 126, 1000, 65536][(knob % 7) as usize];
    let step = 1 + (knob / 7) as usize;
    let whole = {
        let mut r = Reader::new(limit);
        r.push(bytes);
        let mut events = Vec::new();
        let end = loop {
            match r.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break None,
                Err(v) => break Some(v),
            }
        };
        (events, end)
    };
    let split = {
        let mut r = Reader::new(limit);
        let mut events = Vec::new();
        let mut end = None;
        'reads: for chunk in bytes.chunks(step) {
            r.push(chunk);
            loop {
                match r.next_event() {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(v) => {
                        end = Some(v);
                        break 'reads;
                    }
                }
            }
        }
        (events, end)
    };
    assert_eq!(whole, split, "reads of {step} bytes changed what was read");
    for e in &whole.0 {
        match e {
            Event::Message { binary, data } => {
                assert!(data.len() <= limit, "a message over the limit");
                assert!(*binary || std::str::from_utf8(data).is_ok(), "text that is not UTF-8");
            }
            Event::Ping(p) => assert!(p.len() <= 125, "a ping over 125 bytes"),
            Event::Close(Some(code)) => assert!(sendable_close_code(*code), "close code {code}"),
            Event::Close(None) | Event::Pong => {}
        }
    }
}

/// stream_request: the first byte picks the routes' body limit; the rest is the start of
/// a connection. What the judge takes is whole (it judges its own prefix the same, and
/// every shorter prefix as "more"), lies within the peek bound and the route's limit,
/// and becomes a request whose body is exactly the announced length.
pub fn stream_request(data: &[u8]) {
    use rotor::server::stream::{MAX_PEEK, Routes, Verdict, judge, request};
    let Some((&knob, bytes)) = data.split_first() else { return };
    let limit = [0usize, 1, 2, 64, 1000, 65536][(knob % 6) as usize];
    let routes =
        Routes::new([("/connection/uni_http_stream".to_string(), limit), ("/connection/uni_sse".to_string(), limit)]);
    let Verdict::Take { len } = judge(bytes, &routes) else { return };
    assert!(len <= bytes.len() && len <= MAX_PEEK, "took {len} of {} bytes", bytes.len());
    assert_eq!(judge(&bytes[..len], &routes), Verdict::Take { len }, "the taken bytes alone judged otherwise");
    // A few shorter prefixes (all of them would be quadratic): each one waits for more.
    for cut in [0, 1, len / 3, len / 2, len.saturating_sub(2), len - 1] {
        if cut < len {
            let v = judge(&bytes[..cut], &routes);
            assert!(matches!(v, Verdict::More { .. }), "a prefix of {cut} bytes judged {v:?}");
        }
    }
    if let Some(req) = request(bytes::Bytes::copy_from_slice(&bytes[..len]), None) {
        use axum::body::HttpBody as _;
        let body = req.body().size_hint().exact().unwrap_or(u64::MAX);
        assert!(body <= limit as u64, "a body of {body} bytes over the limit {limit}");
    }
}

// ------------------------------------------------------------------------ cel_native_vs_crate

/// Expressions over `meta` and arithmetic, the native evaluator's newest ground.
const CEL_META_EXPRS: &[&str] = &[
    "meta.a == \"x\"",
    "meta.a.b == 1 || meta.b == 1.5",
    "has(meta.a) && !has(meta.b)",
    "\"a\" in meta",
    "\"x\" in meta.a || 1 in meta.b",
    "size(meta) == 2",
    "size(meta.a) > 0",
    "meta.a[0] == meta.b[1u]",
    "meta[\"a\"] != null",
    "meta.a.exists(x, x == \"x\" || x == 1)",
    "meta.a.all(k, k.startsWith(\"a\"))",
    "meta == \"x\" || meta == 1 || meta == true",
    "meta.a + meta.b > 0",
    "meta.a * 2 == meta.b - 1",
    "meta.a / meta.b >= 1.0 || meta.a % meta.b == 0",
    "-meta.a < connected_at",
    "connected_at + 1000 > 0 && connected_at % 7 == 3",
    "meta.a.matches(\"^x\") && meta.a.size() == 2",
    "int(meta.a) == 1 || double(meta.b) > 0.5 || int(meta.b) < -1",
];

/// cel_native_vs_crate: the first byte picks an expression (or, after `#`, the source
/// runs to the first newline), two bytes pick `connected_at`, and the rest is `meta`'s
/// text. The native evaluator either decides as the cel crate does or says it is
/// unsure (and the cel crate decides); never a different verdict, never a panic.
pub fn cel_native_vs_crate(data: &[u8]) {
    let (src, rest) = match data.split_first() {
        Some((b'#', raw)) => {
            let end = raw.iter().position(|&c| c == b'\n').unwrap_or(raw.len());
            (String::from_utf8_lossy(&raw[..end]).into_owned(), raw.get(end + 1..).unwrap_or(&[]))
        }
        Some((&k, rest)) => (CEL_META_EXPRS[k as usize % CEL_META_EXPRS.len()].to_owned(), rest),
        None => return,
    };
    let (at, meta) = match rest {
        [a, b, meta @ ..] => (i64::from(i16::from_le_bytes([*a, *b])), meta),
        _ => (0, rest),
    };
    let Ok(program) = plan_interpreted(&src, &CelLimits::default()) else { return };
    let meta = String::from_utf8_lossy(meta);
    let labels: Vec<(Arc<str>, Arc<str>)> = vec![(Arc::from("a"), Arc::from("x"))];
    let channels = vec!["x".to_string()];
    let conn = CelConn {
        user: "x",
        client: "c-1",
        app_name: "app",
        app_version: "1.0",
        transport: "websocket",
        protocol: "json",
        meta_json: Some(&meta),
        meta_form: MetaForm::UNCHECKED,
        labels: &labels,
        channels: &channels,
        connected_at: at,
    };
    let want = program.matches_cel_crate(&conn);
    // `meta` checked on each evaluation, and checked once as a session stores it
    for form in [MetaForm::UNCHECKED, MetaForm::of(&meta)] {
        let conn = CelConn { meta_form: form, ..conn };
        if let Some(got) = program.matches_natively(&conn) {
            assert_eq!(got, want, "{src} with meta {meta:?} ({form:?}) at {at}");
        }
        assert_eq!(program.matches(&conn), want, "{src} with meta {meta:?} ({form:?}) at {at}");
    }
}
