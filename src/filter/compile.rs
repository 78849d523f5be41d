//! IR → bytecode: lays an [`Expr`] out as a flat [`Program`] with short-circuit jumps,
//! collects the distinct keys into the key table, deduplicates constants, and resolves
//! constant strings to interned value ids through a [`Symbols`] table.
//!
//! `and` emits each child followed by `jf end` (the last child falls through), `or`
//! the same with `jt`, `not` its child then `not`. A final pass threads jumps that land
//! on jumps. Recursion here follows the IR's depth, which parsing caps.
//!
//! This module owns code generation. It must never evaluate, and never emit a backward
//! jump (the VM's termination argument rests on it).

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::FilterNode;
use super::error::{FilterError, FilterErrorKind};
use super::ir::{Expr, Test, ValueSet};
use super::limits::Limits;
use super::parse::parse;
use super::program::{ConstSet, Inner, Instr, Program};

/// Resolves constant strings to interned value ids at compile time. Ids are `> 0` and
/// `< u32::MAX`: `0` means "key absent" to a [`LabelSource`](super::LabelSource), and
/// `u32::MAX` stands for "no present value equals this constant".
///
/// A program resolves its constants once: a value first interned after compilation is
/// not recognised by that program's id comparisons (the hub accepts this for
/// connections that arrive during a survey). A table that frees and reuses ids hands
/// out a [`Hold`] from [`Symbols::hold`], taken before the first lookup and kept by the
/// program for its lifetime, so an id it resolved never comes to mean another string.
pub trait Symbols {
    /// The id of `s`, if the table knows it.
    fn value_id(&self, s: &str) -> Option<u32>;

    /// A guard keeping ids looked up from now on meaningful while it lives (None: ids
    /// are never reused).
    fn hold(&self) -> Option<Hold> {
        None
    }

    /// Whether ids from this table are meaningful. `false` makes a string-mode
    /// program, which compares strings even on interned sources.
    fn interned(&self) -> bool {
        true
    }
}

/// Whatever a symbol table needs kept alive while a program uses its ids.
pub struct Hold(pub Box<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

/// No symbol table: the program compares strings (publication tags, one-off checks).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSymbols;

impl Symbols for NoSymbols {
    fn value_id(&self, _s: &str) -> Option<u32> {
        None
    }

    fn interned(&self) -> bool {
        false
    }
}

/// Id used for a constant no present value can equal.
const UNKNOWN_ID: u32 = u32::MAX;

/// Validates, folds and compiles `node`; errors name their JSON path from `root`.
pub fn compile(
    node: &FilterNode,
    root: &str,
    limits: &Limits,
    symbols: &(impl Symbols + ?Sized),
) -> Result<Program, FilterError> {
    let expr = parse(node, root, limits)?;
    compile_expr(&expr, root, symbols)
}

/// Compiles an IR expression (e.g. one translated from CEL). Its depth must be bounded
/// by the caller, as [`parse`] bounds it.
pub fn compile_expr(expr: &Expr, root: &str, symbols: &(impl Symbols + ?Sized)) -> Result<Program, FilterError> {
    let mut cg = Codegen::new(symbols);
    cg.inner.hold = symbols.hold();
    cg.inner.interned = symbols.interned();
    cg.emit(expr).map_err(|limit| FilterError::limit(FilterErrorKind::TooManyKeys, root.to_owned(), limit))?;
    thread_jumps(&mut cg.inner.code);
    Ok(Program::new(cg.inner))
}

struct Codegen<'s, S: ?Sized> {
    symbols: &'s S,
    inner: Inner,
    key_index: HashMap<String, u16>,
    str_index: HashMap<String, u32>,
}

impl<'s, S: Symbols + ?Sized> Codegen<'s, S> {
    fn new(symbols: &'s S) -> Self {
        Codegen { symbols, inner: Inner::default(), key_index: HashMap::new(), str_index: HashMap::new() }
    }

    /// Emits `e`; the error is the key-table limit that was exceeded.
    fn emit(&mut self, e: &Expr) -> Result<(), usize> {
        match e {
            Expr::Const(b) => self.inner.code.push(Instr::Const(*b)),
            Expr::Leaf { key, test } => {
                let key = self.key(key)?;
                let ins = self.leaf(key, test);
                self.inner.code.push(ins);
            }
            Expr::Not(child) => {
                self.emit(child)?;
                self.inner.code.push(Instr::Not);
            }
            Expr::And(children) => self.junction(children, Instr::JumpIfFalse(0))?,
            Expr::Or(children) => self.junction(children, Instr::JumpIfTrue(0))?,
        }
        Ok(())
    }

