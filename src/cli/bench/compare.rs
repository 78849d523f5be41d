//! `--compare-url`: the same run against a second Centrifugo-compatible server (a
//! Centrifugo, another Rotor build…) right after the first, and the ratios of the two.
//! The peer takes the same credentials, fleet, subscription and load; each fleet is
//! closed before the next one opens, so the two runs never compete for the cores.
//! Every ratio is peer ÷ this server: above 1 means the peer needs more memory, makes
//! more connects or requests per second, or takes longer to deliver. Pure data over
//! two [`Report`]s; the runs themselves are `phases`.

use std::fmt::Write as _;

use serde::Serialize;

use super::report::Report;

/// Two runs and their ratios; printed as one JSON object with `this`, `peer` (each a
/// full [`Report`]) and `ratios` ([`Ratios`], `null` where either side lacks the number).
#[derive(Debug, Serialize)]
pub(super) struct Comparison {
    pub this: Report,
    pub peer: Report,
    pub ratios: Ratios,
}

/// Peer ÷ this server, per measure.
#[derive(Debug, Default, PartialEq, Serialize)]
pub(super) struct Ratios {
    /// Server RSS growth per idle connection.
    pub memory_per_connection: Option<f64>,
    /// The same over the second half of the fleet only (see `MemoryReport`).
    pub marginal_memory_per_connection: Option<f64>,
    /// Anonymous memory (RSS without code pages) growth per idle connection.
    pub anon_memory_per_connection: Option<f64>,
    /// Connections established per second.
    pub connects_per_sec: Option<f64>,
    /// Answered API requests per second.
    pub req_per_sec: Option<f64>,
    /// API request latency, median and 99th percentile.
    pub request_p50: Option<f64>,
    pub request_p99: Option<f64>,
    /// Publications received by subscribers per second.
    pub deliveries_per_sec: Option<f64>,
    /// Publish sent → publication received, median and 99th percentile.
    pub delivery_p50: Option<f64>,
    pub delivery_p99: Option<f64>,
}

/// `peer ÷ this`, when both are known and this side is positive.
fn ratio(this: Option<f64>, peer: Option<f64>) -> Option<f64> {
    match (this, peer) {
        (Some(a), Some(b)) if a > 0.0 && a.is_finite() && b.is_finite() => Some(b / a),
        _ => None,
    }
}

impl Ratios {
    pub(super) fn of(this: &Report, peer: &Report) -> Ratios {
        let mem = |r: &Report| r.memory.per_connection_bytes.map(|b| b as f64);
        let marginal = |r: &Report| r.memory.marginal_per_connection_bytes.map(|b| b as f64);
        let anon = |r: &Report| r.memory.anon_per_connection_bytes.map(|b| b as f64);
        let connects = |r: &Report| (r.connect.connected > 0).then_some(r.connect.per_sec);
        let rps = |r: &Report| r.load.as_ref().map(|l| l.req_per_sec);
        let req = |r: &Report, p99: bool| {
            r.load.as_ref().filter(|l| l.requests > 0).map(|l| if p99 { l.latency.p99_ms } else { l.latency.p50_ms })
        };
        let dps = |r: &Report| r.delivery.as_ref().map(|d| d.per_sec);
        let lat = |r: &Report, p99: bool| {
            r.delivery
                .as_ref()
                .filter(|d| d.delivered > 0)
                .map(|d| if p99 { d.latency.p99_ms } else { d.latency.p50_ms })
        };
        Ratios {
            memory_per_connection: ratio(mem(this), mem(peer)),
            marginal_memory_per_connection: ratio(marginal(this), marginal(peer)),
            anon_memory_per_connection: ratio(anon(this), anon(peer)),
            connects_per_sec: ratio(connects(this), connects(peer)),
            req_per_sec: ratio(rps(this), rps(peer)),
            request_p50: ratio(req(this, false), req(peer, false)),
            request_p99: ratio(req(this, true), req(peer, true)),
            deliveries_per_sec: ratio(dps(this), dps(peer)),
            delivery_p50: ratio(lat(this, false), lat(peer, false)),
            delivery_p99: ratio(lat(this, true), lat(peer, true)),
        }
    }

    fn rows(&self) -> [(&'static str, Option<f64>); 10] {
        [
            ("memory per idle connection", self.memory_per_connection),
            ("memory per added connection", self.marginal_memory_per_connection),
            ("anon memory per connection", self.anon_memory_per_connection),
            ("connects per second", self.connects_per_sec),
            ("API requests per second", self.req_per_sec),
            ("API request latency p50", self.request_p50),
            ("API request latency p99", self.request_p99),
            ("deliveries per second", self.deliveries_per_sec),
            ("delivery latency p50", self.delivery_p50),
            ("delivery latency p99", self.delivery_p99),
        ]
    }
}

impl Comparison {
    pub(super) fn new(this: Report, peer: Report) -> Comparison {
        let ratios = Ratios::of(&this, &peer);
        Comparison { this, peer, ratios }
    }

    pub(super) fn to_json(&self) -> String {
        crate::json::to_string(self)
    }

    /// Both reports, then one line per ratio that both runs measured.
    pub(super) fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== this server ==\n{}", self.this.to_text());
        let _ = writeln!(out, "== peer ==\n{}", self.peer.to_text());
        let _ = writeln!(out, "== peer ÷ this ({} ÷ {}) ==", self.peer.url, self.this.url);
        for (name, r) in self.ratios.rows() {
            if let Some(r) = r {
                let _ = writeln!(out, "{name:<28} {r:.2}×");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_needs_both_sides_and_a_positive_base() {
        assert_eq!(ratio(Some(2.0), Some(5.0)), Some(2.5));
        assert_eq!(ratio(None, Some(5.0)), None);
        assert_eq!(ratio(Some(2.0), None), None);
        assert_eq!(ratio(Some(0.0), Some(5.0)), None, "no division by zero");
        assert_eq!(ratio(Some(f64::NAN), Some(1.0)), None);
        assert_eq!(ratio(Some(1.0), Some(f64::INFINITY)), None);
    }
}
