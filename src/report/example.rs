//! Fixed example results, for tests, snapshot fixtures and previews of the report formats.
//!
//! The numbers are written by hand (plausible, internally consistent, not computed by
//! `compare`), so the report snapshots change only when a report format does. Nothing in
//! them depends on the clock or the machine.

use std::collections::BTreeMap;

use crate::compare::{
    BuildSummary, Check, CheckResult, EstimateMethod, Funnel, FunnelStep, GateOutcome, Interval,
    Level, MeanEstimate, Metric, Pair, Proportion, SequentialCheck, SequentialDecision,
    SequentialStatus, StopReason, TimeToConvert, Verdict,
};

use super::{Build, FormatTag, RunResults, SessionRef, RESULTS_VERSION};

/// Which example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Example {
    /// Every gated check passes (one report-only check).
    Pass,
    /// Conversion drops beyond tolerance (error level: the run fails) and rage clicks rise
    /// (warn level: a warning).
    Fail,
    /// Too few pairs to decide conversion: inconclusive after the sequential rule ran out.
    Inconclusive,
    /// A passing gate whose run also hit browser and network errors.
    InfrastructureError,
}

/// Deterministic example results of the given kind.
pub fn example(kind: Example) -> RunResults {
    match kind {
        Example::Pass => pass(),
        Example::Fail => fail(),
        Example::Inconclusive => inconclusive(),
        Example::InfrastructureError => {
            let mut r = pass();
            r.infrastructure_errors = vec![
                "candidate: the browser crashed at user 17 (CDP websocket closed); the user was re-run".into(),
                "candidate: http://127.0.0.1:8081/ did not answer for 3 users: connection refused".into(),
            ];
            r
        }
    }
}

const STEPS: [&str; 5] = ["home", "product", "cart", "checkout", "confirmation"];
const Z95: f64 = 1.959_963_984_540_054;

fn base(pairs: usize) -> RunResults {
    RunResults {
        format: FormatTag,
        version: RESULTS_VERSION,
        tool_version: "0.1.0".into(),
        chromium_version: "156.0.7523.4".into(),
        seed: 1,
        model_path: "models/shop.json".into(),
        model_hash: "sha256:9f2c4be07d1a35e8b6c0f4a2d9e17b53c8a6f0e2d4b19c7a5e3f8d0b2c6a4e1f"
            .into(),
        scenario: "checkout".into(),
        baseline_url: "http://127.0.0.1:8080/".into(),
        candidate_url: "http://127.0.0.1:8081/".into(),
        shard: None,
        pairs,
        confidence: 0.95,
        fail_on_inconclusive: false,
        baseline: None,
        candidate: None,
        checks: Vec::new(),
        outcome: GateOutcome::from_verdicts([], false),
        sequential: None,
        funnel_steps: STEPS.iter().map(|s| s.to_string()).collect(),
        started: "2025-01-31T12:00:00Z".into(),
        finished: "2025-01-31T12:04:05Z".into(),
        duration_ms: 245_000,
        sessions: Vec::new(),
        infrastructure_errors: Vec::new(),
    }
}

/// A Wilson 95% proportion (closed form; the example's own arithmetic).
fn proportion(successes: u64, trials: u64) -> Proportion {
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Proportion {
        successes,
        trials,
        estimate: p,
        interval: interval(centre - half, centre + half, 0.95),
    }
}

fn interval(lower: f64, upper: f64, confidence: f64) -> Interval {
    Interval {
        lower,
        upper,
        confidence,
    }
}

fn mean(n: usize, mean: f64, std_dev: f64) -> MeanEstimate {
    let half = 1.966 * std_dev / (n as f64).sqrt();
    MeanEstimate {
        n,
        mean,
        std_dev,
        interval: interval(mean - half, mean + half, 0.95),
    }
}

fn funnel(reached: [u64; 5], users: u64) -> Funnel {
    let mut previous = users;
    let steps = STEPS
        .iter()
        .zip(reached)
        .map(|(name, at)| {
            let step = FunnelStep {
                name: name.to_string(),
                reached: at,
                of_start: at as f64 / users as f64,
                of_previous: (previous > 0).then(|| at as f64 / previous as f64),
                dropped: previous - at,
            };
            previous = at;
            step
        })
        .collect();
    Funnel { users, steps }
}

