//! Rotor's own evaluator for the common subset of CEL, exact to the cel crate.
//!
//! [`Native::lower`] turns the parsed (and already bounded) cel tree into a small tree
//! of its own, once per request; it declines (None) whenever any node is outside the
//! subset, and the whole expression then runs on the cel crate. Evaluation borrows
//! the connection ([`CelConn`]) directly: no map of labels, no list of channels, no
//! parsed `meta`, no context, no allocation.
//!
//! The subset, with the cel crate's (0.15) semantics replicated rule by rule:
//!
//! - literals `true` `false` `null`, ints, uints, doubles, strings (not bytes);
//! - the variables `user` `client` `app_name` `app_version` `transport` `protocol`
//!   (strings), `connected_at` (int) and `meta`, read in place from its JSON text
//!   (`json`): `meta.k`, `meta["k"]`, `meta.a.b[0]`, `has(meta.k)`, `"k" in meta`,
//!   `x in meta.list`, `size(meta.list)`, macros over its lists and maps;
//! - `labels.k`, `labels["k"]`, `labels[e]` (a missing key, or a key that is not a
//!   string, is an error) and `has(labels.k)`;
//! - `==` `!=` (values of different types are unequal, not an error; ints, uints and
//!   doubles compare as numbers: int–uint exactly, against a double as `f64`, NaN
//!   equal to nothing), `<` `<=` `>` `>=` (strings by bytes, bools, numbers as for
//!   `==`; any other pair, or NaN, is an error);
//! - `+` `-` `*` `/` `%` and unary `-` on ints and uints (checked: overflow, division
//!   or remainder by zero is an error) and doubles (IEEE; no `%`); mixed types are an
//!   error, as there;
//! - `int()` of an int, a uint (within `i64`), a double (truncated, within the open
//!   `i64` range) or a string (`str::parse`), and `double()` of a number or a string
//!   (`str::parse`), as the cel crate's overloads convert them;
//! - `&&` `||` absorbing errors on either side (`error && false` is false, `true ||
//!   error` is true; a non-bool operand counts as an error), `!`, `c ? a : b`;
//! - `x in [e…]` (every element is evaluated, errors propagate), `x in channels`, `x
//!   in labels` (a key that is not a string: false, `null`: an error);
//! - `startsWith` `endsWith` `contains` `matches` (the pattern, a literal, compiled
//!   once with the same `regex` crate), `size()` of a string (chars), of `labels` and
//!   of `channels`;
//! - `exists(v, …)` and `all(v, …)` over `channels`, `labels` (its keys) or a list or
//!   map in `meta`: true/false as soon as one element decides, else an error if any
//!   element erred, else the neutral result — the cel crate's deferred errors, which
//!   do not depend on iteration order.
//!
//! Some answers are not computed in place because they would need an allocation or a
//! rule not replicated here: a `meta` string with an escape sequence, string or list
//! concatenation, comparing two `meta` lists or maps, an odd index type. Evaluation
//! then says *unsure* ([`Native::matches`] is None) and that one connection goes to
//! the cel crate; `&&`, `||` and the macros still decide without it when the other
//! side does. Everything else — list or map literals as values, indexing `channels`,
//! `exists_one`/`map`/`filter`, other conversions, types, optionals — is left to the cel
//! crate for the whole request. A runtime error is no match, as it is there. The
//! differential proptest in `tests/it/cel.rs` holds this evaluator to the cel crate on
//! random expressions and random `meta` documents.
//!
//! This module owns the subset and its evaluation. It never validates (`check` has
//! bounded the tree before lowering) and never decides the label translation.

mod json;

use std::cmp::Ordering;

use ::cel::IdedExpr;
use ::cel::common::ast::{CallExpr, ComprehensionExpr, Expr as Ast, LiteralValue, SelectExpr, operators};
use regex::Regex;

pub(super) use self::json::plain_object;
use self::json::{Item, Num};
use super::CelConn;
use super::check::MAX_COMPREHENSION_NESTING;

/// Most distinct `meta.k` keys noted while `meta`'s text is checked; further keys are
/// looked up by a pass of their own.
const NOTED_KEYS: usize = 8;

/// An expression lowered to the native subset.
#[derive(Debug)]
pub(super) struct Native {
    root: Node,
    /// The keys of `meta.k` selections ([`Node::MetaKey`] slots), found in the same
    /// pass that checks `meta`'s text.
    meta_keys: Box<[Box<str>]>,
}

impl Native {
    /// The native form of `root`, or None when any of it is outside the subset.
    pub(super) fn lower(root: &IdedExpr) -> Option<Native> {
        let mut lowering = Lowering { scope: Vec::new(), meta_keys: Vec::new() };
        let root = lowering.node(root)?;
        Some(Native { root, meta_keys: lowering.meta_keys.into() })
    }

