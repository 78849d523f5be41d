//! Which connections an API call acts on. `user`, `label_filter` and `expression` are
//! compiled once per request into a [`Selector`] (AND-combined), then run against the
//! hub by the cheapest route:
//!
//! 1. a user (given, or a top-level `user == "x"` conjunct of a translated CEL
//!    expression; or several, from `user in [...]`) → those users' connections from
//!    the per-user index, no scan;
//! 2. else a channel (a top-level `"c" in channels` conjunct) with few subscribers
//!    beside the node's connections, or with no label program → that channel's
//!    subscribers from the channel index, no scan;
//! 3. else a label program (the `label_filter` and/or a CEL expression translated to
//!    the same bytecode) → the parallel survey of the hub's label columns; when a
//!    channel of the selection has fewer subscribers than twice the survey's
//!    matches, those subscribers are checked instead of the matches;
//! 4. else an interpreted CEL expression → a parallel scan of every connection.
//!
//! What remains (a label program on a user's connections, the channels on a survey's
//! matches, an interpreted expression after either) is checked per connection. An
//! interpreted expression's top-level conjuncts in the translatable subset (its
//! pre-filter) join the user, channels and label program above, so routes 1–3 narrow
//! what the interpreter sees. Surveys are blocking work: the HTTP layer runs requests
//! that may survey off the async runtime's worker threads.
//!
//! Interpreted CEL is bounded twice: its estimated cost per connection at compile time
//! (`connections.cel_max_cost`, 107), and the request's total evaluation time
//! (`connections.cel_time_budget`, checked between connections, 106).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::filter::cel::{CelConn, CelLimits, CelPlan, CelProgram, MetaForm};
use crate::filter::{Expr, FilterNode, Limits, Program, compile_expr, parse};
use crate::hub::{Lookahead, SortedLabels, prefetch};
use crate::node::{Node, Session};

use super::error::ApiError;

/// A compiled selection; see the module docs for how it runs.
pub struct Selector {
    /// Only this user's connections (`Some("")` = anonymous ones).
    user: Option<String>,
    /// Only these users' connections (several, from CEL's `user in [...]`; with a
    /// `user` it is checked against them instead).
    users: Vec<String>,
    /// Only connections subscribed to every one of these channels.
    channels: Vec<String>,
    /// Label predicate, compiled against the hub's value interner.
    program: Option<Program>,
    /// Interpreted CEL, checked per connection.
    cel: Option<CelProgram>,
    /// The parts contradict each other (two different users): nothing matches.
    nothing: bool,
    /// Time the interpreted expression may take over the whole run (None = unbounded).
    budget: Option<Duration>,
    /// How a selection with channels and a label program chooses its route.
    route: ChannelRoute,
}

/// How a selection with both a `"c" in channels` conjunct and a label program runs.
/// Requests always plan; `rotor capacity` forces each route to time it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelRoute {
    /// The channel's subscribers when they are at most 1 in `CHANNEL_ROUTE_RATIO` (32) of
    /// the node's connections, else the survey, and then its matches or, when they
    /// are fewer than twice the matches, the subscribers.
    Planned,
    /// Always the channel's subscribers, checked one by one.
    Index,
    /// Always the survey, then its matches' channels.
    Survey,
}

/// The CEL caps of this node's configuration.
pub fn cel_limits(node: &Node) -> CelLimits {
    CelLimits { max_cost: node.config.connections.cel_max_cost, ..CelLimits::default() }
}

/// A run's time budget, checked between connections; once passed it stays passed, so
/// the rest of a scan skips its connections for the price of one atomic load each.
struct Deadline {
    at: Option<Instant>,
    passed: AtomicBool,
}

impl Deadline {
    fn start(budget: Option<Duration>) -> Deadline {
        Deadline { at: budget.map(|b| Instant::now() + b), passed: AtomicBool::new(false) }
    }

    /// Whether some connection went unevaluated because the budget was spent.
    fn stopped(&self) -> bool {
        self.passed.load(Ordering::Relaxed)
    }

