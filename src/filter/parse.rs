//! Wire → IR: validates a [`FilterNode`] tree by Centrifugo's rules (reference §9.2),
//! enforces Rotor's [`Limits`], and builds the folded [`Expr`].
//!
//! Checks at each node, in order: depth (before the node is looked at, so a tree
//! nested 100,000 deep stops at level `max_depth + 1`), node count, `op`; for a leaf
//! the `cmp`, its `val`/`vals` rule, its `key` rule (Centrifugo's order), then sizes;
//! for `and`/`or`/`not` the child count, then each child in order. The first failure
//! is returned with the JSON path of the field at fault.
//!
//! This module owns validation. It must never evaluate anything, and never recurse
//! deeper than the depth limit (itself capped by [`DEPTH_CAP`](super::limits::DEPTH_CAP)).

use std::fmt::Write as _;

use super::ast::{Cmp, FilterNode, Op, Operand};
use super::decimal::Decimal;
use super::error::{FilterError, FilterErrorKind as K};
use super::ir::{Expr, NumOp, Test, ValueSet};
use super::limits::Limits;

/// Validates `node` and returns its folded IR. `root` names the field the tree came in
/// (`"label_filter"`, `"tf"`…) and starts every error path.
pub fn parse(node: &FilterNode, root: &str, limits: &Limits) -> Result<Expr, FilterError> {
    let mut parser = Parser { root, limits, max_depth: limits.effective_depth(), seen: 0, path: Vec::new() };
    parser.node(node)
}

struct Parser<'a> {
    root: &'a str,
    limits: &'a Limits,
    max_depth: usize,
    /// Nodes visited so far.
    seen: usize,
    /// Child indices from the root down to the current node.
    path: Vec<usize>,
}