    /// Some(true) only when the expression evaluates to boolean true (as the cel crate
    /// would), Some(false) for any other value or an error, None when this connection's
    /// answer is not computed in place (see the module header): the cel crate decides.
    pub(super) fn matches(&self, conn: &CelConn<'_>) -> Option<bool> {
        let mut cx = Cx {
            conn,
            iters: [V::Null; MAX_COMPREHENSION_NESTING],
            meta: None,
            meta_keys: &self.meta_keys,
            found: [None; NOTED_KEYS],
        };
        match eval(&self.root, &mut cx) {
            Ok(V::Bool(b)) => Some(b),
            Ok(_) | Err(Failed::Error) => Some(false),
            Err(Failed::Unsure) => None,
        }
    }
}

/// A runtime value. `labels` and `channels` are never values here; `meta`'s lists and
/// maps are, as their JSON text.
#[derive(Clone, Copy, Debug)]
enum V<'a> {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(&'a str),
    Null,
    /// A JSON object in `meta` (a CEL map with string keys).
    Map(&'a str),
    /// A JSON array in `meta` (a CEL list).
    List(&'a str),
}

/// Why evaluation stopped short of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failed {
    /// A CEL runtime error (which one does not matter: an error is no match).
    Error,
    /// The answer is not computed in place; the cel crate must decide.
    Unsure,
}

impl From<json::Unsure> for Failed {
    fn from(_: json::Unsure) -> Failed {
        Failed::Unsure
    }
}

#[derive(Debug)]
enum Lit {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(Box<str>),
    Null,
}

#[derive(Clone, Copy, Debug)]
enum Field {
    User,
    Client,
    AppName,
    AppVersion,
    Transport,
    Protocol,
    ConnectedAt,
}

/// The connection's collections: a map of strings and a list of strings.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Container {
    Labels,
    Channels,
}

#[derive(Clone, Copy, Debug)]
enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Clone, Copy, Debug)]
enum Rel {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// What a comprehension iterates over.
#[derive(Debug)]
enum Range {
    Container(Container),
    /// A value: a list or a map of `meta` (anything else is an error).
    Value(Box<Node>),
}

#[derive(Debug)]
enum Node {
    Lit(Lit),
    Field(Field),
    /// The variable `meta`.
    Meta,
    /// `meta.k` (or `has(meta.k)` when `has`), its value noted in slot `slot` while
    /// `meta` is checked.
    MetaKey {
        slot: usize,
        key: Box<str>,
        has: bool,
    },
    /// The variable of the enclosing comprehension at this depth.
    Iter(usize),
    /// `labels.k` / `labels["k"]`.
    Label(Box<str>),
    /// `labels[e]`.
    LabelAt(Box<Node>),
    /// `has(labels.k)`.
    Has(Box<str>),
    /// `e.k` on a value (a map of `meta`).
    Select(Box<Node>, Box<str>),
    /// `has(e.k)` on a value.
    HasField(Box<Node>, Box<str>),
    /// `e[i]` on a value.
    Index(Box<[Node; 2]>),
    Not(Box<Node>),
    Neg(Box<Node>),
    /// `int(e)`.
    ToInt(Box<Node>),
    /// `double(e)`.
    ToDouble(Box<Node>),
    Arith(Op, Box<[Node; 2]>),
    And(Box<[Node; 2]>),
    Or(Box<[Node; 2]>),
    Cond(Box<[Node; 3]>),
    Eq(Box<[Node; 2]>),
    Ne(Box<[Node; 2]>),
    Rel(Rel, Box<[Node; 2]>),
    /// `x in [e…]`.
    InList(Box<Node>, Box<[Node]>),
    /// `x in labels`, `x in channels`.
    In(Box<Node>, Container),
    /// `x in e` for a value `e` (a list or a map of `meta`).
    InValue(Box<[Node; 2]>),
    /// `target.f(arg)`.
    Str(StrFn, Box<[Node; 2]>),
    Matches(Box<Node>, Regex),
    /// `size()` of a string, or of a list or map of `meta`.
    Size(Box<Node>),
    /// `size()` of `labels` or `channels`.
    SizeOf(Container),
    /// `range.all(v, body)` (`all: true`) or `range.exists(v, body)`.
    Loop {
        all: bool,
        range: Range,
        slot: usize,
        body: Box<Node>,
    },
}

// ---------------------------------------------------------------- lowering

/// Lowers the cel tree; its recursion follows the tree `check` has bounded.
struct Lowering {
    /// The enclosing comprehensions' variables, outermost first (index = slot).
    scope: Vec<String>,
    /// The distinct keys of `meta.k` selections, at most [`NOTED_KEYS`].
    meta_keys: Vec<Box<str>>,
}

impl Lowering {
    fn node(&mut self, e: &IdedExpr) -> Option<Node> {
        match &e.expr {
            Ast::Literal(l) => lit(l).map(Node::Lit),
            Ast::Ident(name) => self.ident(name),
            Ast::Select(s) => self.select(s),
            Ast::Call(c) => self.call(c),
            Ast::Comprehension(c) => self.comprehension(c),
            Ast::Unspecified | Ast::List(_) | Ast::Map(_) | Ast::Struct(_) => None,
        }
    }

