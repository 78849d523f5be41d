//! The caps on an untrusted CEL expression, in two passes.
//!
//! Before parsing ([`source`]): the length, then lexical nesting estimates — every
//! bracket and every prefix `!`/`-` counts one level (bounded by the depth limit), and,
//! more loosely bounded, every operator, member access or bracketed group in a row — so
//! deep input never reaches the parser's recursion (its tree visitor recurses once per
//! link of a left-associative chain such as `a.b.c…` or `1 + 1 + …`). After parsing ([`tree`]): the depth and node count of the expanded
//! tree, and the cost rules the cel crate does not enforce itself: comprehensions
//! (`all exists exists_one map filter`) nest at most [`MAX_COMPREHENSION_NESTING`] deep,
//! `matches` takes a string literal that compiles as a small regex (cel 0.15 compiles the
//! pattern at every evaluation), every identifier is a known variable, a
//! comprehension variable or a type name (a typo is a 107, not a silent mismatch), and
//! the estimated work per connection ([`cost`]) stays under [`CelLimits::max_cost`]:
//! each node costs one, `x in [list]` the list's length, and a comprehension's body
//! is counted once per element of its range — so nested comprehensions multiply.
//!
//! This module owns validation only. It never evaluates and never recurses deeper than
//! the effective depth limit (at most [`DEPTH_CAP`]).

use ::cel::IdedExpr;
use ::cel::common::ast::{EntryExpr, Expr as Ast, LiteralValue, operators};

use super::CelLimits;
use super::interp::VARIABLES;
use super::{CelError, CelErrorKind};
use crate::filter::limits::DEPTH_CAP;

/// Comprehensions inside comprehensions: each level multiplies the work per connection.
pub(super) const MAX_COMPREHENSION_NESTING: usize = 2;

/// Largest compiled regex a `matches` pattern may need (the regex crate's size limit).
const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// The most chained levels the parser is given: its tree visitor recurses once per level
/// of a left-associative chain, with large frames (a 2,000-long `a.a.a…` overflows a
/// 2 MiB stack in a debug build; 800 does not).
const MAX_CHAINED: usize = 256;

/// Elements assumed for a range whose size is not visible in the source (`labels`,
/// `channels`, `meta.x`, …): the default cap on labels per connection.
pub(super) const ASSUMED_RANGE: u64 = 32;

/// Identifiers that name types or function namespaces of the standard environment.
const TYPE_NAMES: &[&str] =
    &["bool", "bytes", "double", "int", "uint", "string", "list", "map", "null_type", "type", "dyn", "optional"];

/// The depth limit actually applied.
fn max_depth(limits: &CelLimits) -> usize {
    limits.max_depth.min(DEPTH_CAP)
}

/// The bound on the lexical estimate that counts chains: looser than the depth limit (a
/// chain of `a.b.c` terms over-counts), and never above [`MAX_CHAINED`].
fn max_chained(limits: &CelLimits) -> usize {
    (2 * max_depth(limits) + 16).min(MAX_CHAINED)
}

/// Length and lexical nesting of the source, before any parsing.
pub(super) fn source(src: &str, limits: &CelLimits) -> Result<(), CelError> {
    if src.len() > limits.max_len {
        return Err(CelError::new(
            CelErrorKind::TooLarge,
            format!("expression is longer than {} bytes", limits.max_len),
        ));
    }
    if src.trim().is_empty() {
        return Err(CelError::new(CelErrorKind::TooLarge, "expression is empty"));
    }
    let lexical = lexical_depth(src);
    if lexical.nesting > max_depth(limits) || lexical.chained > max_chained(limits) {
        return Err(too_deep(limits));
    }
    Ok(())
}

fn too_deep(limits: &CelLimits) -> CelError {
    CelError::new(CelErrorKind::TooLarge, format!("expression is nested deeper than {} levels", max_depth(limits)))
}