    /// Reads the clock on one call in [`CLOCK_EVERY`] of each thread (a clock read
    /// costs about as much as evaluating a simple expression).
    fn passed(&self) -> bool {
        if self.passed.load(Ordering::Relaxed) {
            return true;
        }
        let Some(at) = self.at else { return false };
        thread_local!(static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        let calls = CALLS.with(|c| {
            c.set(c.get().wrapping_add(1));
            c.get()
        });
        // the first call of a fresh thread reads it too
        if calls % CLOCK_EVERY != 1 {
            return false;
        }
        let now_passed = Instant::now() >= at;
        if now_passed {
            self.passed.store(true, Ordering::Relaxed);
        }
        now_passed
    }
}

/// How often a run's [`Deadline`] reads the clock, in connections per thread: a budget
/// is overrun by at most this many evaluations per thread.
const CLOCK_EVERY: u32 = 32;

/// A channel's subscribers are visited instead of surveying the node's label columns
/// when they are at most 1 in this many connections. Measured with `rotor capacity
/// --channel` at 1M (docs/performance.md, stop 29): a subscriber's visit costs
/// 85–130 ns and a survey row 0.6–1.5 ns, so the best route depends on how many
/// connections the labels match, which is not known before the survey. With a broad
/// label (20% match) the visits won at every share measured (up to 1 subscriber in 5
/// connections); with a narrow one (0.1%) the survey wins down to ~1 in 120. 1 in 32
/// is between: below it a narrow label loses up to ~2 ms per 1M connections, above it
/// a broad one 2–5 ms. Above it the survey runs, and then its matches or the
/// subscribers are checked (see [`Selector::fewer_subscribers`]).
const CHANNEL_ROUTE_RATIO: usize = 32;

/// Threads a survey may use: one per core.
fn survey_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// True for a missing, `null` or `{}` filter.
pub fn filter_is_empty(f: &Option<Value>) -> bool {
    match f {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    }
}

/// Decodes and validates a `label_filter` into IR; errors are 107 naming the JSON path.
fn label_expr(f: &Option<Value>) -> Result<Option<Expr>, ApiError> {
    let Some(raw) = f.as_ref().filter(|_| !filter_is_empty(f)) else { return Ok(None) };
    let node: FilterNode = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { "label_filter".to_owned() } else { format!("label_filter.{path}") };
        ApiError::bad_request(format!("{at}: {}", e.inner()))
    })?;
    let expr = parse(&node, "label_filter", &Limits::default()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // A label filter reads labels only, never the attributes stored beside them.
    Ok(Some(expr.without_reserved_keys()))
}

impl Selector {
    /// Compiles a selection. `user` is `None` when the caller does not restrict by user.
    pub fn compile(
        node: &Node,
        user: Option<&str>,
        expression: &str,
        label_filter: &Option<Value>,
    ) -> Result<Selector, ApiError> {
        let budget = Some(node.config.connections.cel_time_budget.std()).filter(|b| !b.is_zero());
        let mut sel = Selector {
            user: user.map(str::to_owned),
            users: Vec::new(),
            channels: Vec::new(),
            program: None,
            cel: None,
            nothing: false,
            budget,
            route: ChannelRoute::Planned,
        };
        let m = &node.metrics.connections;
        let mut exprs: Vec<Expr> =
            label_expr(label_filter).inspect_err(|_| m.filter_compile_errors.inc())?.into_iter().collect();
        if !expression.trim().is_empty() {
            let plan = crate::filter::cel::plan(expression, &cel_limits(node)).map_err(|e| {
                m.cel_compile_errors.inc();
                ApiError::bad_request(format!("expression: {}", e.message))
            })?;
            match plan {
                CelPlan::Translated { user: cel_user, users, channels, labels } => {
                    sel.and_user(cel_user.as_deref());
                    sel.and_users(users);
                    sel.channels = channels;
                    exprs.extend(labels);
                }
                CelPlan::Interpreted(p) => {
                    // Its translatable conjuncts select first; the interpreter sees only
                    // the connections they keep.
                    if let Some(pre) = p.prefilter() {
                        sel.and_user(pre.user.as_deref());
                        sel.and_users(pre.users.clone());
                        sel.channels = pre.channels.clone();
                        exprs.extend(pre.labels.clone());
                    }
                    sel.cel = Some(p);
                }
            }
        }
        let expr = match exprs.len() {
            0 => None,
            1 => exprs.pop(),
            _ => Some(Expr::and(exprs)),
        };
        if let Some(expr) = expr {
            let program = compile_expr(&expr, "label_filter", node.hub.label_values()).map_err(|e| {
                m.filter_compile_errors.inc();
                ApiError::bad_request(e.to_string())
            })?;
            sel.program = Some(program);
        }
        Ok(sel)
    }

    /// Restricts the selection to `user` too (two different users select nothing).
    fn and_user(&mut self, user: Option<&str>) {
        if let Some(u) = user {
            match &self.user {
                Some(given) if given != u => self.nothing = true,
                _ => self.user = Some(u.to_owned()),
            }
        }
    }

