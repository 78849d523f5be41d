//! The label subset of CEL, translated exactly to the filter IR.
//!
//! A CEL expression evaluates to true, false or an error (a missing map key is `No such
//! key`), and a connection matches only on true. Each sub-expression `e` therefore
//! becomes two predicates over the labels, `T(e)` ("e is true") and `F(e)` ("e is
//! false"); error is neither. The plan is `T(root)`. With `k` a key literal (`labels.k`
//! or `labels["k"]`), `v`/`p` string literals and `ex`/`nex`… the filter tests:
//!
//! | CEL                         | T                  | F                    |
//! |-----------------------------|--------------------|----------------------|
//! | `labels.k == v`             | `eq(k,v)`          | `ex(k) ∧ neq(k,v)`   |
//! | `labels.k != v`             | `ex(k) ∧ neq(k,v)` | `eq(k,v)`            |
//! | `labels.k in [v…]`          | `ex(k) ∧ in(k,S)`  | `ex(k) ∧ nin(k,S)`   |
//! | `has(labels.k)`, `"k" in labels` | `ex(k)`       | `nex(k)`             |
//! | `labels.k.startsWith(p)` (`endsWith`, `contains`) | `sw(k,p)` | `ex(k) ∧ ¬sw(k,p)` |
//! | `!a`                        | `F(a)`             | `T(a)`               |
//! | `a && b`                    | `T(a) ∧ T(b)`      | `F(a) ∨ F(b)`        |
//! | `a \|\| b`                  | `T(a) ∨ T(b)`      | `F(a) ∧ F(b)`        |
//! | `true` / `false`            | const              | const                |
//!
//! The `&&`/`||` rows rely on cel 0.15 absorbing errors commutatively, which its
//! interpreter does (`objects.rs`, `resolve_val`): `false && error`, `error && false`
//! are false, `true || error`, `error || true` are true, and any other mix with an error
//! is an error. (The `in` row needs `ex(k)`: the filter language's `in` compares a
//! missing key as `""`.)
//!
//! `transport` and `protocol` take the place of `labels.k` in every row but the
//! presence tests, under their [`attribute`] keys: a connection always has them, so
//! they are never an error, and the rows above still hold (`ex` is simply true).
//! Label keys in the attributes' namespace (a NUL byte first, which no label has)
//! are declined, so they never read an attribute.
//!
//! `user == "x"` (either side), `user in ["x", …]` and `"c" in channels` are taken only
//! as top-level conjuncts — the root or an operand of the root's chain of `&&` — where
//! `T` is a plain conjunction, so they can be served from the per-user index and the
//! channel index (and checked on the session). User terms that allow no user in common
//! make the label part `false`.
//! Any other form — other variables, functions, macros, numbers, comparisons, bytes,
//! non-literal operands — makes the whole expression interpreted.
//!
//! An expression outside the subset may still have top-level conjuncts inside it:
//! [`prefilter`] translates just those, so the bytecode narrows the connections before
//! the interpreter sees any (exact, as a conjunction is true only when every conjunct
//! is).
//!
//! This module owns the translation. It must never change an expression's meaning; when
//! in doubt it declines (returns None). Its recursion follows the CEL tree, which `check`
//! has bounded; the IR it builds is at most two levels deeper than that tree.

use ::cel::IdedExpr;
use ::cel::common::ast::{Expr as Ast, LiteralValue, operators};

use crate::filter::attribute;
use crate::filter::ir::{Expr, Test, ValueSet};

use super::Conjuncts as Translated;

/// The plan of `root`, or None when any part of it is outside the label subset.
pub(super) fn translate(root: &IdedExpr) -> Option<Translated> {
    conjuncts(root, false)
}

/// For an expression outside the label subset: the plan of the top-level conjuncts
/// that are inside it, or None when none is. A connection the whole expression
/// matches always satisfies it — `a && b` is true only when both `a` and `b` are (an
/// error is absorbed only by a false operand) — so it is an exact pre-filter: run it
/// first, on the bytecode, and interpret the whole expression only on what it keeps.
pub(super) fn prefilter(root: &IdedExpr) -> Option<Translated> {
    conjuncts(root, true)
}