/// Upper estimates of how deep `src` nests, before parsing: `nesting` counts each open
/// bracket and each prefix `!`/`-` as a level; `chained` also counts every operator and
/// member access or bracketed group in a row (`a.b[c] + 1` is four more levels: left-associative chains
/// nest in the tree; `&&`, `||` and `,` start a new row, since the parser balances
/// logical chains). String literals are skipped; unbalanced input is left to the parser.
struct Lexical {
    nesting: usize,
    chained: usize,
}

fn lexical_depth(src: &str) -> Lexical {
    let b = src.as_bytes();
    // Per open bracket: its nesting level, its chained level, the enclosing row's chain.
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    let mut run = 0usize; // prefix operators since the last operand or bracket
    let mut chain = 0usize; // operators and member accesses in the current row
    let mut after_operand = false; // whether a `-` here is binary
    let mut out = Lexical { nesting: 0, chained: 0 };
    let mut i = 0;
    while i < b.len() {
        let (nest, total) = stack.last().map_or((0, 0), |&(n, t, _)| (n, t));
        let c = b[i];
        i += 1;
        match c {
            b'"' | b'\'' => {
                i = skip_string(b, i - 1);
                run = 0;
                after_operand = true;
            }
            b'(' | b'[' | b'{' => {
                let level = (nest + run + 1, total + run + chain + 1);
                out.nesting = out.nesting.max(level.0);
                out.chained = out.chained.max(level.1);
                stack.push((level.0, level.1, chain));
                (run, chain, after_operand) = (0, 0, false);
            }
            b')' | b']' | b'}' => {
                chain = stack.pop().map_or(0, |(_, _, outer)| outer + 1);
                run = 0;
                after_operand = true;
            }
            b'!' if b.get(i) != Some(&b'=') => {
                run += 1;
                out.nesting = out.nesting.max(nest + run);
            }
            b'-' if !after_operand => {
                run += 1;
                out.nesting = out.nesting.max(nest + run);
            }
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => continue,
            b'&' | b'|' | b',' => {
                (run, chain, after_operand) = (0, 0, false);
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                let start = i - 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] >= 0x80
                        || (c.is_ascii_digit() && b[i] == b'.'))
                {
                    i += 1;
                }
                if &b[start..i] == b"in" {
                    chain += 1;
                    after_operand = false;
                } else {
                    after_operand = true;
                }
                run = 0;
            }
            _ => {
                // `.`, binary operators (a two-byte one counted once), `?`; `:` only separates.
                if c != b':' {
                    chain += 1;
                }
                if matches!(c, b'=' | b'!' | b'<' | b'>') && b.get(i) == Some(&b'=') {
                    i += 1;
                }
                run = 0;
                after_operand = false;
            }
        }
        let total = stack.last().map_or(0, |&(_, t, _)| t);
        out.chained = out.chained.max(total + run + chain);
    }
    out
}

