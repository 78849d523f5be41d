//! CEL for the connections API (`rotor::filter::cel`): which expressions are translated
//! to the filter IR, translation against the interpreter (tables and a proptest
//! differential over the label subset, and one for the pre-filter of partly
//! translatable expressions), the interpreter over every variable, the native
//! evaluator against the cel crate (which expressions take it, and a differential
//! proptest), and the caps and hostile input.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use rotor::filter::cel::{CelConn, CelLimits, CelPath, CelPlan, Conjuncts, MetaForm, plan, plan_interpreted};
use rotor::filter::{Expr, NoSymbols, attribute, compile_expr};

type Labels = HashMap<String, String>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sorted(map: &Labels) -> Vec<(Arc<str>, Arc<str>)> {
    let mut v: Vec<(Arc<str>, Arc<str>)> =
        map.iter().map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str()))).collect();
    v.sort();
    v
}

/// A connection's transport, protocol and channels (an index into [`CHANNEL_SETS`]).
type Attrs = (&'static str, &'static str, usize);

/// What [`conn`] has: no channels.
const WS_JSON: Attrs = ("websocket", "json", 0);

/// The channel lists connections may have.
static CHANNEL_SETS: std::sync::LazyLock<[Vec<String>; 4]> = std::sync::LazyLock::new(|| {
    let set = |cs: &[&str]| cs.iter().map(|c| c.to_string()).collect();
    [set(&[]), set(&["news"]), set(&["chat", "news"]), set(&["chat"])]
});

/// Whether a plan's user route (`user`, or one of `users`) keeps a connection of
/// `conn_user`.
fn routed(user: Option<&str>, users: &[String], conn_user: &str) -> bool {
    user.is_none_or(|u| u == conn_user) && (users.is_empty() || users.iter().any(|u| u == conn_user))
}

/// Whether a connection with `attrs` is subscribed to all of `channels`.
fn in_all(channels: &[String], (_, _, set): Attrs) -> bool {
    channels.iter().all(|c| CHANNEL_SETS[set].contains(c))
}

/// A connection of `user` with `labels` and fixed other fields.
fn conn<'a>(user: &'a str, labels: &'a [(Arc<str>, Arc<str>)]) -> CelConn<'a> {
    conn_on(user, labels, WS_JSON)
}

/// [`conn`] on another transport and protocol.
fn conn_on<'a>(user: &'a str, labels: &'a [(Arc<str>, Arc<str>)], (transport, protocol, set): Attrs) -> CelConn<'a> {
    CelConn {
        user,
        client: "c-1",
        app_name: "app",
        app_version: "1.2.3",
        transport,
        protocol,
        meta_json: None,
        meta_form: MetaForm::UNCHECKED,
        labels,
        channels: &CHANNEL_SETS[set],
        connected_at: 0,
    }
}

/// The labels with the attributes stored beside them, as the hub's columns hold them.
fn with_attrs(map: &Labels, (transport, protocol, _): Attrs) -> Labels {
    let mut m = map.clone();
    m.insert(attribute::TRANSPORT.into(), transport.into());
    m.insert(attribute::PROTOCOL.into(), protocol.into());
    m
}

/// The cel crate's verdict on `src` for a connection of `user` with `map` (checked to be
/// the per-connection evaluator's too, native or not).
fn interpreted(src: &str, user: &str, map: &Labels) -> bool {
    interpreted_on(src, user, map, WS_JSON)
}

fn interpreted_on(src: &str, user: &str, map: &Labels, attrs: Attrs) -> bool {
    let p = plan_interpreted(src, &CelLimits::default()).unwrap_or_else(|e| panic!("{src}: {e}"));
    let l = sorted(map);
    let want = p.matches_cel_crate(&conn_on(user, &l, attrs));
    assert_eq!(
        p.matches(&conn_on(user, &l, attrs)),
        want,
        "{src} on {map:?} {attrs:?} as {user}: evaluator vs cel crate"
    );
    want
}

/// The translated plan's verdict, or None when `src` is interpreted.
fn translated(src: &str, user: &str, map: &Labels) -> Option<bool> {
    translated_on(src, user, map, WS_JSON)
}

fn translated_on(src: &str, user: &str, map: &Labels, attrs: Attrs) -> Option<bool> {
    match plan(src, &CelLimits::default()).unwrap_or_else(|e| panic!("{src}: {e}")) {
        CelPlan::Interpreted(_) => None,
        CelPlan::Translated { user: u, users, channels, labels } => {
            let user_ok = routed(u.as_deref(), &users, user) && in_all(&channels, attrs);
            let labels_ok = labels.is_none_or(|e| {
                compile_expr(&e, "expression", &NoSymbols).expect("compiles").matches_map(&with_attrs(map, attrs))
            });
            Some(user_ok && labels_ok)
        }
    }
}

fn samples() -> Vec<Labels> {
    vec![
        labels(&[]),
        labels(&[("region", "eu")]),
        labels(&[("region", "us")]),
        labels(&[("region", "")]),
        labels(&[("region", "eu"), ("tier", "pro")]),
        labels(&[("region", "eu-west"), ("tier", "enterprise")]),
        labels(&[("tier", "free")]),
        labels(&[("a", "x"), ("b", "y"), ("c", "")]),
        labels(&[("region", "us-east"), ("tier", ""), ("x-y", "1")]),
    ]
}

#[test]
fn the_label_subset_is_translated_and_agrees_with_the_interpreter() {
    let cases = [
        "labels.region == \"eu\"",
        "\"eu\" == labels.region",
        "labels[\"region\"] == \"eu\"",
        "labels.region != \"eu\"",
        "labels.region == \"\"",
        "labels.region != \"\"",
        "labels.tier in [\"pro\", \"enterprise\"]",
        "labels.tier in [\"pro\", \"pro\"]",
        "labels.tier in [\"\"]",
        "labels.tier in []",
        "!(labels.tier in [\"pro\", \"\"])",
        "has(labels.region)",
        "!has(labels.region)",
        "\"region\" in labels",
        "!(\"x-y\" in labels)",
        "labels[\"x-y\"] == \"1\"",
        "labels.region.startsWith(\"eu\")",
        "labels.region.endsWith(\"east\")",
        "labels.region.contains(\"-\")",
        "labels.region.startsWith(\"\")",
        "!labels.region.startsWith(\"eu\")",
        "!labels.region.contains(\"\")",
        "labels.region == \"eu\" && labels.tier in [\"pro\", \"enterprise\"]",
        "labels.region == \"eu\" || labels.tier == \"free\"",
        "!(labels.region == \"eu\" || labels.tier == \"free\")",
        "!(labels.region == \"eu\" && labels.tier == \"pro\")",
        "labels.missing == \"x\" || true",
        "true || labels.missing == \"x\"",
        "labels.missing == \"x\" && false",
        "!(false && labels.missing == \"x\")",
        "!(labels.missing == \"x\" || !true)",
        "true",
        "false",
        "!false",
        "(((labels.region == \"eu\")))",
        "labels.a == 'x' && (labels.b != 'y' || has(labels.c)) && !(labels.c in ['', 'z'])",
        "labels.region == r\"eu\"",
        "labels.region == \"\"\"eu\"\"\"",
        "labels.region == \"e\\u0075\"",
        "user == \"u1\"",
        "\"u1\" == user",
        "user == \"u1\" && labels.region == \"eu\"",
        "labels.region == \"eu\" && user == \"u1\" && labels.tier == \"pro\"",
        "user == \"u1\" && user == \"u1\"",
        "user == \"u1\" && user == \"u2\"",
        "user == \"u1\" && true",
    ];
    for src in cases {
        for map in samples() {
            for user in ["u1", "u2"] {
                let t = translated(src, user, &map).unwrap_or_else(|| panic!("{src} was not translated"));
                assert_eq!(t, interpreted(src, user, &map), "{src} on {map:?} as {user}");
            }
        }
    }
}

