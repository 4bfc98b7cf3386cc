//! The HTML report's charts, as inline SVG strings: conversion per build with Wilson
//! intervals, a forest plot of every check's Δ against its threshold, and the two funnels
//! side by side.
//!
//! Drawing is plain string building: no JavaScript, no fonts or images to fetch, no
//! `xmlns` (inline SVG in HTML needs none, and the report must hold no external URL).
//! Colours come from CSS classes the page's stylesheet defines (`bar-b`, `bar-c`, `ci`,
//! `thr`, `forbidden`, `zero`, `grid`, `muted`, `st-pass|warn|fail|off`), so the charts follow
//! the page's light or dark theme. Every text from outside goes through [`esc`].

use std::fmt::Write as _;

use super::{check_name, fmt_delta, fmt_percent, CheckStatus};
use crate::compare::{CheckResult, Direction, Funnel, Proportion};

/// Escapes text for HTML/SVG content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts `s` to `max` characters with an ellipsis.
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A linear map from a data domain onto pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Scale {
    fn at(&self, x: f64) -> f64 {
        let span = self.d1 - self.d0;
        let t = if span > 0.0 {
            (x - self.d0) / span
        } else {
            0.5
        };
        self.p0 + t.clamp(0.0, 1.0) * (self.p1 - self.p0)
    }
}

/// A percentage for axis ticks: "20%", "7.5%".
fn tick_percent(x: f64) -> String {
    let s = format!("{:.1}", 100.0 * x);
    format!("{}%", s.trim_end_matches(".0"))
}

fn svg_open(out: &mut String, width: f64, height: f64, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="{}">"#,
        esc(label)
    );
}

/// Horizontal bars of each build's conversion rate with its Wilson interval as whiskers.
pub(crate) fn conversion_chart(
    baseline: Option<&Proportion>,
    candidate: Option<&Proportion>,
) -> Option<String> {
    let rows: Vec<(&str, &str, &Proportion)> = [
        ("baseline", "bar-b", baseline),
        ("candidate", "bar-c", candidate),
    ]
    .into_iter()
    .filter_map(|(name, class, p)| p.map(|p| (name, class, p)))
    .collect();
    if rows.is_empty() {
        return None;
    }
    let top = rows
        .iter()
        .map(|(_, _, p)| p.interval.upper.max(p.estimate))
        .fold(0.0f64, f64::max);
    let max_x = ((top * 1.05 * 10.0).ceil() / 10.0).clamp(0.1, 1.0);
    let (left, plot, right, row_h) = (90.0, 360.0, 200.0, 40.0);
    let width = left + plot + right;
    let height = 30.0 + row_h * rows.len() as f64 + 24.0;
    let x = Scale {
        d0: 0.0,
        d1: max_x,
        p0: left,
        p1: left + plot,
    };
    let mut s = String::new();
    svg_open(
        &mut s,
        width,
        height,
        "Conversion rate per build with 95% Wilson intervals",
    );
    let axis_y = 30.0 + row_h * rows.len() as f64;
    for i in 0..=4 {
        let v = max_x * f64::from(i) / 4.0;
        let px = x.at(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{px:.1}" y1="20" x2="{px:.1}" y2="{axis_y:.1}"/><text class="muted" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            axis_y + 16.0,
            tick_percent(v)
        );
    }
    for (i, (name, class, p)) in rows.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let mid = y + row_h / 2.0 - 4.0;
        let (lo, hi) = (x.at(p.interval.lower), x.at(p.interval.upper));
        let _ = write!(
            s,
            r#"<g><title>{name}: {} converted of {} sessions, {} (95% Wilson interval {} to {})</title>"#,
            p.successes,
            p.trials,
            fmt_percent(p.estimate),
            fmt_percent(p.interval.lower),
            fmt_percent(p.interval.upper)
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{name}</text>"#,
            left - 8.0,
            mid + 4.0
        );
        let _ = write!(
            s,
            r#"<rect class="{class}" x="{left:.1}" y="{:.1}" width="{:.1}" height="20"/>"#,
            mid - 10.0,
            (x.at(p.estimate) - left).max(0.5)
        );
        let _ = write!(
            s,
            r#"<line class="ci" x1="{lo:.1}" y1="{mid:.1}" x2="{hi:.1}" y2="{mid:.1}"/><line class="ci" x1="{lo:.1}" y1="{:.1}" x2="{lo:.1}" y2="{:.1}"/><line class="ci" x1="{hi:.1}" y1="{:.1}" x2="{hi:.1}" y2="{:.1}"/>"#,
            mid - 6.0,
            mid + 6.0,
            mid - 6.0,
            mid + 6.0
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{} [{}, {}] ({}/{})</text></g>"#,
            left + plot + 10.0,
            mid + 4.0,
            fmt_percent(p.estimate),
            fmt_percent(p.interval.lower),
            fmt_percent(p.interval.upper),
            p.successes,
            p.trials
        );
    }
    s.push_str("</svg>");
    Some(s)
}