/// The index just past the string literal whose opening quote is at `start`.
fn skip_string(b: &[u8], start: usize) -> usize {
    let q = b[start];
    // A raw prefix (`r`, `R`, `rb`, `br`…) right before the quote turns escapes off.
    let raw = b[..start].iter().rev().take(2).take_while(|c| c.is_ascii_alphabetic()).any(|c| matches!(c, b'r' | b'R'));
    let triple = b.len() >= start + 3 && b[start + 1] == q && b[start + 2] == q;
    let mut i = start + if triple { 3 } else { 1 };
    while i < b.len() {
        if b[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if b[i] == q && (!triple || (b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q)) {
            return i + if triple { 3 } else { 1 };
        }
        if b[i] == b'\n' && !triple {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// The caps on the parsed, macro-expanded tree.
pub(super) fn tree(root: &IdedExpr, limits: &CelLimits) -> Result<(), CelError> {
    let mut walker = Walker { limits, max_depth: max_depth(limits), nodes: 0, scope: Vec::new(), comprehensions: 0 };
    walker.walk(root, 1)?;
    let estimate = cost(root);
    if estimate > limits.max_cost {
        return Err(CelError::new(
            CelErrorKind::TooExpensive,
            format!(
                "expression is too expensive: estimated cost {estimate} per connection, at most {} \
             (each node counts 1, `in` a list its length, a macro's body once per element of its range, \
             so nested macros multiply)",
                limits.max_cost
            ),
        ));
    }
    Ok(())
}

/// Estimated evaluation steps of `e` against one connection (saturating). Recursion
/// follows a tree [`tree`] has already bounded in depth.
pub(super) fn cost(e: &IdedExpr) -> u64 {
    let sum = |es: &mut dyn Iterator<Item = &IdedExpr>| es.fold(0u64, |acc, e| acc.saturating_add(cost(e)));
    let own = match &e.expr {
        Ast::Unspecified | Ast::Literal(_) | Ast::Ident(_) => 0,
        Ast::Select(s) => cost(&s.operand),
        Ast::Call(call) => {
            let scan = match (call.func_name.as_str(), call.args.last()) {
                (operators::IN, Some(IdedExpr { expr: Ast::List(l), .. })) => l.elements.len() as u64,
                _ => 0,
            };
            sum(&mut call.target.iter().map(|t| &**t).chain(&call.args)).saturating_add(scan)
        }
        Ast::List(list) => sum(&mut list.elements.iter()),
        Ast::Map(map) => sum(&mut map.entries.iter().flat_map(entry_exprs)),
        Ast::Struct(s) => sum(&mut s.entries.iter().flat_map(entry_exprs)),
        Ast::Comprehension(c) => {
            let body = cost(&c.loop_cond).saturating_add(cost(&c.loop_step));
            cost(&c.iter_range)
                .saturating_add(cost(&c.accu_init))
                .saturating_add(range_size(&c.iter_range).saturating_mul(body))
                .saturating_add(cost(&c.result))
        }
    };
    own.saturating_add(1)
}

/// The expressions of a map or struct entry.
fn entry_exprs(entry: &::cel::common::ast::IdedEntryExpr) -> Vec<&IdedExpr> {
    match &entry.expr {
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        EntryExpr::StructField(f) => vec![&f.value],
    }
}

/// Elements a comprehension over `e` iterates: a literal's own size, a macro's range
/// (`map`/`filter` never grow it), the sum for `a + b`, else [`ASSUMED_RANGE`].
fn range_size(e: &IdedExpr) -> u64 {
    match &e.expr {
        Ast::List(l) => l.elements.len() as u64,
        Ast::Map(m) => m.entries.len() as u64,
        Ast::Comprehension(c) => range_size(&c.iter_range),
        Ast::Call(call) if call.func_name == operators::ADD && call.target.is_none() => {
            call.args.iter().fold(0u64, |acc, a| acc.saturating_add(range_size(a)))
        }
        _ => ASSUMED_RANGE,
    }
}

struct Walker<'a> {
    limits: &'a CelLimits,
    max_depth: usize,
    nodes: usize,
    /// Variables bound by the enclosing comprehensions.
    scope: Vec<String>,
    /// Comprehensions enclosing the current node.
    comprehensions: usize,
}

impl Walker<'_> {
    fn walk(&mut self, e: &IdedExpr, depth: usize) -> Result<(), CelError> {
        if depth > self.max_depth {
            return Err(too_deep(self.limits));
        }
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(CelError::new(
                CelErrorKind::TooLarge,
                format!("expression has more than {} nodes", self.limits.max_nodes),
            ));
        }
        let d = depth + 1;
        match &e.expr {
            Ast::Unspecified => return Err(CelError::new(CelErrorKind::Syntax, "expression could not be parsed")),
            Ast::Literal(_) => {}
            Ast::Ident(name) => self.ident(name)?,
            Ast::Select(s) => self.walk(&s.operand, d)?,
            Ast::Call(call) => {
                if call.func_name == "matches" {
                    check_pattern(call.args.last())?;
                }
                if let Some(target) = &call.target {
                    self.walk(target, d)?;
                }
                for arg in &call.args {
                    self.walk(arg, d)?;
                }
            }
            Ast::List(list) => {
                for el in &list.elements {
                    self.walk(el, d)?;
                }
            }
            Ast::Map(map) => {
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(m) => {
                            self.walk(&m.key, d)?;
                            self.walk(&m.value, d)?;
                        }
                        EntryExpr::StructField(f) => self.walk(&f.value, d)?,
                    }
                }
            }
            Ast::Struct(s) => {
                for entry in &s.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(m) => {
                            self.walk(&m.key, d)?;
                            self.walk(&m.value, d)?;
                        }
                        EntryExpr::StructField(f) => self.walk(&f.value, d)?,
                    }
                }
            }
            Ast::Comprehension(c) => {
                self.walk(&c.iter_range, d)?;
                self.walk(&c.accu_init, d)?;
                self.comprehensions += 1;
                if self.comprehensions > MAX_COMPREHENSION_NESTING {
                    return Err(CelError::new(
                        CelErrorKind::TooExpensive,
                        format!(
                            "expression nests macros (all, exists, exists_one, map, filter) deeper than {MAX_COMPREHENSION_NESTING} levels"
                        ),
                    ));
                }
                let mark = self.scope.len();
                self.scope.push(c.iter_var.clone());
                self.scope.extend(c.iter_var2.iter().cloned());
                self.scope.push(c.accu_var.clone());
                let out = (|| {
                    self.walk(&c.loop_cond, d)?;
                    self.walk(&c.loop_step, d)?;
                    self.walk(&c.result, d)
                })();
                self.scope.truncate(mark);
                self.comprehensions -= 1;
                out?;
            }
        }
        Ok(())
    }

    /// An identifier must name something: a variable, a comprehension variable, a type.
    fn ident(&self, name: &str) -> Result<(), CelError> {
        let name = name.strip_prefix('.').unwrap_or(name);
        if VARIABLES.contains(&name) || TYPE_NAMES.contains(&name) || self.scope.iter().any(|s| s == name) {
            return Ok(());
        }
        Err(CelError::new(CelErrorKind::UndeclaredReference, format!("undeclared reference to '{name}'")))
    }
}