    fn pair(&mut self, a: &IdedExpr, b: &IdedExpr) -> Option<Box<[Node; 2]>> {
        Some(Box::new([self.node(a)?, self.node(b)?]))
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.scope.iter().rposition(|s| s == name)
    }

    fn ident(&self, name: &str) -> Option<Node> {
        if let Some(slot) = self.slot(name) {
            return Some(Node::Iter(slot));
        }
        let field = match name {
            "user" => Field::User,
            "client" => Field::Client,
            "app_name" => Field::AppName,
            "app_version" => Field::AppVersion,
            "transport" => Field::Transport,
            "protocol" => Field::Protocol,
            "connected_at" => Field::ConnectedAt,
            "meta" => return Some(Node::Meta),
            _ => return None,
        };
        Some(Node::Field(field))
    }

    /// `labels` or `channels`, when the name is not shadowed by a comprehension variable.
    fn container(&self, e: &IdedExpr) -> Option<Container> {
        match &e.expr {
            Ast::Ident(name) if self.slot(name).is_none() => match name.as_str() {
                "labels" => Some(Container::Labels),
                "channels" => Some(Container::Channels),
                _ => None,
            },
            _ => None,
        }
    }

    /// `labels.k` and `has(labels.k)`, or the same on a value (`meta.k`); a selection
    /// on `channels` is left to the cel crate.
    fn select(&mut self, s: &SelectExpr) -> Option<Node> {
        let key: Box<str> = s.field.as_str().into();
        match self.container(&s.operand) {
            Some(Container::Labels) => Some(if s.test { Node::Has(key) } else { Node::Label(key) }),
            Some(Container::Channels) => None,
            None => {
                let is_meta = matches!(&s.operand.expr, Ast::Ident(n) if n == "meta" && self.slot(n).is_none());
                if let Some(slot) = is_meta.then(|| self.meta_slot(&key)).flatten() {
                    return Some(Node::MetaKey { slot, key, has: s.test });
                }
                let operand = Box::new(self.node(&s.operand)?);
                Some(if s.test { Node::HasField(operand, key) } else { Node::Select(operand, key) })
            }
        }
    }

    /// The slot noting `meta.key`, shared by every selection of the same key; None when
    /// all slots are taken.
    fn meta_slot(&mut self, key: &str) -> Option<usize> {
        if let Some(slot) = self.meta_keys.iter().position(|k| **k == *key) {
            return Some(slot);
        }
        (self.meta_keys.len() < NOTED_KEYS).then(|| {
            self.meta_keys.push(key.into());
            self.meta_keys.len() - 1
        })
    }

    fn call(&mut self, c: &CallExpr) -> Option<Node> {
        if let Some(target) = &c.target {
            return self.method(&c.func_name, target, &c.args);
        }
        let arith = |op| move |ab| Node::Arith(op, ab);
        let node = match (c.func_name.as_str(), c.args.as_slice()) {
            (operators::LOGICAL_NOT, [a]) => Node::Not(Box::new(self.node(a)?)),
            (operators::NEGATE, [a]) => Node::Neg(Box::new(self.node(a)?)),
            (operators::LOGICAL_AND, [a, b]) => Node::And(self.pair(a, b)?),
            (operators::LOGICAL_OR, [a, b]) => Node::Or(self.pair(a, b)?),
            (operators::CONDITIONAL, [a, b, c]) => Node::Cond(Box::new([self.node(a)?, self.node(b)?, self.node(c)?])),
            (operators::EQUALS, [a, b]) => Node::Eq(self.pair(a, b)?),
            (operators::NOT_EQUALS, [a, b]) => Node::Ne(self.pair(a, b)?),
            (operators::LESS, [a, b]) => Node::Rel(Rel::Lt, self.pair(a, b)?),
            (operators::LESS_EQUALS, [a, b]) => Node::Rel(Rel::Le, self.pair(a, b)?),
            (operators::GREATER, [a, b]) => Node::Rel(Rel::Gt, self.pair(a, b)?),
            (operators::GREATER_EQUALS, [a, b]) => Node::Rel(Rel::Ge, self.pair(a, b)?),
            (operators::ADD, [a, b]) => self.pair(a, b).map(arith(Op::Add))?,
            (operators::SUBSTRACT, [a, b]) => self.pair(a, b).map(arith(Op::Sub))?,
            (operators::MULTIPLY, [a, b]) => self.pair(a, b).map(arith(Op::Mul))?,
            (operators::DIVIDE, [a, b]) => self.pair(a, b).map(arith(Op::Div))?,
            (operators::MODULO, [a, b]) => self.pair(a, b).map(arith(Op::Rem))?,
            (operators::IN, [a, b]) => self.membership(a, b)?,
            (operators::INDEX, [m, k]) => match self.container(m) {
                Some(Container::Labels) => match &k.expr {
                    Ast::Literal(LiteralValue::String(s)) => Node::Label(s.inner().into()),
                    _ => Node::LabelAt(Box::new(self.node(k)?)),
                },
                Some(Container::Channels) => return None,
                None => Node::Index(self.pair(m, k)?),
            },
            ("size", [a]) => self.size(a)?,
            ("int", [a]) => Node::ToInt(Box::new(self.node(a)?)),
            ("double", [a]) => Node::ToDouble(Box::new(self.node(a)?)),
            ("matches", [s, p]) => Node::Matches(Box::new(self.node(s)?), pattern(p)?),
            _ => return None,
        };
        Some(node)
    }