impl Parser<'_> {
    fn node(&mut self, n: &FilterNode) -> Result<Expr, FilterError> {
        if self.path.len() >= self.max_depth {
            return Err(FilterError::limit(K::TooDeep, self.at(""), self.max_depth));
        }
        self.seen += 1;
        if self.seen > self.limits.max_nodes {
            return Err(FilterError::limit(K::TooManyNodes, self.at(""), self.limits.max_nodes));
        }
        match Op::from_wire(&n.op) {
            Some(Op::Leaf) => self.leaf(n),
            Some(Op::And) => Ok(Expr::and(self.children(n, Op::And)?)),
            Some(Op::Or) => Ok(Expr::or(self.children(n, Op::Or)?)),
            Some(Op::Not) => self.not(n),
            None => Err(FilterError::new(K::UnknownOp, self.at("op"), &n.op)),
        }
    }

    fn children(&mut self, n: &FilterNode, op: Op) -> Result<Vec<Expr>, FilterError> {
        if n.nodes.is_empty() {
            return Err(FilterError::new(K::EmptyNodes, self.at("nodes"), op.as_str()));
        }
        let mut out = Vec::with_capacity(n.nodes.len().min(self.limits.max_nodes));
        for (i, child) in n.nodes.iter().enumerate() {
            out.push(self.child(i, child)?);
        }
        Ok(out)
    }

    fn not(&mut self, n: &FilterNode) -> Result<Expr, FilterError> {
        match n.nodes.as_slice() {
            [only] => Ok(Expr::negate(self.child(0, only)?)),
            _ => Err(FilterError::new(K::NotArity, self.at("nodes"), "not")),
        }
    }

    fn child(&mut self, i: usize, child: &FilterNode) -> Result<Expr, FilterError> {
        self.path.push(i);
        let out = self.node(child);
        self.path.pop();
        out
    }

    fn leaf(&self, n: &FilterNode) -> Result<Expr, FilterError> {
        let cmp = match Cmp::from_wire(&n.cmp) {
            Some(cmp) => cmp,
            None if n.cmp.is_empty() => return Err(FilterError::new(K::MissingCmp, self.at("cmp"), "")),
            None => return Err(FilterError::new(K::UnknownCmp, self.at("cmp"), &n.cmp)),
        };
        self.operands(n, cmp)?;
        if cmp.needs_key() && n.key.is_empty() {
            return Err(FilterError::new(K::MissingKey, self.at("key"), cmp.as_str()));
        }
        self.sizes(n)?;
        Ok(build_leaf(n, cmp))
    }

    /// Centrifugo's `val`/`vals` rule for `cmp`.
    fn operands(&self, n: &FilterNode, cmp: Cmp) -> Result<(), FilterError> {
        let (has_val, has_vals) = (!n.val.is_empty(), !n.vals.is_empty());
        let kind = match cmp.operand() {
            Operand::Val if !has_val => K::MissingVal,
            Operand::Val if has_vals => K::UnexpectedVals,
            Operand::Vals if !has_vals => K::MissingVals,
            Operand::Vals if has_val => K::UnexpectedVal,
            Operand::Nothing if has_val => K::UnexpectedVal,
            Operand::Nothing if has_vals => K::UnexpectedVals,
            _ => return Ok(()),
        };
        let field = if matches!(kind, K::MissingVal | K::UnexpectedVal) { "val" } else { "vals" };
        Err(FilterError::new(kind, self.at(field), cmp.as_str()))
    }

    /// Rotor's size limits on one leaf.
    fn sizes(&self, n: &FilterNode) -> Result<(), FilterError> {
        let l = self.limits;
        if n.key.len() > l.max_key_len {
            return Err(FilterError::limit(K::KeyTooLong, self.at("key"), l.max_key_len));
        }
        if n.val.len() > l.max_value_len {
            return Err(FilterError::limit(K::ValueTooLong, self.at("val"), l.max_value_len));
        }
        if n.vals.len() > l.max_values {
            return Err(FilterError::limit(K::TooManyValues, self.at("vals"), l.max_values));
        }
        match n.vals.iter().position(|v| v.len() > l.max_value_len) {
            Some(i) => Err(FilterError::limit(K::ValueTooLong, self.at(&format!("vals[{i}]")), l.max_value_len)),
            None => Ok(()),
        }
    }

    /// The JSON path of the current node, or of its `field` when non-empty.
    fn at(&self, field: &str) -> String {
        let mut out = String::from(self.root);
        for i in &self.path {
            let _ = write!(out, "{}nodes[{i}]", if out.is_empty() { "" } else { "." });
        }
        if !field.is_empty() {
            out.push_str(if out.is_empty() { "" } else { "." });
            out.push_str(field);
        }
        out
    }
}

/// The IR of a leaf already known to be valid.
fn build_leaf(n: &FilterNode, cmp: Cmp) -> Expr {
    let val = || n.val.clone();
    let set = || ValueSet::new(n.vals.clone());
    let test = match cmp {
        Cmp::Eq => Test::Eq(val()),
        Cmp::Neq => Test::Neq(val()),
        Cmp::In => Test::In(set()),
        Cmp::Nin => Test::Nin(set()),
        Cmp::Ex => Test::Ex,
        Cmp::Nex => Test::Nex,
        Cmp::Sw => Test::StartsWith(val()),
        Cmp::Ew => Test::EndsWith(val()),
        Cmp::Ct => Test::Contains(val()),
        Cmp::Lt => return numeric(n, NumOp::Lt),
        Cmp::Lte => return numeric(n, NumOp::Lte),
        Cmp::Gt => return numeric(n, NumOp::Gt),
        Cmp::Gte => return numeric(n, NumOp::Gte),
    };
    Expr::leaf(n.key.as_str(), test)
}

/// A numeric leaf; an unparseable literal can never compare, so the leaf is `false`.
fn numeric(n: &FilterNode, op: NumOp) -> Expr {
    match Decimal::parse(&n.val) {
        Some(d) => Expr::leaf(n.key.as_str(), Test::Cmp(op, d)),
        None => Expr::Const(false),
    }
}