/// `transport` and `protocol` are read from the columns beside the labels, in every
/// form a label is (but the presence tests), alone and mixed with labels and users;
/// top-level `"c" in channels` conjuncts are split out like the user.
#[test]
fn attributes_and_channels_are_translated_and_agree_with_the_interpreter() {
    let cases = [
        "transport == \"websocket\"",
        "\"uni_sse\" == transport",
        "transport != \"websocket\"",
        "transport == \"\"",
        "protocol == \"protobuf\"",
        "protocol != \"json\" || transport == \"sse\"",
        "transport in [\"websocket\", \"uni_websocket\"]",
        "!(transport in [\"sse\", \"http_stream\"])",
        "transport in []",
        "transport.startsWith(\"uni_\")",
        "!transport.endsWith(\"sse\")",
        "transport.contains(\"web\") && protocol == \"json\"",
        "protocol.startsWith(\"\")",
        "transport == \"websocket\" && labels.region == \"eu\"",
        "labels.tier in [\"pro\"] || !(transport == \"uni_sse\" && protocol == \"json\")",
        "user == \"u1\" && transport.startsWith(\"uni\")",
        "labels.missing == \"x\" || transport == \"sse\"",
        "!(transport == \"sse\" && labels.missing == \"x\")",
        // Top-level channel conjuncts: the channel index, then the session.
        "\"news\" in channels",
        "\"news\" in channels && transport == \"sse\"",
        "\"chat\" in channels && labels.region == \"eu\" && \"news\" in channels",
        "\"news\" in channels && \"news\" in channels && user == \"u1\"",
        "\"x\" in channels && true",
        // Top-level `user in [...]`: the per-user index, each user's.
        "user in [\"u1\", \"u2\"] && transport != \"sse\"",
        "user in [\"u2\", \"u3\"] && \"news\" in channels",
        "user in [\"u1\", \"u3\"] && user in [\"u3\", \"u2\"]",
        "user in []",
    ];
    let attrs = [
        WS_JSON,
        ("uni_sse", "json", 1),
        ("sse", "protobuf", 2),
        ("uni_websocket", "protobuf", 3),
        ("http_stream", "json", 0),
    ];
    for src in cases {
        for map in samples() {
            for a in attrs {
                for user in ["u1", "u2"] {
                    let t = translated_on(src, user, &map, a).unwrap_or_else(|| panic!("{src} was not translated"));
                    assert_eq!(t, interpreted_on(src, user, &map, a), "{src} on {map:?} {a:?} as {user}");
                }
            }
        }
    }
    // A label whose key is in the attributes' namespace is never an attribute: the
    // expression is interpreted (no label has such a key, so it is missing).
    for src in ["labels[\"\\u0000transport\"] == \"websocket\"", "has(labels.x) || \"\\u0000protocol\" in labels"] {
        assert_eq!(translated(src, "u", &labels(&[])), None, "{src}");
        assert!(!interpreted(src, "u", &labels(&[])), "{src}");
    }
}

#[test]
fn anything_else_is_interpreted_and_still_correct() {
    let cases = [
        "user == \"u1\" || labels.region == \"eu\"",
        "!(user == \"u1\")",
        "user != \"u1\"",
        "user.startsWith(\"u\")",
        "labels.region == labels.tier",
        "labels.region == 1",
        "labels.region == b\"eu\"",
        "labels.region in [\"eu\", 1]",
        "labels.region < \"f\"",
        "size(labels) == 2",
        "labels.region.matches(\"^e\")",
        "labels.exists(k, k == \"region\")",
        "labels.region == \"eu\" ? true : false",
        "client == \"c-1\"",
        "\"eu\" == \"eu\"",
        "labels == {\"region\": \"eu\"}",
        "labels.?region.orValue(\"\") == \"eu\"",
        "(user == \"u1\" && labels.region == \"eu\") || false",
        "\"news\" in channels || labels.region == \"eu\"",
        "!(\"news\" in channels)",
        "channels.exists(c, c == \"news\")",
        "labels.region in channels",
    ];
    for src in cases {
        for map in samples() {
            for user in ["u1", "u2"] {
                assert_eq!(translated(src, user, &map), None, "{src} should be interpreted");
                let _ = interpreted(src, user, &map);
            }
        }
    }
    // Spot checks of the interpreter on the label forms it shares with the translation.
    let eu = labels(&[("region", "eu"), ("tier", "pro")]);
    assert!(interpreted("user == \"u1\" || labels.region == \"eu\"", "u2", &eu));
    assert!(!interpreted("user == \"u1\" || labels.region == \"us\"", "u2", &eu));
    assert!(interpreted("size(labels) == 2", "u", &eu));
    assert!(interpreted("labels.exists(k, k == \"tier\")", "u", &eu));
    assert!(!interpreted("labels.region == 1", "u", &eu));
}

/// The `&&`/`||` rows of the translation rest on cel absorbing errors on either side.
#[test]
fn logical_operators_absorb_errors_on_either_side() {
    let m = labels(&[]);
    let err = "labels.missing == \"x\"";
    for (src, want) in [
        (format!("!(({err}) && false)"), true),
        (format!("!(false && ({err}))"), true),
        (format!("({err}) || true"), true),
        (format!("true || ({err})"), true),
        (format!("!(true && ({err}))"), false),
        (format!("!(({err}) && true)"), false),
        (format!("({err}) || false"), false),
        (format!("false || ({err})"), false),
        (format!("!(({err}) || false)"), false),
        (format!("!(({err}) && ({err}))"), false),
    ] {
        assert_eq!(interpreted(&src, "u", &m), want, "{src}");
        assert_eq!(translated(&src, "u", &m), Some(want), "{src}");
    }
}

