//! `report/index.html`: the self-contained report for people.
//!
//! One file with inline CSS and inline SVG charts (`charts`), no JavaScript and no
//! external URL: it opens from a CI artifact, offline. The page is `templates/report.html`,
//! embedded with `include_str!` and rendered by tera 1.20 under a `.html` name, so every
//! value is HTML-escaped unless the template says `| safe`. Only three kinds of values are
//! marked safe: the SVG charts (built here with every outside text escaped), and the
//! results JSON in `<script type="application/json">`, where `<`, `>` and `&` are written as
//! `\u003c`-style escapes so no string inside can close the script element.
//!
//! Elements with ids `verdict` (the banner) and `charts` (the figures) are stable, for
//! browser tests.

use serde::Serialize;
use tera::{Context, Tera};

use super::charts::{conversion_chart, esc, forest_plot, funnel_chart};
use super::markdown::sequential_words;
use super::{
    check_name, fmt_allowed, fmt_confidence, fmt_delta, fmt_duration, fmt_interval, fmt_percent,
    fmt_signals, fmt_status, fmt_value, to_json, ReportError, RunResults,
};
use crate::compare::{BuildSummary, MeanEstimate};

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("templates/report.html");

#[derive(Serialize)]
struct View {
    title: String,
    status_word: &'static str,
    status_class: &'static str,
    headline: String,
    sequential: Option<String>,
    scenario: String,
    infrastructure_errors: Vec<String>,
    conversion_svg: Option<String>,
    forest_svg: Option<String>,
    funnel_svg: Option<String>,
    checks: Vec<CheckRow>,
    builds: Vec<BuildRow>,
    signals: Vec<SignalRow>,
    funnel: Vec<FunnelRow>,
    sessions: Vec<SessionRow>,
    run: Vec<Fact>,
    tool_version: String,
    results_json: String,
}

#[derive(Serialize)]
struct Fact {
    key: &'static str,
    value: String,
}

#[derive(Serialize)]
struct CheckRow {
    name: String,
    level: String,
    baseline: String,
    candidate: String,
    delta: String,
    interval: String,
    confidence: String,
    allowed: String,
    status: String,
    status_class: &'static str,
    explanation: String,
    p_value: String,
    p_threshold: String,
    method: String,
}

#[derive(Serialize)]
struct BuildRow {
    name: &'static str,
    sessions: String,
    conversion: String,
    interval: String,
    time_to_convert: String,
}

#[derive(Serialize)]
struct SignalRow {
    name: String,
    baseline: String,
    candidate: String,
}

#[derive(Serialize)]
struct FunnelRow {
    name: String,
    baseline: String,
    candidate: String,
    change: String,
}

#[derive(Serialize)]
struct SessionRow {
    user: usize,
    build: String,
    session_id: String,
    converted: &'static str,
    signals: String,
    replay: Option<String>,
    replay_text: Option<String>,
}

/// Renders `report/index.html`.
pub fn render_html(results: &RunResults) -> Result<String, ReportError> {
    let view = view(results)?;
    let mut tera = Tera::default();
    tera.set_escape_fn(esc);
    tera.add_raw_template(TEMPLATE_NAME, TEMPLATE)
        .map_err(|e| ReportError::Template(format!("{e:?}")))?;
    let context =
        Context::from_serialize(&view).map_err(|e| ReportError::Template(e.to_string()))?;
    tera.render(TEMPLATE_NAME, &context)
        .map_err(|e| ReportError::Template(format!("{e:?}")))
}