    /// Restricts the selection to one of `users` (none: no restriction); with a user
    /// already, that user must be one of them.
    fn and_users(&mut self, users: Vec<String>) {
        if users.is_empty() {
            return;
        }
        match &self.user {
            Some(given) => self.nothing |= !users.contains(given),
            None => self.users = users,
        }
    }

    /// The selection with its channel route forced (see [`ChannelRoute`]).
    pub fn with_channel_route(self, route: ChannelRoute) -> Selector {
        Selector { route, ..self }
    }

    /// Whether the selection has a label program (a `label_filter`, or CEL translated
    /// to bytecode).
    pub fn has_label_program(&self) -> bool {
        self.program.is_some()
    }

    /// Whether running this selection evaluates interpreted CEL.
    pub fn interprets(&self) -> bool {
        self.cel.is_some()
    }

    /// The selected live connections, sorted by client id.
    pub fn run(&self, node: &Node) -> Result<Vec<Arc<Session>>, ApiError> {
        self.run_after(node, 0)
    }

    /// The selected live connections with client id above `after`, sorted by client id.
    /// Fails with 106 when interpreted CEL outruns the time budget.
    pub fn run_after(&self, node: &Node, after: u128) -> Result<Vec<Arc<Session>>, ApiError> {
        self.run_page(node, after, None)
    }

    /// Like [`Selector::run_after`], but a survey resolves only the first `want`
    /// matching ids (more if some left meanwhile) into sessions: a page of a broad
    /// listing never pays for the rows it will not return.
    pub fn run_page(&self, node: &Node, after: u128, want: Option<usize>) -> Result<Vec<Arc<Session>>, ApiError> {
        self.run_counted(node, after, want).map(|(page, _)| page)
    }

    /// [`Selector::run_page`] and the number of connections the whole selection
    /// matches on this node, those at or before `after` included, so every page of a
    /// listing reports the same total while nothing connects or disconnects. The
    /// count costs nothing extra: the user index, the survey and the scan already
    /// visit every match (for a survey it is the number of matching ids when the
    /// survey ran). Fails with 106 when interpreted CEL outruns the time budget.
    pub fn run_counted(
        &self,
        node: &Node,
        after: u128,
        want: Option<usize>,
    ) -> Result<(Vec<Arc<Session>>, usize), ApiError> {
        if self.nothing {
            return Ok((Vec::new(), 0));
        }
        let deadline = Deadline::start(self.budget.filter(|_| self.cel.is_some()));
        let keep_cel = |s: &Session| self.cel.as_ref().is_none_or(|cel| !deadline.passed() && cel_matches(cel, s));
        let ahead = CelLookahead::new(self.cel.as_ref());
        let m = &node.metrics.connections;
        // A user's connections or a channel's subscribers, checked one by one; a
        // channel's subscribers are not checked again for that channel.
        let from_index = |mut conns: Vec<Arc<Session>>, routed: Option<&str>| {
            m.rows_scanned.inc_by(conns.len() as u64);
            retain_ahead(&mut conns, &ahead, |s| {
                self.labels_match(s) && self.subscribed_except(s, routed) && keep_cel(s)
            });
            let total = conns.len();
            conns.retain(|s| s.id > after);
            (conns, total)
        };
        let (mut out, total) = match (&self.user, &self.program) {
            (Some(user), _) => from_index(node.hub.user_connections(user), None),
            // Distinct users have disjoint connections.
            (None, _) if !self.users.is_empty() => {
                from_index(self.users.iter().flat_map(|u| node.hub.user_connections(u)).collect(), None)
            }
            (None, program) if let Some((channel, subscribers)) = self.channel_route(node, program.is_some()) => {
                from_index(subscribers, Some(channel))
            }
            (None, Some(program)) => {
                m.rows_scanned.inc_by(node.hub.len() as u64);
                let mut ids = node.hub.survey(program, survey_threads());
                if let Some((channel, subscribers)) = self.fewer_subscribers(node, ids.len()) {
                    from_index(subscribers, Some(channel))
                } else if self.cel.is_none() && self.channels.is_empty() {
                    ids.sort_unstable();
                    let total = ids.len();
                    let rest = &ids[ids.partition_point(|&id| id <= after)..];
                    let page = match want {
                        Some(want) => resolve_first(node, rest, want),
                        None => node.hub.resolve(rest),
                    };
                    (page, total)
                } else {
                    // Matches the channel index says are not subscribed are dropped
                    // before any session is visited, for channels that hold under half
                    // the node (a lookup costs about a fifth of a visit).
                    let index = node.hub.channels();
                    for c in &self.channels {
                        if index.num_subscribers(c).saturating_mul(2) < node.hub.len() {
                            index.retain_subscribed(c, &mut ids);
                        }
                    }
                    ids.sort_unstable();
                    let mut conns = node.hub.resolve(&ids);
                    retain_ahead(&mut conns, &ahead, |s| self.subscribed(s) && keep_cel(s));
                    let total = conns.len();
                    conns.retain(|s| s.id > after);
                    (conns, total)
                }
            }
            (None, None) => match &self.cel {
                Some(_) => {
                    m.rows_scanned.inc_by(node.hub.len() as u64);
                    let mut conns = node.hub.scan_ahead(survey_threads(), &ahead, |s| keep_cel(s));
                    let total = conns.len();
                    conns.retain(|s| s.id > after);
                    (conns, total)
                }
                None => (Vec::new(), 0),
            },
        };
        if deadline.stopped() {
            return Err(self.over_budget());
        }
        m.matches.inc_by(total as u64);
        out.sort_unstable_by_key(|s| s.id);
        Ok((out, total))
    }

