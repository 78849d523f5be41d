//! The interpreter path: one shared `cel::Env` (the standard library, no extensions),
//! parsing under a panic guard, and evaluation of a compiled [`CelProgram`] against one
//! connection.
//!
//! Per evaluation nothing is rebuilt but the variables the program references: the six
//! strings and `connected_at` borrow the connection (no copy), `labels` and `channels`
//! become maps/lists of borrowed strings, and `meta` is parsed from its JSON text. They
//! reach the interpreter through a borrowed `VariableResolver` (cel 0.15's cheapest way),
//! with a `Context::with_env` on the evaluating thread's copy of the environment. The result is read as a
//! borrowed value, so a large non-boolean result is never copied out.
//!
//! When the whole expression lowers to the native subset (`native`), that evaluator runs
//! per connection instead and none of this is built, except for a connection whose
//! answer the native evaluator is unsure of (an escaped `meta` string, concatenation):
//! that one goes to the cel crate. The cel crate stays the path for everything else and
//! the oracle it is tested against ([`CelProgram::matches_cel_crate`]).
//!
//! This module owns the variable set and its CEL types. It never validates (that is
//! `check`) and never decides whether an expression is translated (that is `translate`).

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use ::cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString};
use ::cel::common::value::{CowVal, Val};
use ::cel::context::VariableResolver;
use ::cel::{Context, Env, Program, Value};

use super::native::Native;
use super::{CelConn, CelError, CelErrorKind};

/// The variables an expression may use, in bit order of [`CelProgram`]'s mask.
pub(super) const VARIABLES: [&str; 10] = [
    "user",
    "client",
    "app_name",
    "app_version",
    "transport",
    "protocol",
    "meta",
    "labels",
    "channels",
    "connected_at",
];

const META: u16 = 1 << 6;
const LABELS: u16 = 1 << 7;
const CHANNELS: u16 = 1 << 8;

/// The shared environment: the standard library, built once.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib()))
}

thread_local! {
    /// This thread's own copy of the same environment (the standard library), for
    /// evaluation: a context takes an `Arc` of it per connection, and with one shared
    /// `Arc` every scanning thread would bump the same reference count per connection.
    static THREAD_ENV: Arc<Env> = Arc::new(Env::stdlib());
}

/// Parses `src` with the shared environment's macros; a parser panic is an error.
pub(super) fn parse(src: &str) -> Result<Program, CelError> {
    let env = env();
    match catch_unwind(AssertUnwindSafe(|| env.compile(src))) {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(errors)) => Err(CelError::new(CelErrorKind::Syntax, errors.to_string())),
        Err(_) => Err(CelError::new(CelErrorKind::Syntax, "expression could not be parsed")),
    }
}

/// A compiled expression for the interpreter, shared by every evaluation of one request.
pub struct CelProgram {
    program: Program,
    /// Bit `i` set when the expression references `VARIABLES[i]`.
    vars: u16,
    /// The pre-filter: the top-level conjuncts in the translatable subset.
    prefilter: Option<super::Conjuncts>,
    /// The expression lowered to Rotor's own evaluator, when all of it is in its subset.
    native: Option<Native>,
}

/// Which evaluator a [`CelProgram`] runs per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CelPath {
    /// Rotor's own evaluator over the borrowed connection (`native`): no allocation.
    Native,
    /// The cel crate's interpreter, with the connection's variables built per evaluation.
    CelCrate,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<CelProgram>();
};

