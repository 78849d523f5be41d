//! The FilterNode compiler against its oracle: table-driven cases (`data/filter/`)
//! run through the VM in string mode, in interned mode, and through the naive
//! reference evaluator; validation errors with kinds and JSON paths; limits; the
//! disassembly; and property tests comparing the VM with the reference on random trees.

use std::collections::HashMap;

use proptest::prelude::*;
use rotor::filter::limits::DEPTH_CAP;
use rotor::filter::reference::reference_valid;
use rotor::filter::{
    BlockSource, Expr, FilterErrorKind, FilterNode, Instr, LabelSource, Limits, NoSymbols, Program, Symbols, Test,
    compile, parse, reference_matches,
};
use serde::Deserialize;

type Labels = HashMap<String, String>;

/// A toy interner standing in for the hub's: ids from 1, in insertion order.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        let next = self.ids.len() as u32 + 1;
        *self.ids.entry(s.to_owned()).or_insert(next)
    }
}

impl Symbols for Interner {
    fn value_id(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// One row of interned labels, laid out by a program's key table.
struct Row {
    ids: Vec<u32>,
    strs: Vec<Option<String>>,
}

impl Row {
    fn new(program: &Program, labels: &Labels, interner: &Interner) -> Row {
        let strs: Vec<Option<String>> = program.keys().iter().map(|k| labels.get(&**k).cloned()).collect();
        let ids = strs.iter().map(|v| v.as_deref().map_or(0, |v| interner.ids[v])).collect();
        Row { ids, strs }
    }
}

impl LabelSource for Row {
    const INTERNED: bool = true;

    fn value_id(&self, k: u16) -> u32 {
        self.ids[k as usize]
    }

    fn value_str(&self, k: u16) -> Option<&str> {
        self.strs[k as usize].as_deref()
    }
}

/// Three rows — `labels`, no labels, `labels` — stored column-wise, as the hub does.
struct Block {
    rows: [Row; 3],
    columns: Vec<Option<Vec<u32>>>,
}

impl Block {
    fn new(program: &Program, labels: &Labels, interner: &Interner) -> Block {
        let rows = [
            Row::new(program, labels, interner),
            Row::new(program, &Labels::new(), interner),
            Row::new(program, labels, interner),
        ];
        let columns = (0..program.keys().len())
            .map(|k| {
                let col: Vec<u32> = rows.iter().map(|r| r.ids[k]).collect();
                col.iter().any(|&v| v != 0).then_some(col)
            })
            .collect();
        Block { rows, columns }
    }
}

impl BlockSource for Block {
    type Row<'a> = &'a Row;

    fn ids(&self, k: u16) -> Option<&[u32]> {
        self.columns[k as usize].as_deref()
    }

    fn row(&self, i: usize) -> &Row {
        &self.rows[i]
    }
}

impl LabelSource for &Row {
    const INTERNED: bool = true;

    fn value_id(&self, k: u16) -> u32 {
        (**self).value_id(k)
    }

    fn value_str(&self, k: u16) -> Option<&str> {
        (**self).value_str(k)
    }
}

/// Runs `filter` over `labels` four ways — string-mode VM, interned VM, string-mode
/// program on an interned row, reference — and returns the common answer, or panics
/// naming `name` when they disagree. An invalid filter must fail to compile and make
/// the reference return false; its answer is `false`.
fn check(name: &str, filter: &FilterNode, labels: &Labels, extra_symbols: &[&str]) -> bool {
    let limits = Limits::default();
    let reference = reference_matches(filter, labels);
    let Ok(plain) = compile(filter, "tf", &limits, &NoSymbols) else {
        assert!(!reference_valid(filter), "{name}: valid for the reference but rejected by compile");
        return false;
    };
    assert!(reference_valid(filter), "{name}: compiled, but invalid for the reference");
    let mut interner = Interner::default();
    let mut values: Vec<&String> = labels.values().collect();
    values.sort();
    values.into_iter().for_each(|v| _ = interner.intern(v));
    extra_symbols.iter().for_each(|v| _ = interner.intern(v));
    let interned = compile(filter, "tf", &limits, &interner).expect("compiles with symbols");
    let row = Row::new(&interned, labels, &interner);
    let answers = [
        plain.matches_map(labels),
        interned.matches(&row),
        plain.matches(&Row::new(&plain, labels, &interner)),
        reference,
    ];
    assert!(
        answers.iter().all(|&a| a == reference),
        "{name}: string VM, interned VM, string program on interned row, reference = {answers:?}\n{interned:?}"
    );
    // Column-wise, 64 rows at a time: rows 0 and 2 carry `labels`, row 1 none; row 2
    // is masked out in the first run.
    let empty = reference_matches(filter, &Labels::new());
    let block = Block::new(&interned, labels, &interner);
    let mut pending = vec![0; interned.instructions().len() + 1];
    let want = reference as u64 | (empty as u64) << 1 | (reference as u64) << 2;
    assert_eq!(interned.matches_block(&block, 3, 0b111, &mut pending), want, "{name}: block\n{interned:?}");
    assert_eq!(interned.matches_block(&block, 3, 0b011, &mut pending), want & 0b011, "{name}: block, row 2 dead");
    assert_eq!(plain.matches_block(&block, 3, 0b111, &mut pending), want, "{name}: block, string program");
    reference
}

#[derive(Deserialize)]
struct Case {
    name: String,
    filter: FilterNode,
    labels: Labels,
    expect: bool,
}

#[test]
fn cases() {
    let cases: Vec<Case> = serde_json::from_str(include_str!("../data/filter/cases.json")).expect("cases.json");
    assert!(cases.len() > 100);
    for c in &cases {
        assert_eq!(check(&c.name, &c.filter, &c.labels, &[]), c.expect, "{}", c.name);
        assert_eq!(
            check(&c.name, &c.filter, &c.labels, &["", "eu", "1", "pro"]),
            c.expect,
            "{} (extra symbols)",
            c.name
        );
    }
}

#[derive(Deserialize)]
struct Invalid {
    name: String,
    filter: FilterNode,
    error_kind: String,
    path: String,
    #[serde(default)]
    limits: LimitsOverride,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsOverride {
    max_depth: Option<usize>,
    max_nodes: Option<usize>,
    max_values: Option<usize>,
    max_value_len: Option<usize>,
    max_key_len: Option<usize>,
}

impl LimitsOverride {
    fn apply(&self) -> Limits {
        let d = Limits::default();
        Limits {
            max_depth: self.max_depth.unwrap_or(d.max_depth),
            max_nodes: self.max_nodes.unwrap_or(d.max_nodes),
            max_values: self.max_values.unwrap_or(d.max_values),
            max_value_len: self.max_value_len.unwrap_or(d.max_value_len),
            max_key_len: self.max_key_len.unwrap_or(d.max_key_len),
        }
    }
}

#[test]
fn invalid() {
    let cases: Vec<Invalid> = serde_json::from_str(include_str!("../data/filter/invalid.json")).expect("invalid.json");
    for c in &cases {
        let limits = c.limits.apply();
        let err = compile(&c.filter, "tf", &limits, &NoSymbols).expect_err(&c.name);
        assert_eq!((err.kind.name(), err.path.as_str()), (c.error_kind.as_str(), c.path.as_str()), "{}", c.name);
        assert!(err.to_string().starts_with(&format!("{}: ", c.path)), "{}: {err}", c.name);
        if limits == Limits::default() {
            assert!(!reference_valid(&c.filter), "{}: the reference accepts it", c.name);
            assert!(!reference_matches(&c.filter, &HashMap::new()), "{}", c.name);
        }
    }
}

#[test]
fn error_messages() {
    let in_without_vals = FilterNode::and(vec![FilterNode::leaf("a", "ex", ""), FilterNode::leaf("b", "in", "")]);
    let err = compile(&in_without_vals, "label_filter", &Limits::default(), &NoSymbols).unwrap_err();
    assert_eq!(err.to_string(), r#"label_filter.nodes[1].vals: "in" needs a non-empty "vals""#);
    let unknown = FilterNode::leaf("a", "exists", "");
    let err = compile(&unknown, "tf", &Limits::default(), &NoSymbols).unwrap_err();
    assert_eq!(err.kind, FilterErrorKind::UnknownCmp);
    assert!(err.to_string().starts_with(r#"tf.cmp: unknown cmp "exists""#), "{err}");
    let long_op = FilterNode { op: "x".repeat(10_000), ..FilterNode::default() };
    let err = compile(&long_op, "tf", &Limits::default(), &NoSymbols).unwrap_err();
    assert!(err.to_string().len() < 200, "client text is cut: {err}");
    let err = compile(&not_chain(40), "tf", &Limits::default(), &NoSymbols).unwrap_err();
    assert_eq!(err.to_string(), format!("tf{}: filter nested deeper than 32 levels", ".nodes[0]".repeat(32)));
    let root_less = compile(&FilterNode::or(vec![]), "", &Limits::default(), &NoSymbols).unwrap_err();
    assert_eq!(root_less.to_string(), r#"nodes: "or" needs at least one node"#);
}

/// `not(not(…(a ex)…))` with `depth` nodes in all.
fn not_chain(depth: usize) -> FilterNode {
    let mut node = FilterNode::leaf("a", "ex", "");
    for _ in 1..depth {
        node = FilterNode::negate(node);
    }
    node
}

/// Drops a tree without recursing (a derived drop of a 100,000-deep tree would not fit the stack).
fn dismantle(root: FilterNode) {
    let mut stack = vec![root];
    while let Some(mut node) = stack.pop() {
        stack.append(&mut node.nodes);
    }
}

#[test]
fn depth_limit() {
    let limits = Limits::default();
    assert!(compile(&not_chain(32), "tf", &limits, &NoSymbols).is_ok());
    let err = compile(&not_chain(33), "tf", &limits, &NoSymbols).unwrap_err();
    assert_eq!(err.kind, FilterErrorKind::TooDeep);
    assert_eq!(err.path, format!("tf{}", ".nodes[0]".repeat(32)));
    let unbounded = Limits { max_depth: usize::MAX, max_nodes: usize::MAX, ..limits };
    assert!(compile(&not_chain(DEPTH_CAP), "tf", &unbounded, &NoSymbols).is_ok());
    let err = compile(&not_chain(DEPTH_CAP + 1), "tf", &unbounded, &NoSymbols).unwrap_err();
    assert_eq!((err.kind, err.limit), (FilterErrorKind::TooDeep, DEPTH_CAP));
}

#[test]
fn hundred_thousand_deep_tree_is_too_deep_not_a_crash() {
    let deep = not_chain(100_000);
    let err = compile(&deep, "tf", &Limits::default(), &NoSymbols).unwrap_err();
    assert_eq!(err.kind, FilterErrorKind::TooDeep);
    dismantle(deep);
}

#[test]
fn deep_json_is_rejected_without_a_crash() {
    let json = |depth: usize| {
        let mut s = r#"{"op":"not","nodes":["#.repeat(depth - 1);
        s.push_str(r#"{"key":"a","cmp":"ex"}"#);
        s.push_str(&"]}".repeat(depth - 1));
        s
    };
    assert!(serde_json::from_str::<FilterNode>(&json(100_000)).is_err(), "serde_json stops at its recursion limit");
    let node: FilterNode = serde_json::from_str(&json(40)).expect("40 levels parse");
    let err = compile(&node, "tf", &Limits::default(), &NoSymbols).unwrap_err();
    assert_eq!(err.kind, FilterErrorKind::TooDeep);
}

#[test]
fn size_limits_at_defaults() {
    let limits = Limits::default();
    let kind = |n: &FilterNode| compile(n, "tf", &limits, &NoSymbols).map(|_| ()).map_err(|e| (e.kind, e.path));
    let leaves = |n: usize| FilterNode::or((0..n).map(|i| FilterNode::leaf("k", "eq", &i.to_string())).collect());
    assert_eq!(kind(&leaves(1023)), Ok(()));
    assert_eq!(kind(&leaves(1024)), Err((FilterErrorKind::TooManyNodes, "tf.nodes[1023]".into())));
    let owned: Vec<String> = (0..1025).map(|i| i.to_string()).collect();
    let vals: Vec<&str> = owned.iter().map(String::as_str).collect();
    assert_eq!(kind(&FilterNode::leaf_vals("k", "in", &vals[..1024])), Ok(()));
    assert_eq!(kind(&FilterNode::leaf_vals("k", "in", &vals)), Err((FilterErrorKind::TooManyValues, "tf.vals".into())));
    let long = "v".repeat(4097);
    assert_eq!(kind(&FilterNode::leaf("k", "eq", &long[..4096])), Ok(()));
    assert_eq!(kind(&FilterNode::leaf("k", "eq", &long)), Err((FilterErrorKind::ValueTooLong, "tf.val".into())));
    let key = "k".repeat(257);
    assert_eq!(kind(&FilterNode::leaf(&key[..256], "ex", "")), Ok(()));
    assert_eq!(kind(&FilterNode::leaf(&key, "ex", "")), Err((FilterErrorKind::KeyTooLong, "tf.key".into())));
}

#[test]
fn folding() {
    let limits = Limits::default();
    let ir = |n: &FilterNode| parse(n, "tf", &limits).expect("valid");
    let eq = FilterNode::leaf("a", "eq", "1");
    let bad_num = FilterNode::leaf("n", "gt", "abc");
    assert_eq!(ir(&FilterNode::and(vec![bad_num.clone(), eq.clone()])), Expr::Const(false));
    assert_eq!(ir(&FilterNode::or(vec![bad_num.clone(), eq.clone()])), ir(&eq));
    assert_eq!(ir(&FilterNode::negate(FilterNode::negate(eq.clone()))), ir(&eq));
    assert_eq!(ir(&FilterNode::negate(eq.clone())), Expr::Leaf { key: "a".into(), test: Test::Neq("1".into()) });
    assert_eq!(ir(&FilterNode::leaf_vals("a", "in", &["1"])), ir(&eq));
    let nested = FilterNode::and(vec![FilterNode::and(vec![eq.clone(), eq.clone()]), eq.clone()]);
    assert!(matches!(ir(&nested), Expr::And(children) if children.len() == 3));
    let always = compile(&FilterNode::negate(bad_num), "tf", &limits, &NoSymbols).unwrap();
    assert_eq!(always.constant(), Some(true));
    assert!(always.matches_map(&HashMap::new()));
    assert_eq!(compile(&eq, "tf", &limits, &NoSymbols).unwrap().constant(), None);
}

#[test]
fn disassembly_and_layout() {
    let filter: FilterNode = serde_json::from_str(
        r#"{"op":"and","nodes":[{"key":"region","cmp":"eq","val":"eu"},
            {"op":"or","nodes":[{"key":"tier","cmp":"in","vals":["pro","","ent"]},{"key":"price","cmp":"gte","val":"10.50"}]},
            {"key":"region","cmp":"sw","val":"e"}]}"#,
    )
    .unwrap();
    let mut interner = Interner::default();
    for v in ["eu", "pro", ""] {
        interner.intern(v);
    }
    let program = compile(&filter, "tf", &Limits::default(), &interner).unwrap();
    let keys: Vec<&str> = program.keys().iter().map(|k| &**k).collect();
    assert_eq!(keys, ["region", "tier", "price"]);
    use Instr::*;
    let expected = [
        Eq { key: 0, s: 0 },
        JumpIfFalse(7),
        In { key: 1, set: 0 },
        JumpIfTrue(6),
        Num { key: 2, op: rotor::filter::NumOp::Gte, num: 0 },
        JumpIfFalse(7),
        StartsWith { key: 0, s: 1 },
    ];
    assert_eq!(program.instructions(), expected, "{program:?}");
    let text = format!("{program:?}");
    for needle in
        ["\"region\"", "\"tier\"", "\"price\"", "-> 0007 (end)", "-> 0006", "gte", "10.5", "#1", "#[0, 2, 3]", "sw"]
    {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    assert_eq!(text.lines().count(), 1 + expected.len() + 1, "{text}");
}

#[test]
fn jumps_landing_on_jumps_are_threaded() {
    let a = || FilterNode::leaf("a", "ex", "");
    let filter = FilterNode::and(vec![FilterNode::or(vec![a(), a()]), a()]);
    let program = compile(&filter, "tf", &Limits::default(), &NoSymbols).unwrap();
    // a; jt L; a; L: jf end; a  — the jt skips the jf it would not take.
    assert_eq!(program.instructions()[1], Instr::JumpIfTrue(4), "{program:?}");
}

#[test]
fn program_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Program>();
}

#[test]
fn wire_format() {
    let node: FilterNode =
        serde_json::from_str(r#"{"op":"not","nodes":[{"key":"a","cmp":"in","vals":["x"],"extra":1}],"val":null}"#)
            .unwrap();
    assert_eq!(node, FilterNode::negate(FilterNode::leaf_vals("a", "in", &["x"])));
    let json = serde_json::to_string(&node).unwrap();
    assert_eq!(json, r#"{"op":"not","nodes":[{"key":"a","cmp":"in","vals":["x"]}]}"#);
    assert_eq!(serde_json::from_str::<FilterNode>(&json).unwrap(), node);
}

// ---- property tests ----

const KEYS: &[&str] = &["", "a", "b", "c"];
const VALUES: &[&str] = &[
    "", "x", "y", "xy", "yx", "X", "1", "9", "10", "1.5", "1.50", "-0", "0", "+1", "-1", "1.", ".5", "1e5", " 1",
    "abc", "é",
];
const CMPS: &[&str] = &["eq", "neq", "in", "nin", "ex", "nex", "sw", "ew", "ct", "lt", "lte", "gt", "gte"];

fn pick(words: &[&'static str]) -> impl Strategy<Value = &'static str> + Clone {
    prop::sample::select(words.to_vec())
}

fn value() -> impl Strategy<Value = String> + Clone {
    pick(VALUES).prop_map(str::to_owned)
}

fn valid_leaf() -> impl Strategy<Value = FilterNode> {
    let key = pick(&KEYS[1..]).prop_map(str::to_owned);
    let val = value().prop_filter("non-empty", |v| !v.is_empty());
    let vals = prop::collection::vec(value(), 1..5);
    let one = |(k, c, v): (String, &str, String)| FilterNode::leaf(&k, c, &v);
    prop_oneof![
        (key.clone(), pick(&CMPS[..2]), val.clone()).prop_map(one),
        (key.clone(), pick(&CMPS[6..]), val).prop_map(one),
        (key, pick(&CMPS[2..4]), vals).prop_map(|(k, c, vals)| FilterNode {
            key: k,
            cmp: c.into(),
            vals,
            ..FilterNode::default()
        }),
        (pick(KEYS), pick(&CMPS[4..6])).prop_map(|(k, c)| FilterNode::leaf(k, c, "")),
    ]
}

fn valid_tree() -> impl Strategy<Value = FilterNode> {
    valid_leaf().prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(FilterNode::and),
            prop::collection::vec(inner.clone(), 1..4).prop_map(FilterNode::or),
            inner.prop_map(FilterNode::negate),
        ]
    })
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        pick(&["", "and", "or", "not", "eq", "in", "ex", "gt", "AND", "exists", "nin"]).prop_map(str::to_owned),
        ".{0,6}",
    ]
}

fn wild_tree() -> impl Strategy<Value = FilterNode> {
    let leaf = (word(), word(), word(), word(), prop::collection::vec(word(), 0..3))
        .prop_map(|(op, key, cmp, val, vals)| FilterNode { op, key, cmp, val, vals, nodes: vec![] });
    leaf.prop_recursive(6, 64, 4, |inner| {
        (word(), word(), prop::collection::vec(inner, 0..4)).prop_map(|(op, cmp, nodes)| FilterNode {
            op,
            cmp,
            nodes,
            ..FilterNode::default()
        })
    })
}

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::hash_map(pick(KEYS).prop_map(str::to_owned), value(), 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn vm_agrees_with_reference(tree in valid_tree(), labels in labels(), all_symbols in any::<bool>()) {
        prop_assert!(compile(&tree, "tf", &Limits::default(), &NoSymbols).is_ok());
        let extra: &[&str] = if all_symbols { VALUES } else { &[] };
        check("random valid tree", &tree, &labels, extra);
    }

    #[test]
    fn arbitrary_trees_never_panic(tree in wild_tree(), labels in labels()) {
        check("random wild tree", &tree, &labels, &["and", "x"]);
    }
}

/// Up to 64 rows of arbitrary labels stored column-wise (the hub's layout), for the
/// block evaluator's full-block paths.
struct Rows {
    rows: Vec<Row>,
    columns: Vec<Option<Vec<u32>>>,
}

impl Rows {
    fn new(program: &Program, labels: &[Labels], interner: &Interner) -> Rows {
        let rows: Vec<Row> = labels.iter().map(|l| Row::new(program, l, interner)).collect();
        let columns = (0..program.keys().len())
            .map(|k| {
                let col: Vec<u32> = rows.iter().map(|r| r.ids[k]).collect();
                col.iter().any(|&v| v != 0).then_some(col)
            })
            .collect();
        Rows { rows, columns }
    }
}

impl BlockSource for Rows {
    type Row<'a> = &'a Row;

    fn ids(&self, k: u16) -> Option<&[u32]> {
        self.columns[k as usize].as_deref()
    }

    fn row(&self, i: usize) -> &Row {
        &self.rows[i]
    }
}

/// `in`/`nin` leaves with up to 14 members, so sets on both sides of the block
/// evaluator's small-set cut-off (8) are exercised.
fn set_tree() -> impl Strategy<Value = FilterNode> {
    let leaf = (pick(&KEYS[1..]), pick(&CMPS[2..4]), prop::collection::vec(value(), 1..15))
        .prop_map(|(k, c, vals)| FilterNode { key: k.into(), cmp: c.into(), vals, ..FilterNode::default() });
    prop_oneof![leaf, valid_leaf()].prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(FilterNode::and),
            prop::collection::vec(inner.clone(), 1..4).prop_map(FilterNode::or),
            inner.prop_map(FilterNode::negate),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// The block evaluator on full and partial blocks of random rows agrees with the
    /// row-at-a-time VM on every live row and reports no dead row.
    #[test]
    fn block_agrees_with_rows(
        tree in prop_oneof![valid_tree(), set_tree()],
        rows in prop::collection::vec(labels(), 1..=64),
        full in any::<bool>(),
        live in any::<u64>(),
    ) {
        // Half the cases pad to a full block of 64 rows (the vectorised path).
        let mut rows = rows;
        if full {
            let mut i = 0;
            while rows.len() < 64 {
                rows.push(rows[i].clone());
                i += 1;
            }
        }
        let mut interner = Interner::default();
        VALUES.iter().for_each(|v| _ = interner.intern(v));
        let program = compile(&tree, "tf", &Limits::default(), &interner).expect("valid tree");
        let block = Rows::new(&program, &rows, &interner);
        let n = rows.len();
        let live = if n == 64 { live } else { live & ((1 << n) - 1) };
        let mut pending = vec![0; program.instructions().len() + 1];
        let got = program.matches_block(&block, n, live, &mut pending);
        let mut want = 0u64;
        for (i, row) in block.rows.iter().enumerate() {
            want |= ((live >> i & 1 == 1 && program.matches(row)) as u64) << i;
        }
        prop_assert_eq!(got, want, "{:?}", program);
    }
}