#[test]
fn the_user_conjunct_is_split_out() {
    let l = CelLimits::default();
    let user_of = |src: &str| match plan(src, &l).unwrap() {
        CelPlan::Translated { user, labels, .. } => (user, labels.is_some()),
        CelPlan::Interpreted(_) => panic!("{src} was interpreted"),
    };
    assert_eq!(user_of("user == \"42\""), (Some("42".into()), false));
    assert_eq!(user_of("\"42\" == user && true"), (Some("42".into()), false));
    assert_eq!(user_of("user == \"42\" && labels.a == \"x\""), (Some("42".into()), true));
    assert_eq!(user_of("labels.a == \"x\""), (None, true));
    assert_eq!(user_of("true"), (None, true));
    assert_eq!(user_of("user == \"42\" && !false"), (Some("42".into()), false));
    // `user in [...]`: one user in common is that user's route; several, each one's.
    let users_of = |src: &str| match plan(src, &l).unwrap() {
        CelPlan::Translated { user, users, labels, .. } => (user, users, labels),
        CelPlan::Interpreted(_) => panic!("{src} was interpreted"),
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(users_of("user in [\"b\", \"a\", \"b\"]"), (None, strings(&["a", "b"]), None));
    assert_eq!(users_of("user in [\"a\"] && labels.x == \"1\"").0, Some("a".into()));
    assert_eq!(users_of("user in [\"a\", \"b\"] && user in [\"b\", \"c\"]"), (Some("b".into()), vec![], None));
    assert_eq!(users_of("user in [\"a\", \"b\"] && \"b\" == user"), (Some("b".into()), vec![], None));
    assert_eq!(users_of("user in []"), (None, vec![], Some(Expr::Const(false))));
    assert_eq!(users_of("user in [\"a\", \"b\"] && user == \"c\"").2, Some(Expr::Const(false)));
    assert!(matches!(plan("user in [\"a\", 1]", &l).unwrap(), CelPlan::Interpreted(_)));
    assert!(matches!(plan("user in [\"a\"] || labels.x == \"1\"", &l).unwrap(), CelPlan::Interpreted(_)));
    match plan("user == \"1\" && user == \"2\"", &l).unwrap() {
        CelPlan::Translated { user: Some(_), labels: Some(rotor::filter::Expr::Const(false)), .. } => {}
        other => panic!("conflicting users: {other:?}"),
    }
}

// ---------------------------------------------------------------- differential proptest

const KEYS: &[&str] = &["a", "b", "c"];
const VALUES: &[&str] = &["", "x", "y", "xy"];

fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(KEYS)
}

fn value() -> impl Strategy<Value = &'static str> {
    prop::sample::select(VALUES)
}

fn key_ref() -> impl Strategy<Value = String> {
    (key(), any::<bool>())
        .prop_map(|(k, bracket)| if bracket { format!("labels[\"{k}\"]") } else { format!("labels.{k}") })
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (key_ref(), value(), any::<bool>()).prop_map(|(r, v, flip)| if flip {
            format!("\"{v}\" == {r}")
        } else {
            format!("{r} == \"{v}\"")
        }),
        (key_ref(), value()).prop_map(|(r, v)| format!("{r} != \"{v}\"")),
        (key_ref(), prop::collection::vec(value(), 0..4)).prop_map(|(r, vs)| {
            let items: Vec<String> = vs.iter().map(|v| format!("\"{v}\"")).collect();
            format!("{r} in [{}]", items.join(", "))
        }),
        key().prop_map(|k| format!("has(labels.{k})")),
        key().prop_map(|k| format!("\"{k}\" in labels")),
        (key_ref(), prop::sample::select(&["startsWith", "endsWith", "contains"][..]), value())
            .prop_map(|(r, f, v)| format!("{r}.{f}(\"{v}\")")),
        any::<bool>().prop_map(|b| b.to_string()),
        attr_leaf(),
    ]
}

const ATTR_VALUES: &[&str] = &["", "websocket", "uni_sse", "uni", "sse", "json", "protobuf"];

/// A test of `transport` or `protocol` in the forms a label test takes.
fn attr_leaf() -> impl Strategy<Value = String> {
    let var = prop::sample::select(&["transport", "protocol"][..]);
    let v = prop::sample::select(ATTR_VALUES);
    prop_oneof![
        (var.clone(), v.clone(), any::<bool>()).prop_map(|(r, v, flip)| if flip {
            format!("\"{v}\" == {r}")
        } else {
            format!("{r} == \"{v}\"")
        }),
        (var.clone(), v.clone()).prop_map(|(r, v)| format!("{r} != \"{v}\"")),
        (var.clone(), prop::collection::vec(v.clone(), 0..4)).prop_map(|(r, vs)| {
            let items: Vec<String> = vs.iter().map(|v| format!("\"{v}\"")).collect();
            format!("{r} in [{}]", items.join(", "))
        }),
        (var, prop::sample::select(&["startsWith", "endsWith", "contains"][..]), v)
            .prop_map(|(r, f, v)| format!("{r}.{f}(\"{v}\")")),
    ]
}

/// A term on the user: `user == "u"` (either side) or `user in [...]` (0–3 users).
fn user_term() -> impl Strategy<Value = String> {
    let u = prop::sample::select(&["u1", "u2", "u3"][..]);
    prop_oneof![
        (u.clone(), any::<bool>()).prop_map(|(u, flip)| if flip {
            format!("\"{u}\" == user")
        } else {
            format!("user == \"{u}\"")
        }),
        prop::collection::vec(u, 0..4).prop_map(|us| {
            let items: Vec<String> = us.iter().map(|u| format!("\"{u}\"")).collect();
            format!("user in [{}]", items.join(", "))
        }),
    ]
}

/// A connection's transport and protocol.
fn attrs() -> impl Strategy<Value = Attrs> {
    (
        prop::sample::select(&["websocket", "uni_sse", "sse"][..]),
        prop::sample::select(&["json", "protobuf"][..]),
        0..4usize,
    )
}

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 40, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) || ({b})")),
        ]
    })
}