    fn method(&mut self, func: &str, target: &IdedExpr, args: &[IdedExpr]) -> Option<Node> {
        let f = match (func, args) {
            ("size", []) => return self.size(target),
            ("matches", [p]) => return Some(Node::Matches(Box::new(self.node(target)?), pattern(p)?)),
            ("startsWith", [_]) => StrFn::StartsWith,
            ("endsWith", [_]) => StrFn::EndsWith,
            ("contains", [_]) => StrFn::Contains,
            _ => return None,
        };
        Some(Node::Str(f, self.pair(target, &args[0])?))
    }

    fn size(&mut self, a: &IdedExpr) -> Option<Node> {
        match self.container(a) {
            Some(c) => Some(Node::SizeOf(c)),
            None => Some(Node::Size(Box::new(self.node(a)?))),
        }
    }

    fn membership(&mut self, x: &IdedExpr, range: &IdedExpr) -> Option<Node> {
        if let Some(c) = self.container(range) {
            return Some(Node::In(Box::new(self.node(x)?), c));
        }
        let Ast::List(list) = &range.expr else { return Some(Node::InValue(self.pair(x, range)?)) };
        if !list.optional_indices.is_empty() {
            return None;
        }
        let items = list.elements.iter().map(|e| self.node(e)).collect::<Option<Box<[Node]>>>()?;
        Some(Node::InList(Box::new(self.node(x)?), items))
    }

    /// `all` and `exists` as the parser expands them, over `labels`, `channels` or a
    /// value: accumulator `@result` starting at true (`all`, step `@result && body`,
    /// loop while `@not_strictly_false(@result)`) or false (`exists`, step `@result ||
    /// body`, loop while `@not_strictly_false(!@result)`), result `@result`.
    fn comprehension(&mut self, c: &ComprehensionExpr) -> Option<Node> {
        let slot = self.scope.len();
        if c.iter_var2.is_some() || slot >= MAX_COMPREHENSION_NESTING {
            return None;
        }
        let accu = c.accu_var.as_str();
        let is_accu = |e: &IdedExpr| matches!(&e.expr, Ast::Ident(n) if n == accu);
        let Ast::Literal(LiteralValue::Boolean(init)) = &c.accu_init.expr else { return None };
        let all = *init.inner();
        let (step_op, cond_arg) = if all {
            (operators::LOGICAL_AND, is_accu(only_arg(&c.loop_cond, operators::NOT_STRICTLY_FALSE)?))
        } else {
            let negated = only_arg(&c.loop_cond, operators::NOT_STRICTLY_FALSE)?;
            (operators::LOGICAL_OR, is_accu(only_arg(negated, operators::LOGICAL_NOT)?))
        };
        let Ast::Call(step) = &c.loop_step.expr else { return None };
        let [first, body] = step.args.as_slice() else { return None };
        if !cond_arg || !is_accu(&c.result) || step.target.is_some() || step.func_name != step_op || !is_accu(first) {
            return None;
        }
        let range = match self.container(&c.iter_range) {
            Some(c) => Range::Container(c),
            None => Range::Value(Box::new(self.node(&c.iter_range)?)),
        };
        self.scope.push(c.iter_var.clone());
        let body = self.node(body);
        self.scope.pop();
        Some(Node::Loop { all, range, slot, body: Box::new(body?) })
    }
}

/// The only argument of a target-less call of `func`.
fn only_arg<'e>(e: &'e IdedExpr, func: &str) -> Option<&'e IdedExpr> {
    match &e.expr {
        Ast::Call(c) if c.target.is_none() && c.func_name == func => match c.args.as_slice() {
            [a] => Some(a),
            _ => None,
        },
        _ => None,
    }
}

fn lit(l: &LiteralValue) -> Option<Lit> {
    Some(match l {
        LiteralValue::Boolean(b) => Lit::Bool(*b.inner()),
        LiteralValue::Int(i) => Lit::Int(*i.inner()),
        LiteralValue::UInt(u) => Lit::UInt(*u.inner()),
        LiteralValue::Double(d) => Lit::Double(*d.inner()),
        LiteralValue::String(s) => Lit::Str(s.inner().into()),
        LiteralValue::Null => Lit::Null,
        LiteralValue::Bytes(_) => return None,
    })
}