    /// Each child but the last followed by `jump` (a placeholder), all patched to the end.
    fn junction(&mut self, children: &[Expr], jump: Instr) -> Result<(), usize> {
        let mut holes = Vec::with_capacity(children.len());
        for (i, child) in children.iter().enumerate() {
            self.emit(child)?;
            if i + 1 < children.len() {
                holes.push(self.inner.code.len());
                self.inner.code.push(jump);
            }
        }
        let end = self.inner.code.len() as u32;
        for hole in holes {
            self.inner.code[hole] = match jump {
                Instr::JumpIfTrue(_) => Instr::JumpIfTrue(end),
                _ => Instr::JumpIfFalse(end),
            };
        }
        Ok(())
    }

    fn leaf(&mut self, key: u16, test: &Test) -> Instr {
        match test {
            Test::Eq(s) => Instr::Eq { key, s: self.string(s) },
            Test::Neq(s) => Instr::Neq { key, s: self.string(s) },
            Test::In(set) => Instr::In { key, set: self.set(set) },
            Test::Nin(set) => Instr::Nin { key, set: self.set(set) },
            Test::Ex => Instr::Ex { key },
            Test::Nex => Instr::Nex { key },
            Test::StartsWith(s) => Instr::StartsWith { key, s: self.string(s) },
            Test::EndsWith(s) => Instr::EndsWith { key, s: self.string(s) },
            Test::Contains(s) => Instr::Contains { key, s: self.string(s) },
            Test::Cmp(op, d) => {
                self.inner.nums.push(d.clone());
                Instr::Num { key, op: *op, num: (self.inner.nums.len() - 1) as u32 }
            }
        }
    }

    fn key(&mut self, key: &str) -> Result<u16, usize> {
        if let Some(&k) = self.key_index.get(key) {
            return Ok(k);
        }
        let k = u16::try_from(self.inner.keys.len()).map_err(|_| usize::from(u16::MAX) + 1)?;
        self.inner.keys.push(Arc::from(key));
        self.key_index.insert(key.to_owned(), k);
        Ok(k)
    }

    fn string(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.str_index.get(s) {
            return i;
        }
        let i = self.inner.strs.len() as u32;
        self.inner.strs.push(s.into());
        self.inner.str_ids.push(self.id(s));
        self.str_index.insert(s.to_owned(), i);
        i
    }

    fn id(&self, s: &str) -> u32 {
        match self.symbols.value_id(s) {
            Some(id) if id != 0 => id,
            _ => UNKNOWN_ID,
        }
    }

    fn set(&mut self, set: &ValueSet) -> u32 {
        let strs: Box<[Box<str>]> = set.as_slice().iter().map(|s| s.as_str().into()).collect();
        let mut ids: Vec<u32> = Vec::with_capacity(strs.len() + 1);
        if set.contains("") {
            ids.push(0);
        }
        ids.extend(set.as_slice().iter().map(|s| self.id(s)).filter(|&id| id != UNKNOWN_ID));
        ids.sort_unstable();
        ids.dedup();
        self.inner.sets.push(ConstSet { strs, ids: ids.into() });
        (self.inner.sets.len() - 1) as u32
    }
}

/// Retargets every jump that lands on another jump: same polarity → that jump's target
/// (it would be taken too); opposite polarity → the instruction after it (it would not).
fn thread_jumps(code: &mut [Instr]) {
    for i in 0..code.len() {
        let (mut target, when) = match code[i] {
            Instr::JumpIfFalse(t) => (t, false),
            Instr::JumpIfTrue(t) => (t, true),
            _ => continue,
        };
        loop {
            target = match code.get(target as usize) {
                Some(Instr::JumpIfFalse(t)) if !when => *t,
                Some(Instr::JumpIfTrue(t)) if when => *t,
                Some(Instr::JumpIfFalse(_) | Instr::JumpIfTrue(_)) => target + 1,
                _ => break,
            };
        }
        code[i] = if when { Instr::JumpIfTrue(target) } else { Instr::JumpIfFalse(target) };
    }
}
