//! The validated, typed form of a filter: an [`Expr`] tree whose tests are closed enums,
//! whose `in` sets are sorted and deduplicated, whose numeric literals are parsed, and
//! whose constant parts are already folded away.
//!
//! This module owns the IR types and their simplifying constructors ([`Expr::and`],
//! [`Expr::or`], [`Expr::negate`], [`Expr::leaf`]); every constructor preserves Centrifugo's
//! meaning exactly. It must never look at wire strings (that is `parse`) nor at label
//! values (that is the VM).

use std::cmp::Ordering;

use super::decimal::Decimal;

/// A boolean filter expression over one label map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// All children hold (at least two after folding).
    And(Vec<Expr>),
    /// Some child holds (at least two after folding).
    Or(Vec<Expr>),
    /// The child does not hold.
    Not(Box<Expr>),
    /// One test of the value under `key`.
    Leaf { key: String, test: Test },
    /// Known without looking at any label.
    Const(bool),
}

/// What a leaf checks about the value `v` under its key (absent keys noted per test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    /// Present and `v == s`.
    Eq(String),
    /// Absent or `v != s`.
    Neq(String),
    /// `v` (`""` when absent) is in the set.
    In(ValueSet),
    /// `v` (`""` when absent) is not in the set.
    Nin(ValueSet),
    /// Present.
    Ex,
    /// Absent.
    Nex,
    /// Present and `v` starts with `s` (bytes, case-sensitive).
    StartsWith(String),
    /// Present and `v` ends with `s`.
    EndsWith(String),
    /// Present and `v` contains `s`.
    Contains(String),
    /// Present, `v` parses as a decimal, and `v <op> d`.
    Cmp(NumOp, Decimal),
}

/// A numeric comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl NumOp {
    /// Whether `value.cmp(constant)` satisfies this comparison.
    #[inline]
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            NumOp::Lt => ord == Ordering::Less,
            NumOp::Lte => ord != Ordering::Greater,
            NumOp::Gt => ord == Ordering::Greater,
            NumOp::Gte => ord != Ordering::Less,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NumOp::Lt => "lt",
            NumOp::Lte => "lte",
            NumOp::Gt => "gt",
            NumOp::Gte => "gte",
        }
    }
}

/// The values of an `in`/`nin` test: sorted by bytes, without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueSet(Vec<String>);

impl ValueSet {
    /// Sorts and deduplicates `values`.
    pub fn new(mut values: Vec<String>) -> ValueSet {
        values.sort_unstable();
        values.dedup();
        ValueSet(values)
    }

    /// The values, sorted.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether `v` is a member.
    pub fn contains(&self, v: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(v)).is_ok()
    }

    fn is_one_non_empty(&self) -> bool {
        matches!(self.0.as_slice(), [v] if !v.is_empty())
    }

    fn into_first(self) -> String {
        self.0.into_iter().next().unwrap_or_default()
    }
}

impl Test {
    /// The exact negation of this test, when it is itself a test (`eq`↔`neq`, `in`↔`nin`,
    /// `ex`↔`nex`); `sw ew ct` and the numeric tests have none.
    pub fn negated(self) -> Result<Test, Test> {
        Ok(match self {
            Test::Eq(s) => Test::Neq(s),
            Test::Neq(s) => Test::Eq(s),
            Test::In(set) => Test::Nin(set),
            Test::Nin(set) => Test::In(set),
            Test::Ex => Test::Nex,
            Test::Nex => Test::Ex,
            other => return Err(other),
        })
    }
}

impl Test {
    /// What this test says of a key the labels do not have (see each variant).
    pub fn on_absent(&self) -> bool {
        match self {
            Test::Neq(_) | Test::Nex => true,
            Test::In(set) => set.contains(""),
            Test::Nin(set) => !set.contains(""),
            Test::Eq(_) | Test::Ex | Test::StartsWith(_) | Test::EndsWith(_) | Test::Contains(_) | Test::Cmp(..) => {
                false
            }
        }
    }
}

impl Expr {
    /// This expression with every leaf on a key in the attributes' namespace
    /// ([`super::attribute::is_reserved`]) replaced by its value on an absent key, and
    /// folded: what a filter over labels means, since no label has such a key. Its
    /// recursion follows the tree, which `parse` has bounded.
    pub fn without_reserved_keys(self) -> Expr {
        match self {
            Expr::Leaf { key, test } if super::attribute::is_reserved(&key) => Expr::Const(test.on_absent()),
            Expr::And(children) => Expr::and(children.into_iter().map(Expr::without_reserved_keys).collect()),
            Expr::Or(children) => Expr::or(children.into_iter().map(Expr::without_reserved_keys).collect()),
            Expr::Not(child) => Expr::negate(child.without_reserved_keys()),
            other => other,
        }
    }
}

impl Expr {
    /// A leaf, simplified: an empty set is a constant, a one-value set without `""` is an
    /// equality, and a prefix/suffix/substring test with `""` is an existence test.
    pub fn leaf(key: impl Into<String>, test: Test) -> Expr {
        let test = match test {
            Test::In(set) if set.0.is_empty() => return Expr::Const(false),
            Test::Nin(set) if set.0.is_empty() => return Expr::Const(true),
            Test::In(set) if set.is_one_non_empty() => Test::Eq(set.into_first()),
            Test::Nin(set) if set.is_one_non_empty() => Test::Neq(set.into_first()),
            Test::StartsWith(s) | Test::EndsWith(s) | Test::Contains(s) if s.is_empty() => Test::Ex,
            other => other,
        };
        Expr::Leaf { key: key.into(), test }
    }

    /// All of `children`: nested `and`s flattened, `true`s dropped, any `false` wins,
    /// none is `true`, one is itself.
    pub fn and(children: Vec<Expr>) -> Expr {
        Expr::junction(children, true)
    }

    /// Any of `children`: nested `or`s flattened, `false`s dropped, any `true` wins,
    /// none is `false`, one is itself.
    pub fn or(children: Vec<Expr>) -> Expr {
        Expr::junction(children, false)
    }

    /// `and` when `unit` is true (its identity), `or` when false.
    fn junction(children: Vec<Expr>, unit: bool) -> Expr {
        let mut flat = Vec::with_capacity(children.len());
        for child in children {
            match child {
                Expr::Const(b) if b == unit => {}
                Expr::Const(b) => return Expr::Const(b),
                Expr::And(grand) if unit => flat.extend(grand),
                Expr::Or(grand) if !unit => flat.extend(grand),
                other => flat.push(other),
            }
        }
        match flat.len() {
            0 => Expr::Const(unit),
            1 => flat.pop().unwrap_or(Expr::Const(unit)),
            _ if unit => Expr::And(flat),
            _ => Expr::Or(flat),
        }
    }

    /// The negation of `child`: constants flip, double negations cancel, and a leaf
    /// with an exact negated test becomes that test.
    pub fn negate(child: Expr) -> Expr {
        match child {
            Expr::Const(b) => Expr::Const(!b),
            Expr::Not(inner) => *inner,
            Expr::Leaf { key, test } => match test.negated() {
                Ok(test) => Expr::Leaf { key, test },
                Err(test) => Expr::Not(Box::new(Expr::Leaf { key, test })),
            },
            other => Expr::Not(Box::new(other)),
        }
    }
}