/// Conjuncts outside the label subset (other variables, functions, non-literal
/// operands, errors), true or false depending on the connection.
fn untranslatable() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("app_name == \"app\"".to_owned()),
        Just("app_version != \"1.2.3\"".to_owned()),
        expr().prop_map(|e| format!("\"news\" in channels || ({e})")),
        Just("size(labels) >= 2".to_owned()),
        key().prop_map(|k| format!("labels.{k}.matches(\"^x\")")),
        (key(), key()).prop_map(|(a, b)| format!("labels.{a} == labels.{b}")),
        key().prop_map(|k| format!("labels.{k} + \"\" == \"x\"")),
        (key(), expr()).prop_map(|(k, e)| format!("size(labels.{k}) == 1 || ({e})")),
    ]
}

fn label_map() -> impl Strategy<Value = Labels> {
    prop::collection::vec(prop::option::of(value()), KEYS.len())
        .prop_map(|vs| KEYS.iter().zip(vs).filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string()))).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn translation_equals_interpretation(src in expr(), conns in prop::collection::vec((label_map(), attrs()), 8)) {
        let limits = CelLimits::default();
        let CelPlan::Translated { user: None, users, channels, labels } = plan(&src, &limits).unwrap() else {
            panic!("{src} was not translated without a user");
        };
        prop_assert!(channels.is_empty() && users.is_empty());
        let vm = labels.map(|e| compile_expr(&e, "expression", &NoSymbols).unwrap());
        let interp = plan_interpreted(&src, &limits).unwrap();
        for (map, a) in &conns {
            let l = sorted(map);
            let want = interp.matches_cel_crate(&conn_on("u", &l, *a));
            prop_assert_eq!(interp.matches(&conn_on("u", &l, *a)), want, "{} on {:?} {:?}: evaluator", src, map, a);
            let got = vm.as_ref().is_none_or(|p| p.matches_map(&with_attrs(map, *a)));
            prop_assert_eq!(got, want, "{} on {:?} {:?}", src, map, a);
        }
    }

    #[test]
    fn the_user_split_equals_interpretation(
        a in expr(),
        b in expr(),
        user_terms in prop::collection::vec(user_term(), 1..3),
        channel_terms in prop::collection::vec(prop::sample::select(&["news", "chat", "x"][..]), 0..3),
        shape in 0..3usize,
        conn_user in prop::sample::select(&["u1", "u2", "u3"][..]),
        conns in prop::collection::vec((label_map(), attrs()), 6),
    ) {
        let mut user_terms = user_terms;
        user_terms.extend(channel_terms.iter().map(|c| format!("\"{c}\" in channels")));
        let src = match shape {
            0 => format!("{} && ({a})", user_terms.join(" && ")),
            1 => format!("({a}) && {} && ({b})", user_terms.join(" && ")),
            _ => format!("({a}) && ({b}) && {}", user_terms.join(" && ")),
        };
        let limits = CelLimits::default();
        let CelPlan::Translated { user, users, channels, labels } = plan(&src, &limits).unwrap() else {
            panic!("{src} was not translated");
        };
        prop_assert!(user.is_some() || !users.is_empty() || labels == Some(Expr::Const(false)), "{} has no user route", src);
        prop_assert!(users.len() != 1 && (user.is_none() || users.is_empty()));
        let mut want_channels: Vec<String> = channel_terms.iter().map(|c| c.to_string()).collect();
        want_channels.dedup();
        prop_assert!(channels.iter().all(|c| want_channels.contains(c)) && want_channels.iter().all(|c| channels.contains(c)));
        let vm = labels.map(|e| compile_expr(&e, "expression", &NoSymbols).unwrap());
        let interp = plan_interpreted(&src, &limits).unwrap();
        for (map, a) in &conns {
            let l = sorted(map);
            let want = interp.matches_cel_crate(&conn_on(conn_user, &l, *a));
            prop_assert_eq!(interp.matches(&conn_on(conn_user, &l, *a)), want, "{} on {:?}: evaluator", src, map);
            let got = routed(user.as_deref(), &users, conn_user)
                && in_all(&channels, *a)
                && vm.as_ref().is_none_or(|p| p.matches_map(&with_attrs(map, *a)));
            prop_assert_eq!(got, want, "{} on {:?} as {}", src, map, conn_user);
        }
    }

    /// An expression with conjuncts outside the label subset is interpreted, but its
    /// translatable top-level conjuncts pre-filter: every connection the whole
    /// expression matches passes the pre-filter, so "pre-filter, then interpret" gives
    /// exactly the interpreter's answer on every connection.
    #[test]
    fn the_prefilter_never_drops_a_match(
        parts in prop::collection::vec(prop_oneof![
            expr(),
            untranslatable(),
            user_term(),
            prop::sample::select(&["news", "chat"][..]).prop_map(|c| format!("\"{c}\" in channels")),
        ], 1..5),
        hard in untranslatable(),
        at in 0..5usize,
        conn_user in prop::sample::select(&["u1", "u2"][..]),
        conns in prop::collection::vec((label_map(), attrs()), 8),
    ) {
        let mut parts: Vec<String> = parts.into_iter().map(|p| format!("({p})")).collect();
        parts.insert(at.min(parts.len()), format!("({hard})"));
        let src = parts.join(" && ");
        let limits = CelLimits::default();
        let CelPlan::Interpreted(p) = plan(&src, &limits).unwrap() else {
            panic!("{src} has an untranslatable conjunct but was translated");
        };
        let none = Conjuncts::default();
        let pre = p.prefilter().unwrap_or(&none);
        let vm = pre.labels.as_ref().map(|e| compile_expr(e, "expression", &NoSymbols).unwrap());
        let interp = plan_interpreted(&src, &limits).unwrap();
        for (map, a) in &conns {
            let l = sorted(map);
            let c = conn_on(conn_user, &l, *a);
            let want = interp.matches_cel_crate(&c);
            prop_assert_eq!(interp.matches(&c), want, "{} on {:?}: evaluator", src, map);
            let passes = routed(pre.user.as_deref(), &pre.users, conn_user)
                && in_all(&pre.channels, *a)
                && vm.as_ref().is_none_or(|p| p.matches_map(&with_attrs(map, *a)));
            prop_assert!(passes || !want, "{} matches {:?} as {} but the pre-filter drops it", src, map, conn_user);
            prop_assert_eq!(passes && p.matches(&c), want, "{} on {:?} as {}", src, map, conn_user);
        }
    }

    /// Nothing a client can send makes planning or evaluation panic.
    #[test]
    fn hostile_input_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        text in "[()\\[\\]{}!\"'a-z0-9._&|=<>+*/%?:, \\\\-]{0,300}",
    ) {
        let l = sorted(&labels(&[("a", "x")]));
        for src in [String::from_utf8_lossy(&bytes).into_owned(), text] {
            if let Ok(p) = plan_interpreted(&src, &CelLimits::default()) {
                let _ = p.matches(&conn("u", &l));
            }
            let _ = plan(&src, &CelLimits::default());
        }
    }
}

