//! The test oracle: Centrifugo's validation and evaluation (reference §9.2–9.3) written
//! as plainly as possible, straight over the wire tree and a `HashMap`, sharing no code
//! with the parser, compiler, VM or decimal module.
//!
//! This module must never be used on untrusted input or in a hot path: it recurses
//! without a depth limit and allocates freely. Its only job is to be obviously right.

use std::collections::HashMap;

use super::ast::FilterNode;

/// Whether `labels` match `node` by Centrifugo's rules; an invalid tree matches nothing.
pub fn reference_matches(node: &FilterNode, labels: &HashMap<String, String>) -> bool {
    valid(node) && eval(node, labels)
}

/// Centrifugo's `Validate` (no size limits).
pub fn reference_valid(node: &FilterNode) -> bool {
    valid(node)
}

fn valid(n: &FilterNode) -> bool {
    match n.op.as_str() {
        "" => valid_leaf(n),
        "and" | "or" => !n.nodes.is_empty() && n.nodes.iter().all(valid),
        "not" => n.nodes.len() == 1 && valid(&n.nodes[0]),
        _ => false,
    }
}

fn valid_leaf(n: &FilterNode) -> bool {
    let (val, vals) = (!n.val.is_empty(), !n.vals.is_empty());
    let shape_ok = match n.cmp.as_str() {
        "eq" | "neq" | "sw" | "ew" | "ct" | "lt" | "lte" | "gt" | "gte" => val && !vals,
        "in" | "nin" => vals && !val,
        "ex" | "nex" => !val && !vals,
        _ => return false,
    };
    shape_ok && (!n.key.is_empty() || n.cmp == "ex" || n.cmp == "nex")
}

fn eval(n: &FilterNode, labels: &HashMap<String, String>) -> bool {
    match n.op.as_str() {
        "and" => n.nodes.iter().all(|c| eval(c, labels)),
        "or" => n.nodes.iter().any(|c| eval(c, labels)),
        "not" => !eval(&n.nodes[0], labels),
        _ => eval_leaf(n, labels),
    }
}

fn eval_leaf(n: &FilterNode, labels: &HashMap<String, String>) -> bool {
    let found = labels.get(&n.key);
    let v = found.cloned().unwrap_or_default();
    let present = found.is_some();
    match n.cmp.as_str() {
        "eq" => present && v == n.val,
        "neq" => !present || v != n.val,
        "in" => n.vals.contains(&v),
        "nin" => !n.vals.contains(&v),
        "ex" => present,
        "nex" => !present,
        "sw" => present && v.starts_with(&n.val),
        "ew" => present && v.ends_with(&n.val),
        "ct" => present && v.contains(&n.val),
        cmp => present && numeric(&v, cmp, &n.val),
    }
}

fn numeric(v: &str, cmp: &str, val: &str) -> bool {
    let (Some(a), Some(b)) = (Naive::parse(v), Naive::parse(val)) else { return false };
    let ord = a.key().cmp(&b.key());
    match cmp {
        "lt" => ord.is_lt(),
        "lte" => ord.is_le(),
        "gt" => ord.is_gt(),
        _ => ord.is_ge(),
    }
}

/// A number as sign plus digits padded to a common shape: integer part right-aligned to
/// 200 digits, fraction left-aligned to 19, so equal numbers have equal strings.
struct Naive {
    negative: bool,
    digits: String,
}

impl Naive {
    fn parse(s: &str) -> Option<Naive> {
        if s.is_empty() || s.len() > 200 {
            return None;
        }
        let (negative, body) = if s.len() > 41 && s.starts_with("-+") {
            (true, &s[2..])
        } else if let Some(rest) = s.strip_prefix('-') {
            (true, rest)
        } else {
            (false, s.strip_prefix('+').unwrap_or(s))
        };
        let parts: Vec<&str> = body.split('.').collect();
        let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
        let ok = match parts.as_slice() {
            [int] => digits(int),
            [int, frac] => digits(int) && digits(frac) && frac.len() <= 19,
            _ => false,
        };
        if !ok {
            return None;
        }
        let frac = parts.get(1).copied().unwrap_or("");
        let digits = format!("{:0>200}{:0<19}", parts[0], frac);
        let zero = digits.chars().all(|c| c == '0');
        Some(Naive { negative: negative && !zero, digits })
    }

    /// A sort key: negatives before positives, and within negatives, larger digits first.
    fn key(&self) -> (bool, String) {
        if !self.negative {
            return (true, self.digits.clone());
        }
        let flipped = self.digits.chars().map(|c| char::from(b'9' - (c as u8 - b'0'))).collect();
        (false, flipped)
    }
}