    fn over_budget(&self) -> ApiError {
        let budget = self.budget.unwrap_or_default();
        ApiError::limit_exceeded(format!(
            "expression: evaluation stopped at its time budget of {budget:?} (connections.cel_time_budget); \
             narrow the selection with user or label_filter, or use the label subset"
        ))
    }

    /// The subscribers of the selection's channel with the fewest, when the channel
    /// index is the cheaper route: always without a label program (else every
    /// connection would be interpreted), and with one only when they are few beside
    /// the node's connections (a subscriber costs a session visit, a survey row ~1 ns).
    /// The index holds a session from before its subscription is recorded to after it
    /// is removed, so it never misses one; each is checked for the selection's other
    /// channels ([`Selector::subscribed_except`]).
    fn channel_route(&self, node: &Node, has_program: bool) -> Option<(&str, Vec<Arc<Session>>)> {
        let (channel, n) = self.fewest_channel(node)?;
        let few = n.saturating_mul(CHANNEL_ROUTE_RATIO) <= node.hub.len();
        let take = match self.route {
            _ if !has_program => true,
            ChannelRoute::Planned => few,
            ChannelRoute::Index => true,
            ChannelRoute::Survey => false,
        };
        take.then(|| (channel, Self::subscribers(node, channel)))
    }

    /// After a survey that matched `matched` connections: the subscribers of the
    /// selection's channel with the fewest, when they are fewer than twice the
    /// matches. A subscriber's visit costs ~100–130 ns at 1M; the matches cost a
    /// channel-index lookup each (~55 ns), their sort, and a visit for each one
    /// subscribed, and measured twice the subscribers' cost at equal numbers.
    fn fewer_subscribers(&self, node: &Node, matched: usize) -> Option<(&str, Vec<Arc<Session>>)> {
        if self.route != ChannelRoute::Planned {
            return None;
        }
        let (channel, n) = self.fewest_channel(node)?;
        (n < matched.saturating_mul(2)).then(|| (channel, Self::subscribers(node, channel)))
    }

    /// The selection's channel with the fewest subscribers, and their number.
    fn fewest_channel(&self, node: &Node) -> Option<(&str, usize)> {
        let index = node.hub.channels();
        self.channels.iter().map(|c| (c.as_str(), index.num_subscribers(c))).min_by_key(|&(_, n)| n)
    }

    fn subscribers(node: &Node, channel: &str) -> Vec<Arc<Session>> {
        let mut subscribers = Vec::new();
        node.hub.channels().for_each(channel, |sub| subscribers.push(sub.session.clone()));
        subscribers
    }

    /// Whether `s` is subscribed to every channel of the selection.
    fn subscribed(&self, s: &Session) -> bool {
        self.subscribed_except(s, None)
    }

    /// Whether `s` is subscribed to every channel of the selection but `known`, which
    /// `s` was found through in the channel index. The index holds a subscriber from
    /// just before its session records the subscription to just after it forgets it,
    /// so only a request running during that subscribe or unsubscribe could tell the
    /// two apart, and it may see either outcome anyway. Skipping it saves a lock and a
    /// lookup per subscriber, ~45% of listing a large channel.
    fn subscribed_except(&self, s: &Session, known: Option<&str>) -> bool {
        let mut rest = self.channels.iter().filter(|c| Some(c.as_str()) != known).peekable();
        rest.peek().is_none() || {
            let st = s.state.lock();
            rest.all(|c| st.subs.contains_key(c.as_str()))
        }
    }

    fn labels_match(&self, s: &Session) -> bool {
        self.program.as_ref().is_none_or(|p| p.matches(&SortedLabels::of(p, s)))
    }
}