// ---------------------------------------------------------------- interpreter

const FULL_META: &str = r#"{"plan":"pro","age":30,"score":1.5,"big":18446744073709551615,"tags":["a","b"],
                "geo":{"country":"DE","city":{"name":"Berlin"}},"none":null,"ok":true}"#;

fn full_conn_check(src: &str) -> bool {
    let l = sorted(&labels(&[("region", "eu"), ("tier", "pro")]));
    let channels = vec!["news".to_string(), "chat:lobby".to_string()];
    let conn = CelConn {
        user: "42",
        client: "c-9",
        app_name: "web",
        app_version: "2.1.0",
        transport: "websocket",
        protocol: "protobuf",
        meta_json: Some(FULL_META),
        meta_form: MetaForm::of(FULL_META),
        labels: &l,
        channels: &channels,
        connected_at: 1_700_000_000_000,
    };
    assert!(conn.meta_form.plain());
    let p = match plan(src, &CelLimits::default()).unwrap_or_else(|e| panic!("{src}: {e}")) {
        CelPlan::Interpreted(p) => p,
        CelPlan::Translated { .. } => plan_interpreted(src, &CelLimits::default()).unwrap(),
    };
    let got = p.matches(&conn);
    assert_eq!(got, p.matches_cel_crate(&conn), "{src}: evaluator ({:?}) vs cel crate", p.path());
    let unchecked = CelConn { meta_form: MetaForm::UNCHECKED, ..conn };
    assert_eq!(p.matches(&unchecked), got, "{src}: meta checked when stored or on each evaluation");
    got
}

#[test]
fn every_variable_reaches_the_interpreter() {
    for src in [
        "user == \"42\" && client == \"c-9\"",
        "app_name == \"web\" && app_version.startsWith(\"2.\")",
        "transport == \"websocket\" && protocol == \"protobuf\"",
        "meta.plan == \"pro\"",
        "meta.age == 30 && meta.age > 18 && meta.score > 1.0 && meta.score < 2.0",
        "meta.big > 1.0e19",
        "meta.tags.exists(t, t == \"b\") && size(meta.tags) == 2 && \"a\" in meta.tags",
        "meta.geo.country == \"DE\" && meta.geo.city.name == \"Berlin\"",
        "has(meta.geo.city) && !has(meta.geo.zip)",
        "meta.none == null && meta.ok",
        "labels.region == \"eu\" && user.size() == 2",
        "\"news\" in channels && !(\"other\" in channels)",
        "channels.exists(c, c.startsWith(\"chat:\"))",
        "size(channels) == 2",
        "connected_at > 1600000000000 && connected_at <= 1700000000000",
        "connected_at == 1700000000000",
        "user.matches(\"^[0-9]+$\")",
        "labels.tier in [\"pro\", \"enterprise\"] && meta.plan == labels.tier",
        "type(meta.age) == int && type(meta.score) == double",
        "[1, 2, 3].map(x, x * 2).exists(y, y == 6)",
        "timestamp(\"2023-01-01T00:00:00Z\") < timestamp(\"2024-01-01T00:00:00Z\")",
    ] {
        assert!(full_conn_check(src), "{src} should match");
    }
    for src in [
        "user == \"43\"",
        "meta.plan == \"free\"",
        "\"sport\" in channels",
        "connected_at < 1600000000000",
        "meta.geo.country == \"FR\"",
    ] {
        assert!(!full_conn_check(src), "{src} should not match");
    }
}

#[test]
fn a_program_reports_the_variables_it_uses() {
    let p = plan_interpreted("\"news\" in channels && user != \"1\"", &CelLimits::default()).unwrap();
    assert!(p.uses("channels") && p.uses("user"));
    assert!(!p.uses("meta") && !p.uses("labels") && !p.uses("nonsense"));
}

#[test]
fn runtime_errors_and_non_bool_results_are_false() {
    for src in [
        "labels.missing == \"x\"",
        "meta.missing == \"x\"",
        "meta.geo.missing.deeper == 1",
        "1 / (connected_at - connected_at) == 1",
        "meta.age + 9223372036854775807 > 0",
        "user > 1",
        "user",
        "meta",
        "labels",
        "connected_at",
        "channels[5] == \"x\"",
        "int(user) + meta.age",
        "null",
        "!user",
        "labels.region && true",
    ] {
        assert!(!full_conn_check(src), "{src} should be false");
    }
}

#[test]
fn meta_defaults_and_odd_json() {
    let l = sorted(&labels(&[]));
    let check = |meta: Option<&str>, src: &str| {
        let mut c = conn("u", &l);
        c.meta_json = meta;
        let p = plan_interpreted(src, &CelLimits::default()).unwrap();
        let got = p.matches(&c);
        c.meta_form = meta.map_or(MetaForm::UNCHECKED, MetaForm::of);
        assert_eq!(p.matches(&c), got, "{src} on {meta:?}: checked when stored or not");
        got
    };
    assert!(check(None, "size(meta) == 0"));
    assert!(check(Some("{}"), "meta == {}"));
    assert!(check(Some("[1, 2]"), "meta[1] == 2"));
    assert!(check(Some("\"s\""), "meta == \"s\""));
    assert!(check(Some("not json"), "size(meta) == 0"));
    assert!(check(Some(r#"{"a":{"b":[{"c":1.0}]}}"#), "meta.a.b[0].c == 1.0"));
}

// ---------------------------------------------------------------- native evaluator

/// A connection with every field the native evaluator reads.
const RICH_META: &str = r#"{"plan":"pro","geo":{"country":"DE","zone":1},"age":30,"score":1.5,"roles":["admin","ops"],
                "big":18446744073709551615,"none":null,"ok":true}"#;

fn rich_conn<'a>(
    user: &'a str,
    labels: &'a [(Arc<str>, Arc<str>)],
    channels: &'a [String],
    connected_at: i64,
) -> CelConn<'a> {
    CelConn {
        user,
        client: "c-9",
        app_name: "web",
        app_version: "2.1.0",
        transport: "websocket",
        protocol: "protobuf",
        meta_json: Some(RICH_META),
        meta_form: MetaForm::of(RICH_META),
        labels,
        channels,
        connected_at,
    }
}

