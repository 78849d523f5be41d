//! The compiled form of a filter: a flat list of [`Instr`]uctions plus the tables they
//! index (label keys, constant strings and their interned ids, `in` sets, numbers),
//! behind one `Arc` so a [`Program`] is cheap to clone and share across threads.
//!
//! Execution model (see [`vm`](super::vm)): one boolean accumulator; each test sets
//! it; `not` flips it; `jf`/`jt` jump forward when it is false/true; running off the
//! end returns it. There are no backward jumps, so a program always terminates.
//!
//! This module owns the data layout and its disassembly (`{:?}`). It must never
//! evaluate (that is `vm`) nor decide what code to emit (that is `compile`).

use std::fmt;
use std::sync::Arc;

use super::decimal::Decimal;
use super::ir::NumOp;

/// One instruction. `key` indexes [`Program::keys`]; `s`, `set`, `num` index the
/// program's constant tables; jump targets are instruction indices (the length of the
/// code means "return").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instr {
    /// acc = the constant.
    Const(bool),
    /// acc = key present and value == s.
    Eq { key: u16, s: u32 },
    /// acc = key absent or value != s.
    Neq { key: u16, s: u32 },
    /// acc = value (`""` when absent) ∈ set.
    In { key: u16, set: u32 },
    /// acc = value (`""` when absent) ∉ set.
    Nin { key: u16, set: u32 },
    /// acc = key present.
    Ex { key: u16 },
    /// acc = key absent.
    Nex { key: u16 },
    /// acc = key present and value starts with s.
    StartsWith { key: u16, s: u32 },
    /// acc = key present and value ends with s.
    EndsWith { key: u16, s: u32 },
    /// acc = key present and value contains s.
    Contains { key: u16, s: u32 },
    /// acc = key present, value is a decimal, and value `op` num.
    Num { key: u16, op: NumOp, num: u32 },
    /// acc = !acc.
    Not,
    /// if !acc, jump.
    JumpIfFalse(u32),
    /// if acc, jump.
    JumpIfTrue(u32),
}

/// An `in`/`nin` constant: the values sorted by bytes, and (interned programs) the
/// sorted ids that stand for them: `0` (absent key) when `""` is a member, the id of
/// `""` when known, and the ids of the other members the symbol table knows.
#[derive(Clone, Debug, Default)]
pub(super) struct ConstSet {
    pub(super) strs: Box<[Box<str>]>,
    pub(super) ids: Box<[u32]>,
}

/// Everything a program holds; shared behind [`Program`]'s `Arc`.
#[derive(Debug, Default)]
pub(super) struct Inner {
    pub(super) code: Vec<Instr>,
    pub(super) keys: Vec<Arc<str>>,
    /// Operands of `eq neq sw ew ct`.
    pub(super) strs: Vec<Box<str>>,
    /// Interned id of each `strs` entry (`u32::MAX` when unknown; unused in string mode).
    pub(super) str_ids: Vec<u32>,
    pub(super) sets: Vec<ConstSet>,
    pub(super) nums: Vec<Decimal>,
    /// Compiled against a real symbol table: `eq`/`in` may compare ids.
    pub(super) interned: bool,
    /// Keeps the symbol table from reusing the ids above while the program lives.
    pub(super) hold: Option<super::compile::Hold>,
}

/// A compiled filter. Clone is an `Arc` bump; `Send + Sync`; evaluation with
/// [`Program::matches`] never allocates and never recurses.
#[derive(Clone)]
pub struct Program(pub(super) Arc<Inner>);

impl Program {
    pub(super) fn new(inner: Inner) -> Program {
        Program(Arc::new(inner))
    }

    /// The distinct label keys the program reads; instructions name them by index.
    pub fn keys(&self) -> &[Arc<str>] {
        &self.0.keys
    }

    /// The instructions, for inspection and tests.
    pub fn instructions(&self) -> &[Instr] {
        &self.0.code
    }

    /// `Some(b)` when the filter folded to a constant and matches everything (`true`)
    /// or nothing (`false`) without reading labels.
    pub fn constant(&self) -> Option<bool> {
        match self.0.code.as_slice() {
            [Instr::Const(b)] => Some(*b),
            _ => None,
        }
    }

    /// Whether equality and set tests compare interned ids on interned sources.
    pub fn is_interned(&self) -> bool {
        self.0.interned
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &*self.0;
        let mode = if p.interned { "interned" } else { "strings" };
        writeln!(f, "Program ({} instructions, {} keys, {mode})", p.code.len(), p.keys.len())?;
        for (i, ins) in p.code.iter().enumerate() {
            write!(f, "  {i:04}  ")?;
            p.fmt_instr(f, *ins)?;
            writeln!(f)?;
        }
        write!(f, "  {:04}  end", p.code.len())
    }
}

impl Inner {
    fn fmt_instr(&self, f: &mut fmt::Formatter<'_>, ins: Instr) -> fmt::Result {
        match ins {
            Instr::Const(b) => write!(f, "const {b}"),
            Instr::Eq { key, s } => self.fmt_str(f, "eq", key, s),
            Instr::Neq { key, s } => self.fmt_str(f, "neq", key, s),
            Instr::In { key, set } => self.fmt_set(f, "in", key, set),
            Instr::Nin { key, set } => self.fmt_set(f, "nin", key, set),
            Instr::Ex { key } => write!(f, "ex    {:?}", self.keys[key as usize]),
            Instr::Nex { key } => write!(f, "nex   {:?}", self.keys[key as usize]),
            Instr::StartsWith { key, s } => self.fmt_str(f, "sw", key, s),
            Instr::EndsWith { key, s } => self.fmt_str(f, "ew", key, s),
            Instr::Contains { key, s } => self.fmt_str(f, "ct", key, s),
            Instr::Num { key, op, num } => {
                write!(f, "{:<5} {:?} {}", op.as_str(), self.keys[key as usize], self.nums[num as usize])
            }
            Instr::Not => write!(f, "not"),
            Instr::JumpIfFalse(t) => write!(f, "jf    -> {t:04}{}", self.end_mark(t)),
            Instr::JumpIfTrue(t) => write!(f, "jt    -> {t:04}{}", self.end_mark(t)),
        }
    }

    fn end_mark(&self, target: u32) -> &'static str {
        if target as usize == self.code.len() { " (end)" } else { "" }
    }

    fn fmt_str(&self, f: &mut fmt::Formatter<'_>, op: &str, key: u16, s: u32) -> fmt::Result {
        write!(f, "{op:<5} {:?} {:?}", self.keys[key as usize], self.strs[s as usize])?;
        match self.str_ids[s as usize] {
            _ if !self.interned || !matches!(op, "eq" | "neq") => Ok(()),
            u32::MAX => write!(f, " #unknown"),
            id => write!(f, " #{id}"),
        }
    }

    fn fmt_set(&self, f: &mut fmt::Formatter<'_>, op: &str, key: u16, set: u32) -> fmt::Result {
        let set = &self.sets[set as usize];
        write!(f, "{op:<5} {:?} {:?}", self.keys[key as usize], set.strs)?;
        if self.interned { write!(f, " #{:?}", set.ids) } else { Ok(()) }
    }
}
