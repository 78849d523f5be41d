//! The numbers a bench run produces and how they are printed: a fixed-size latency
//! histogram (log-linear buckets, ~1.6% precision, no per-sample storage so a long
//! run stays bounded), a bounded tally of error messages, and the [`Report`] written
//! as text or as one JSON object. Pure data: no I/O besides printing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// Exact buckets below this many microseconds, log-linear above.
const LINEAR: u64 = 128;
/// Buckets per power of two above `LINEAR` (precision 1/64).
const SUB_BITS: u32 = 6;
const BUCKETS: usize = LINEAR as usize + (64 - 7) * (1 << SUB_BITS);

/// A latency histogram in microseconds.
#[derive(Clone)]
pub(super) struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS].into_boxed_slice(), total: 0, max_us: 0 }
    }
}

impl Histogram {
    pub(super) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// The value at quantile `q` in (0, 1], in microseconds (a bucket's upper bound,
    /// capped at the exact maximum); 0 when empty.
    pub(super) fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_upper(i).min(self.max_us);
            }
        }
        self.max_us
    }

    pub(super) fn summary(&self) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50_ms: ms(self.quantile_us(0.50)),
            p90_ms: ms(self.quantile_us(0.90)),
            p99_ms: ms(self.quantile_us(0.99)),
            max_ms: ms(self.max_us),
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // ≥ 7
    let shift = exp - SUB_BITS;
    let sub = (us >> shift) - (1 << SUB_BITS);
    LINEAR as usize + ((exp - 7) << SUB_BITS) as usize + sub as usize
}

