//! `--plot FILE.svg`: survey latency (p50 ns per connection, one line per probe) and
//! memory per connection against the number of connections, as a self-contained SVG
//! with two panels and a logarithmic N axis.

use std::fmt::Write;

use super::Report;

const W: f64 = 460.0;
const H: f64 = 300.0;
const PAD_L: f64 = 64.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 36.0;
const PAD_B: f64 = 44.0;
const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// One line of a panel.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
}

/// Renders the reports (one per N, in any order) as an SVG document.
pub(super) fn svg(reports: &[Report]) -> String {
    let mut reports: Vec<&Report> = reports.iter().collect();
    reports.sort_by_key(|r| r.connections);
    let mut latency: Vec<Series> = Vec::new();
    for r in &reports {
        for t in &r.survey {
            let label = format!("{} ({})", t.name, t.kind);
            let point = (r.connections as f64, t.ns_per_connection.p50);
            match latency.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push(point),
                None => latency.push(Series { label, points: vec![point] }),
            }
        }
    }
    let memory = vec![Series {
        label: "RSS delta / connection".into(),
        points: reports.iter().map(|r| (r.connections as f64, r.memory_bytes_per_connection)).collect(),
    }];
    let threads = reports.first().map_or(0, |r| r.threads);
    let mut out = String::new();
    let total_w = 2.0 * W + 260.0;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    panel(&mut out, 0.0, &format!("survey p50, ns per connection ({threads} threads)"), &latency, true);
    panel(&mut out, W, "memory per connection, bytes", &memory, false);
    for (i, s) in latency.iter().enumerate() {
        let y = PAD_T + 14.0 * i as f64;
        let c = COLORS[i % COLORS.len()];
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
            2.0 * W + 4.0,
            y - 9.0,
            2.0 * W + 18.0,
            y,
            escape(&s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, x0: f64, title: &str, series: &[Series], log_y: bool) {
    let mut xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
    let (lo, hi) = log_range(&xs);
    // The y axis: linear from 0 to a round maximum, or decades for values that span
    // orders of magnitude (bytecode next to the interpreter).
    let (ylo, yhi) = if log_y {
        let min = ys.iter().copied().filter(|&y| y > 0.0).fold(f64::INFINITY, f64::min);
        let max = ys.iter().copied().fold(0.0, f64::max);
        let lo = if min.is_finite() { min.log10().floor() } else { 0.0 };
        (lo, max.log10().ceil().max(lo + 1.0))
    } else {
        (0.0, nice_max(ys.iter().copied().fold(0.0, f64::max)))
    };
    let scale_y = |y: f64| if log_y { y.max(10f64.powf(ylo)).log10() } else { y };
    let px = |x: f64| x0 + PAD_L + (x.log10() - lo) / (hi - lo) * (W - PAD_L - PAD_R);
    let py = |y: f64| H - PAD_B - (scale_y(y) - ylo) / (yhi - ylo) * (H - PAD_T - PAD_B);
    let _ = write!(out, r#"<text x="{}" y="20" font-size="13">{}</text>"#, x0 + PAD_L, escape(title));
    let _ = write!(
        out,
        r##"<path d="M{a} {t} V{b} H{r}" stroke="#333" fill="none"/>"##,
        a = x0 + PAD_L,
        t = PAD_T,
        b = H - PAD_B,
        r = x0 + W - PAD_R
    );
    let ticks: Vec<f64> = if log_y {
        (ylo as i32..=yhi as i32).map(|d| 10f64.powi(d)).collect()
    } else {
        (0..=4).map(|i| yhi * f64::from(i) / 4.0).collect()
    };
    for v in ticks {
        let _ = write!(
            out,
            r##"<line x1="{a}" x2="{r}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end">{}</text>"##,
            fmt_num(v),
            a = x0 + PAD_L,
            r = x0 + W - PAD_R,
            y = py(v),
            tx = x0 + PAD_L - 4.0,
            ty = py(v) + 4.0
        );
    }
    // x ticks at the measured sizes.
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(x),
            H - PAD_B + 16.0,
            fmt_num(x)
        );
    }
    let axis = if log_y { "connections (log scale; y log scale)" } else { "connections (log scale)" };
    let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="middle">{axis}</text>"#, x0 + W / 2.0, H - 8.0);
    for (i, s) in series.iter().enumerate() {
        let c = if series.len() > 1 { COLORS[i % COLORS.len()] } else { "#333" };
        let path: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        if path.len() > 1 {
            let _ = write!(out, r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#, path.join(" "));
        }
        for &(x, y) in &s.points {
            let _ = write!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"/>"#, px(x), py(y));
        }
    }
}

/// log10 range of the x values, with a margin.
fn log_range(xs: &[f64]) -> (f64, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min).max(1.0).log10();
    let hi = xs.iter().copied().fold(0.0, f64::max).max(1.0).log10();
    // A margin of a tenth of the span (at least a tenth of a decade) each side.
    let margin = ((hi - lo) / 10.0).max(0.1);
    (lo - margin, hi + margin)
}

/// A round number ≥ `v` (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|&c| c >= v).unwrap_or(10.0 * p)
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 && (v / 1e6).fract() == 0.0 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 && (v / 1e3).fract() == 0.0 {
        format!("{}k", v / 1e3)
    } else if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(700.0), 1000.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(fmt_num(100_000.0), "100k");
        assert_eq!(fmt_num(2.5), "2.50");
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