/// A `matches` pattern must be a string literal that compiles to a small regex.
fn check_pattern(pattern: Option<&IdedExpr>) -> Result<(), CelError> {
    let Some(IdedExpr { expr: Ast::Literal(LiteralValue::String(p)), .. }) = pattern else {
        return Err(CelError::new(CelErrorKind::BadPattern, "matches() takes a string literal pattern"));
    };
    regex::RegexBuilder::new(p.inner())
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(drop)
        .map_err(|e| CelError::new(CelErrorKind::BadPattern, format!("invalid matches() pattern: {e}")))
}

#[cfg(test)]
mod tests {
    use super::lexical_depth;

    fn depths(src: &str) -> (usize, usize) {
        let l = lexical_depth(src);
        (l.nesting, l.chained)
    }

    #[test]
    fn lexical_depth_counts_brackets_prefix_operators_and_chains() {
        assert_eq!(depths("labels.a == \"x\""), (0, 2));
        assert_eq!(depths("labels.a == \"x\" && labels.b != 'y' || has(labels.c)"), (1, 2));
        assert_eq!(depths("((a))"), (2, 2));
        assert_eq!(depths("!!!a"), (3, 3));
        assert_eq!(depths("a != b"), (0, 1));
        assert_eq!(depths("a - -b"), (1, 2));
        assert_eq!(depths("!(!a)"), (3, 3));
        assert_eq!(depths("\"((((\" + '[[' + r'\\' + \"\"\"((\"\"\""), (0, 3));
        assert_eq!(depths("[[1], [2]]"), (2, 2));
        assert_eq!(depths("a.b.c[d.e]"), (1, 4));
        assert_eq!(depths("a.b.c[d] + 1.5e3"), (1, 4));
        assert_eq!(depths("x in [\"a\", \"b\"]"), (1, 2));
        assert_eq!(depths("a ? b : c ? d : e"), (0, 2));
    }
}
