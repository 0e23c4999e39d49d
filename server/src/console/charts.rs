//! Charts of a device's history as inline SVG, drawn on the server (no
//! JavaScript, no external library): samples folded into at most N time
//! buckets (min, mean, max of each), drawn as a mean line over a min–max
//! band, with the time axis and value labels as text.

use std::fmt::Write;

/// One sample: when (ms since the Unix epoch) and the value.
pub type Sample = (u64, f64);

/// Samples of one time bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start of the bucket, ms.
    pub start_ms: u64,
    /// Smallest value in it.
    pub min: f64,
    /// Mean value.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
    /// Samples in it (at least 1).
    pub count: u32,
}

/// Fold `samples` (any order) within `[from_ms, to_ms)` into at most
/// `buckets` equal time buckets; empty buckets are left out (a gap in the
/// line is a gap in the data). Non-finite values are ignored.
pub fn downsample(samples: &[Sample], from_ms: u64, to_ms: u64, buckets: usize) -> Vec<Bucket> {
    if buckets == 0 || to_ms <= from_ms {
        return Vec::new();
    }
    let span = to_ms - from_ms;
    let width = span.div_ceil(buckets as u64).max(1);
    let mut out: Vec<Option<Bucket>> = vec![None; buckets];
    for &(t, v) in samples {
        if t < from_ms || t >= to_ms || !v.is_finite() {
            continue;
        }
        let i = usize::try_from((t - from_ms) / width)
            .unwrap_or(buckets - 1)
            .min(buckets - 1);
        let b = out[i].get_or_insert(Bucket {
            start_ms: from_ms + i as u64 * width,
            min: v,
            mean: 0.0,
            max: v,
            count: 0,
        });
        b.min = b.min.min(v);
        b.max = b.max.max(v);
        // Running mean: no overflow, no precision cliff for large counts.
        b.count += 1;
        b.mean += (v - b.mean) / f64::from(b.count);
    }
    out.into_iter().flatten().collect()
}

/// How a chart is drawn.
#[derive(Debug, Clone)]
pub struct ChartSpec<'a> {
    /// Title (also the SVG's accessible name).
    pub title: &'a str,
    /// Unit shown with values (`%`, `records`).
    pub unit: &'a str,
    /// The time range shown, ms.
    pub from_ms: u64,
    /// End of the range, ms.
    pub to_ms: u64,
    /// A fixed value range (battery: 0–100), else from the data.
    pub y_range: Option<(f64, f64)>,
}

