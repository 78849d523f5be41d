//! The selections `rotor capacity` times, and how each is run against the hub.
//!
//! A probe is one way the connections API can select: a `label_filter` (bytecode
//! survey of the label columns), a CEL expression translated to that same bytecode, a
//! CEL expression forced through the interpreter (a parallel scan evaluating it per
//! connection), or a user (the per-user index, no scan). An expression with a
//! top-level `"c" in channels` conjunct runs as the API's own [`Selector`], by its
//! planned route and, when it has a label program too, by each of the two routes
//! forced (the channel's subscribers, or the survey), so the planner's choice can be
//! checked against both. Probes are compiled once, against the built hub's
//! interners, exactly as a request would be.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::api::select::{CelLookahead, ChannelRoute, Selector, cel_matches};
use crate::cli::population::{LabelKey, Population};
use crate::filter::cel::{CelLimits, CelPlan, CelProgram, plan, plan_interpreted};
use crate::filter::{FilterNode, Limits, Program, compile, compile_expr};
use crate::hub::SortedLabels;
use crate::node::Node;

/// What the user asked to time, before a hub exists.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    LabelFilter {
        name: String,
        json: String,
    },
    /// A CEL expression: timed by its planned route, and — when that route is the
    /// bytecode — once more forced through the interpreter.
    Expression {
        name: String,
        src: String,
    },
    User {
        name: String,
        user: String,
    },
}

/// The default set, built from the population's first keys: an equality, an
/// equality plus an `in` set as a label filter, as translated CEL and as interpreted
/// CEL (the same predicate, so their ratio shows in one run), a `nex` on the last
/// key, one user, and with channels the first channel alone and with the equality.
pub(super) fn default_specs(p: &Population) -> Vec<Spec> {
    let (Some(k0), Some(last)) = (p.keys.first(), p.keys.last()) else {
        return vec![Spec::User { name: "user 0".into(), user: p.user(0) }];
    };
    let v0 = Population::value(k0, 0);
    let mut specs = vec![Spec::LabelFilter {
        name: format!("{} eq", k0.name),
        json: serde_json::json!({"key": k0.name, "cmp": "eq", "val": v0}).to_string(),
    }];
    let (filter, cel) = match p.keys.get(1) {
        Some(k1) => {
            let vals: Vec<String> = (0..k1.cardinality.min(2)).map(|n| Population::value(k1, n)).collect();
            let filter = serde_json::json!({"op": "and", "nodes": [
                {"key": k0.name, "cmp": "eq", "val": v0},
                {"key": k1.name, "cmp": "in", "vals": vals},
            ]});
            let list: Vec<String> = vals.iter().map(|v| cel_string(v)).collect();
            let cel = format!("{} == {} && {} in [{}]", cel_label(k0), cel_string(&v0), cel_label(k1), list.join(", "));
            (filter, cel)
        }
        None => (
            serde_json::json!({"key": k0.name, "cmp": "eq", "val": v0}),
            format!("{} == {}", cel_label(k0), cel_string(&v0)),
        ),
    };
    specs.push(Spec::LabelFilter { name: "predicate".into(), json: filter.to_string() });
    specs.push(Spec::Expression { name: "predicate".into(), src: cel });
    specs.push(Spec::LabelFilter {
        name: format!("{} nex", last.name),
        json: serde_json::json!({"key": last.name, "cmp": "nex"}).to_string(),
    });
    specs.push(Spec::User { name: "user 0".into(), user: p.user(0) });
    if let Some(ch) = p.channels.first() {
        let term = format!("{} in channels", cel_string(&ch.name));
        specs.push(Spec::Expression { name: format!("{} in channels", ch.name), src: term.clone() });
        specs.push(Spec::Expression {
            name: format!("{} in channels && {} eq", ch.name, k0.name),
            src: format!("{term} && {} == {}", cel_label(k0), cel_string(&v0)),
        });
    }
    specs
}

