//! One run in order: find the server's pid and memory, open the fleet, idle, drive
//! the API load (then wait for trailing deliveries), drive the baseline, close the
//! fleet, and assemble the [`Report`]. Every phase is bounded in time; the fleet is
//! always closed before the report is returned.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;

use super::load::{self, Expect, Request};
use super::report::{
    BaselineReport, ConnectReport, DeliveryReport, LoadReport, MemoryReport, Report, SubscribeReport, per_sec,
};
use super::{LoadKind, LoadPlan, Plan, baseline, client, conns, procfs};

/// The fleet opens in two halves (see `execute`) from this many connections on…
const HALVES_FROM: u64 = 1000;
/// …with this pause between them, for the first half's handshakes to settle.
const HALF_SETTLE: Duration = Duration::from_secs(1);
/// After the load, deliveries may trail for at most this long…
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// …and the wait ends early once no publication arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_secs(1);

pub(super) async fn execute(plan: &Plan, nofile: u64) -> anyhow::Result<Report> {
    let (server_pid, pid_source) = server_pid(plan).await;
    let resident = || server_pid.and_then(procfs::resident);
    let rss = || resident().map(|r| r.rss);
    let before = resident();
    let rss_before = before.map(|r| r.rss);

    let mut shared = client::Shared::new(
        plan.target.clone(),
        plan.transport,
        plan.secret.clone(),
        plan.population.clone(),
        plan.subscribe.clone(),
        plan.connections,
    )?;
    shared.protobuf = plan.protobuf;
    let bar = counter_bar(plan.connections, "connecting");
    // With the server's memory in view, the fleet opens in two halves with a pause
    // between them, so the second half's RSS growth (the cost of one more connection,
    // without what the allocator reserves once) is measured too.
    let n = plan.connections;
    let split = (rss_before.is_some() && n >= HALVES_FROM).then_some(n / 2);
    let mut fleet = conns::Fleet::empty(shared);
    let mut half = None;
    match split {
        Some(first) => {
            fleet.grow(0..first, plan.connect_concurrency, &bar).await;
            tokio::time::sleep(HALF_SETTLE).await;
            half = rss().map(|kib| (kib, fleet.phase.connected));
            fleet.grow(first..n, plan.connect_concurrency, &bar).await;
        }
        None => fleet.grow(0..n, plan.connect_concurrency, &bar).await,
    }
    bar.finish_and_clear();
    // Nothing connected: report the connect errors without idling or loading.
    let alive = fleet.phase.connected > 0;
    let idle = if alive { plan.idle } else { Duration::ZERO };
    hold(idle).await;
    let connected = resident();
    let rss_connected = connected.map(|r| r.rss);

    let results = match &plan.load {
        Some(lp) if alive => run_load(lp, &fleet).await,
        _ => LoadResults::default(),
    };
    let rss_end = rss();
    let closed = fleet.close().await;
    let baseline = results.baseline.transpose()?;
    let mut delivery = results.delivery;
    if let Some(d) = &mut delivery {
        d.min_per_client = closed.min_per_client;
    }
    let memory = MemoryReport {
        server_pid,
        pid_source,
        rss_before_kib: rss_before,
        rss_connected_kib: rss_connected,
        rss_end_kib: rss_end,
        per_connection_bytes: per_connection(rss_before, rss_connected, closed.phase.connected),
        anon_before_kib: before.and_then(|r| r.anon),
        anon_connected_kib: connected.and_then(|r| r.anon),
        anon_per_connection_bytes: per_connection(
            before.and_then(|r| r.anon),
            connected.and_then(|r| r.anon),
            closed.phase.connected,
        ),
        rss_half_kib: half.map(|(kib, _)| kib),
        marginal_per_connection_bytes: half.and_then(|(kib, at_half)| {
            per_connection(Some(kib), rss_connected, closed.phase.connected.saturating_sub(at_half))
        }),
        note: memory_note(server_pid, rss_connected, plan.target.addr.port()),
    };
    Ok(Report {
        tool: "rotor bench",
        version: env!("CARGO_PKG_VERSION"),
        url: plan.target.base.clone(),
        transport: plan.transport.name(),
        protocol: if plan.protobuf { "protobuf" } else { "json" },
        nofile_limit: nofile,
        subscribe: plan.subscribe.clone().map(|channel| SubscribeReport {
            channel,
            subscribed: closed.phase.subscribed,
            errors: closed.phase.subscribe_errors.total(),
            error_messages: closed.phase.subscribe_errors.clone(),
        }),
        connect: connect_report(closed),
        idle_seconds: idle.as_secs_f64(),
        load: results.load,
        delivery,
        baseline,
        memory,
    })
}

/// The server's pid: `--server-pid`, else the process listening on the target port.
async fn server_pid(plan: &Plan) -> (Option<u32>, Option<&'static str>) {
    if let Some(pid) = plan.server_pid {
        return (Some(pid), Some("flag"));
    }
    let port = plan.target.addr.port();
    match tokio::task::spawn_blocking(move || procfs::listener_pid(port)).await {
        Ok(Some(pid)) => (Some(pid), Some("detected")),
        _ => (None, None),
    }
}

fn per_connection(before: Option<u64>, connected: Option<u64>, n: u64) -> Option<u64> {
    match (before, connected) {
        (Some(b), Some(c)) if n > 0 => Some(c.saturating_sub(b) * 1024 / n),
        _ => None,
    }
}

fn memory_note(pid: Option<u32>, rss: Option<u64>, port: u16) -> Option<String> {
    match (pid, rss) {
        (None, _) => {
            Some(format!("server memory unknown: no visible process listens on port {port} (pass --server-pid PID)"))
        }
        (Some(pid), None) => Some(format!("server memory unknown: cannot read /proc/{pid}/status")),
        _ => None,
    }
}

