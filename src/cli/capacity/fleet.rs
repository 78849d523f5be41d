//! `rotor capacity --fleet K`: sizing a fleet. Builds K real nodes in this process on
//! one Redis (a fresh key prefix, so nothing else on that Redis is touched), N
//! synthetic connections each, and times for every probe:
//!
//! - **one node**: node 0 answering for its own hub only (selection, paging and
//!   encoding of its page — what a single-node deployment does), and the slowest of
//!   the K nodes doing so alone;
//! - **fleet**: node 0 answering `POST /api/connections` for the whole fleet — its own
//!   page, the survey request through Redis, every peer's page, the merge.
//!
//! The overhead of the fleet is `fleet − slowest node alone`. In one process the K
//! nodes share the machine's cores, so their concurrent scans compete for CPU that
//! separate machines would not share; read the overhead as an upper bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::api::connections::ConnectionsRequest;
use crate::cli::population::Population;
use crate::config::Config;
use crate::node::Node;

use super::Args;
use super::probes::{Percentiles, Spec, percentiles};

#[derive(Serialize)]
struct FleetReport {
    nodes: usize,
    connections_per_node: usize,
    limit: u64,
    probes: Vec<FleetTimed>,
}

#[derive(Serialize)]
struct FleetTimed {
    name: String,
    /// Connections in the fleet answer (at most `limit`).
    rows: usize,
    /// Milliseconds: node 0 for its own hub.
    one_node_ms: Percentiles,
    /// Milliseconds (p50): the slowest node for its own hub.
    slowest_node_p50_ms: f64,
    /// Milliseconds: node 0 for the whole fleet.
    fleet_ms: Percentiles,
    /// `fleet.p50 − slowest_node_p50`.
    overhead_p50_ms: f64,
}

pub(super) fn run(a: &Args, nodes: usize, p: &Population, specs: &[Spec]) -> anyhow::Result<()> {
    if !(2..=8).contains(&nodes) {
        bail!("--fleet: 2–8 nodes");
    }
    let [n] = a.connections[..] else { bail!("--fleet measures one --connections value") };
    let host = a.redis.strip_prefix("redis://").unwrap_or("").split(['/', ':']).next().unwrap_or("");
    if !["127.0.0.1", "localhost", "[::1]"].contains(&host) && !host.starts_with("127.") {
        bail!("--redis {}: only a loopback Redis is accepted", a.redis);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(measure(a, nodes, n, p, specs))?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

async fn measure(a: &Args, k: usize, n: usize, p: &Population, specs: &[Spec]) -> anyhow::Result<FleetReport> {
    let mut config = Config::default();
    config.engine.kind = crate::config::EngineKind::Redis;
    config.engine.redis.address = vec![a.redis.clone()];
    config.engine.redis.prefix = format!("rotor-capacity-{}", uuid::Uuid::new_v4().simple());
    config.engine.redis.survey_timeout = crate::config::Duration::from_secs(60);
    let mut fleet = Vec::with_capacity(k);
    for i in 0..k {
        let mut c = config.clone();
        c.node.name = format!("capacity-{i}");
        let node = Node::start(c).await?;
        crate::api::install_fleet(&node);
        let node = tokio::task::spawn_blocking({
            let p = p.clone();
            move || super::build::populate(node, n, &p, false).map(|b| b.node)
        })
        .await??;
        fleet.push(node);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while fleet[0].fleet.as_ref().map_or(0, |f| f.peers().len()) < k - 1 {
        if Instant::now() > deadline {
            bail!("the nodes did not see each other through Redis within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut probes = Vec::new();
    for spec in specs {
        let body = match spec {
            Spec::LabelFilter { json, .. } => {
                let filter: serde_json::Value = serde_json::from_str(json).context("--filter")?;
                serde_json::json!({"label_filter": filter, "limit": a.limit})
            }
            Spec::Expression { src, .. } => serde_json::json!({"expression": src, "limit": a.limit}),
            Spec::User { user, .. } => serde_json::json!({"user": user, "limit": a.limit}),
        };
        probes.push(time_probe(&fleet, spec_name(spec), &body.to_string(), a.runs).await?);
    }
    Ok(FleetReport { nodes: k, connections_per_node: n, limit: a.limit, probes })
}

fn spec_name(s: &Spec) -> String {
    match s {
        Spec::LabelFilter { name, json } => format!("{name} {json}"),
        Spec::Expression { name, src } => format!("{name} {src}"),
        Spec::User { name, .. } => name.clone(),
    }
}

/// Node `node` answering for its own hub, in milliseconds per run.
async fn alone(node: &Arc<Node>, body: &str, runs: usize) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..=runs {
        let (node, body) = (node.clone(), body.to_string());
        let start = Instant::now();
        let req: ConnectionsRequest = serde_json::from_str(&body)?;
        tokio::task::spawn_blocking(move || crate::api::connections::page(&node, req).map(|p| p.items.len()))
            .await?
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    samples.remove(0);
    Ok(samples)
}

async fn time_probe(fleet: &[Arc<Node>], name: String, body: &str, runs: usize) -> anyhow::Result<FleetTimed> {
    let mut one = alone(&fleet[0], body, runs).await?;
    let mut slowest: f64 = 0.0;
    for node in fleet {
        let mut s = alone(node, body, runs).await?;
        slowest = slowest.max(percentiles(&mut s).p50);
    }
    let mut samples = Vec::with_capacity(runs);
    let mut rows = 0;
    for i in 0..=runs {
        let start = Instant::now();
        let out = crate::api::call(&fleet[0], "connections", body.as_bytes())
            .await
            .map_err(|_| anyhow::anyhow!("{name}: undecodable request"))?
            .map_err(|e| anyhow::anyhow!("{name}: {}", e.message))?;
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        let v: serde_json::Value = serde_json::from_str(out.get())?;
        if let Some(missing) = v.get("missing_nodes") {
            bail!("{name}: nodes did not answer: {missing}");
        }
        rows = v["connections"].as_object().map_or(0, |m| m.len());
        if i > 0 {
            samples.push(elapsed);
        }
    }
    let fleet_ms = percentiles(&mut samples);
    Ok(FleetTimed {
        name,
        rows,
        one_node_ms: percentiles(&mut one),
        slowest_node_p50_ms: slowest,
        overhead_p50_ms: ((fleet_ms.p50 - slowest) * 100.0).round() / 100.0,
        fleet_ms,
    })
}

fn print(r: &FleetReport) {
    println!(
        "{} nodes on one Redis, {} connections each, connections limit {} (milliseconds)",
        r.nodes, r.connections_per_node, r.limit
    );
    println!(
        "  {:<48} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "probe", "rows", "node p50", "slowest", "fleet p50", "fleet p90", "overhead"
    );
    for t in &r.probes {
        let name: String = t.name.chars().take(48).collect();
        println!(
            "  {:<48} {:>6} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
            name, t.rows, t.one_node_ms.p50, t.slowest_node_p50_ms, t.fleet_ms.p50, t.fleet_ms.p90, t.overhead_p50_ms
        );
    }
}