/// The plan of the root's conjuncts; with `partial`, conjuncts outside the label
/// subset are left out (None when nothing is left), else they make it None.
fn conjuncts(root: &IdedExpr, partial: bool) -> Option<Translated> {
    let mut conjuncts = Vec::new();
    top_conjuncts(root, &mut conjuncts);
    // The users every user term allows (sorted, each once), and the first single one.
    let mut allowed: Option<Vec<String>> = None;
    let mut first: Option<String> = None;
    let mut channels: Vec<String> = Vec::new();
    let mut parts = Vec::with_capacity(conjuncts.len());
    for c in conjuncts {
        if let Some(mut set) = user_set(c) {
            set.sort_unstable();
            set.dedup();
            if let ([u], None) = (set.as_slice(), &first) {
                first = Some(u.clone());
            }
            allowed = Some(match allowed {
                None => set,
                Some(prev) => prev.into_iter().filter(|u| set.binary_search(u).is_ok()).collect(),
            });
            continue;
        }
        if let Some(ch) = channel_in(c) {
            if !channels.iter().any(|seen| seen == ch) {
                channels.push(ch.to_owned());
            }
            continue;
        }
        match truth(c) {
            Some((t, _)) => parts.push(t),
            None if partial => continue,
            None => return None,
        }
    }
    if partial && allowed.is_none() && channels.is_empty() && parts.is_empty() {
        return None;
    }
    // One user: the per-user index. Several: each one's. None (the terms contradict
    // each other): nothing matches, said as a `false` label part (with the first
    // single user, if any, as the route).
    let (user, users, conflict) = match allowed {
        None => (None, Vec::new(), false),
        Some(set) if set.is_empty() => (first, Vec::new(), true),
        Some(mut set) if set.len() == 1 => (set.pop(), Vec::new(), false),
        Some(set) => (None, set, false),
    };
    let labels = if conflict { Expr::Const(false) } else { Expr::and(parts) };
    // Without a user or channel, a constant `true` stays explicit: "match every
    // connection".
    let unrouted = user.is_none() && users.is_empty() && channels.is_empty();
    let labels = (unrouted || labels != Expr::Const(true)).then_some(labels);
    Some(Translated { user, users, channels, labels })
}

/// The operands of the root's chain of `&&` (the root itself when it is no `&&`).
fn top_conjuncts<'e>(e: &'e IdedExpr, out: &mut Vec<&'e IdedExpr>) {
    match call(e, operators::LOGICAL_AND) {
        Some([a, b]) => {
            top_conjuncts(a, out);
            top_conjuncts(b, out);
        }
        _ => out.push(e),
    }
}

/// `c` of `"c" in channels`: true when the connection is subscribed to `c`, false
/// otherwise, never an error.
fn channel_in(e: &IdedExpr) -> Option<&str> {
    let [a, b] = call(e, operators::IN)? else { return None };
    matches!(&b.expr, Ast::Ident(name) if name == "channels").then(|| string(a)).flatten()
}

/// The users `user == "x"`, `"x" == user` or `user in ["x", …]` allows (a list of
/// string literals only: another element could make `in` an error).
fn user_set(e: &IdedExpr) -> Option<Vec<String>> {
    if let Some(u) = user_eq(e) {
        return Some(vec![u.to_owned()]);
    }
    let [a, b] = call(e, operators::IN)? else { return None };
    if !matches!(&a.expr, Ast::Ident(name) if name == "user") {
        return None;
    }
    string_list(b)
}

/// `x` of `user == "x"` or `"x" == user`.
fn user_eq(e: &IdedExpr) -> Option<&str> {
    let [a, b] = call(e, operators::EQUALS)? else { return None };
    let is_user = |e: &IdedExpr| matches!(&e.expr, Ast::Ident(name) if name == "user");
    match (is_user(a), is_user(b)) {
        (true, false) => string(b),
        (false, true) => string(a),
        _ => None,
    }
}