fn view(r: &RunResults) -> Result<View, ReportError> {
    let status = r.status();
    let checks = r
        .checks
        .iter()
        .map(|c| {
            let m = &c.metric;
            let st = r.check_status(c);
            CheckRow {
                name: check_name(m).to_string(),
                level: c.level.to_string(),
                baseline: fmt_value(m, c.baseline),
                candidate: fmt_value(m, c.candidate),
                delta: fmt_delta(m, c.estimate),
                interval: fmt_interval(m, c.interval.lower, c.interval.upper),
                confidence: fmt_confidence(c.interval.confidence),
                allowed: fmt_allowed(c),
                status: fmt_status(c, st),
                status_class: st.as_str(),
                explanation: c.explanation.clone(),
                p_value: format!("{:.4} (Holm {:.4})", c.p_value, c.p_value_adjusted),
                p_threshold: format!("{:.4} (Holm {:.4})", c.p_threshold, c.p_threshold_adjusted),
                method: serde_json::to_value(c.method)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            }
        })
        .collect();

    let builds = [("baseline", &r.baseline), ("candidate", &r.candidate)]
        .into_iter()
        .map(|(name, s)| build_row(name, s.as_ref()))
        .collect();

    let mut signal_names: Vec<&String> = r
        .baseline
        .iter()
        .chain(r.candidate.iter())
        .flat_map(|s| s.signals.keys())
        .collect();
    signal_names.sort();
    signal_names.dedup();
    let mean = |s: &Option<BuildSummary>, name: &str| {
        s.as_ref()
            .and_then(|s| s.signals.get(name))
            .map_or("-".to_string(), fmt_mean)
    };
    let signals = signal_names
        .into_iter()
        .map(|name| SignalRow {
            name: name.clone(),
            baseline: mean(&r.baseline, name),
            candidate: mean(&r.candidate, name),
        })
        .collect();

    let funnels = (
        r.baseline.as_ref().and_then(|s| s.funnel.as_ref()),
        r.candidate.as_ref().and_then(|s| s.funnel.as_ref()),
    );
    let (funnel_svg, funnel) = match funnels {
        (Some(b), Some(c)) => (
            funnel_chart(b, c),
            b.steps
                .iter()
                .zip(&c.steps)
                .map(|(bs, cs)| FunnelRow {
                    name: bs.name.clone(),
                    baseline: format!("{} ({})", bs.reached, fmt_percent(bs.of_start)),
                    candidate: format!("{} ({})", cs.reached, fmt_percent(cs.of_start)),
                    change: format!("{:+.1} pp", 100.0 * (cs.of_start - bs.of_start)),
                })
                .collect(),
        ),
        _ => (None, Vec::new()),
    };

    let sessions = r
        .sessions
        .iter()
        .map(|s| {
            let link = s.replay.as_deref().filter(|p| is_relative_link(p));
            SessionRow {
                user: s.user,
                build: s.build.to_string(),
                session_id: s.session_id.clone(),
                converted: if s.converted { "yes" } else { "no" },
                signals: fmt_signals(&s.signals),
                replay: link.map(str::to_string),
                replay_text: s.replay.clone().filter(|_| link.is_none()),
            }
        })
        .collect();

    let mut run = vec![
        fact("scenario", r.scenario.clone()),
        fact("seed", r.seed.to_string()),
        fact("baseline", r.baseline_url.clone()),
        fact("candidate", r.candidate_url.clone()),
        fact("pairs", r.pairs.to_string()),
        fact(
            "confidence",
            format!(
                "{} (fail on inconclusive: {})",
                fmt_confidence(r.confidence),
                if r.fail_on_inconclusive { "yes" } else { "no" }
            ),
        ),
        fact("model", format!("{} ({})", r.model_path, r.model_hash)),
        fact("understudy", r.tool_version.clone()),
        fact("Chromium", r.chromium_version.clone()),
    ];
    if let Some(shard) = r.shard {
        run.push(fact("shard", format!("{shard} (0-based index/total)")));
    }
    run.push(fact("started", r.started.clone()));
    run.push(fact("finished", r.finished.clone()));
    run.push(fact("duration", fmt_duration(r.duration_ms)));

    Ok(View {
        title: format!("understudy: {} · {}", status.word(), r.scenario),
        status_word: status.word(),
        status_class: status.class(),
        headline: r.headline(),
        sequential: r.sequential.as_ref().map(sequential_words),
        scenario: r.scenario.clone(),
        infrastructure_errors: r.infrastructure_errors.clone(),
        conversion_svg: conversion_chart(
            r.baseline.as_ref().map(|s| &s.conversion),
            r.candidate.as_ref().map(|s| &s.conversion),
        ),
        forest_svg: forest_plot(&r.checks, |c| r.check_status(c)),
        funnel_svg,
        checks,
        builds,
        signals,
        funnel,
        sessions,
        run,
        tool_version: r.tool_version.clone(),
        results_json: script_json(&to_json(r)?),
    })
}

