//! Why a filter was rejected, and where: a [`FilterError`] carries a typed kind, the
//! JSON path of the offending field (rooted at the caller's field name, e.g.
//! `label_filter.nodes[1].vals`) and the few facts its message needs.
//!
//! This module owns the error type and its wording. It must never decide whether a
//! tree is valid, and never map errors to protocol codes (every kind is `107 bad
//! request` at the API and client-protocol layers).

use std::fmt;

/// What was wrong with a filter tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterErrorKind {
    /// `op` is not `""`, `and`, `or` or `not`.
    UnknownOp,
    /// A leaf without `cmp`.
    MissingCmp,
    /// A leaf whose `cmp` is not one of the thirteen short codes.
    UnknownCmp,
    /// A leaf other than `ex`/`nex` without `key`.
    MissingKey,
    /// `eq neq sw ew ct lt lte gt gte` without a non-empty `val`.
    MissingVal,
    /// `in nin ex nex` with a `val`.
    UnexpectedVal,
    /// `in nin` without a non-empty `vals`.
    MissingVals,
    /// A comparison other than `in nin` with `vals`.
    UnexpectedVals,
    /// `and`/`or` without nodes.
    EmptyNodes,
    /// `not` with other than exactly one node.
    NotArity,
    /// Nested deeper than [`Limits::max_depth`](super::Limits::max_depth).
    TooDeep,
    /// More nodes than [`Limits::max_nodes`](super::Limits::max_nodes).
    TooManyNodes,
    /// A `vals` list longer than [`Limits::max_values`](super::Limits::max_values).
    TooManyValues,
    /// A `val` or `vals` entry longer than [`Limits::max_value_len`](super::Limits::max_value_len).
    ValueTooLong,
    /// A `key` longer than [`Limits::max_key_len`](super::Limits::max_key_len).
    KeyTooLong,
    /// More distinct keys than a program can index (65,536).
    TooManyKeys,
}

impl FilterErrorKind {
    /// The variant's name, e.g. `"MissingVals"` (stable; used by table-driven tests).
    pub fn name(self) -> &'static str {
        match self {
            FilterErrorKind::UnknownOp => "UnknownOp",
            FilterErrorKind::MissingCmp => "MissingCmp",
            FilterErrorKind::UnknownCmp => "UnknownCmp",
            FilterErrorKind::MissingKey => "MissingKey",
            FilterErrorKind::MissingVal => "MissingVal",
            FilterErrorKind::UnexpectedVal => "UnexpectedVal",
            FilterErrorKind::MissingVals => "MissingVals",
            FilterErrorKind::UnexpectedVals => "UnexpectedVals",
            FilterErrorKind::EmptyNodes => "EmptyNodes",
            FilterErrorKind::NotArity => "NotArity",
            FilterErrorKind::TooDeep => "TooDeep",
            FilterErrorKind::TooManyNodes => "TooManyNodes",
            FilterErrorKind::TooManyValues => "TooManyValues",
            FilterErrorKind::ValueTooLong => "ValueTooLong",
            FilterErrorKind::KeyTooLong => "KeyTooLong",
            FilterErrorKind::TooManyKeys => "TooManyKeys",
        }
    }
}

/// A rejected filter: what was wrong ([`kind`](Self::kind)) and where ([`path`](Self::path)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub kind: FilterErrorKind,
    /// JSON path of the offending field or node, e.g. `tf.nodes[0].nodes[2].cmp`.
    pub path: String,
    /// The wire word the message is about: the unknown `op`/`cmp` as sent (cut to 64
    /// bytes), or the `op`/`cmp` whose rule was broken. Empty for the limit kinds.
    pub subject: String,
    /// The limit that was exceeded (limit kinds only; 0 otherwise).
    pub limit: usize,
}

/// Longest `subject` kept from client input.
const SUBJECT_MAX: usize = 64;

impl FilterError {
    /// An error about `subject` (an op or cmp) at `path`.
    pub fn new(kind: FilterErrorKind, path: String, subject: &str) -> FilterError {
        FilterError { kind, path, subject: truncate(subject, SUBJECT_MAX).to_owned(), limit: 0 }
    }

    /// A limit error at `path`.
    pub fn limit(kind: FilterErrorKind, path: String, limit: usize) -> FilterError {
        FilterError { kind, path, subject: String::new(), limit }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FilterErrorKind as K;
        let (p, s, n) = (&self.path, &self.subject, self.limit);
        match self.kind {
            K::UnknownOp => write!(f, "{p}: unknown op {s:?} (expected \"\", \"and\", \"or\" or \"not\")"),
            K::MissingCmp => write!(f, "{p}: a leaf needs a \"cmp\""),
            K::UnknownCmp => {
                write!(f, "{p}: unknown cmp {s:?} (expected eq, neq, in, nin, ex, nex, sw, ew, ct, lt, lte, gt or gte)")
            }
            K::MissingKey => write!(f, "{p}: {s:?} needs a non-empty \"key\""),
            K::MissingVal => write!(f, "{p}: {s:?} needs a non-empty \"val\""),
            K::UnexpectedVal => write!(f, "{p}: {s:?} must not have a \"val\""),
            K::MissingVals => write!(f, "{p}: {s:?} needs a non-empty \"vals\""),
            K::UnexpectedVals => write!(f, "{p}: {s:?} must not have \"vals\""),
            K::EmptyNodes => write!(f, "{p}: {s:?} needs at least one node"),
            K::NotArity => write!(f, "{p}: \"not\" needs exactly one node"),
            K::TooDeep => write!(f, "{p}: filter nested deeper than {n} levels"),
            K::TooManyNodes => write!(f, "{p}: filter has more than {n} nodes"),
            K::TooManyValues => write!(f, "{p}: more than {n} values"),
            K::ValueTooLong => write!(f, "{p}: value longer than {n} bytes"),
            K::KeyTooLong => write!(f, "{p}: key longer than {n} bytes"),
            K::TooManyKeys => write!(f, "{p}: filter uses more than {n} distinct keys"),
        }
    }
}

impl std::error::Error for FilterError {}
