//! The wire form of a filter: `FilterNode` exactly as clients and the server API send
//! it (Centrifugo's protobuf `FilterNode` in JSON), plus the closed vocabularies of its
//! `op` and `cmp` strings.
//!
//! This module owns deserialisation and nothing else. It must never validate or
//! evaluate a tree: a `FilterNode` may be arbitrarily malformed, and only
//! [`parse`](super::parse()) turns it into something that can run.

use serde::{Deserialize, Deserializer, Serialize};

/// One node of a filter tree as it travels on the wire.
///
/// Every field is optional (absent or `null` = empty) and unknown fields are ignored,
/// as Centrifugo does. `op` is `""` for a leaf comparison, or `"and"`, `"or"`, `"not"`.
///
/// The derived `Clone`, `Debug`, `PartialEq` and `Drop` recurse; JSON parsing bounds the
/// nesting (serde_json stops at 128 levels), trees built in code are the builder's concern.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct FilterNode {
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "String::is_empty")]
    pub cmp: String,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "String::is_empty")]
    pub val: String,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub vals: Vec<String>,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<FilterNode>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

impl FilterNode {
    /// A leaf comparing `key` with one value: `{"key","cmp","val"}`.
    pub fn leaf(key: &str, cmp: &str, val: &str) -> FilterNode {
        FilterNode { key: key.into(), cmp: cmp.into(), val: val.into(), ..FilterNode::default() }
    }

    /// A leaf testing `key` against a list: `{"key","cmp","vals"}` (`in`, `nin`).
    pub fn leaf_vals(key: &str, cmp: &str, vals: &[&str]) -> FilterNode {
        let vals = vals.iter().map(|v| (*v).to_owned()).collect();
        FilterNode { key: key.into(), cmp: cmp.into(), vals, ..FilterNode::default() }
    }

    /// `{"op":"and","nodes":[…]}`.
    pub fn and(nodes: Vec<FilterNode>) -> FilterNode {
        FilterNode { op: "and".into(), nodes, ..FilterNode::default() }
    }

    /// `{"op":"or","nodes":[…]}`.
    pub fn or(nodes: Vec<FilterNode>) -> FilterNode {
        FilterNode { op: "or".into(), nodes, ..FilterNode::default() }
    }

    /// `{"op":"not","nodes":[node]}`.
    pub fn negate(node: FilterNode) -> FilterNode {
        FilterNode { op: "not".into(), nodes: vec![node], ..FilterNode::default() }
    }
}

/// The `op` vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Leaf,
    And,
    Or,
    Not,
}

impl Op {
    /// The op named by a wire string (`""` is a leaf); `None` when unknown.
    pub fn from_wire(s: &str) -> Option<Op> {
        Some(match s {
            "" => Op::Leaf,
            "and" => Op::And,
            "or" => Op::Or,
            "not" => Op::Not,
            _ => return None,
        })
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Leaf => "",
            Op::And => "and",
            Op::Or => "or",
            Op::Not => "not",
        }
    }
}

/// The `cmp` vocabulary (short codes only; `exists`, `starts`… are not accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Neq,
    In,
    Nin,
    Ex,
    Nex,
    Sw,
    Ew,
    Ct,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// What a comparison expects besides its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A non-empty `val` and no `vals`.
    Val,
    /// A non-empty `vals` and no `val`.
    Vals,
    /// Neither `val` nor `vals`.
    Nothing,
}

impl Cmp {
    /// Every comparison, in the order the documentation lists them.
    pub const ALL: [Cmp; 13] = [
        Cmp::Eq,
        Cmp::Neq,
        Cmp::In,
        Cmp::Nin,
        Cmp::Ex,
        Cmp::Nex,
        Cmp::Sw,
        Cmp::Ew,
        Cmp::Ct,
        Cmp::Lt,
        Cmp::Lte,
        Cmp::Gt,
        Cmp::Gte,
    ];

    /// The comparison named by a wire string; `None` when unknown (including `""`).
    pub fn from_wire(s: &str) -> Option<Cmp> {
        Cmp::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => "eq",
            Cmp::Neq => "neq",
            Cmp::In => "in",
            Cmp::Nin => "nin",
            Cmp::Ex => "ex",
            Cmp::Nex => "nex",
            Cmp::Sw => "sw",
            Cmp::Ew => "ew",
            Cmp::Ct => "ct",
            Cmp::Lt => "lt",
            Cmp::Lte => "lte",
            Cmp::Gt => "gt",
            Cmp::Gte => "gte",
        }
    }

    /// Which of `val` / `vals` this comparison takes.
    pub fn operand(self) -> Operand {
        match self {
            Cmp::In | Cmp::Nin => Operand::Vals,
            Cmp::Ex | Cmp::Nex => Operand::Nothing,
            _ => Operand::Val,
        }
    }

    /// Whether a leaf with this comparison needs a non-empty `key` (all but `ex`/`nex`).
    pub fn needs_key(self) -> bool {
        self.operand() != Operand::Nothing
    }
}