/// The largest value that falls in bucket `i`.
fn bucket_upper(i: usize) -> u64 {
    if (i as u64) < LINEAR {
        return i as u64;
    }
    let rest = i - LINEAR as usize;
    let exp = (rest >> SUB_BITS) as u32 + 7;
    let sub = (rest & ((1 << SUB_BITS) - 1)) as u64;
    let shift = exp - SUB_BITS;
    let low = ((1u64 << SUB_BITS) + sub) << shift;
    low.saturating_add((1u64 << shift) - 1)
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub(super) struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Counts of error messages, at most `MAX_DISTINCT` different ones (the rest are
/// counted under `"other"`), so a failing run cannot grow memory.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub(super) struct ErrorTally(BTreeMap<String, u64>);

const MAX_DISTINCT: usize = 8;

impl ErrorTally {
    pub(super) fn add(&mut self, message: &str) {
        self.add_n(message, 1);
    }

    fn add_n(&mut self, message: &str, n: u64) {
        let mut key: String = message.chars().take(160).collect();
        if !self.0.contains_key(&key) && self.0.len() >= MAX_DISTINCT {
            key = "other".into();
        }
        *self.0.entry(key).or_default() += n;
    }

    pub(super) fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// The result of one `rotor bench` run; with `--json` it is printed as one JSON object
/// with exactly these fields (`null` where a phase did not run or a number is unknown):
///
/// - `tool`, `version`, `url` (the resolved loopback base URL), `transport`
///   (`websocket` | `uni_http_stream` | `uni_sse`), `nofile_limit` (the bench's open files limit).
/// - `connect` — [`ConnectReport`]: `requested`, `connected`, `errors`, `error_messages`
///   (message → count), `seconds` (the connect phase), `per_sec` (connected ÷ seconds),
///   `latency` (per connection, connect reply received: `p50_ms`, `p90_ms`, `p99_ms`,
///   `max_ms`), `dropped` (connections the server closed before the end), `dropped_messages`.
/// - `subscribe` — [`SubscribeReport`] or `null`: `channel`, `subscribed`, `errors`,
///   `error_messages`.
/// - `idle_seconds` — how long the connections were held idle before measuring memory.
/// - `load` — [`LoadReport`] or `null`: `kind` (`publish` | `broadcast` | `connections`),
///   `api` (`http` | `grpc`), `pacing` (`concurrency` | `rate`), `concurrency`, `rate`, `duration_s`, `requests`
///   (answered), `errors`, `error_messages`, `seconds`, `req_per_sec`, `latency`,
///   `matched` (connections load: connections in one answer to the filter).
/// - `delivery` — [`DeliveryReport`] or `null` (publish/broadcast loads): `channel`,
///   `subscribers`, `publishes` (successful), `expected` (publishes × subscribers),
///   `delivered` (publication pushes counted by the clients), `seconds`, `per_sec`,
///   `min_per_client`.
/// - `baseline` — [`BaselineReport`] or `null` (`--baseline`): the same load against a
///   trivial axum handler: `requests`, `errors`, `seconds`, `req_per_sec`, `latency`,
///   `ratio` (rotor req/s ÷ baseline req/s).
/// - `memory` — [`MemoryReport`]: `server_pid`, `pid_source` (`flag` | `detected` |
///   `null`), `rss_before_kib` (before connecting), `rss_connected_kib` (all connected
///   and idle), `rss_end_kib` (after the load), `per_connection_bytes`
///   ((connected − before) ÷ connected), `anon_before_kib`, `anon_connected_kib` and
///   `anon_per_connection_bytes` (the same for `RssAnon`: heap and stacks without the
///   binary's code pages, which fault in as code first runs; `null` where the kernel
///   does not report it), `rss_half_kib` (the first half open and
///   settled; from 1,000 connections), `marginal_per_connection_bytes` ((connected −
///   half) ÷ the second half's connections: the cost of one more connection, without
///   what the allocator reserves once), `note` (why a number is missing).
#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub url: String,
    pub transport: &'static str,
    /// Client protocol encoding: `json` or `protobuf`.
    pub protocol: &'static str,
    pub nofile_limit: u64,
    pub connect: ConnectReport,
    pub subscribe: Option<SubscribeReport>,
    pub idle_seconds: f64,
    pub load: Option<LoadReport>,
    pub delivery: Option<DeliveryReport>,
    pub baseline: Option<BaselineReport>,
    pub memory: MemoryReport,
}

#[derive(Debug, Serialize)]
pub(super) struct ConnectReport {
    pub requested: u64,
    pub connected: u64,
    pub errors: u64,
    pub error_messages: ErrorTally,
    pub seconds: f64,
    pub per_sec: f64,
    pub latency: Latency,
    pub dropped: u64,
    pub dropped_messages: ErrorTally,
}

#[derive(Debug, Serialize)]
pub(super) struct SubscribeReport {
    pub channel: String,
    pub subscribed: u64,
    pub errors: u64,
    pub error_messages: ErrorTally,
}

#[derive(Debug, Serialize)]
pub(super) struct LoadReport {
    pub kind: &'static str,
    /// The server API driven: `http` or `grpc`.
    pub api: &'static str,
    pub pacing: &'static str,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub duration_s: u64,
    pub requests: u64,
    pub errors: u64,
    pub error_messages: ErrorTally,
    pub seconds: f64,
    pub req_per_sec: f64,
    pub latency: Latency,
    pub matched: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(super) struct DeliveryReport {
    pub channel: String,
    pub subscribers: u64,
    pub publishes: u64,
    pub expected: u64,
    pub delivered: u64,
    pub seconds: f64,
    pub per_sec: f64,
    /// Wire bytes of one publication push as the subscribers received it.
    pub bytes_per_delivery: Option<f64>,
    pub min_per_client: Option<u64>,
    /// Publish request sent → publication received by a subscriber.
    pub latency: Latency,
}

#[derive(Debug, Serialize)]
pub(super) struct BaselineReport {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub req_per_sec: f64,
    pub latency: Latency,
    pub ratio: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct MemoryReport {
    pub server_pid: Option<u32>,
    pub pid_source: Option<&'static str>,
    pub rss_before_kib: Option<u64>,
    pub rss_connected_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub per_connection_bytes: Option<u64>,
    /// Anonymous resident memory (`RssAnon`): RSS without file-backed pages (code).
    pub anon_before_kib: Option<u64>,
    pub anon_connected_kib: Option<u64>,
    /// Its growth ÷ connections.
    pub anon_per_connection_bytes: Option<u64>,
    /// RSS when the first half of the fleet was open and settled.
    pub rss_half_kib: Option<u64>,
    /// RSS growth over the second half ÷ its connections.
    pub marginal_per_connection_bytes: Option<u64>,
    pub note: Option<String>,
}

/// `count ÷ seconds`, 0 for an empty interval.
pub(super) fn per_sec(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { count as f64 / seconds } else { 0.0 }
}

impl Report {
    pub(super) fn to_json(&self) -> String {
        crate::json::to_string(self)
    }

    /// The human-readable report.
    pub(super) fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.connect;
        let _ = writeln!(out, "rotor bench {} → {} ({}, {})", self.version, self.url, self.transport, self.protocol);
        let _ = writeln!(
            out,
            "connect     {}/{} connected in {:.2}s: {:.0} conn/s, {} errors, p50 {:.2} ms, p99 {:.2} ms",
            c.connected, c.requested, c.seconds, c.per_sec, c.errors, c.latency.p50_ms, c.latency.p99_ms
        );
        errors_lines(&mut out, &c.error_messages);
        if c.dropped > 0 {
            let _ = writeln!(out, "dropped     {} connections closed by the server", c.dropped);
            errors_lines(&mut out, &c.dropped_messages);
        }
        if let Some(s) = &self.subscribe {
            let _ = writeln!(out, "subscribe   {:?}: {} subscribed, {} errors", s.channel, s.subscribed, s.errors);
            errors_lines(&mut out, &s.error_messages);
        }
        if let Some(l) = &self.load {
            load_lines(&mut out, l);
        }
        if let Some(d) = &self.delivery {
            let _ = writeln!(
                out,
                "delivery    {} of {} expected ({} publishes × {} subscribers) in {:.2}s: {:.0} msgs/s",
                d.delivered, d.expected, d.publishes, d.subscribers, d.seconds, d.per_sec
            );
            if let Some(b) = d.bytes_per_delivery {
                let _ = writeln!(out, "            {b:.1} bytes per publication push on the wire");
            }
            let l = &d.latency;
            let _ = writeln!(
                out,
                "            send → receive p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            );
        }
        if let Some(b) = &self.baseline {
            let ratio = b.ratio.map_or("n/a".to_string(), |r| format!("{:.0}%", r * 100.0));
            let _ = writeln!(
                out,
                "baseline    trivial axum handler: {:.0} req/s, {} errors, p50 {:.2} ms, p99 {:.2} ms; rotor/baseline = {ratio}",
                b.req_per_sec, b.errors, b.latency.p50_ms, b.latency.p99_ms
            );
        }
        memory_lines(&mut out, &self.memory, self.idle_seconds);
        out
    }
}

fn load_lines(out: &mut String, l: &LoadReport) {
    let pacing = match l.rate {
        Some(r) => format!("rate {r} req/s, ≤ {} in flight", l.concurrency),
        None => format!("concurrency {}", l.concurrency),
    };
    let _ = writeln!(
        out,
        "load        {} over {} ({pacing}, {}s): {} requests, {:.0} req/s, {} errors",
        l.kind, l.api, l.duration_s, l.requests, l.req_per_sec, l.errors
    );
    let t = &l.latency;
    let _ = writeln!(
        out,
        "latency     p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        t.p50_ms, t.p90_ms, t.p99_ms, t.max_ms
    );
    if let Some(m) = l.matched {
        let _ = writeln!(out, "matched     {m} connections per answer");
    }
    errors_lines(out, &l.error_messages);
}

fn memory_lines(out: &mut String, m: &MemoryReport, idle: f64) {
    let kib = |v: Option<u64>| v.map_or("unknown".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let pid = match (m.server_pid, m.pid_source) {
        (Some(p), Some(src)) => format!("pid {p} ({src})"),
        _ => "pid unknown".into(),
    };
    let _ = writeln!(
        out,
        "memory      server {pid}: RSS {} before, {} connected (idle {idle:.1}s), {} at the end",
        kib(m.rss_before_kib),
        kib(m.rss_connected_kib),
        kib(m.rss_end_kib)
    );
    match m.per_connection_bytes {
        Some(b) => {
            let _ = writeln!(out, "per conn    {b} bytes ({:.2} KiB)", b as f64 / 1024.0);
            if let (Some(a), Some(before), Some(connected)) =
                (m.anon_per_connection_bytes, m.anon_before_kib, m.anon_connected_kib)
            {
                let _ = writeln!(
                    out,
                    "anon        {a} bytes ({:.2} KiB) per connection without code pages (RssAnon {:.1} → {:.1} MiB)",
                    a as f64 / 1024.0,
                    before as f64 / 1024.0,
                    connected as f64 / 1024.0
                );
            }
            if let (Some(half), Some(marginal)) = (m.rss_half_kib, m.marginal_per_connection_bytes) {
                let _ = writeln!(
                    out,
                    "marginal    {marginal} bytes ({:.2} KiB) per connection of the second half (RSS {:.1} MiB at half)",
                    marginal as f64 / 1024.0,
                    half as f64 / 1024.0
                );
            }
        }
        None => {
            let _ = writeln!(out, "per conn    unknown");
        }
    }
    if let Some(n) = &m.note {
        let _ = writeln!(out, "note        {n}");
    }
}

fn errors_lines(out: &mut String, t: &ErrorTally) {
    for (msg, n) in &t.0 {
        let _ = writeln!(out, "            {n} × {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_tight() {
        let mut last = 0;
        for us in (0..2_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last, "bucket order at {us}");
            assert!(b < BUCKETS);
            let upper = bucket_upper(b);
            assert!(upper >= us, "{us} ≤ upper {upper}");
            assert!((upper - us) as f64 <= us as f64 / 64.0 + 1.0, "precision at {us}: {upper}");
            last = b;
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_us(0.5), 0);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_us(0.5) as f64;
        assert!((49_000.0..=51_000.0).contains(&p50), "{p50}");
        assert_eq!(h.quantile_us(1.0), 100_000);
        h.record(Duration::from_secs(1));
        assert_eq!(h.summary().max_ms, 1000.0);
    }

    #[test]
    fn error_tally_is_bounded() {
        let mut t = ErrorTally::default();
        for i in 0..100 {
            t.add(&format!("error {}", i % 20));
        }
        assert_eq!(t.total(), 100);
        assert!(t.0.len() <= MAX_DISTINCT + 1);
        assert_eq!(t.0["other"], 100 - 8 * 5);
    }
}