/// Typical expressions outside the label subset run on the native evaluator, and decide
/// as the cel crate does.
#[test]
fn common_expressions_are_native_and_decided() {
    let l = sorted(&labels(&[("region", "eu"), ("tier", "pro")]));
    let channels = vec!["news".to_string(), "chat:lobby".to_string()];
    let c = rich_conn("42", &l, &channels, 1_700_000_000_000);
    let cases = [
        ("labels.region == \"eu\" && labels.tier in [\"pro\", \"enterprise\"]", true),
        ("labels.region == \"eu\" && transport == \"websocket\"", true),
        ("transport == \"websocket\" && protocol == \"protobuf\"", true),
        ("user == \"1\" || labels.region == \"eu\"", true),
        ("user != \"42\"", false),
        ("user in [\"41\", \"42\"]", true),
        ("\"news\" in channels && !(\"sport\" in channels)", true),
        ("channels.exists(c, c.startsWith(\"chat:\"))", true),
        ("channels.all(c, c.size() > 3)", true),
        ("labels.exists(k, k == \"tier\")", true),
        ("size(channels) == 2 && size(labels) >= 2", true),
        ("connected_at > 1600000000000 && connected_at <= 1700000000000", true),
        ("connected_at < 1.6e12", false),
        ("user.matches(\"^[0-9]+$\")", true),
        ("app_version.startsWith(\"2.\") && app_name != \"ios\"", true),
        ("has(labels.zone) || labels.region != \"us\"", true),
        ("labels.region == \"eu\" ? labels.tier == \"pro\" : false", true),
        ("client.endsWith(\"-9\") && client.contains(\"c\")", true),
        ("labels.missing == \"x\"", false),
        ("labels.missing == \"x\" || user == \"42\"", true),
        ("user == \"43\"", false),
        ("\"sport\" in channels", false),
        ("meta.plan == \"pro\"", true),
        ("meta.plan == \"pro\" && meta.geo.country == \"DE\" && meta.age >= 18", true),
        ("\"admin\" in meta.roles && size(meta.roles) == 2 && meta.roles[1] == \"ops\"", true),
        ("meta.roles.exists(r, r.startsWith(\"ad\")) && meta.geo.all(k, k != \"zip\")", true),
        ("has(meta.geo.city) || meta.missing == 1", false),
        ("\"plan\" in meta && !has(meta.tier) && meta.score > 1.0", true),
        ("meta.big > 1.0e19 && meta.none == null && meta.ok", true),
        ("connected_at + 3600000 > 1700000000000 && connected_at % 1000 == 0", true),
        ("(connected_at - 1600000000000) / 86400000 > 1000", true),
        ("-connected_at < 0 && meta.age * 2 == 60 && meta.score / 2.0 == 0.75", true),
        ("connected_at + 9223372036854775807 > 0", false),
        ("meta.age + 1.0 > 0.0", false),
        ("int(user) == 42 && double(app_version.size()) == 5.0 && int(meta.score) == 1", true),
        // more distinct `meta` keys than are noted in the checking pass
        (
            "has(meta.k1) || has(meta.k2) || has(meta.k3) || has(meta.k4) || has(meta.k5) || has(meta.k6) \
             || has(meta.k7) || has(meta.k8) || meta.k9 == 1 || (meta.plan == \"pro\" && meta.ok)",
            true,
        ),
    ];
    for (src, want) in cases {
        let p = plan_interpreted(src, &CelLimits::default()).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(p.path(), CelPath::Native, "{src} should run natively");
        assert_eq!(p.matches_natively(&c), Some(want), "{src} should be decided in place");
        assert_eq!(p.matches(&c), want, "{src}");
        assert_eq!(p.matches_cel_crate(&c), want, "{src} (cel crate)");
    }
    // What stays on the cel crate: list values, indexing channels, other macros,
    // conversions, bytes, types.
    for src in [
        "channels == [\"news\"]",
        "channels[0] == \"news\"",
        "channels.exists_one(c, c == \"news\")",
        "channels.filter(c, c != \"\").size() == 2",
        "string(connected_at) == \"1\"",
        "labels.region == b\"eu\"",
        "type(user) == string",
    ] {
        let p = plan_interpreted(src, &CelLimits::default()).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(p.path(), CelPath::CelCrate, "{src} should stay on the cel crate");
        assert_eq!(p.matches(&c), p.matches_cel_crate(&c), "{src}");
    }
}

const NATIVE_KEYS: &[&str] = &["a", "b", "c"];
const NATIVE_VALUES: &[&str] = &["", "x", "xy", "1", "é", "-2", "1.5", "+3", "inf"];

/// Terms of every type the native subset has, including ones that make errors (a
/// missing label, `labels[1]`, `size(1)`), mixed freely so type rules are exercised.
fn native_term() -> impl Strategy<Value = String> {
    let key = prop::sample::select(NATIVE_KEYS);
    let s = prop::sample::select(NATIVE_VALUES);
    prop_oneof![
        prop::sample::select(&["user", "client", "transport", "connected_at", "c"][..]).prop_map(str::to_owned),
        key.clone().prop_map(|k| format!("labels.{k}")),
        key.prop_map(|k| format!("labels[\"{k}\"]")),
        s.clone().prop_map(|v| format!("\"{v}\"")),
        s.prop_map(|v| format!("labels[\"{v}\"]")),
        prop::sample::select(
            &[
                "0",
                "1",
                "-1",
                "2",
                "9223372036854775807",
                "0u",
                "1u",
                "2u",
                "18446744073709551615u",
                "0.0",
                "1.0",
                "1.5",
                "-1.0",
                "1e300",
                "true",
                "false",
                "null",
                "labels[1]",
                "labels[user]",
                "size(labels)",
                "size(channels)",
                "user.size()",
                "size(c)",
                "size(1)",
                "labels[c]",
                "meta",
                "meta.a",
                "meta.b",
                "meta.c",
                "meta.d",
                "meta.d.a",
                "meta[\"a\"]",
                "meta.c[0]",
                "meta.c[1]",
                "meta.c[5]",
                "meta.c[-1]",
                "meta.c[1u]",
                "meta.c[0.0]",
                "meta.c[c]",
                "meta[c]",
                "size(meta)",
                "size(meta.c)",
                "size(meta.a)",
                "has(meta.a)",
                "has(meta.d.a)",
                "has(meta.c.a)",
                "has(meta.a.a)",
                "int(labels.a)",
                "double(labels.b)",
                "int(meta.b)",
                "double(meta.a)",
                "int(c)",
                "int(1.5)",
                "int(-1e19)",
                "int(18446744073709551615u)",
                "int(user)",
                "double(1)",
                "double(2u)",
                "double(null)",
            ][..]
        )
        .prop_map(str::to_owned),
    ]
}