fn fact(key: &'static str, value: String) -> Fact {
    Fact { key, value }
}

fn build_row(name: &'static str, s: Option<&BuildSummary>) -> BuildRow {
    match s {
        None => BuildRow {
            name,
            sessions: "-".into(),
            conversion: "not enough sessions".into(),
            interval: String::new(),
            time_to_convert: "-".into(),
        },
        Some(s) => BuildRow {
            name,
            sessions: s.sessions.to_string(),
            conversion: format!(
                "{} ({}/{})",
                fmt_percent(s.conversion.estimate),
                s.conversion.successes,
                s.conversion.trials
            ),
            interval: format!(
                "[{}, {}] at {}",
                fmt_percent(s.conversion.interval.lower),
                fmt_percent(s.conversion.interval.upper),
                fmt_confidence(s.conversion.interval.confidence)
            ),
            time_to_convert: s.time_to_convert.map_or("-".into(), |t| {
                format!(
                    "median {}, p90 {} ({} converters)",
                    fmt_duration(t.median.max(0.0) as u64),
                    fmt_duration(t.p90.max(0.0) as u64),
                    t.converters
                )
            }),
        },
    }
}

fn fmt_mean(m: &MeanEstimate) -> String {
    format!(
        "{:.3} [{:.3}, {:.3}]",
        m.mean, m.interval.lower, m.interval.upper
    )
}

/// Whether a replay path may be a link: relative, no scheme, no protocol-relative `//`.
fn is_relative_link(p: &str) -> bool {
    let p = p.trim();
    !p.is_empty()
        && !p.starts_with('/')
        && !p.starts_with('\\')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
        && !p.split(['/', '?', '#']).next().unwrap_or("").contains(':')
}

/// JSON safe inside `<script type="application/json">`: `<`, `>`, `&` and the JavaScript
/// line separators as `\uXXXX` escapes. Outside strings, JSON has none of these characters,
/// so the text still parses to the same value.
pub(crate) fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{example, from_json, Example};

    #[test]
    fn links_only_for_relative_replays() {
        assert!(is_relative_link("replays/c-0017.html"));
        assert!(is_relative_link("../replays/x.html"));
        assert!(!is_relative_link("javascript:alert(1)"));
        assert!(!is_relative_link("https://evil.example/x"));
        assert!(!is_relative_link("//evil.example/x"));
        assert!(!is_relative_link("/etc/passwd"));
        assert!(!is_relative_link(" java\tscript:x"));
        assert!(!is_relative_link(""));
    }

    #[test]
    fn script_json_still_parses() {
        let mut r = example(Example::Fail);
        r.scenario = "</script><script>alert(1)</script> & \u{2028}".into();
        let json = script_json(&to_json(&r).unwrap());
        assert!(!json.contains("</script"));
        assert_eq!(from_json(&json).unwrap(), r);
    }

    #[test]
    fn the_page_renders_every_section() {
        let html = render_html(&example(Example::Fail)).unwrap();
        for needle in [
            "id=\"verdict\"",
            "id=\"charts\"",
            "FAILED",
            "<svg",
            "href=\"replays/c-0017.html\"",
            "rage_click",
            "sha256:9f2c",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        let html = render_html(&example(Example::InfrastructureError)).unwrap();
        assert!(html.contains("INFRASTRUCTURE ERROR") && html.contains("connection refused"));
    }

    #[test]
    fn a_run_without_data_still_renders() {
        let mut r = example(Example::InfrastructureError);
        r.baseline = None;
        r.candidate = None;
        r.checks.clear();
        r.sessions.clear();
        let html = render_html(&r).unwrap();
        assert!(html.contains("not enough sessions"));
        assert!(!html.contains("<svg"));
    }
}