/// A `matches` pattern: a string literal, compiled the way the cel crate compiles it.
fn pattern(p: &IdedExpr) -> Option<Regex> {
    match &p.expr {
        Ast::Literal(LiteralValue::String(s)) => Regex::new(s.inner()).ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------- evaluation

/// One evaluation's state: the connection, the comprehension variables and `meta`
/// once read.
struct Cx<'a> {
    conn: &'a CelConn<'a>,
    iters: [V<'a>; MAX_COMPREHENSION_NESTING],
    /// `meta` and whether its object has a key with an escape sequence, once checked.
    meta: Option<Result<(V<'a>, bool), Failed>>,
    meta_keys: &'a [Box<str>],
    /// The values of `meta_keys` in `meta`'s object, noted while checking it.
    found: [Option<Item<'a>>; NOTED_KEYS],
}

impl<'a> Cx<'a> {
    fn field(&self, f: Field) -> V<'a> {
        let c = self.conn;
        V::Str(match f {
            Field::User => c.user,
            Field::Client => c.client,
            Field::AppName => c.app_name,
            Field::AppVersion => c.app_version,
            Field::Transport => c.transport,
            Field::Protocol => c.protocol,
            Field::ConnectedAt => return V::Int(c.connected_at),
        })
    }

    /// `meta`: its JSON text checked once per evaluation (`{}` when serde_json would
    /// refuse it, as on the cel path), unless it was checked when stored.
    fn meta(&mut self) -> Result<(V<'a>, bool), Failed> {
        if let Some(meta) = self.meta {
            return meta;
        }
        let read = match self.conn.meta_json {
            // checked when stored: find the selected keys only
            Some(text) if self.conn.meta_form.plain() => {
                json::note_keys(text, self.meta_keys, &mut self.found).map(|()| (Item::Object(text), false))
            }
            text => json::root(text, self.meta_keys, &mut self.found),
        };
        let checked = read.map_err(Failed::from).and_then(|(item, escaped)| Ok((value(item)?, escaped)));
        *self.meta.insert(checked)
    }

    /// `meta.k` / `has(meta.k)` from the noted slot; on a `meta` that is not a map, the
    /// same as any other selection.
    fn meta_key(&mut self, slot: usize, key: &str, has: bool) -> Res<'a> {
        match self.meta()? {
            (V::Map(_), true) => Err(Failed::Unsure),
            (V::Map(_), false) if has => Ok(V::Bool(self.found[slot].is_some())),
            (V::Map(_), false) => value(self.found[slot].ok_or(Failed::Error)?),
            (other, _) if has => has_field(other, key),
            (other, _) => select(other, key),
        }
    }

    /// The label's value; labels are sorted by key, keys unique.
    fn label(&self, key: &str) -> Option<&'a str> {
        let labels = self.conn.labels;
        labels.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*labels[i].1)
    }

    fn size_of(&self, c: Container) -> i64 {
        let n = match c {
            Container::Labels => self.conn.labels.len(),
            Container::Channels => self.conn.channels.len(),
        };
        n as i64
    }
}

type Res<'a> = Result<V<'a>, Failed>;