fn summary(
    users: u64,
    converted: u64,
    reached: [u64; 4],
    signals: &[(&str, f64, f64)],
    ttc: TimeToConvert,
) -> BuildSummary {
    let [a, b, c, d] = reached;
    BuildSummary {
        sessions: users as usize,
        conversion: proportion(converted, users),
        signals: signals
            .iter()
            .map(|&(name, m, sd)| (name.to_string(), mean(users as usize, m, sd)))
            .collect(),
        time_to_convert: Some(ttc),
        funnel: Some(funnel([a, b, c, d, converted], users)),
    }
}

struct Spec<'a> {
    check: Check,
    pairs: usize,
    baseline: f64,
    candidate: f64,
    ci: (f64, f64, f64),
    p: (f64, f64, f64, f64),
    verdict: Verdict,
    explanation: &'a str,
    discordant: Option<(u64, u64)>,
}

fn result(s: Spec<'_>) -> CheckResult {
    let method = match s.check.metric {
        Metric::Conversion => EstimateMethod::Tango,
        Metric::Signal(_) => EstimateMethod::PairedT,
    };
    CheckResult {
        threshold: s.check.threshold(),
        metric: s.check.metric,
        level: s.check.level,
        direction: s.check.direction,
        tolerance: s.check.tolerance,
        pairs: s.pairs,
        baseline: s.baseline,
        candidate: s.candidate,
        estimate: s.candidate - s.baseline,
        interval: interval(s.ci.0, s.ci.1, s.ci.2),
        method,
        p_value: s.p.0,
        p_value_adjusted: s.p.1,
        p_threshold: s.p.2,
        p_threshold_adjusted: s.p.3,
        discordant: s.discordant.map(|(b, c)| Pair::new(b, c)),
        verdict: s.verdict,
        explanation: s.explanation.into(),
    }
}

fn ttc(converters: usize, median: f64) -> TimeToConvert {
    TimeToConvert {
        converters,
        median,
        p90: median * 1.9,
        mean: median * 1.2,
    }
}

fn finish(mut r: RunResults) -> RunResults {
    r.outcome = GateOutcome::from_verdicts(
        r.checks.iter().map(|c| (c.level, c.verdict)),
        r.fail_on_inconclusive,
    );
    r
}