const W: f64 = 640.0;
const H: f64 = 160.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The chart as an `<svg>` element (a "no data" note when `buckets` is empty).
pub fn svg(spec: &ChartSpec<'_>, buckets: &[Bucket]) -> String {
    let mut s = String::new();
    let title = esc(spec.title);
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>"#
    );
    let (lo, hi) = spec.y_range.unwrap_or_else(|| {
        let lo = buckets.iter().map(|b| b.min).fold(f64::INFINITY, f64::min);
        let hi = buckets
            .iter()
            .map(|b| b.max)
            .fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi.is_finite() {
            if hi > lo {
                (lo.min(0.0), hi)
            } else {
                (lo.min(0.0), lo + 1.0)
            }
        } else {
            (0.0, 1.0)
        }
    });
    let plot_h = H - TOP - BOTTOM;
    let plot_w = W - LEFT - 4.0;
    let span = (spec.to_ms.saturating_sub(spec.from_ms)).max(1) as f64;
    let x = |t: u64| LEFT + (t.saturating_sub(spec.from_ms)) as f64 / span * plot_w;
    let y = |v: f64| TOP + plot_h - ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * plot_h;
    // Axes and labels.
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}"/><line class="axis" x1="{LEFT}" y1="{b}" x2="{W}" y2="{b}"/>"#,
        b = TOP + plot_h
    );
    for v in [lo, hi] {
        let _ = write!(
            s,
            r#"<text class="label" x="{}" y="{}" text-anchor="end">{} {}</text>"#,
            LEFT - 4.0,
            y(v) + 4.0,
            fmt_value(v),
            esc(spec.unit)
        );
    }
    for (t, anchor) in [(spec.from_ms, "start"), (spec.to_ms, "end")] {
        let _ = write!(
            s,
            r#"<text class="label" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
            x(t),
            H - 4.0,
            crate::controller::rfc3339(t).get(..16).unwrap_or_default()
        );
    }
    if buckets.is_empty() {
        let _ = write!(
            s,
            r#"<text class="nodata" x="{}" y="{}" text-anchor="middle">no data in this range</text></svg>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
        return s;
    }
    // Min–max band, then the mean line (and points: one bucket is a dot).
    let mut band = String::new();
    for b in buckets {
        let _ = write!(band, "{:.1},{:.1} ", x(b.start_ms), y(b.max));
    }
    for b in buckets.iter().rev() {
        let _ = write!(band, "{:.1},{:.1} ", x(b.start_ms), y(b.min));
    }
    let _ = write!(s, r#"<polygon class="band" points="{}"/>"#, band.trim_end());
    let mut line = String::new();
    for b in buckets {
        let _ = write!(line, "{:.1},{:.1} ", x(b.start_ms), y(b.mean));
    }
    let _ = write!(
        s,
        r#"<polyline class="line" points="{}"/>"#,
        line.trim_end()
    );
    if let Some(last) = buckets.last() {
        let _ = write!(
            s,
            r#"<circle class="last" cx="{:.1}" cy="{:.1}" r="3"><title>{} {}</title></circle>"#,
            x(last.start_ms),
            y(last.mean),
            fmt_value(last.mean),
            esc(spec.unit)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn buckets_keep_min_mean_max_and_leave_gaps() {
        let samples = [(0, 10.0), (5, 20.0), (10, 30.0), (35, 5.0), (1000, 1.0)];
        // Buckets of 10 ms: [0,10) two samples, [10,20) one, [20,30) none
        // (a gap, left out), [30,40) one; 1000 is out of range.
        let b = downsample(&samples, 0, 40, 4);
        assert_eq!(b.len(), 3, "{b:?}");
        assert_eq!(
            (b[0].start_ms, b[0].min, b[0].max, b[0].count),
            (0, 10.0, 20.0, 2)
        );
        assert!((b[0].mean - 15.0).abs() < 1e-9);
        assert_eq!((b[1].start_ms, b[1].mean, b[1].count), (10, 30.0, 1));
        assert_eq!((b[2].start_ms, b[2].mean), (30, 5.0));
        assert!(downsample(&samples, 40, 40, 4).is_empty());
        assert!(downsample(&samples, 0, 40, 0).is_empty());
    }

    #[test]
    fn svg_is_well_formed_text_with_labels_and_escapes() {
        let spec = ChartSpec {
            title: "Battery <&>",
            unit: "%",
            from_ms: 0,
            to_ms: 3_600_000,
            y_range: Some((0.0, 100.0)),
        };
        let empty = svg(&spec, &[]);
        assert!(empty.contains("no data") && empty.ends_with("</svg>"));
        assert!(empty.contains("Battery &lt;&amp;&gt;") && !empty.contains("<&>"));
        let b = downsample(
            &[(0, 90.0), (1_800_000, 80.0), (3_599_999, 70.0)],
            0,
            3_600_000,
            60,
        );
        let drawn = svg(&spec, &b);
        assert!(drawn.contains("<polyline") && drawn.contains("<polygon"));
        assert!(drawn.contains(">100 %<") && drawn.contains(">0 %<"));
        assert_eq!(drawn.matches("<svg").count(), 1);
    }

    proptest! {
        #[test]
        fn every_sample_in_range_is_counted_once_and_bounded(
            samples in proptest::collection::vec((0u64..100_000, -1e6f64..1e6), 0..400),
            buckets in 1usize..200,
        ) {
            let b = downsample(&samples, 0, 100_000, buckets);
            prop_assert!(b.len() <= buckets);
            let total: u32 = b.iter().map(|b| b.count).sum();
            prop_assert_eq!(total as usize, samples.len());
            for w in b.windows(2) {
                prop_assert!(w[0].start_ms < w[1].start_ms);
            }
            for k in &b {
                prop_assert!(k.min <= k.mean + 1e-6 && k.mean <= k.max + 1e-6);
            }
            let points = svg(&ChartSpec { title: "t", unit: "", from_ms: 0, to_ms: 100_000, y_range: None }, &b);
            prop_assert!(!points.contains("NaN") && !points.contains("inf"));
        }
    }
}