/// A value read from `meta`'s text as the cel path converts it: integers that fit
/// `i64` as ints, other numbers as doubles, objects as maps, arrays as lists.
fn value(item: Item<'_>) -> Res<'_> {
    Ok(match item {
        Item::Null => V::Null,
        Item::Bool(b) => V::Bool(b),
        Item::Num(token) => match json::number(token)? {
            Num::Int(i) => V::Int(i),
            Num::Double(d) => V::Double(d),
        },
        Item::Str(s) => V::Str(s),
        Item::Escaped => return Err(Failed::Unsure),
        Item::Object(o) => V::Map(o),
        Item::Array(a) => V::List(a),
    })
}

/// Recursion follows the lowered tree, as deep as the bounded cel tree.
fn eval<'a>(n: &'a Node, cx: &mut Cx<'a>) -> Res<'a> {
    Ok(match n {
        Node::Lit(l) => match l {
            Lit::Bool(b) => V::Bool(*b),
            Lit::Int(i) => V::Int(*i),
            Lit::UInt(u) => V::UInt(*u),
            Lit::Double(d) => V::Double(*d),
            Lit::Str(s) => V::Str(s),
            Lit::Null => V::Null,
        },
        Node::Field(f) => cx.field(*f),
        Node::Meta => return cx.meta().map(|(meta, _)| meta),
        Node::MetaKey { slot, key, has } => return cx.meta_key(*slot, key, *has),
        Node::Iter(slot) => cx.iters[*slot],
        Node::Label(k) => V::Str(cx.label(k).ok_or(Failed::Error)?),
        Node::LabelAt(k) => match eval(k, cx)? {
            V::Str(k) => V::Str(cx.label(k).ok_or(Failed::Error)?),
            V::Map(_) | V::List(_) => return Err(Failed::Unsure),
            _ => return Err(Failed::Error),
        },
        Node::Has(k) => V::Bool(cx.label(k).is_some()),
        Node::Select(e, k) => return select(eval(e, cx)?, k),
        Node::HasField(e, k) => return has_field(eval(e, cx)?, k),
        Node::Index(ab) => {
            let target = eval(&ab[0], cx)?;
            return index(target, eval(&ab[1], cx)?);
        }
        Node::Not(a) => V::Bool(!boolean(eval(a, cx)?)?),
        Node::Neg(a) => match eval(a, cx)? {
            V::Int(i) => V::Int(i.checked_neg().ok_or(Failed::Error)?),
            V::Double(d) => V::Double(-d),
            _ => return Err(Failed::Error),
        },
        Node::ToInt(a) => V::Int(match eval(a, cx)? {
            V::Int(i) => i,
            V::UInt(u) => i64::try_from(u).map_err(|_| Failed::Error)?,
            // the open range (i64::MIN, i64::MAX) as doubles; NaN and infinities fail
            V::Double(d) if d > i64::MIN as f64 && d < i64::MAX as f64 => d as i64,
            V::Str(s) => s.parse::<i64>().map_err(|_| Failed::Error)?,
            _ => return Err(Failed::Error),
        }),
        Node::ToDouble(a) => V::Double(match eval(a, cx)? {
            V::Double(d) => d,
            V::Int(i) => i as f64,
            V::UInt(u) => u as f64,
            V::Str(s) => s.parse::<f64>().map_err(|_| Failed::Error)?,
            _ => return Err(Failed::Error),
        }),
        Node::Arith(op, ab) => {
            let a = eval(&ab[0], cx)?;
            return arith(*op, a, eval(&ab[1], cx)?);
        }
        Node::And(ab) => return and(ab, cx),
        Node::Or(ab) => return or(ab, cx),
        Node::Cond(abc) => {
            let branch = if boolean(eval(&abc[0], cx)?)? { &abc[1] } else { &abc[2] };
            return eval(branch, cx);
        }
        Node::Eq(ab) => {
            let a = eval(&ab[0], cx)?;
            V::Bool(equals(a, eval(&ab[1], cx)?)?)
        }
        Node::Ne(ab) => {
            let a = eval(&ab[0], cx)?;
            V::Bool(!equals(a, eval(&ab[1], cx)?)?)
        }
        Node::Rel(rel, ab) => {
            let a = eval(&ab[0], cx)?;
            V::Bool(rel.holds(compare(a, eval(&ab[1], cx)?)?))
        }
        Node::InList(x, items) => {
            let x = eval(x, cx)?;
            // the cel crate builds the whole list first: an element's error wins
            let mut found = false;
            let mut unsure = false;
            for item in items.iter() {
                match equals(eval(item, cx)?, x) {
                    Ok(eq) => found |= eq,
                    Err(_) => unsure = true,
                }
            }
            return in_result(found, unsure);
        }
        Node::In(x, range) => {
            let x = eval(x, cx)?;
            V::Bool(contains(cx, *range, x)?)
        }
        Node::InValue(ab) => {
            let x = eval(&ab[0], cx)?;
            return in_value(x, eval(&ab[1], cx)?);
        }
        Node::Str(f, ab) => {
            let a = eval(&ab[0], cx)?;
            match (a, eval(&ab[1], cx)?) {
                (V::Str(s), V::Str(p)) => V::Bool(match f {
                    StrFn::StartsWith => s.starts_with(p),
                    StrFn::EndsWith => s.ends_with(p),
                    StrFn::Contains => s.contains(p),
                }),
                _ => return Err(Failed::Error),
            }
        }
        Node::Matches(s, re) => V::Bool(re.is_match(string(eval(s, cx)?)?)),
        Node::Size(s) => V::Int(match eval(s, cx)? {
            V::Str(s) => s.chars().count(),
            V::Map(m) => json::distinct_keys(m)?,
            V::List(l) => json::len(l)?,
            _ => return Err(Failed::Error),
        } as i64),
        Node::SizeOf(c) => V::Int(cx.size_of(*c)),
        Node::Loop { all, range, slot, body } => return comprehension(cx, *all, range, *slot, body),
    })
}

fn boolean(v: V<'_>) -> Result<bool, Failed> {
    match v {
        V::Bool(b) => Ok(b),
        _ => Err(Failed::Error),
    }
}

fn string(v: V<'_>) -> Result<&str, Failed> {
    match v {
        V::Str(s) => Ok(s),
        _ => Err(Failed::Error),
    }
}

/// `e.k`: a map's value for `k` (a missing key is an error); selecting on anything
/// else is an error.
fn select<'a>(target: V<'a>, key: &str) -> Res<'a> {
    match target {
        V::Map(m) => value(json::get(m, key)?.ok_or(Failed::Error)?),
        V::List(_) => Err(Failed::Unsure),
        _ => Err(Failed::Error),
    }
}

/// `has(e.k)`: whether a map has the key; on a list unsure, on anything else an error.
fn has_field<'a>(target: V<'a>, key: &str) -> Res<'a> {
    match target {
        V::Map(m) => Ok(V::Bool(json::get(m, key)?.is_some())),
        V::List(_) => Err(Failed::Unsure),
        _ => Err(Failed::Error),
    }
}