/// One row per check: Δ's interval and estimate, the zero line, the threshold (dashed) and
/// the forbidden region beyond it (shaded). Each row has its own scale, since conversion
/// (percentage points) and signals (count per session) do not share units.
pub(crate) fn forest_plot(
    checks: &[CheckResult],
    status: impl Fn(&CheckResult) -> CheckStatus,
) -> Option<String> {
    if checks.is_empty() {
        return None;
    }
    let (left, plot, right, row_h) = (160.0, 360.0, 170.0, 56.0);
    let width = left + plot + right;
    let height = row_h * checks.len() as f64 + 8.0;
    let mut s = String::new();
    svg_open(
        &mut s,
        width,
        height,
        "Change per check: candidate minus baseline with its interval, against the allowed threshold",
    );
    for (i, c) in checks.iter().enumerate() {
        let st = status(c);
        let y0 = row_h * i as f64 + 4.0;
        let mid = y0 + 30.0;
        let m = &c.metric;
        let points = [
            c.interval.lower,
            c.interval.upper,
            c.estimate,
            c.threshold,
            0.0,
        ];
        let lo = points.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = points.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo {
            hi - lo
        } else {
            c.tolerance.max(1e-3)
        };
        let x = Scale {
            d0: lo - 0.15 * span,
            d1: hi + 0.15 * span,
            p0: left,
            p1: left + plot,
        };
        let _ = write!(
            s,
            r#"<g class="row {}"><title>{}</title>"#,
            if st == CheckStatus::Off {
                "off"
            } else {
                "gated"
            },
            esc(&c.explanation)
        );
        if i > 0 {
            let _ = write!(
                s,
                r#"<line class="grid" x1="0" y1="{y0:.1}" x2="{width:.0}" y2="{y0:.1}"/>"#
            );
        }
        // Forbidden region beyond the threshold.
        let t = x.at(c.threshold);
        let (f0, f1) = match c.direction {
            Direction::HigherIsBetter => (left, t),
            Direction::LowerIsBetter => (t, left + plot),
        };
        let _ = write!(
            s,
            r#"<rect class="forbidden" x="{f0:.1}" y="{:.1}" width="{:.1}" height="34"/>"#,
            y0 + 12.0,
            (f1 - f0).max(0.0)
        );
        // Zero and threshold lines with their labels.
        let z = x.at(0.0);
        let _ = write!(
            s,
            r#"<line class="zero" x1="{z:.1}" y1="{:.1}" x2="{z:.1}" y2="{:.1}"/>"#,
            y0 + 12.0,
            y0 + 46.0
        );
        let _ = write!(
            s,
            r#"<line class="thr" x1="{t:.1}" y1="{:.1}" x2="{t:.1}" y2="{:.1}"/>"#,
            y0 + 8.0,
            y0 + 50.0
        );
        let anchor = match c.direction {
            Direction::HigherIsBetter => "start",
            Direction::LowerIsBetter => "end",
        };
        let _ = write!(
            s,
            r#"<text class="thr-label" x="{t:.1}" y="{:.1}" text-anchor="{anchor}">limit {}</text>"#,
            y0 + 8.0,
            fmt_delta(m, c.threshold)
        );
        if (z - t).abs() > 60.0 {
            let _ = write!(
                s,
                r#"<text class="muted" x="{z:.1}" y="{:.1}" text-anchor="middle">0</text>"#,
                y0 + 8.0
            );
        }
        // The interval and the estimate.
        let (a, b) = (x.at(c.interval.lower), x.at(c.interval.upper));
        let class = format!("st-{}", st.as_str());
        let _ = write!(
            s,
            r#"<line class="ci {class}" x1="{a:.1}" y1="{mid:.1}" x2="{b:.1}" y2="{mid:.1}"/><line class="ci {class}" x1="{a:.1}" y1="{:.1}" x2="{a:.1}" y2="{:.1}"/><line class="ci {class}" x1="{b:.1}" y1="{:.1}" x2="{b:.1}" y2="{:.1}"/><circle class="pt {class}" cx="{:.1}" cy="{mid:.1}" r="5"/>"#,
            mid - 6.0,
            mid + 6.0,
            mid - 6.0,
            mid + 6.0,
            x.at(c.estimate)
        );
        let _ = write!(
            s,
            r#"<text class="muted small" x="{a:.1}" y="{:.1}" text-anchor="end">{}</text><text class="muted small" x="{b:.1}" y="{:.1}" text-anchor="start">{}</text>"#,
            mid + 18.0,
            fmt_delta(m, c.interval.lower),
            mid + 18.0,
            fmt_delta(m, c.interval.upper)
        );
        // Labels: the check on the left, the result on the right.
        let _ = write!(
            s,
            r#"<text x="8" y="{:.1}">{}</text><text class="muted small" x="8" y="{:.1}">level {}</text>"#,
            mid - 2.0,
            esc(&short(check_name(m), 22)),
            mid + 13.0,
            c.level
        );
        let _ = write!(
            s,
            r#"<text class="{class} strong" x="{:.1}" y="{:.1}">{}</text><text class="muted small" x="{:.1}" y="{:.1}">Δ {}</text></g>"#,
            left + plot + 14.0,
            mid - 2.0,
            match st {
                CheckStatus::Off => "off".to_string(),
                _ => st.as_str().to_uppercase(),
            },
            left + plot + 14.0,
            mid + 13.0,
            fmt_delta(m, c.estimate)
        );
    }
    s.push_str("</svg>");
    Some(s)
}