/// Terms with arithmetic over the native terms (every operator, mixed types, overflow,
/// division by zero).
fn native_arith() -> impl Strategy<Value = String> {
    let t = native_term;
    prop_oneof![
        (t(), prop::sample::select(&["+", "-", "*", "/", "%"][..]), t())
            .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        t().prop_map(|a| format!("-({a})")),
    ]
}

fn native_leaf() -> impl Strategy<Value = String> {
    let t = native_term;
    let key = prop::sample::select(NATIVE_KEYS);
    prop_oneof![
        (t(), prop::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]), t())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (t(), prop::collection::vec(t(), 0..3)).prop_map(|(a, items)| format!("{a} in [{}]", items.join(", "))),
        (t(), prop::sample::select(&["labels", "channels", "meta", "meta.c", "meta.d", "meta.a"][..]))
            .prop_map(|(a, r)| format!("{a} in {r}")),
        (native_arith(), prop::sample::select(&["==", "!=", "<", ">="][..]), t())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        key.prop_map(|k| format!("has(labels.{k})")),
        (t(), prop::sample::select(&["startsWith", "endsWith", "contains"][..]), t())
            .prop_map(|(a, f, b)| format!("{a}.{f}({b})")),
        t().prop_map(|a| format!("{a}.matches(\"^x\")")),
        t(),
    ]
}

fn native_expr() -> impl Strategy<Value = String> {
    native_leaf().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("({a}) ? ({b}) : ({c})")),
            (
                prop::sample::select(&["channels", "labels", "meta", "meta.c", "meta.d", "meta.a"][..]),
                prop::sample::select(&["exists", "all"][..]),
                inner
            )
                .prop_map(|(r, m, e)| format!("{r}.{m}(c, {e})")),
        ]
    })
}