/// `(T(e), F(e))`, or None when `e` is outside the label subset.
fn truth(e: &IdedExpr) -> Option<(Expr, Expr)> {
    if let Ast::Literal(LiteralValue::Boolean(b)) = &e.expr {
        return Some((Expr::Const(**b), Expr::Const(!**b)));
    }
    if let Ast::Select(s) = &e.expr {
        // has(labels.k)
        return (s.test && is_labels(&s.operand)).then(|| label(&s.field)).flatten().map(presence);
    }
    let Ast::Call(c) = &e.expr else { return None };
    if let Some(target) = &c.target {
        return string_method(&c.func_name, target, &c.args);
    }
    match (c.func_name.as_str(), c.args.as_slice()) {
        (operators::LOGICAL_NOT, [a]) => truth(a).map(|(t, f)| (f, t)),
        (operators::LOGICAL_AND, [a, b]) => {
            let ((ta, fa), (tb, fb)) = (truth(a)?, truth(b)?);
            Some((Expr::and(vec![ta, tb]), Expr::or(vec![fa, fb])))
        }
        (operators::LOGICAL_OR, [a, b]) => {
            let ((ta, fa), (tb, fb)) = (truth(a)?, truth(b)?);
            Some((Expr::or(vec![ta, tb]), Expr::and(vec![fa, fb])))
        }
        (operators::EQUALS, [a, b]) => {
            let (k, v) = label_and_string(a, b)?;
            Some((eq(k, v), Expr::and(vec![ex(k), Expr::leaf(k, Test::Neq(v.to_owned()))])))
        }
        (operators::NOT_EQUALS, [a, b]) => {
            let (k, v) = label_and_string(a, b)?;
            Some((Expr::and(vec![ex(k), Expr::leaf(k, Test::Neq(v.to_owned()))]), eq(k, v)))
        }
        (operators::IN, [a, b]) if is_labels(b) => string(a).and_then(label).map(presence),
        (operators::IN, [a, b]) => {
            let k = key_of(a)?;
            let set = ValueSet::new(string_list(b)?);
            Some((
                Expr::and(vec![ex(k), Expr::leaf(k, Test::In(set.clone()))]),
                Expr::and(vec![ex(k), Expr::leaf(k, Test::Nin(set))]),
            ))
        }
        _ => None,
    }
}

/// `labels.k.startsWith(p)`, `endsWith`, `contains` (or `transport.…`, `protocol.…`).
fn string_method(func: &str, target: &IdedExpr, args: &[IdedExpr]) -> Option<(Expr, Expr)> {
    let k = key_of(target)?;
    let [arg] = args else { return None };
    let p = string(arg)?.to_owned();
    let test = match func {
        "startsWith" => Test::StartsWith(p),
        "endsWith" => Test::EndsWith(p),
        "contains" => Test::Contains(p),
        _ => return None,
    };
    let t = Expr::leaf(k, test);
    let f = Expr::and(vec![ex(k), Expr::negate(t.clone())]);
    Some((t, f))
}

/// has(labels.k) / "k" in labels: never an error.
fn presence(k: &str) -> (Expr, Expr) {
    (ex(k), Expr::leaf(k, Test::Nex))
}

fn ex(k: &str) -> Expr {
    Expr::leaf(k, Test::Ex)
}

fn eq(k: &str, v: &str) -> Expr {
    Expr::leaf(k, Test::Eq(v.to_owned()))
}

/// The arguments of `e` when it is a target-less call of `func`.
fn call<'e>(e: &'e IdedExpr, func: &str) -> Option<&'e [IdedExpr]> {
    match &e.expr {
        Ast::Call(c) if c.target.is_none() && c.func_name == func => Some(&c.args),
        _ => None,
    }
}

/// The key and the string of `labels.k == "v"` or `"v" == labels.k` (or an attribute).
fn label_and_string<'e>(a: &'e IdedExpr, b: &'e IdedExpr) -> Option<(&'e str, &'e str)> {
    match (key_of(a), key_of(b)) {
        (Some(k), None) => Some((k, string(b)?)),
        (None, Some(k)) => Some((k, string(a)?)),
        _ => None,
    }
}

fn is_labels(e: &IdedExpr) -> bool {
    matches!(&e.expr, Ast::Ident(name) if name == "labels")
}

/// The key `e` reads: `k` of `labels.k` or `labels["k"]`, or the attribute key of
/// `transport` or `protocol`.
fn key_of(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Ast::Select(s) if !s.test && is_labels(&s.operand) => label(&s.field),
        Ast::Call(c) if c.target.is_none() && c.func_name == operators::INDEX => match c.args.as_slice() {
            [m, k] if is_labels(m) => string(k).and_then(label),
            _ => None,
        },
        Ast::Ident(name) => attribute::of_variable(name),
        _ => None,
    }
}

/// A label key, unless it is in the attributes' namespace (see the module docs).
fn label(k: &str) -> Option<&str> {
    (!attribute::is_reserved(k)).then_some(k)
}

/// The value of a string literal.
fn string(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Ast::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

/// The values of a list literal of string literals (no optional entries).
fn string_list(e: &IdedExpr) -> Option<Vec<String>> {
    match &e.expr {
        Ast::List(l) if l.optional_indices.is_empty() => {
            l.elements.iter().map(|el| string(el).map(str::to_owned)).collect()
        }
        _ => None,
    }
}