impl fmt::Debug for CelProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vars: Vec<&str> =
            VARIABLES.iter().enumerate().filter(|(i, _)| self.vars & (1 << i) != 0).map(|(_, v)| *v).collect();
        f.debug_struct("CelProgram")
            .field("variables", &vars)
            .field("prefilter", &self.prefilter)
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl CelProgram {
    pub(crate) fn new(program: Program) -> CelProgram {
        let refs = program.references();
        let vars =
            VARIABLES.iter().enumerate().filter(|(_, v)| refs.has_variable(v)).fold(0u16, |m, (i, _)| m | 1 << i);
        // Lowering walks a tree `check` has bounded; a panic in it is a bug, and the cel
        // crate is always a correct fallback.
        let native = catch_unwind(AssertUnwindSafe(|| Native::lower(program.expression()))).ok().flatten();
        CelProgram { program, vars, prefilter: None, native }
    }

    /// Which evaluator runs per connection: [`CelPath::Native`] when the whole
    /// expression is in the native subset, else the cel crate.
    pub fn path(&self) -> CelPath {
        if self.native.is_some() { CelPath::Native } else { CelPath::CelCrate }
    }

    pub(super) fn set_prefilter(&mut self, conjuncts: super::Conjuncts) {
        self.prefilter = Some(conjuncts);
    }

    /// What every connection the expression matches satisfies, from its top-level
    /// conjuncts in the translatable subset: a user (`user == "x"`), channels
    /// (`"c" in channels`) and/or a label predicate (IR, as in
    /// [`CelPlan::Translated`](super::CelPlan)). None when no conjunct translates.
    /// Callers select with it first and interpret only what it keeps.
    pub fn prefilter(&self) -> Option<&super::Conjuncts> {
        self.prefilter.as_ref()
    }

    /// Whether the expression references `variable` (one of the names above), e.g. to skip
    /// gathering a connection's channels when it does not.
    pub fn uses(&self, variable: &str) -> bool {
        VARIABLES.iter().position(|v| *v == variable).is_some_and(|i| self.vars & (1 << i) != 0)
    }

    /// true only when the expression evaluates to boolean true; a runtime error (missing
    /// map key, type mismatch, ...) or a non-bool result is false. Runs the native
    /// evaluator when [`path`](Self::path) is [`CelPath::Native`] (same verdict, no
    /// allocation; the cel crate for a connection it is unsure of), else the cel crate.
    pub fn matches(&self, conn: &CelConn<'_>) -> bool {
        match &self.native {
            Some(native) => match catch_unwind(AssertUnwindSafe(|| native.matches(conn))) {
                Ok(Some(verdict)) => verdict,
                // not computed in place (e.g. an escaped `meta` string): the cel crate decides
                Ok(None) => self.matches_cel_crate(conn),
                Err(_) => false,
            },
            None => self.matches_cel_crate(conn),
        }
    }

    /// The native evaluator's own verdict: None when the expression is not in its subset
    /// or this connection's answer is not computed in place (tests check how often the
    /// cel crate is still needed).
    #[doc(hidden)]
    pub fn matches_natively(&self, conn: &CelConn<'_>) -> Option<bool> {
        let native = self.native.as_ref()?;
        catch_unwind(AssertUnwindSafe(|| native.matches(conn))).ok().flatten()
    }

    /// The cel crate's verdict, whatever [`path`](Self::path) says: the oracle the
    /// native evaluator is tested against.
    pub fn matches_cel_crate(&self, conn: &CelConn<'_>) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.eval(conn))).unwrap_or(false)
    }

    fn eval(&self, conn: &CelConn<'_>) -> bool {
        let bound = Bound::new(conn, self.vars);
        let mut ctx = Context::with_env(THREAD_ENV.with(Arc::clone));
        ctx.set_variable_resolver(&bound);
        match Value::resolve_val(self.program.expression(), &ctx) {
            Ok(v) => v.downcast_ref::<CelBool>().is_some_and(|b| *b.inner()),
            Err(_) => false,
        }
    }
}

/// One connection's variables as CEL values, borrowing the connection.
struct Bound<'a> {
    strings: [CelString<'a>; 6],
    connected_at: CelInt,
    meta: Option<Box<dyn Val + 'a>>,
    labels: Option<CelMap<'a>>,
    channels: Option<CelList<'a>>,
}

impl<'a> Bound<'a> {
    fn new(c: &CelConn<'a>, vars: u16) -> Bound<'a> {
        let s = CelString::from;
        Bound {
            strings: [s(c.user), s(c.client), s(c.app_name), s(c.app_version), s(c.transport), s(c.protocol)],
            connected_at: CelInt::from(c.connected_at),
            meta: (vars & META != 0).then(|| meta_value(c.meta_json)),
            labels: (vars & LABELS != 0).then(|| labels_value(c.labels)),
            channels: (vars & CHANNELS != 0).then(|| channels_value(c.channels)),
        }
    }
}

impl VariableResolver for Bound<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v: &'b (dyn Val + 'b) = match variable {
            "user" => &self.strings[0],
            "client" => &self.strings[1],
            "app_name" => &self.strings[2],
            "app_version" => &self.strings[3],
            "transport" => &self.strings[4],
            "protocol" => &self.strings[5],
            "connected_at" => &self.connected_at,
            "meta" => self.meta.as_deref()?,
            "labels" => self.labels.as_ref()?,
            "channels" => self.channels.as_ref()?,
            _ => return None,
        };
        Some(CowVal::Borrowed(v))
    }
}

fn labels_value<'a>(labels: &'a [(Arc<str>, Arc<str>)]) -> CelMap<'a> {
    let map: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = labels
        .iter()
        .map(|(k, v)| (CelMapKey::from(&**k), Box::new(CelString::from(&**v)) as Box<dyn Val + 'a>))
        .collect();
    CelMap::from(map)
}

fn channels_value(channels: &[String]) -> CelList<'_> {
    let list: Vec<Box<dyn Val + '_>> =
        channels.iter().map(|c| Box::new(CelString::from(c.as_str())) as Box<dyn Val + '_>).collect();
    CelList::from(list)
}

/// `meta` from its JSON text: objects → maps, arrays → lists, integers → int, other
/// numbers → double, null → null. Absent or unparseable → `{}`.
fn meta_value(json: Option<&str>) -> Box<dyn Val + 'static> {
    match json.map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(v)) => json_value(v),
        _ => Box::new(CelMap::from(HashMap::new())),
    }
}

/// Recursion follows the JSON nesting, which serde_json caps (128).
fn json_value(v: serde_json::Value) -> Box<dyn Val + 'static> {
    use serde_json::Value as J;
    match v {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        J::String(s) => Box::new(CelString::from(s)),
        J::Array(items) => Box::new(CelList::from(items.into_iter().map(json_value).collect::<Vec<_>>())),
        J::Object(fields) => {
            let map: HashMap<CelMapKey<'static>, Box<dyn Val>> =
                fields.into_iter().map(|(k, v)| (CelMapKey::from(k), json_value(v))).collect();
            Box::new(CelMap::from(map))
        }
    }
}