/// Grouped bars: for each funnel step, the share of users who reached it on each build.
pub(crate) fn funnel_chart(baseline: &Funnel, candidate: &Funnel) -> Option<String> {
    let steps = baseline.steps.len().min(candidate.steps.len());
    if steps == 0 {
        return None;
    }
    let (left, top, plot_h, bar_w, gap) = (48.0, 34.0, 170.0, 26.0, 30.0);
    let group_w = 2.0 * bar_w + gap;
    let width = (left + group_w * steps as f64 + 10.0).max(360.0);
    let height = top + plot_h + 44.0;
    let y = Scale {
        d0: 0.0,
        d1: 1.0,
        p0: top + plot_h,
        p1: top,
    };
    let mut s = String::new();
    svg_open(
        &mut s,
        width,
        height,
        "Funnel: share of users reaching each step, baseline and candidate",
    );
    let _ = write!(
        s,
        r#"<rect class="bar-b" x="{left:.0}" y="6" width="12" height="12"/><text x="{:.0}" y="16">baseline</text><rect class="bar-c" x="{:.0}" y="6" width="12" height="12"/><text x="{:.0}" y="16">candidate</text>"#,
        left + 16.0,
        left + 100.0,
        left + 116.0
    );
    for i in 0..=4 {
        let v = f64::from(i) / 4.0;
        let py = y.at(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left:.0}" y1="{py:.1}" x2="{width:.0}" y2="{py:.1}"/><text class="muted" x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            py + 4.0,
            tick_percent(v)
        );
    }
    for k in 0..steps {
        let b = &baseline.steps[k];
        let c = &candidate.steps[k];
        let gx = left + gap / 2.0 + group_w * k as f64;
        let _ = write!(
            s,
            r#"<g><title>{}: baseline {} of {} ({}), candidate {} of {} ({})</title>"#,
            esc(&b.name),
            b.reached,
            baseline.users,
            fmt_percent(b.of_start),
            c.reached,
            candidate.users,
            fmt_percent(c.of_start)
        );
        for (j, (class, step)) in [("bar-b", b), ("bar-c", c)].into_iter().enumerate() {
            let bx = gx + bar_w * j as f64;
            let by = y.at(step.of_start);
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{bx:.1}" y="{by:.1}" width="{:.1}" height="{:.1}"/><text class="small" x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}</text>"#,
                bar_w - 2.0,
                (top + plot_h - by).max(0.0),
                bx + bar_w / 2.0 - 1.0,
                by - 4.0,
                100.0 * step.of_start
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
            gx + bar_w,
            top + plot_h + 18.0,
            esc(&short(&b.name, 12))
        );
    }
    s.push_str("</svg>");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{example, Example};

    #[test]
    fn charts_escape_outside_text() {
        let mut r = example(Example::Fail);
        let f = r.baseline.as_mut().unwrap().funnel.as_mut().unwrap();
        f.steps[0].name = "<script>alert(1)</script>".into();
        let b = r.baseline.as_ref().unwrap().funnel.as_ref().unwrap();
        let c = r.candidate.as_ref().unwrap().funnel.as_ref().unwrap();
        let svg = funnel_chart(b, c).unwrap();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn forest_rows_and_scales() {
        let r = example(Example::Fail);
        let svg = forest_plot(&r.checks, |c| r.check_status(c)).unwrap();
        assert_eq!(svg.matches("<g class=\"row").count(), r.checks.len());
        assert!(svg.contains("limit -2.00 pp"));
        assert!(svg.contains("st-fail") && svg.contains("st-warn") && svg.contains("st-off"));
        assert!(forest_plot(&[], |_| CheckStatus::Pass).is_none());
        let sc = Scale {
            d0: -1.0,
            d1: 1.0,
            p0: 0.0,
            p1: 100.0,
        };
        assert_eq!(sc.at(0.0), 50.0);
        assert_eq!(sc.at(5.0), 100.0);
        assert_eq!(tick_percent(0.075), "7.5%");
        assert_eq!(tick_percent(0.2), "20%");
        assert_eq!(short("abcdef", 4), "abc…");
    }

    #[test]
    fn conversion_chart_needs_a_build() {
        assert!(conversion_chart(None, None).is_none());
        let r = example(Example::Pass);
        let svg = conversion_chart(Some(&r.baseline.as_ref().unwrap().conversion), None).unwrap();
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains("baseline") && !svg.contains("candidate"));
    }
}