/// `meta` documents: maps, lists and scalars under the keys the terms use, a repeated
/// key, escapes (left to the cel crate), big and odd numbers, text serde_json refuses
/// (`{}` on both paths), and none.
const NATIVE_METAS: &[Option<&str>] = &[
    None,
    Some(r#"{"a":"x","b":1,"c":[1,"x",null],"d":{"a":"xy"}}"#),
    Some(r#"{"a":1.5,"b":"é","c":{},"d":[]}"#),
    Some(r#"{"a":"x","a":"y","c":["x","x"]}"#),
    Some(r#"{"a":"\u0078","c":["\n",1]}"#),
    Some(r#"{"b":18446744073709551615,"c":[-0,1e2,9223372036854775807],"d":{"a":2}}"#),
    Some(r#"{"a":true,"b":false,"c":[[1],{"a":1},"a"],"d":{"b":null}}"#),
    Some(r#" { "a" : [ ] , "c" : { "a" : "x" , "1" : 1 } } "#),
    Some(r#"[1,2]"#),
    Some(r#""x""#),
    Some("null"),
    Some("{\"a\":1,}"),
    Some("not json"),
];

fn native_labels() -> impl Strategy<Value = Labels> {
    prop::collection::vec(prop::option::of(prop::sample::select(NATIVE_VALUES)), NATIVE_KEYS.len()).prop_map(|vs| {
        NATIVE_KEYS.iter().zip(vs).filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string()))).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The native evaluator against the cel crate on random expressions of its subset
    /// (every type, errors, macros, shadowing) and random connections: the same verdict,
    /// a runtime error being no match on both.
    #[test]
    fn native_evaluation_equals_the_cel_crate(
        src in native_expr(),
        conns in prop::collection::vec((
            native_labels(),
            prop::collection::vec(prop::sample::select(&["", "x", "xy", "news"][..]), 0..3),
            prop::sample::select(&["", "x", "1", "é"][..]),
            prop::sample::select(&[0i64, 1, -1, 2, i64::MAX][..]),
            prop::sample::select(NATIVE_METAS),
        ), 6),
    ) {
        // `c` outside a macro is an undeclared reference, refused before anything runs.
        let Ok(p) = plan_interpreted(&src, &CelLimits::default()) else { return Ok(()) };
        prop_assert_eq!(p.path(), CelPath::Native, "{} should run natively", src);
        for (map, channels, user, at, meta) in &conns {
            let l = sorted(map);
            let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
            let mut c = rich_conn(user, &l, &channels, *at);
            c.meta_json = *meta;
            // checked on each evaluation, and checked once when stored
            for form in [MetaForm::UNCHECKED, meta.map_or(MetaForm::UNCHECKED, MetaForm::of)] {
                c.meta_form = form;
                prop_assert_eq!(
                    p.matches(&c), p.matches_cel_crate(&c), "{} on {:?} {:?} as {:?} with meta {:?} ({:?})", src, map, channels, user, meta, form
                );
            }
        }
    }
}

// ---------------------------------------------------------------- errors and caps

fn error(src: &str) -> String {
    match plan(src, &CelLimits::default()) {
        Ok(p) => panic!("{src} was accepted: {p:?}"),
        Err(e) => {
            assert!(plan_interpreted(src, &CelLimits::default()).is_err());
            e.to_string()
        }
    }
}

#[test]
fn syntax_errors_carry_the_parser_message() {
    let m = error("labels.region == ");
    assert!(m.contains("ERROR: <input>:1:"), "{m}");
    let m = error("labels.region == \"eu");
    assert!(m.contains("ERROR"), "{m}");
    assert!(error("").contains("empty"));
    assert!(error("   ").contains("empty"));
    assert!(error("user ==== 1").contains("ERROR"));
}

#[test]
fn unknown_identifiers_are_rejected() {
    assert_eq!(error("lables.region == \"eu\""), "undeclared reference to 'lables'");
    assert_eq!(error("usr == \"1\""), "undeclared reference to 'usr'");
    // comprehension variables and type names are fine
    assert!(plan("channels.all(c, c != \"\") && type(user) == string", &CelLimits::default()).is_ok());
    assert!(plan("[1].map(x, [2].map(y, x + y)).size() == 1", &CelLimits::default()).is_ok());
}

#[test]
fn limits_are_enforced() {
    let l = CelLimits::default();
    assert_eq!((l.max_len, l.max_depth, l.max_nodes), (4096, 32, 512));

    let long = format!("user == \"{}\"", "x".repeat(5000));
    assert_eq!(error(&long), "expression is longer than 4096 bytes");

    let parens = format!("{}true{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(error(&parens), "expression is nested deeper than 32 levels");
    let nots = format!("{}true", "!".repeat(100));
    assert_eq!(error(&nots), "expression is nested deeper than 32 levels");
    let lists = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    assert_eq!(error(&lists), "expression is nested deeper than 32 levels");
    // An operator chain is deep in the tree though flat in the source.
    let chain = format!("connected_at {} > 0", "+ 1 ".repeat(60));
    assert_eq!(error(&chain), "expression is nested deeper than 32 levels");
    // A long && chain is balanced by the parser, so it is wide, not deep.
    let wide: Vec<String> = (0..100).map(|i| format!("labels.k{i} == \"v\"")).collect();
    assert!(plan(&wide.join(" && "), &l).is_ok());

    let many: Vec<String> = (0..180).map(|i| format!("has(labels.k{i})")).collect();
    assert_eq!(error(&many.join(" || ")), "expression has more than 512 nodes");

    let tight = CelLimits { max_len: 20, max_depth: 3, max_nodes: 5, ..CelLimits::default() };
    assert!(plan("labels.a == \"x\"", &tight).is_ok());
    assert_eq!(plan("labels.a == \"x\" && true", &tight).unwrap_err().message, "expression is longer than 20 bytes");
    assert_eq!(plan("((((true))))", &tight).unwrap_err().message, "expression is nested deeper than 3 levels");
    assert_eq!(plan("[1,2,3,4,5]==[]", &tight).unwrap_err().message, "expression has more than 5 nodes");
}

#[test]
fn cost_rules_are_enforced() {
    assert!(error("channels.all(a, channels.all(b, channels.all(c, a != c)))").contains("macros"));
    assert!(plan("channels.all(a, channels.all(b, a != b || a == b))", &CelLimits::default()).is_ok());
    assert!(error("user.matches(client)").contains("string literal"));
    assert!(error("user.matches(\"(\")").contains("pattern"));
    assert!(error("matches(user, \"a{1000}{1000}\")").contains("pattern"));
    assert!(plan("matches(user, \"^4\")", &CelLimits::default()).is_ok());
}

/// Regression: two nested `exists` over 200-element lists passed every cap and took
/// tens of seconds over a few thousand connections. Nested macros multiply their
/// ranges' sizes in the cost estimate; the product is refused before anything runs.
#[test]
fn nested_macros_over_long_lists_are_too_expensive() {
    let list = format!("[{}]", (0..200).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let src = format!("{list}.exists(x, {list}.exists(y, x == y + 100000))");
    assert!(src.len() <= 4096);
    let m = error(&src);
    assert!(m.starts_with("expression is too expensive: estimated cost"), "{m}");
    assert!(m.contains("at most 20000") && m.contains("nested macros multiply"), "{m}");
    // One level over the same list, or two over connection-sized ranges, is fine.
    assert!(plan(&format!("{list}.exists(x, x == connected_at)"), &CelLimits::default()).is_ok());
    assert!(plan("channels.exists(a, labels.exists(k, a == k))", &CelLimits::default()).is_ok());
    // `in` a long list inside a macro counts the list once per element.
    let big = format!("[{}]", (0..150).map(|i| format!("\"c{i}\"")).collect::<Vec<_>>().join(","));
    let src = format!("channels.exists(c, c in {big}) && labels.exists(k, k in {big})");
    assert!(plan(&src, &CelLimits::default()).is_ok(), "32 × 150 twice is under the cap");
    let m = error(&format!("channels.exists(c, labels.exists(k, (c + k) in {big}))"));
    assert!(m.contains("too expensive"), "{m}");
    let cheap = CelLimits { max_cost: 10, ..CelLimits::default() };
    assert!(plan("user == \"1\" || meta.x == 2", &cheap).is_ok());
    assert!(plan("channels.exists(c, c == user)", &cheap).unwrap_err().message.contains("too expensive"));
}

/// Worst shapes at the default length cap parse (and are rejected) on a 2 MiB stack,
/// the size of test and tokio worker threads.
#[test]
fn long_flat_input_is_safe_on_a_small_stack() {
    let shapes = [
        format!("connected_at{}", " + 1".repeat(1000)),
        format!("user{}", ".a".repeat(2000)),
        format!("user{}", "[0]".repeat(1300)),
        format!("user{}", ".f()".repeat(1000)),
        format!("true{}", " && true".repeat(450)),
        format!("true{}", " ? true : true".repeat(290)),
        format!("1{}", " < 1".repeat(1000)),
        format!("[{}]", "1,".repeat(2000)),
        format!("{{{}}}", "1:1,".repeat(1000)),
        "-".repeat(4000) + "1",
        "!".repeat(4000) + "true",
        "(".repeat(4000),
        "\"".repeat(4000),
        format!("{}1", "-(".repeat(2000)),
    ];
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for src in &shapes {
                assert!(src.len() <= 4096, "{}", src.len());
                assert!(plan(src, &CelLimits::default()).is_err(), "{src}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Prints the interpreter's cost per evaluation (`cargo test --release --test it cel:: -- --ignored`).
#[test]
#[ignore]
fn evaluation_cost() {
    let l = sorted(&labels(&[("region", "eu"), ("tier", "pro"), ("zone", "a")]));
    let channels = vec!["news".to_string(), "chat".to_string()];
    let mut c = conn("42", &l);
    c.channels = &channels;
    c.meta_json = Some(r#"{"plan":"pro","geo":{"country":"DE"}}"#);
    c.meta_form = MetaForm::of(r#"{"plan":"pro","geo":{"country":"DE"}}"#);
    for src in [
        "true",
        "user == \"42\"",
        "labels.region == \"eu\"",
        "labels.region == \"eu\" && labels.tier in [\"pro\", \"enterprise\"]",
        "user == \"42\" && labels.region == \"eu\" && \"news\" in channels",
        "meta.plan == \"pro\" && meta.geo.country == \"DE\"",
    ] {
        let p = plan_interpreted(src, &CelLimits::default()).unwrap();
        let n = 200_000;
        let start = std::time::Instant::now();
        let mut hits = 0;
        for _ in 0..n {
            hits += usize::from(p.matches(std::hint::black_box(&c)));
        }
        let ns = start.elapsed().as_nanos() / n as u128;
        println!("{ns:>6} ns/eval  {src}  ({hits} hits)");
        let start = std::time::Instant::now();
        for _ in 0..20 {
            std::hint::black_box(plan(src, &CelLimits::default()).unwrap());
        }
        println!("{:>6} us/plan", start.elapsed().as_micros() / 20);
    }
}

#[test]
fn a_program_is_shared_across_threads() {
    let p =
        Arc::new(plan_interpreted("labels.region == \"eu\" && \"news\" in channels", &CelLimits::default()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let region = if i % 2 == 0 { "eu" } else { "us" };
                let l = sorted(&labels(&[("region", region)]));
                let channels = vec!["news".to_string()];
                let mut c = conn("u", &l);
                c.channels = &channels;
                (0..100).all(|_| p.matches(&c) == (i % 2 == 0))
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}