/// `e[i]`: a map by a string key, a list by an int or uint position (out of range is
/// an error); other index types are unsure, other targets an error.
fn index<'a>(target: V<'a>, i: V<'a>) -> Res<'a> {
    let position = |list: &'a str, i: Option<usize>| match i {
        Some(i) => value(json::at(list, i)?.ok_or(Failed::Error)?),
        None => Err(Failed::Error),
    };
    match (target, i) {
        (V::Map(m), V::Str(k)) => value(json::get(m, k)?.ok_or(Failed::Error)?),
        (V::List(l), V::Int(i)) => position(l, usize::try_from(i).ok()),
        (V::List(l), V::UInt(i)) => position(l, usize::try_from(i).ok()),
        (V::Map(_) | V::List(_), _) => Err(Failed::Unsure),
        _ => Err(Failed::Error),
    }
}

/// `x in e` for a value `e`: a key of a map, an element of a list.
fn in_value<'a>(x: V<'a>, range: V<'a>) -> Res<'a> {
    match (range, x) {
        (V::Map(m), V::Str(k)) => Ok(V::Bool(json::get(m, k)?.is_some())),
        (V::Map(_), _) => Err(Failed::Unsure),
        (V::List(l), x) => {
            let (mut found, mut unsure) = (false, false);
            json::for_each(Item::Array(l), |item| {
                match value(item).and_then(|item| equals(item, x)) {
                    Ok(eq) => found = eq,
                    Err(_) => unsure = true,
                }
                !found
            })?;
            in_result(found, unsure)
        }
        _ => Err(Failed::Error),
    }
}

/// A membership test's verdict: found, else unsure if any comparison was, else false.
fn in_result<'a>(found: bool, unsure: bool) -> Res<'a> {
    match (found, unsure) {
        (true, _) => Ok(V::Bool(true)),
        (false, true) => Err(Failed::Unsure),
        (false, false) => Ok(V::Bool(false)),
    }
}

/// Arithmetic as the cel crate's `Int`, `UInt` and `Double` do it: same types only,
/// checked for ints and uints, no `%` for doubles. Concatenation is left to it.
fn arith<'a>(op: Op, a: V<'a>, b: V<'a>) -> Res<'a> {
    // the same checked operations on i64 and u64 (division and remainder by zero fail)
    macro_rules! checked {
        ($a:expr, $b:expr) => {
            match op {
                Op::Add => $a.checked_add($b),
                Op::Sub => $a.checked_sub($b),
                Op::Mul => $a.checked_mul($b),
                Op::Div => $a.checked_div($b),
                Op::Rem => $a.checked_rem($b),
            }
            .ok_or(Failed::Error)
        };
    }
    match (a, b) {
        (V::Int(a), V::Int(b)) => checked!(a, b).map(V::Int),
        (V::UInt(a), V::UInt(b)) => checked!(a, b).map(V::UInt),
        (V::Double(a), V::Double(b)) => Ok(V::Double(match op {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
            Op::Rem => return Err(Failed::Error),
        })),
        // string and list concatenation would allocate
        (V::Str(_), V::Str(_)) | (V::List(_), V::List(_)) if op == Op::Add => Err(Failed::Unsure),
        _ => Err(Failed::Error),
    }
}

/// `a && b`: false if either side is false, else unsure if either side is, else an
/// error if either side is one (or not a bool), else true. `b` is skipped when `a`
/// is false.
fn and<'a>(ab: &'a [Node; 2], cx: &mut Cx<'a>) -> Res<'a> {
    let left = eval(&ab[0], cx);
    if matches!(left, Ok(V::Bool(false))) {
        return Ok(V::Bool(false));
    }
    logical(left, eval(&ab[1], cx), false)
}

/// `a || b`: the mirror image of [`and`].
fn or<'a>(ab: &'a [Node; 2], cx: &mut Cx<'a>) -> Res<'a> {
    let left = eval(&ab[0], cx);
    if matches!(left, Ok(V::Bool(true))) {
        return Ok(V::Bool(true));
    }
    logical(left, eval(&ab[1], cx), true)
}

/// The verdict of `&&` (`decisive` false) or `||` (true) once the left side did not
/// decide alone.
fn logical<'a>(left: Res<'a>, right: Res<'a>, decisive: bool) -> Res<'a> {
    match (left, right) {
        (_, Ok(V::Bool(r))) if r == decisive => Ok(V::Bool(decisive)),
        (Ok(V::Bool(_)), Ok(V::Bool(r))) => Ok(V::Bool(r)),
        (Err(Failed::Unsure), _) | (_, Err(Failed::Unsure)) => Err(Failed::Unsure),
        _ => Err(Failed::Error),
    }
}