fn cel_label(k: &LabelKey) -> String {
    let ident = k.name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident { format!("labels.{}", k.name) } else { format!("labels[{}]", cel_string(&k.name)) }
}

fn cel_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// How a compiled probe runs.
enum Route {
    Survey(Program),
    Interpreted(Box<CelProgram>),
    /// Users' connections from the index (one user, or several distinct ones),
    /// optionally narrowed by a label program.
    User(Vec<String>, Option<Program>),
    /// The connections API's selection, start to end (a channel expression).
    Select(Box<Selector>),
}

/// A probe compiled against a hub.
pub(super) struct Probe {
    pub name: String,
    pub kind: &'static str,
    route: Route,
}

/// Compiles the specs against `node`'s hub. Errors name the probe and say why.
pub(super) fn compile_all(node: &Node, specs: &[Spec]) -> anyhow::Result<Vec<Probe>> {
    let values = node.hub.label_values();
    let mut out = Vec::new();
    for spec in specs {
        match spec {
            Spec::LabelFilter { name, json } => {
                let fnode: FilterNode = serde_json::from_str(json)
                    .map_err(|e| anyhow::anyhow!("--filter {json}: not a filter node: {e}"))?;
                let program = compile(&fnode, "label_filter", &Limits::default(), values)
                    .map_err(|e| anyhow::anyhow!("--filter {json}: {e}"))?;
                out.push(Probe { name: name.clone(), kind: "label_filter", route: Route::Survey(program) });
            }
            Spec::Expression { name, src } => {
                let planned = plan(src, &CelLimits::default())
                    .map_err(|e| anyhow::anyhow!("--expression {src}: {}", e.message))?;
                let translated = match planned {
                    CelPlan::Translated { channels, .. } if !channels.is_empty() => {
                        out.extend(channel_probes(node, name, src)?);
                        continue;
                    }
                    CelPlan::Interpreted(p) if p.prefilter().is_some_and(|pre| !pre.channels.is_empty()) => {
                        out.extend(channel_probes(node, name, src)?);
                        continue;
                    }
                    CelPlan::Translated { user: None, users, labels: Some(expr), .. } if users.is_empty() => {
                        let program = compile_expr(&expr, "expression", values)
                            .map_err(|e| anyhow::anyhow!("--expression {src}: {e}"))?;
                        Route::Survey(program)
                    }
                    CelPlan::Translated { user, users, labels, .. } if user.is_some() || !users.is_empty() => {
                        let program = labels
                            .map(|expr| compile_expr(&expr, "expression", values))
                            .transpose()
                            .map_err(|e| anyhow::anyhow!("--expression {src}: {e}"))?;
                        Route::User(user.map_or(users, |u| vec![u]), program)
                    }
                    CelPlan::Translated { .. } => anyhow::bail!("--expression {src}: planned to nothing"),
                    CelPlan::Interpreted(p) => Route::Interpreted(Box::new(p)),
                };
                let kind = match translated {
                    Route::Survey(_) => "cel_translated",
                    Route::User(..) => "user",
                    Route::Interpreted(_) | Route::Select(_) => "cel_interpreted",
                };
                let was_translated = kind != "cel_interpreted";
                out.push(Probe { name: name.clone(), kind, route: translated });
                if was_translated {
                    let forced = plan_interpreted(src, &CelLimits::default())
                        .map_err(|e| anyhow::anyhow!("--expression {src}: {}", e.message))?;
                    out.push(Probe {
                        name: name.clone(),
                        kind: "cel_interpreted",
                        route: Route::Interpreted(Box::new(forced)),
                    });
                }
            }
            Spec::User { name, user } => {
                out.push(Probe { name: name.clone(), kind: "user", route: Route::User(vec![user.clone()], None) })
            }
        }
    }
    Ok(out)
}

