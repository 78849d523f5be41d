//! CEL for the connections API's `expression` field (SPEC §9): validation under
//! [`CelLimits`], then a plan per request.
//!
//! ```text
//! src --check (length, lexical nesting)--> cel::parse --check (AST depth, nodes, cost)
//!     --translate--> CelPlan::Translated { user, channels, labels: IR }  (bytecode VM and indexes)
//!                 or CelPlan::Interpreted(CelProgram)            (everything else, per connection,
//!                        after a pre-filter of its translatable top-level conjuncts)
//!                        --native::lower--> CelPath::Native    (Rotor's evaluator on the borrowed
//!                                                               connection, no allocation)
//!                                        or CelPath::CelCrate  (anything outside its subset:
//!                                                               the cel crate's interpreter)
//! ```
//!
//! `check` owns the caps, `translate` the exact CEL → filter-IR translation of the label
//! subset, `native` an evaluator of the common subset that gives the cel crate's verdict
//! exactly (it declines what it does not replicate), `interp` the cel environment and
//! per-connection evaluation. This module owns the public types and glues the stages
//! together. Nothing here knows the hub: a
//! connection is seen through [`CelConn`].

mod check;
mod interp;
mod native;
mod translate;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::ir::Expr;

pub use interp::{CelPath, CelProgram};

/// Caps on untrusted expressions, checked before anything runs.
#[derive(Clone, Copy, Debug)]
pub struct CelLimits {
    /// Longest source, in bytes; checked before parsing.
    pub max_len: usize,
    /// Deepest nesting: of brackets and prefix operators in the source (checked before
    /// parsing, so a hostile nesting never reaches the parser), and of the parsed tree.
    pub max_depth: usize,
    /// Most nodes in the parsed tree (after macro expansion).
    pub max_nodes: usize,
    /// Highest estimated cost of one evaluation (see `check::cost`: nodes, `in` list
    /// lengths, macro bodies times their ranges), so nested macros over long lists are
    /// refused before they run.
    pub max_cost: u64,
}

impl Default for CelLimits {
    fn default() -> CelLimits {
        CelLimits { max_len: 4096, max_depth: 32, max_nodes: 512, max_cost: 20_000 }
    }
}

/// A compile/validation error; `message` is shown to the API user (error 107).
#[derive(Clone, Debug)]
pub struct CelError {
    pub kind: CelErrorKind,
    pub message: String,
}

/// What class of problem a [`CelError`] is (for metrics and callers that branch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CelErrorKind {
    /// Not CEL: the parser refused it.
    Syntax,
    /// Empty, longer than `max_len`, deeper than `max_depth` or with more than
    /// `max_nodes` nodes.
    TooLarge,
    /// Estimated cost per connection over `max_cost`, or macros nested too deep.
    TooExpensive,
    /// A name that is not one of the connection's fields (or a macro's variable).
    UndeclaredReference,
    /// A `matches()` pattern that is not a string literal or not a valid regex.
    BadPattern,
}

impl CelError {
    pub(crate) fn new(kind: CelErrorKind, message: impl Into<String>) -> CelError {
        CelError { kind, message: message.into() }
    }
}

impl fmt::Display for CelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CelError {}

/// What one connection exposes to an interpreted expression.
pub struct CelConn<'a> {
    pub user: &'a str,
    pub client: &'a str,
    pub app_name: &'a str,
    pub app_version: &'a str,
    pub transport: &'a str,
    pub protocol: &'a str,
    /// The token's `meta` claim as raw JSON text (any JSON; usually an object); None = `{}`.
    pub meta_json: Option<&'a str>,
    /// What is known of `meta_json` ([`MetaForm::of`] it, or [`MetaForm::UNCHECKED`]).
    pub meta_form: MetaForm,
    /// Labels sorted by key.
    pub labels: &'a [(std::sync::Arc<str>, std::sync::Arc<str>)],
    pub channels: &'a [String],
    /// Connection time, Unix milliseconds.
    pub connected_at: i64,
}

/// What is known of a connection's `meta` text before any expression reads it, found
/// once when the text is stored: evaluation then only finds the keys it selects
/// instead of checking the whole text every time. Made only by [`MetaForm::of`], so a
/// caller cannot vouch for text that was not checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaForm {
    /// The text is one JSON object, all of it as serde_json's `Value` parse accepts it
    /// and as the native reader follows it exactly, with no escape sequence in its own
    /// keys.
    plain: bool,
}