fn session(
    user: usize,
    build: Build,
    converted: bool,
    signals: &[(&str, u32)],
    replay: bool,
) -> SessionRef {
    let prefix = match build {
        Build::Baseline => "b",
        Build::Candidate => "c",
    };
    let session_id = format!("{prefix}-{user:04}");
    SessionRef {
        user,
        build,
        replay: replay.then(|| format!("replays/{session_id}.html")),
        session_id,
        converted,
        signals: signals
            .iter()
            .map(|&(n, c)| (n.to_string(), c))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn pass() -> RunResults {
    let mut r = base(400);
    r.baseline = Some(summary(
        400,
        120,
        [400, 290, 190, 140],
        &[
            ("dead_click", 0.11, 0.35),
            ("js_error", 0.02, 0.14),
            ("rage_click", 0.05, 0.22),
        ],
        ttc(120, 41_000.0),
    ));
    r.candidate = Some(summary(
        400,
        118,
        [400, 291, 188, 139],
        &[
            ("dead_click", 0.1025, 0.33),
            ("js_error", 0.02, 0.14),
            ("rage_click", 0.0525, 0.23),
        ],
        ttc(118, 40_200.0),
    ));
    r.checks = vec![
        result(Spec {
            check: Check::conversion_may_not_drop(0.02, Level::Error),
            pairs: 400,
            baseline: 0.30,
            candidate: 0.295,
            ci: (-0.0163, 0.0066, 0.9833),
            p: (0.4531, 1.0, 0.0021, 0.0042),
            verdict: Verdict::Pass,
            explanation: "conversion changed -0.50 pp (98.3% CI -1.63 pp to +0.66 pp): pass, within the allowed drop of 2.00 pp",
            discordant: Some((6, 4)),
        }),
        result(Spec {
            check: Check::signal_may_not_rise("rage_click", 0.05, Level::Error),
            pairs: 400,
            baseline: 0.05,
            candidate: 0.0525,
            ci: (-0.0121, 0.0171, 0.975),
            p: (0.6812, 1.0, 0.0003, 0.0009),
            verdict: Verdict::Pass,
            explanation: "rage_click per session changed +0.003 (97.5% CI -0.012 to +0.017): pass, within the allowed rise of 0.050",
            discordant: None,
        }),
        result(Spec {
            check: Check::signal_may_not_rise("js_error", 0.1, Level::Warn),
            pairs: 400,
            baseline: 0.02,
            candidate: 0.02,
            ci: (-0.0098, 0.0098, 0.95),
            p: (1.0, 1.0, 0.0001, 0.0004),
            verdict: Verdict::Pass,
            explanation: "js_error per session changed +0.000 (95% CI -0.010 to +0.010): pass, within the allowed rise of 0.100",
            discordant: None,
        }),
        result(Spec {
            check: Check::signal_may_not_rise("dead_click", 0.1, Level::Off),
            pairs: 400,
            baseline: 0.11,
            candidate: 0.1025,
            ci: (-0.0301, 0.0151, 0.95),
            p: (0.5140, 0.5140, 0.0001, 0.0001),
            verdict: Verdict::Pass,
            explanation: "report only: dead_click per session changed -0.007 (95% CI -0.030 to +0.015): pass, within the allowed rise of 0.100",
            discordant: None,
        }),
    ];
    r.sessions = vec![
        session(
            311,
            Build::Candidate,
            false,
            &[("dead_click", 2), ("rage_click", 1)],
            true,
        ),
        session(311, Build::Baseline, false, &[("dead_click", 2)], true),
    ];
    finish(r)
}

fn fail() -> RunResults {
    let mut r = base(400);
    r.baseline = Some(summary(
        400,
        120,
        [400, 290, 190, 140],
        &[
            ("dead_click", 0.11, 0.35),
            ("js_error", 0.02, 0.14),
            ("rage_click", 0.05, 0.22),
        ],
        ttc(120, 41_000.0),
    ));
    r.candidate = Some(summary(
        400,
        103,
        [400, 288, 186, 139],
        &[
            ("dead_click", 0.20, 0.52),
            ("js_error", 0.023, 0.15),
            ("rage_click", 0.25, 0.61),
        ],
        ttc(103, 47_500.0),
    ));
    r.checks = vec![
        result(Spec {
            check: Check::conversion_may_not_drop(0.02, Level::Error),
            pairs: 400,
            baseline: 0.30,
            candidate: 0.2575,
            ci: (-0.0644, -0.0231, 0.9833),
            p: (0.0004, 0.0012, 0.0011, 0.0033),
            verdict: Verdict::Fail,
            explanation: "conversion changed -4.25 pp (98.3% CI -6.44 pp to -2.31 pp): fail, worse than the allowed drop of 2.00 pp",
            discordant: Some((20, 3)),
        }),
        result(Spec {
            check: Check::signal_may_not_rise("rage_click", 0.05, Level::Warn),
            pairs: 400,
            baseline: 0.05,
            candidate: 0.25,
            ci: (0.1561, 0.2439, 0.975),
            p: (0.0001, 0.0003, 0.0001, 0.0003),
            verdict: Verdict::Fail,
            explanation: "rage_click per session changed +0.200 (97.5% CI +0.156 to +0.244): fail, worse than the allowed rise of 0.050",
            discordant: None,
        }),
        result(Spec {
            check: Check::signal_may_not_rise("js_error", 0.1, Level::Error),
            pairs: 400,
            baseline: 0.02,
            candidate: 0.023,
            ci: (-0.0116, 0.0176, 0.95),
            p: (0.7390, 0.7390, 0.0001, 0.0003),
            verdict: Verdict::Pass,
            explanation: "js_error per session changed +0.003 (95% CI -0.012 to +0.018): pass, within the allowed rise of 0.100",
            discordant: None,
        }),
        result(Spec {
            check: Check::signal_may_not_rise("dead_click", 0.1, Level::Off),
            pairs: 400,
            baseline: 0.11,
            candidate: 0.20,
            ci: (0.05, 0.13, 0.95),
            p: (0.0001, 0.0001, 0.6206, 0.6206),
            verdict: Verdict::Inconclusive,
            explanation: "report only: dead_click per session changed +0.090 (95% CI +0.050 to +0.130): inconclusive, the interval straddles the allowed rise of 0.100",
            discordant: None,
        }),
    ];
    r.sequential = Some(SequentialStatus {
        pairs: 400,
        decision: SequentialDecision::Stop(StopReason::ErrorCheckFailed),
        checks: Vec::new(),
    });
    r.sessions = vec![
        session(
            17,
            Build::Candidate,
            false,
            &[("dead_click", 2), ("rage_click", 6)],
            true,
        ),
        session(17, Build::Baseline, true, &[], true),
        session(
            203,
            Build::Candidate,
            false,
            &[("js_error", 1), ("rage_click", 4)],
            false,
        ),
        session(
            88,
            Build::Candidate,
            false,
            &[("failed_request", 2), ("repeated_request", 3)],
            true,
        ),
    ];
    finish(r)
}

fn inconclusive() -> RunResults {
    let mut r = base(100);
    r.baseline = Some(summary(
        100,
        30,
        [100, 72, 47, 35],
        &[("rage_click", 0.05, 0.22)],
        ttc(30, 40_000.0),
    ));
    r.candidate = Some(summary(
        100,
        28,
        [100, 71, 46, 33],
        &[("rage_click", 0.06, 0.24)],
        ttc(28, 40_900.0),
    ));
    let conversion = Check::conversion_may_not_drop(0.02, Level::Error);
    let rage = Check::signal_may_not_rise("rage_click", 0.05, Level::Error);
    r.checks = vec![
        result(Spec {
            check: conversion.clone(),
            pairs: 100,
            baseline: 0.30,
            candidate: 0.28,
            ci: (-0.0571, 0.0172, 0.975),
            p: (0.6875, 0.6875, 0.9950, 0.9950),
            verdict: Verdict::Inconclusive,
            explanation: "conversion changed -2.00 pp (97.5% CI -5.71 pp to +1.72 pp): inconclusive, the interval straddles the allowed drop of 2.00 pp",
            discordant: Some((4, 2)),
        }),
        result(Spec {
            check: rage.clone(),
            pairs: 100,
            baseline: 0.05,
            candidate: 0.06,
            ci: (-0.02, 0.04, 0.975),
            p: (0.3173, 0.6346, 0.0090, 0.0180),
            verdict: Verdict::Pass,
            explanation: "rage_click per session changed +0.010 (97.5% CI -0.020 to +0.040): pass, within the allowed rise of 0.050",
            discordant: None,
        }),
    ];
    let point = |metric: Metric, level, estimate, (lower, upper), verdict, explanation: &str| {
        SequentialCheck {
            metric,
            level,
            estimate,
            interval: interval(lower, upper, 0.975),
            p_threshold: 0.42,
            verdict,
            explanation: explanation.into(),
        }
    };
    r.sequential = Some(SequentialStatus {
        pairs: 100,
        decision: SequentialDecision::Stop(StopReason::MaxPairs),
        checks: vec![
            point(
                conversion.metric,
                conversion.level,
                -0.02,
                (-0.0811, 0.0411),
                Verdict::Inconclusive,
                "conversion changed -2.00 pp (97.5% CI -8.11 pp to +4.11 pp): inconclusive, the interval straddles the allowed drop of 2.00 pp",
            ),
            point(
                rage.metric,
                rage.level,
                0.01,
                (-0.0402, 0.0602),
                Verdict::Inconclusive,
                "rage_click per session changed +0.010 (97.5% CI -0.040 to +0.060): inconclusive, the interval straddles the allowed rise of 0.050",
            ),
        ],
    });
    r.sessions = vec![session(
        42,
        Build::Candidate,
        false,
        &[("rage_click", 3)],
        true,
    )];
    r.started = "2025-01-31T12:10:00Z".into();
    r.finished = "2025-01-31T12:11:02.500Z".into();
    r.duration_ms = 62_500;
    finish(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::GateStatus;

    #[test]
    fn examples_are_internally_consistent() {
        for kind in [
            Example::Pass,
            Example::Fail,
            Example::Inconclusive,
            Example::InfrastructureError,
        ] {
            let r = example(kind);
            for c in &r.checks {
                assert!(
                    c.interval.lower <= c.estimate && c.estimate <= c.interval.upper,
                    "{kind:?} {c:?}"
                );
                let check = Check {
                    metric: c.metric.clone(),
                    direction: c.direction,
                    tolerance: c.tolerance,
                    level: c.level,
                };
                assert_eq!(
                    check.verdict(&c.interval),
                    c.verdict,
                    "{kind:?} {}",
                    c.explanation
                );
            }
            let b = r.baseline.as_ref().unwrap();
            assert!(b.conversion.interval.lower < b.conversion.estimate);
        }
        assert_eq!(example(Example::Fail).outcome.status, GateStatus::Fail);
        assert_eq!(example(Example::Pass).outcome.status, GateStatus::Pass);
        assert_eq!(
            example(Example::Inconclusive).outcome.status,
            GateStatus::Warn
        );
    }
}