/// The probes of an expression that selects by channel: the API's plan, and with a
/// label program each route forced.
fn channel_probes(node: &Node, name: &str, src: &str) -> anyhow::Result<Vec<Probe>> {
    let selector =
        || Selector::compile(node, None, src, &None).map_err(|e| anyhow::anyhow!("--expression {src}: {}", e.message));
    let planned = selector()?;
    let mut out = Vec::new();
    if planned.has_label_program() {
        for (kind, route) in [("channel_index", ChannelRoute::Index), ("channel_survey", ChannelRoute::Survey)] {
            let forced = selector()?.with_channel_route(route);
            out.push(Probe { name: name.to_owned(), kind, route: Route::Select(Box::new(forced)) });
        }
    }
    out.insert(0, Probe { name: name.to_owned(), kind: "channel_planned", route: Route::Select(Box::new(planned)) });
    Ok(out)
}

impl Probe {
    /// Runs the selection once; returns how many connections matched.
    pub(super) fn run(&self, node: &Node, threads: usize) -> anyhow::Result<usize> {
        Ok(match &self.route {
            Route::Survey(program) => node.hub.survey(program, threads).len(),
            Route::Interpreted(cel) => {
                node.hub.scan_ahead(threads, &CelLookahead::new(Some(cel)), |s| cel_matches(cel, s)).len()
            }
            Route::User(users, program) => users
                .iter()
                .map(|user| {
                    let conns = node.hub.user_connections(user);
                    match program {
                        None => conns.len(),
                        Some(p) => conns.iter().filter(|s| p.matches(&SortedLabels::of(p, &***s))).count(),
                    }
                })
                .sum(),
            Route::Select(selector) => {
                selector
                    .run_counted(node, 0, None)
                    .map_err(|e| anyhow::anyhow!("{} ({}): {}", self.name, self.kind, e.message))?
                    .1
            }
        })
    }
}

/// Latency percentiles, in nanoseconds per connection of the hub.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

/// One probe's result, as `--json` prints it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Timed {
    pub name: String,
    pub kind: String,
    pub matched: usize,
    pub ns_per_connection: Percentiles,
}

/// Runs `probe` once to warm up and then `runs` times, timing each run.
pub(super) fn time(probe: &Probe, node: &Node, threads: usize, runs: usize) -> anyhow::Result<Timed> {
    let n = node.hub.len().max(1) as f64;
    let matched = probe.run(node, threads)?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let m = probe.run(node, threads)?;
        samples.push(start.elapsed().as_nanos() as f64 / n);
        if m != matched {
            anyhow::bail!("{} ({}) matched {m} connections, then {matched}: the hub changed", probe.name, probe.kind);
        }
    }
    Ok(Timed {
        name: probe.name.clone(),
        kind: probe.kind.to_owned(),
        matched,
        ns_per_connection: percentiles(&mut samples),
    })
}

/// p50, p90 (nearest rank) and max of `samples`, to 0.01 (0.0001 below 1 ns, where
/// a user lookup amortised over a large hub lands).
pub(super) fn percentiles(samples: &mut [f64]) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        round2(samples[i])
    };
    Percentiles { p50: rank(0.5), p90: rank(0.9), max: round2(*samples.last().unwrap_or(&0.0)) }
}

fn round2(x: f64) -> f64 {
    if x < 1.0 { (x * 10_000.0).round() / 10_000.0 } else { (x * 100.0).round() / 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentiles(&mut s), Percentiles { p50: 5.0, p90: 9.0, max: 10.0 });
        let mut one = vec![3.333];
        assert_eq!(percentiles(&mut one), Percentiles { p50: 3.33, p90: 3.33, max: 3.33 });
        let mut tiny = vec![0.001_234_5];
        assert_eq!(percentiles(&mut tiny).p50, 0.0012);
    }

    #[test]
    fn cel_names_quote_non_identifiers() {
        let k: LabelKey = "app-version:3".parse().unwrap();
        assert_eq!(cel_label(&k), r#"labels["app-version"]"#);
        let k: LabelKey = "region:3".parse().unwrap();
        assert_eq!(cel_label(&k), "labels.region");
    }
}
