//! `rotor capacity`: sizes a node from an in-process hub of synthetic connections.
//!
//! For each requested N it builds a real node's hub of N connections with a
//! configurable label distribution (`build`), measures the resident memory they added,
//! then times a set of selections — label filters, translated and interpreted CEL, a
//! user lookup — over it (`probes`), and prints a table, one JSON object (`--json`) or
//! an SVG chart (`plot`). With several N, each N runs in a fresh child process of this
//! executable so one hub's freed pages never flatter the next one's memory figure.

mod build;
mod fleet;
mod plot;
mod probes;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::population::{ChannelShare, LabelKey, Population};
use probes::{Spec, Timed};

/// Most connections one run may build (about 1 KiB each).
const MAX_CONNECTIONS: usize = 10_000_000;

#[derive(clap::Args, Clone)]
pub(super) struct Args {
    /// Connections to build: a number, a comma-separated list or a repeated flag
    /// (e.g. 10000,100000,1000000); each N is measured separately.
    #[arg(short = 'n', long = "connections", value_delimiter = ',', default_value = "100000")]
    connections: Vec<usize>,
    /// Survey threads (default: one per core).
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// A label key `name:cardinality[:share]`, repeatable (default: region:5, tier:3,
    /// app_version:20, beta:2:0.1). Values are `<name>-0` … `<name>-<cardinality-1>`.
    #[arg(long = "label", value_name = "NAME:CARD[:SHARE]")]
    labels: Vec<LabelKey>,
    /// A channel `name:share` a share of the connections subscribe to (through the
    /// server API's subscribe path), repeatable; expressions with a `"c" in channels`
    /// term are then timed by each route (see docs/capacity.md).
    #[arg(long = "channel", value_name = "NAME:SHARE")]
    channels: Vec<ChannelShare>,
    /// Distinct users; connection i belongs to user `i % users`.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Give every connection a `meta` object, `{"plan":"plan-<i%3>","n":<i>,
    /// "geo":{"country":"country-<i%5>"}}`, for timing expressions over `meta` (it
    /// adds its size to the memory figure).
    #[arg(long)]
    meta: bool,
    /// A label filter (FilterNode JSON) to time; repeatable.
    #[arg(long = "filter", value_name = "JSON")]
    filters: Vec<String>,
    /// A CEL expression to time by its planned route and, if that is bytecode, through
    /// the interpreter too; repeatable.
    #[arg(long = "expression", value_name = "CEL")]
    expressions: Vec<String>,
    /// A user whose connections to list through the per-user index; repeatable.
    #[arg(long = "user")]
    users_to_list: Vec<String>,
    /// Timed runs per probe (after one warm-up run).
    #[arg(long, default_value_t = 9)]
    runs: usize,
    /// Write an SVG chart of survey latency and memory against N.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Fleet mode: build this many nodes in this process on the Redis at `--redis`,
    /// N connections each, and time fleet-wide `connections` surveys against one
    /// node's own (see docs/capacity.md).
    #[arg(long, value_name = "NODES")]
    fleet: Option<usize>,
    /// Fleet mode: the Redis to run the nodes on (loopback only).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Fleet mode: `limit` of each timed `connections` request (0 = no limit).
    #[arg(long, default_value_t = 100)]
    limit: u64,
    /// Internal: measure exactly one N and print its JSON report (used per N).
    #[arg(long, hide = true)]
    worker: bool,
}

/// One N's measurements — the `--json` shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Report {
    pub connections: usize,
    pub threads: usize,
    /// Growth of the process's resident set while the N connections were built, ÷ N.
    pub memory_bytes_per_connection: f64,
    pub survey: Vec<Timed>,
}

/// `--json` with several N: the largest N's report, plus every N's under `series`.
#[derive(Serialize)]
struct Summary<'a> {
    #[serde(flatten)]
    largest: &'a Report,
    series: &'a [Report],
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    validate(&a)?;
    if let Some(nodes) = a.fleet {
        let p = population(&a);
        return fleet::run(&a, nodes, &p, &specs(&a, &p));
    }
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let reports = if a.connections.len() == 1 {
        vec![measure(&a, a.connections[0], threads)?]
    } else {
        a.connections.iter().map(|&n| measure_in_child(&a, n, threads)).collect::<anyhow::Result<Vec<_>>>()?
    };
    if a.worker {
        println!("{}", serde_json::to_string(&reports[0])?);
        return Ok(());
    }
    if let Some(path) = &a.plot {
        std::fs::write(path, plot::svg(&reports)).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        let largest = reports.iter().max_by_key(|r| r.connections);
        let out = match (reports.as_slice(), largest) {
            ([one], _) => serde_json::to_string(one)?,
            (all, Some(largest)) => serde_json::to_string(&Summary { largest, series: all })?,
            (_, None) => anyhow::bail!("no capacity report was made"),
        };
        println!("{out}");
    } else {
        print_table(&reports);
        if let Some(path) = &a.plot {
            println!("plot written to {}", path.display());
        }
    }
    Ok(())
}