impl MetaForm {
    /// Nothing known: every evaluation checks the text.
    pub const UNCHECKED: MetaForm = MetaForm { plain: false };

    /// Checks `text` as each evaluation would otherwise do (one pass over it).
    pub fn of(text: &str) -> MetaForm {
        MetaForm { plain: native::plain_object(text) }
    }

    /// The text was found to be a plain object ([`MetaForm::of`]).
    pub fn plain(self) -> bool {
        self.plain
    }
}

/// What a translated expression selects by, or what an interpreted one's top-level
/// conjuncts in the translatable subset require (its pre-filter): all of them hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conjuncts {
    /// From `user == "x"`, or `user in [...]` terms that allow one user (the per-user
    /// index).
    pub user: Option<String>,
    /// From `user in [...]` terms that allow several users, sorted, each once (each
    /// one's connections from the per-user index); empty otherwise.
    pub users: Vec<String>,
    /// From `"c" in channels`, each once: the connection is subscribed to every one
    /// (the channel index, then the session).
    pub channels: Vec<String>,
    /// The IR of the rest (labels, transport, protocol). None = no condition, only
    /// with a user, users or a channel; without them a `true` is
    /// `Some(Expr::Const(true))`.
    pub labels: Option<Expr>,
}

/// A compiled expression, planned once per request.
pub enum CelPlan {
    /// The whole expression is translated ([`Conjuncts`]): `user` is Some when the
    /// expression has a top-level conjunct `user == "x"` (or `"x" == user`) that the
    /// caller serves from its per-user index, `users` the users its `user in [...]`
    /// conjuncts allow when there are several, `channels` lists its top-level
    /// `"c" in channels` conjuncts, and `labels` is the IR of the rest (None = no
    /// condition, only with a user or channel — an expression such as `true` gives
    /// `labels: Some(Expr::Const(true))`). Evaluate with the ordinary bytecode VM
    /// after [`compile_expr`](super::compile_expr).
    Translated { user: Option<String>, users: Vec<String>, channels: Vec<String>, labels: Option<Expr> },
    /// Anything else: evaluated per connection ([`CelProgram::path`]: the native
    /// evaluator, or the cel crate's interpreter) — on the connections its
    /// pre-filter keeps ([`CelProgram::prefilter`]: the top-level conjuncts in the label
    /// subset, run first like a translated plan), or on all.
    Interpreted(CelProgram),
}

impl fmt::Debug for CelPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CelPlan::Translated { user, users, channels, labels } => f
                .debug_struct("Translated")
                .field("user", user)
                .field("users", users)
                .field("channels", channels)
                .field("labels", labels)
                .finish(),
            CelPlan::Interpreted(p) => f.debug_tuple("Interpreted").field(p).finish(),
        }
    }
}

/// Validates `src` under `limits` and plans it: translated to the filter IR when the whole
/// expression is in the label subset, interpreted otherwise.
pub fn plan(src: &str, limits: &CelLimits) -> Result<CelPlan, CelError> {
    let program = compile(src, limits)?;
    // The translator only walks a tree `check` has bounded; a panic in it is a bug, and
    // the interpreter is always a correct fallback.
    let translated = catch_unwind(AssertUnwindSafe(|| translate::translate(program.expression()))).ok().flatten();
    Ok(match translated {
        Some(t) => CelPlan::Translated { user: t.user, users: t.users, channels: t.channels, labels: t.labels },
        None => {
            let pre = catch_unwind(AssertUnwindSafe(|| translate::prefilter(program.expression()))).ok().flatten();
            let mut p = CelProgram::new(program);
            if let Some(t) = pre {
                p.set_prefilter(t);
            }
            CelPlan::Interpreted(p)
        }
    })
}

/// Same validation as [`plan`], but always evaluated per connection (natively or by the
/// cel crate, as [`CelProgram::path`] says) on every connection, no translation and no
/// pre-filter (benches and differential tests force this).
pub fn plan_interpreted(src: &str, limits: &CelLimits) -> Result<CelProgram, CelError> {
    Ok(CelProgram::new(compile(src, limits)?))
}

/// Length and lexical nesting, the parse (panic-guarded), then the tree's caps.
fn compile(src: &str, limits: &CelLimits) -> Result<::cel::Program, CelError> {
    check::source(src, limits)?;
    let program = interp::parse(src)?;
    check::tree(program.expression(), limits)?;
    Ok(program)
}
