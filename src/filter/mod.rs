//! The FilterNode language — Centrifugo's publication tags filter, reused by the
//! connections API as `label_filter` — compiled in stages, one type per stage:
//!
//! ```text
//! FilterNode (ast, wire JSON) --parse--> Expr (ir, validated, typed, folded)
//!     --compile--> Program (flat bytecode, key table, interned constants)
//!     --Program::matches--> bool (vm, no recursion, no allocation)
//! ```
//!
//! `reference` is a naive evaluator over the wire tree, kept as the oracle the VM is
//! tested against. Semantics are Centrifugo's (its `internal/filter` package):
//! `neq`/`nin`/`nex` match a missing key, `in` compares a missing key as `""`,
//! `lt…gte` compare exact decimals and are false when either side is not a number.
//!
//! This module knows nothing of tokio, HTTP, connections or the hub: label sources
//! plug in through [`LabelSource`], interners through [`Symbols`]. It only names the
//! [`attribute`] keys, under which a label source may also hold a connection's
//! transport and protocol so that translated CEL can test them like labels.

pub mod ast;
pub mod attribute;
pub mod cel;
pub mod compile;
pub mod decimal;
pub mod error;
pub mod ir;
pub mod limits;
pub mod parse;
pub mod program;
pub mod reference;
pub mod vm;

pub use ast::{Cmp, FilterNode, Op};
pub use compile::{Hold, NoSymbols, Symbols, compile, compile_expr};
pub use decimal::{Decimal, DecimalRef};
pub use error::{FilterError, FilterErrorKind};
pub use ir::{Expr, NumOp, Test, ValueSet};
pub use limits::Limits;
pub use parse::parse;
pub use program::{Instr, Program};
pub use reference::reference_matches;
pub use vm::{BlockSource, LabelSource, MapSource, Mask};
