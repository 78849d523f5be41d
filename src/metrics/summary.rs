//! Centrifugo exposes each duration twice: a summary (`name{quantile=…}`, `_sum`,
//! `_count`) and a histogram (`name_histogram`). Rotor records only the histogram —
//! atomics, no lock — and derives the summary from it when scraped: same labels, same
//! `_sum` and `_count`, quantiles 0.5 / 0.99 / 0.999 interpolated linearly inside the
//! bucket that holds them (so they are as precise as the buckets, not streaming
//! estimates over a sliding window as in Go's client).

use prometheus::proto::{Metric, MetricFamily, MetricType, Quantile, Summary};

/// Centrifugo's summary objectives.
const QUANTILES: [f64; 3] = [0.5, 0.99, 0.999];

/// `families` plus, before every `*_histogram` histogram, its summary twin.
pub(super) fn with_summaries(families: Vec<MetricFamily>) -> Vec<MetricFamily> {
    let mut out = Vec::with_capacity(families.len() * 2);
    for f in families {
        if f.get_field_type() == MetricType::HISTOGRAM
            && let Some(base) = f.name().strip_suffix("_histogram")
        {
            out.push(summary_of(&f, base));
        }
        out.push(f);
    }
    out
}

fn summary_of(f: &MetricFamily, name: &str) -> MetricFamily {
    let mut s = MetricFamily::default();
    s.set_name(name.to_string());
    s.set_help(f.help().replace("histogram", "summary"));
    s.set_field_type(MetricType::SUMMARY);
    let metrics = f
        .get_metric()
        .iter()
        .map(|m| {
            let h = m.get_histogram();
            let bounds: Vec<(f64, u64)> =
                h.get_bucket().iter().map(|b| (b.upper_bound(), b.cumulative_count())).collect();
            let mut sum = Summary::default();
            sum.set_sample_count(h.get_sample_count());
            sum.set_sample_sum(h.get_sample_sum());
            let qs = QUANTILES
                .iter()
                .map(|&q| {
                    let mut x = Quantile::default();
                    x.set_quantile(q);
                    x.set_value(quantile(&bounds, h.get_sample_count(), q));
                    x
                })
                .collect();
            sum.set_quantile(qs);
            let mut out = Metric::from_label(m.get_label().to_vec());
            out.set_summary(sum);
            out
        })
        .collect();
    s.set_metric(metrics);
    s
}

/// The `q` quantile of `count` observations in cumulative `buckets` (upper bound,
/// count ≤ bound), linear within the bucket that holds it; NaN without observations
/// (as Go's summaries report), the last finite bound when it lies past every bucket.
pub(super) fn quantile(buckets: &[(f64, u64)], count: u64, q: f64) -> f64 {
    if count == 0 {
        return f64::NAN;
    }
    let rank = q * count as f64;
    let mut prev = (0.0, 0u64);
    for &(bound, cum) in buckets {
        if cum as f64 >= rank && cum > prev.1 {
            let within = (rank - prev.1 as f64) / (cum - prev.1) as f64;
            return prev.0 + (bound - prev.0) * within.clamp(0.0, 1.0);
        }
        prev = (bound, cum);
    }
    prev.0
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_from_buckets() {
        let b = [(1.0, 0), (2.0, 10), (4.0, 20)];
        assert!(quantile(&b, 0, 0.5).is_nan());
        assert_eq!(quantile(&b, 20, 0.5), 2.0);
        assert_eq!(quantile(&b, 20, 0.25), 1.5);
        assert_eq!(quantile(&b, 20, 0.75), 3.0);
        // Observations above the last bound: the last bound.
        assert_eq!(quantile(&b, 30, 0.99), 4.0);
    }
}