/// Evaluates an interpreted expression against one session. `meta` is read in place
/// under its cell's lock, and the client ID made only when the expression uses it.
pub fn cel_matches(cel: &CelProgram, s: &Session) -> bool {
    let channels: Vec<String> =
        if cel.uses("channels") { s.state.lock().subs.keys().cloned().collect() } else { Vec::new() };
    let client = cel.uses("client").then(|| s.client());
    let eval = |meta: Option<&serde_json::value::RawValue>, meta_form| {
        cel.matches(&CelConn {
            user: &s.user,
            client: client.as_deref().unwrap_or_default(),
            app_name: &s.app_name,
            app_version: &s.app_version,
            transport: s.transport.name(),
            protocol: s.encoding.name(),
            meta_json: meta.map(|m| m.get()),
            meta_form,
            labels: &s.labels,
            channels: &channels,
            connected_at: s.connected_at_ms,
        })
    };
    if cel.uses("meta") { s.meta.with(eval) } else { eval(None, MetaForm::UNCHECKED) }
}

/// The scan's lookahead for an interpreted expression: a session's fields first, then
/// the text of those the expression reads (`user`, `meta`, the labels' list). Without
/// an expression, the fields alone (a label program reads the labels' list).
pub struct CelLookahead {
    user: bool,
    meta: bool,
    labels: bool,
}

impl CelLookahead {
    pub fn new(cel: Option<&CelProgram>) -> CelLookahead {
        match cel {
            Some(cel) => CelLookahead { user: cel.uses("user"), meta: cel.uses("meta"), labels: cel.uses("labels") },
            None => CelLookahead { user: false, meta: false, labels: true },
        }
    }
}

/// Keeps the sessions for which `keep` holds, in order, evaluating them with
/// `ahead`'s lookahead (for a user's connections, or a survey's resolved matches).
fn retain_ahead(conns: &mut Vec<Arc<Session>>, ahead: &CelLookahead, keep: impl Fn(&Session) -> bool) {
    let mut verdicts = Vec::with_capacity(conns.len());
    crate::hub::lookahead(conns.iter(), ahead, |s| verdicts.push(keep(s)));
    let mut verdicts = verdicts.into_iter();
    conns.retain(|_| verdicts.next().unwrap_or(false));
}

impl Lookahead<Session> for CelLookahead {
    fn lines(&self, s: &Session) {
        s.prefetch_fields();
    }

    fn targets(&self, s: &Session) {
        if self.user {
            prefetch(s.user.as_ptr());
        }
        if self.labels {
            prefetch(s.labels.as_ptr());
        }
        if self.meta {
            s.meta.with(|m, _| m.map(|m| prefetch(m.get().as_ptr())));
        }
    }
}

/// The sessions a targeted op (`subscribe`, `unsubscribe`, `disconnect`, `refresh`)
/// acts on. With `all_users` (and a `label_filter`, and no `user`): every matching
/// connection of the node. Otherwise Centrifugo's meaning: the connections of `user`
/// (`""` = anonymous), narrowed by `client`, `session` and the `label_filter`.
pub fn op_targets(
    node: &Node,
    user: &str,
    client: &str,
    session: &str,
    label_filter: &Option<Value>,
    all_users: bool,
) -> Result<Vec<Arc<Session>>, ApiError> {
    if all_users {
        if filter_is_empty(label_filter) {
            return Err(ApiError::bad_request("all_users requires a non-empty label_filter"));
        }
        if !user.is_empty() {
            return Err(ApiError::bad_request("all_users and user are mutually exclusive"));
        }
    }
    let user = (!all_users).then_some(user);
    let mut sessions = if filter_is_empty(label_filter) {
        node.hub.user_connections(user.unwrap_or_default())
    } else {
        Selector::compile(node, user, "", label_filter)?.run(node)?
    };
    sessions.retain(|s| {
        (client.is_empty() || s.client() == *client)
            && (session.is_empty() || s.session().is_some_and(|id| id == *session))
    });
    Ok(sessions)
}

/// Sessions of the first `want` ids (sorted) that are still connected.
fn resolve_first(node: &Node, ids: &[u128], want: usize) -> Vec<Arc<Session>> {
    let mut out = Vec::with_capacity(want.min(ids.len()));
    let mut start = 0;
    while out.len() < want && start < ids.len() {
        let end = (start + want - out.len()).min(ids.len());
        out.extend(node.hub.resolve(&ids[start..end]));
        start = end;
    }
    out
}

#[cfg(test)]
mod tests;