fn validate(a: &Args) -> anyhow::Result<()> {
    if a.connections.is_empty() {
        bail!("--connections: give at least one number");
    }
    for &n in &a.connections {
        if !(1..=MAX_CONNECTIONS).contains(&n) {
            bail!("--connections {n}: must be 1–{MAX_CONNECTIONS}");
        }
    }
    if a.threads.is_some_and(|t| !(1..=256).contains(&t)) {
        bail!("--threads: must be 1–256");
    }
    if !(1..=1000).contains(&a.runs) {
        bail!("--runs: must be 1–1000");
    }
    if a.users == 0 {
        bail!("--users: must be at least 1");
    }
    let mut names: Vec<&str> = a.labels.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        bail!("--label: each key may be given once");
    }
    let mut channels: Vec<&str> = a.channels.iter().map(|c| c.name.as_str()).collect();
    channels.sort_unstable();
    if channels.windows(2).any(|w| w[0] == w[1]) {
        bail!("--channel: each channel may be given once");
    }
    if a.plot.as_ref().is_some_and(|p| p.extension().is_none_or(|e| e != "svg")) {
        bail!("--plot: the file name must end in .svg");
    }
    Ok(())
}

fn population(a: &Args) -> Population {
    let keys = if a.labels.is_empty() { Population::default_keys() } else { a.labels.clone() };
    Population { keys, users: a.users, meta: a.meta, channels: a.channels.clone() }
}

fn specs(a: &Args, p: &Population) -> Vec<Spec> {
    if a.filters.is_empty() && a.expressions.is_empty() && a.users_to_list.is_empty() {
        return probes::default_specs(p);
    }
    let mut out = Vec::new();
    for (i, f) in a.filters.iter().enumerate() {
        out.push(Spec::LabelFilter { name: format!("filter {}", i + 1), json: f.clone() });
    }
    for (i, e) in a.expressions.iter().enumerate() {
        out.push(Spec::Expression { name: format!("expression {}", i + 1), src: e.clone() });
    }
    for u in &a.users_to_list {
        out.push(Spec::User { name: format!("user {u}"), user: u.clone() });
    }
    out
}

/// Builds one hub in this process and times every probe over it.
fn measure(a: &Args, n: usize, threads: usize) -> anyhow::Result<Report> {
    let p = population(a);
    let progress = std::io::stderr().is_terminal();
    let built = build::build(n, &p, progress)?;
    let probes = probes::compile_all(&built.node, &specs(a, &p))?;
    let bar =
        if progress { indicatif::ProgressBar::new(probes.len() as u64) } else { indicatif::ProgressBar::hidden() };
    let mut survey = Vec::with_capacity(probes.len());
    for probe in &probes {
        bar.set_message(format!("{} ({})", probe.name, probe.kind));
        survey.push(probes::time(probe, &built.node, threads, a.runs)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Report {
        connections: n,
        threads,
        memory_bytes_per_connection: (built.memory_bytes as f64 / n as f64 * 10.0).round() / 10.0,
        survey,
    })
}

/// Measures one N in a fresh child process (`--worker`), so its memory figure starts
/// from an empty heap.
fn measure_in_child(a: &Args, n: usize, threads: usize) -> anyhow::Result<Report> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["capacity", "--worker", "--connections", &n.to_string(), "--threads", &threads.to_string()]);
    cmd.args(["--users", &a.users.to_string(), "--runs", &a.runs.to_string()]);
    if a.meta {
        cmd.arg("--meta");
    }
    for k in &a.labels {
        cmd.args(["--label", &k.to_string()]);
    }
    for c in &a.channels {
        cmd.args(["--channel", &c.to_string()]);
    }
    for f in &a.filters {
        cmd.args(["--filter", f]);
    }
    for e in &a.expressions {
        cmd.args(["--expression", e]);
    }
    for u in &a.users_to_list {
        cmd.args(["--user", u]);
    }
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output().context("running a capacity worker")?;
    if !out.status.success() {
        bail!("measuring {n} connections failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).context("reading a capacity worker's report")
}

fn print_table(reports: &[Report]) {
    for r in reports {
        println!(
            "{} connections, {} threads, {:.0} bytes per connection (RSS delta, hub side only)",
            r.connections, r.threads, r.memory_bytes_per_connection
        );
        println!(
            "  {:<28} {:<16} {:>10} {:>10} {:>10} {:>10}",
            "probe", "kind", "matched", "p50 ns/c", "p90 ns/c", "max ns/c"
        );
        for t in &r.survey {
            println!(
                "  {:<28} {:<16} {:>10} {:>10.2} {:>10.2} {:>10.2}",
                t.name, t.kind, t.matched, t.ns_per_connection.p50, t.ns_per_connection.p90, t.ns_per_connection.max
            );
        }
        let label = r.survey.iter().find(|t| t.kind == "cel_translated");
        let interp = label.and_then(|l| r.survey.iter().find(|t| t.kind == "cel_interpreted" && t.name == l.name));
        if let (Some(l), Some(i)) = (label, interp)
            && l.ns_per_connection.p50 > 0.0
        {
            println!(
                "  {}: bytecode {:.1}× faster than the CEL interpreter (p50)",
                l.name,
                i.ns_per_connection.p50 / l.ns_per_connection.p50
            );
        }
    }
}