fn connect_report(closed: conns::Closed) -> ConnectReport {
    let p = closed.phase;
    ConnectReport {
        requested: p.requested,
        connected: p.connected,
        errors: p.errors.total(),
        error_messages: p.errors,
        seconds: p.seconds,
        per_sec: per_sec(p.connected, p.seconds),
        latency: p.latency.summary(),
        dropped: closed.dropped,
        dropped_messages: closed.drop_reasons,
    }
}

#[derive(Default)]
struct LoadResults {
    load: Option<LoadReport>,
    delivery: Option<DeliveryReport>,
    baseline: Option<anyhow::Result<BaselineReport>>,
}

async fn run_load(lp: &LoadPlan, fleet: &conns::Fleet) -> LoadResults {
    let matched = match lp.kind {
        LoadKind::Connections => load::count_matched(&lp.spec).await.ok(),
        _ => None,
    };
    let delivered_before = fleet.delivered();
    let bytes_before = fleet.publication_bytes();
    let started = Instant::now();
    let bar = time_bar(lp.spec.duration, lp.kind.name());
    let out = load::drive(lp.spec.clone(), &bar).await;
    bar.finish_and_clear();
    let req_per_sec = per_sec(out.successes(), out.seconds);
    let delivery = match lp.kind {
        LoadKind::Publish | LoadKind::Broadcast => {
            Some(delivery(fleet, &lp.channel, out.successes(), (delivered_before, bytes_before), started).await)
        }
        _ => None,
    };
    let baseline = if lp.baseline { Some(run_baseline(&lp.spec, req_per_sec).await) } else { None };
    let load = LoadReport {
        kind: lp.kind.name(),
        api: lp.api.name(),
        pacing: if lp.rate.is_some() { "rate" } else { "concurrency" },
        concurrency: lp.spec.pacing.in_flight(),
        rate: lp.rate,
        duration_s: lp.spec.duration.as_secs(),
        requests: out.requests,
        errors: out.errors.total(),
        error_messages: out.errors.clone(),
        seconds: out.seconds,
        req_per_sec,
        latency: out.latency.summary(),
        matched,
    };
    LoadResults { load: Some(load), delivery, baseline }
}

/// Deliveries of `publishes` publications sent since `started` to every subscriber.
async fn delivery(
    fleet: &conns::Fleet,
    channel: &str,
    publishes: u64,
    (delivered_before, bytes_before): (u64, u64),
    started: Instant,
) -> DeliveryReport {
    let subscribers = fleet.phase.subscribed;
    let expected = publishes * subscribers;
    let (delivered, last) = drain(fleet, delivered_before, expected).await;
    let seconds = (last - started).as_secs_f64();
    DeliveryReport {
        channel: channel.to_string(),
        subscribers,
        publishes,
        expected,
        delivered,
        seconds,
        per_sec: per_sec(delivered, seconds),
        bytes_per_delivery: (delivered > 0)
            .then(|| (fleet.publication_bytes() - bytes_before) as f64 / delivered as f64),
        min_per_client: None,
        latency: fleet.delivery_latency(),
    }
}

/// Waits until `expected` publications arrived since `before`, none arrived for
/// [`DRAIN_QUIET`], or [`DRAIN_LIMIT`] passed; returns the count and when the last
/// one was seen.
async fn drain(fleet: &conns::Fleet, before: u64, expected: u64) -> (u64, Instant) {
    let limit = Instant::now() + DRAIN_LIMIT;
    let mut last = fleet.delivered();
    let mut last_seen = Instant::now();
    loop {
        let now = Instant::now();
        if last - before >= expected || now >= limit || now - last_seen >= DRAIN_QUIET {
            return (last - before, last_seen);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let seen = fleet.delivered();
        if seen != last {
            last = seen;
            last_seen = Instant::now();
        }
    }
}

async fn run_baseline(spec: &load::Spec, rotor_req_per_sec: f64) -> anyhow::Result<BaselineReport> {
    let Request::Http { body, .. } = &spec.request else {
        anyhow::bail!("the baseline is an HTTP handler: it compares HTTP API loads only");
    };
    let server = baseline::Baseline::spawn().await?;
    let request = Request::Http { url: server.url.clone(), body: body.clone(), api_key: None, expect: Expect::Ok200 };
    let spec = load::Spec { request, ..spec.clone() };
    let bar = time_bar(spec.duration, "baseline");
    let out = load::drive(spec, &bar).await;
    bar.finish_and_clear();
    server.stop().await;
    let req_per_sec = per_sec(out.successes(), out.seconds);
    Ok(BaselineReport {
        requests: out.requests,
        errors: out.errors.total(),
        seconds: out.seconds,
        req_per_sec,
        latency: out.latency.summary(),
        ratio: (req_per_sec > 0.0).then(|| rotor_req_per_sec / req_per_sec),
    })
}

/// Holds the connections idle for `d`, with a progress bar.
async fn hold(d: Duration) {
    let bar = time_bar(d, "idle");
    let started = Instant::now();
    let end = started + d;
    while Instant::now() < end {
        tokio::time::sleep_until(end.min(Instant::now() + Duration::from_millis(200))).await;
        bar.set_position(started.elapsed().as_millis() as u64);
    }
    bar.finish_and_clear();
}

fn counter_bar(len: u64, label: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix:>11} [{bar:30}] {pos}/{len} {per_sec} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len).with_prefix(label).with_style(style)
}

/// A bar over `d` whose position is in milliseconds.
fn time_bar(d: Duration, label: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix:>11} [{bar:30}] {elapsed} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(d.as_millis() as u64).with_prefix(label).with_style(style)
}