/// `x in labels` / `x in channels`.
fn contains(cx: &Cx<'_>, range: Container, x: V<'_>) -> Result<bool, Failed> {
    match (range, x) {
        (_, V::Map(_) | V::List(_)) => Err(Failed::Unsure),
        (Container::Channels, V::Str(s)) => Ok(cx.conn.channels.iter().any(|c| c == s)),
        (Container::Channels, _) => Ok(false),
        (Container::Labels, V::Str(k)) => Ok(cx.label(k).is_some()),
        // A number or a bool is a possible map key, absent from a map of strings.
        (Container::Labels, V::Int(_) | V::UInt(_) | V::Double(_) | V::Bool(_)) => Ok(false),
        (Container::Labels, V::Null) => Err(Failed::Error),
    }
}

/// `all`/`exists`: the deciding element wins (false for `all`, true for `exists`),
/// else unsure if any element was, else an error if any element erred or was not a
/// bool, else the neutral result.
fn comprehension<'a>(cx: &mut Cx<'a>, all: bool, range: &'a Range, slot: usize, body: &'a Node) -> Res<'a> {
    let decisive = !all;
    let (mut failed, mut unsure) = (false, false);
    let mut step = |cx: &mut Cx<'a>, item: Res<'a>| {
        let verdict = item.and_then(|item| {
            cx.iters[slot] = item;
            eval(body, cx)
        });
        match verdict {
            Ok(V::Bool(b)) => b == decisive,
            Err(Failed::Unsure) => {
                unsure = true;
                false
            }
            _ => {
                failed = true;
                false
            }
        }
    };
    let conn = cx.conn;
    let decided = match range {
        Range::Container(Container::Labels) => conn.labels.iter().any(|(k, _)| step(cx, Ok(V::Str(k)))),
        Range::Container(Container::Channels) => conn.channels.iter().any(|c| step(cx, Ok(V::Str(c)))),
        Range::Value(e) => {
            let mut decided = false;
            match eval(e, cx)? {
                V::List(l) => json::for_each(Item::Array(l), |item| {
                    decided = step(cx, value(item));
                    !decided
                })?,
                // a map iterates its keys; a repeated key decides as its first visit did
                V::Map(m) => json::for_each(Item::Object(m), |key| {
                    decided = step(cx, value(key));
                    !decided
                })?,
                _ => return Err(Failed::Error),
            }
            decided
        }
    };
    match (decided, unsure, failed) {
        (true, _, _) => Ok(V::Bool(decisive)),
        (false, true, _) => Err(Failed::Unsure),
        (false, false, true) => Err(Failed::Error),
        (false, false, false) => Ok(V::Bool(all)),
    }
}

/// The cel crate's equality: same-typed values by value, numbers across types as
/// numbers, anything else unequal. Two lists or maps of `meta` are unsure (their
/// equality is structural); a list or map against a scalar is unequal.
fn equals(a: V<'_>, b: V<'_>) -> Result<bool, Failed> {
    Ok(match (a, b) {
        (V::Map(_) | V::List(_), V::Map(_) | V::List(_)) => return Err(Failed::Unsure),
        (V::Str(a), V::Str(b)) => a == b,
        (V::Bool(a), V::Bool(b)) => a == b,
        (V::Null, V::Null) => true,
        _ => numeric(a, b) == Some(Ordering::Equal),
    })
}

/// The cel crate's ordering: strings, bools, numbers; anything else is an error.
fn compare(a: V<'_>, b: V<'_>) -> Result<Ordering, Failed> {
    match (a, b) {
        (V::Str(a), V::Str(b)) => Ok(a.cmp(b)),
        (V::Bool(a), V::Bool(b)) => Ok(a.cmp(&b)),
        _ => numeric(a, b).ok_or(Failed::Error),
    }
}

/// Numbers across int, uint and double as the cel crate compares them: int–uint
/// exactly, against a double through `as f64`; None for NaN or a non-number.
fn numeric(a: V<'_>, b: V<'_>) -> Option<Ordering> {
    match (a, b) {
        (V::Int(a), V::Int(b)) => Some(a.cmp(&b)),
        (V::UInt(a), V::UInt(b)) => Some(a.cmp(&b)),
        (V::Int(a), V::UInt(b)) => Some(u64::try_from(a).map_or(Ordering::Less, |a| a.cmp(&b))),
        (V::UInt(a), V::Int(b)) => Some(i64::try_from(a).map_or(Ordering::Greater, |a| a.cmp(&b))),
        (V::Int(a), V::Double(b)) => (a as f64).partial_cmp(&b),
        (V::UInt(a), V::Double(b)) => (a as f64).partial_cmp(&b),
        (V::Double(a), V::Double(b)) => a.partial_cmp(&b),
        (V::Double(a), V::Int(b)) => a.partial_cmp(&(b as f64)),
        (V::Double(a), V::UInt(b)) => a.partial_cmp(&(b as f64)),
        _ => None,
    }
}

impl Rel {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Rel::Lt => o == Ordering::Less,
            Rel::Le => o != Ordering::Greater,
            Rel::Gt => o == Ordering::Greater,
            Rel::Ge => o != Ordering::Less,
        }
    }
}
