//! The gate: checks on metrics ("conversion may not drop by more than 1 pp", "rage clicks
//! may not rise by more than 0.05 per session"), their verdicts and the run's exit decision.
//!
//! Rule for one check, with Δ = candidate − baseline and its interval at the check's
//! Holm-adjusted level (below):
//! * **Fail** when the interval lies entirely in the forbidden region (beyond the threshold
//!   in the bad direction): the regression is real and larger than tolerated;
//! * **Pass** when it lies entirely in the allowed region (non-inferiority);
//! * **Inconclusive** otherwise: more pairs would tell.
//!
//! The allowed region is closed (Δ ≥ −tolerance for higher-is-better metrics, Δ ≤
//! +tolerance for lower-is-better ones) and tolerances are ≥ 0, so identical builds, whose
//! interval always contains 0, can never Fail.
//!
//! Multiplicity: each gated check (level ≠ off) has a two-sided p-value of H₀: Δ =
//! threshold from the same test as its interval (`p_threshold`). Holm's procedure over
//! those p-values at α = 1 − confidence gives each check a level ([`holm_levels`]), and its
//! interval is computed at 1 − level. So a check is decided (Pass or Fail) exactly when
//! Holm rejects "Δ sits on the threshold" (`p_threshold_adjusted` ≤ α). What that buys:
//! * under any dependence between the metrics, the chance of deciding any check whose true
//!   Δ sits on its threshold is at most α (Holm 1979);
//! * one check alone is decided on the wrong side with probability at most α/2;
//! * across several checks, Holm's control of wrong-side (directional) decisions is
//!   proven for independent statistics (Shaffer 1980, Ann. Stat. 8:1342); our metrics come
//!   from the same users, so read it as approximate.
//!
//! All of it is asymptotic where the interval is (score and t intervals). Report-only
//! checks (level off) use the unadjusted confidence. The p-value of "no change"
//! (`p_value`, exact McNemar for conversion) and its Holm adjustment are descriptive: they
//! do not drive the verdict.
//!
//! Levels work as in Lighthouse CI assertions: `error` fails the run, `warn` only warns,
//! `off` reports without gating.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::binary::{mcnemar, PairedMethod, PairedTable};
use super::counts::{BootstrapEstimator, CountMethod, TEstimator};
use super::multiple::{holm, holm_levels};
use super::per_build::SessionOutcome;
use super::{check_finite, check_level, CompareError, Interval, Pair};

/// How much a check counts, as in Lighthouse CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Computed and reported, never gating.
    Off,
    /// A failure warns but does not fail the run.
    Warn,
    /// A failure fails the run (exit code 1).
    #[default]
    Error,
}

/// The outcome of one check, or of the whole gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The change is within tolerance, with confidence.
    Pass,
    /// The change is a regression beyond tolerance, with confidence.
    Fail,
    /// Not enough evidence either way.
    Inconclusive,
}

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A rise is good, a drop is bad (conversion).
    HigherIsBetter,
    /// A drop is good, a rise is bad (frustration signals).
    LowerIsBetter,
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Whether a user converted (binary, per user); Δ in absolute proportion.
    Conversion,
    /// Mean per-session count of a named signal (`rage_click`, `dead_click`,
    /// `error_click`, `js_error`, `failed_request`, …); Δ in count per session.
    Signal(String),
}

/// One gated assertion on a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The metric checked.
    pub metric: Metric,
    /// Which way is better.
    pub direction: Direction,
    /// The largest tolerated worsening, ≥ 0, in the metric's units (absolute proportion for
    /// conversion: 0.01 = 1 pp; count per session for signals).
    pub tolerance: f64,
    /// What a failure does.
    pub level: Level,
}

/// Settings of a fixed-sample gate evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Family confidence of the gate, e.g. 0.95 (α = 0.05 across the gated checks).
    pub confidence: f64,
    /// Interval for paired conversion.
    pub paired_method: PairedMethod,
    /// Interval for paired signal counts.
    pub count_method: CountMethod,
    /// Whether an inconclusive error-level check fails the run (`--fail-on-inconclusive`).
    pub fail_on_inconclusive: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            confidence: 0.95,
            paired_method: PairedMethod::Tango,
            count_method: CountMethod::T,
            fail_on_inconclusive: false,
        }
    }
}

/// The paired outcomes of a run, column by column; every column has one entry per user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PairedData {
    /// Conversion of each user on both builds.
    pub conversion: Vec<Pair<bool>>,
    /// Per-session signal counts of each user on both builds, by signal name. A signal
    /// with no column was never observed: it counts as 0 for everyone.
    pub signals: BTreeMap<String, Vec<Pair<f64>>>,
}

/// Which estimator produced a check's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateMethod {
    /// Tango's paired score interval; p-value of no change: exact McNemar.
    Tango,
    /// Newcombe's paired hybrid score interval; p-value of no change: exact McNemar.
    Newcombe,
    /// Paired t on the per-user differences.
    PairedT,
    /// Paired percentile bootstrap.
    Bootstrap,
}

/// The evaluated check, ready for a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The metric checked.
    pub metric: Metric,
    /// The check's level.
    pub level: Level,
    /// Which way is better.
    pub direction: Direction,
    /// The tolerated worsening (≥ 0).
    pub tolerance: f64,
    /// The boundary of the allowed region as a signed Δ (−tolerance or +tolerance).
    pub threshold: f64,
    /// Number of user pairs.
    pub pairs: usize,
    /// The baseline's value: conversion rate or mean count per session.
    pub baseline: f64,
    /// The candidate's value.
    pub candidate: f64,
    /// Δ̂ = candidate − baseline.
    pub estimate: f64,
    /// Interval for Δ at the check's (Holm-adjusted) confidence.
    pub interval: Interval,
    /// How the interval was computed.
    pub method: EstimateMethod,
    /// Raw two-sided p-value of "no change" (exact McNemar for conversion; the t or
    /// bootstrap test for signals).
    pub p_value: f64,
    /// `p_value` Holm-adjusted across the gated checks (= raw for level off).
    pub p_value_adjusted: f64,
    /// Raw two-sided p-value of "Δ equals the threshold", from the interval's own test.
    pub p_threshold: f64,
    /// `p_threshold` Holm-adjusted across the gated checks: the check is decided (Pass
    /// or Fail) iff this is ≤ α (exactly for Tango, Newcombe and t; approximately for the
    /// bootstrap, whose p-value and percentile interval agree only up to resampling).
    pub p_threshold_adjusted: f64,
    /// For conversion: users who converted on the baseline only / the candidate only.
    pub discordant: Option<Pair<u64>>,
    /// The verdict.
    pub verdict: Verdict,
    /// One line for humans.
    pub explanation: String,
}

/// Whether the run passes, warns or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateStatus {
    /// Exit 0, nothing to say.
    Pass,
    /// Exit 0 with warnings (a warn-level failure or an inconclusive check).
    Warn,
    /// Exit 1: an error-level check failed (or was inconclusive under
    /// `fail_on_inconclusive`).
    Fail,
}

/// The whole gate's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateOutcome {
    /// Fail if any gated check failed, else Inconclusive if any was, else Pass.
    pub verdict: Verdict,
    /// What the run should do about it.
    pub status: GateStatus,
    /// Checks with level ≠ off.
    pub gated: usize,
    /// Gated checks that passed.
    pub passed: usize,
    /// Gated checks that failed (any level).
    pub failed: usize,
    /// Gated checks that were inconclusive.
    pub inconclusive: usize,
}

impl Level {
    /// Whether the check takes part in the gate.
    pub fn is_gated(self) -> bool {
        self != Level::Off
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Off => "off",
            Level::Warn => "warn",
            Level::Error => "error",
        })
    }
}

impl FromStr for Level {
    type Err = CompareError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Level::Off),
            "warn" => Ok(Level::Warn),
            "error" => Ok(Level::Error),
            other => Err(CompareError::Invalid(format!(
                "level must be off, warn or error, got {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        })
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Conversion => f.write_str("conversion"),
            Metric::Signal(name) => write!(f, "{name} per session"),
        }
    }
}

impl Check {
    /// "Conversion may not drop by more than `by` (absolute; 0.01 = 1 pp)."
    pub fn conversion_may_not_drop(by: f64, level: Level) -> Self {
        Check {
            metric: Metric::Conversion,
            direction: Direction::HigherIsBetter,
            tolerance: by,
            level,
        }
    }

    /// "Signal `name` may not rise by more than `by` per session."
    pub fn signal_may_not_rise(name: impl Into<String>, by: f64, level: Level) -> Self {
        Check {
            metric: Metric::Signal(name.into()),
            direction: Direction::LowerIsBetter,
            tolerance: by,
            level,
        }
    }

    /// The boundary of the allowed region as a signed Δ: −tolerance when higher is better,
    /// +tolerance when lower is better.
    pub fn threshold(&self) -> f64 {
        match self.direction {
            Direction::HigherIsBetter => -self.tolerance,
            Direction::LowerIsBetter => self.tolerance,
        }
    }

    /// Rejects a negative or non-finite tolerance.
    pub fn validate(&self) -> Result<(), CompareError> {
        if self.tolerance.is_finite() && self.tolerance >= 0.0 {
            Ok(())
        } else {
            Err(CompareError::Tolerance {
                metric: self.metric.to_string(),
                tolerance: self.tolerance,
            })
        }
    }

    /// The rule: Fail if the interval is entirely in the forbidden region, Pass if entirely
    /// in the (closed) allowed region, else Inconclusive.
    pub fn verdict(&self, interval: &Interval) -> Verdict {
        let t = self.threshold();
        let (allowed, forbidden) = match self.direction {
            Direction::HigherIsBetter => (interval.lower >= t, interval.upper < t),
            Direction::LowerIsBetter => (interval.upper <= t, interval.lower > t),
        };
        if forbidden {
            Verdict::Fail
        } else if allowed {
            Verdict::Pass
        } else {
            Verdict::Inconclusive
        }
    }
}

impl PairedData {
    /// Columns from per-user outcome pairs. Every signal seen in any session gets a column;
    /// a session without it counts 0.
    pub fn from_sessions(pairs: &[Pair<SessionOutcome>]) -> Self {
        let names: BTreeSet<&String> = pairs
            .iter()
            .flat_map(|p| p.baseline.signals.keys().chain(p.candidate.signals.keys()))
            .collect();
        let count = |s: &SessionOutcome, name: &str| s.signals.get(name).copied().unwrap_or(0.0);
        let signals = names
            .into_iter()
            .map(|name| {
                let column = pairs
                    .iter()
                    .map(|p| Pair::new(count(&p.baseline, name), count(&p.candidate, name)))
                    .collect();
                (name.clone(), column)
            })
            .collect();
        PairedData {
            conversion: pairs
                .iter()
                .map(|p| Pair::new(p.baseline.converted, p.candidate.converted))
                .collect(),
            signals,
        }
    }

    /// Number of user pairs (the length of the conversion column).
    pub fn len(&self) -> usize {
        self.conversion.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.conversion.is_empty()
    }

    /// Checks that every signal column has one finite pair per user.
    pub fn validate(&self) -> Result<(), CompareError> {
        for (name, column) in &self.signals {
            if column.len() != self.len() {
                return Err(CompareError::LengthMismatch {
                    what: format!("signal {name}"),
                    got: column.len(),
                    expected: self.len(),
                });
            }
            for p in column {
                check_finite("a signal count", p.baseline)?;
                check_finite("a signal count", p.candidate)?;
            }
        }
        Ok(())
    }

    /// Per-user differences (candidate − baseline) of a metric; conversion as −1, 0 or 1.
    /// The flag says whether a signal had no column (all zeros).
    pub(crate) fn differences(&self, metric: &Metric) -> (Vec<f64>, bool) {
        match metric {
            Metric::Conversion => (
                self.conversion
                    .iter()
                    .map(|p| f64::from(u8::from(p.candidate)) - f64::from(u8::from(p.baseline)))
                    .collect(),
                false,
            ),
            Metric::Signal(name) => match self.signals.get(name) {
                Some(column) => (
                    column.iter().map(|p| p.candidate - p.baseline).collect(),
                    false,
                ),
                None => (vec![0.0; self.len()], true),
            },
        }
    }

    /// Baseline and candidate means of a metric (rates for conversion).
    pub(crate) fn means(&self, metric: &Metric) -> (f64, f64) {
        let n = self.len().max(1) as f64;
        match metric {
            Metric::Conversion => {
                let b = self.conversion.iter().filter(|p| p.baseline).count() as f64;
                let c = self.conversion.iter().filter(|p| p.candidate).count() as f64;
                (b / n, c / n)
            }
            Metric::Signal(name) => self.signals.get(name).map_or((0.0, 0.0), |column| {
                let b: f64 = column.iter().map(|p| p.baseline).sum();
                let c: f64 = column.iter().map(|p| p.candidate).sum();
                (b / n, c / n)
            }),
        }
    }
}

impl GateOutcome {
    /// Combines (level, verdict) of every check. Off checks are ignored.
    ///
    /// * status Fail: an error-level check failed, or (with `fail_on_inconclusive`) an
    ///   error-level check was inconclusive;
    /// * status Warn: otherwise, if a warn-level check failed or any gated check was
    ///   inconclusive;
    /// * status Pass: otherwise (also when nothing is gated).
    pub fn from_verdicts(
        verdicts: impl IntoIterator<Item = (Level, Verdict)>,
        fail_on_inconclusive: bool,
    ) -> Self {
        let mut out = GateOutcome {
            verdict: Verdict::Pass,
            status: GateStatus::Pass,
            gated: 0,
            passed: 0,
            failed: 0,
            inconclusive: 0,
        };
        let mut fails_run = false;
        let mut warns = false;
        for (level, verdict) in verdicts {
            if !level.is_gated() {
                continue;
            }
            out.gated += 1;
            match verdict {
                Verdict::Pass => out.passed += 1,
                Verdict::Fail => {
                    out.failed += 1;
                    fails_run |= level == Level::Error;
                    warns = true;
                }
                Verdict::Inconclusive => {
                    out.inconclusive += 1;
                    fails_run |= level == Level::Error && fail_on_inconclusive;
                    warns = true;
                }
            }
        }
        out.verdict = if out.failed > 0 {
            Verdict::Fail
        } else if out.inconclusive > 0 {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        };
        out.status = if fails_run {
            GateStatus::Fail
        } else if warns {
            GateStatus::Warn
        } else {
            GateStatus::Pass
        };
        out
    }

    /// Whether the run should exit with code 1 (`exit_code::GATE_FAILED`).
    pub fn fails_run(&self) -> bool {
        self.status == GateStatus::Fail
    }
}

/// The gate's outcome from evaluated checks: [`GateOutcome::from_verdicts`] on their levels
/// and verdicts.
pub fn overall(results: &[CheckResult], fail_on_inconclusive: bool) -> GateOutcome {
    GateOutcome::from_verdicts(
        results.iter().map(|r| (r.level, r.verdict)),
        fail_on_inconclusive,
    )
}

/// One metric's test machinery: interval at any confidence, p-value at any null.
enum Estimator {
    Binary(PairedTable, PairedMethod),
    T(TEstimator),
    Bootstrap(BootstrapEstimator),
}

impl Estimator {
    fn interval(&self, confidence: f64) -> Result<Interval, CompareError> {
        match self {
            Estimator::Binary(table, method) => table.interval(*method, confidence),
            Estimator::T(t) => t.interval(confidence),
            Estimator::Bootstrap(b) => Ok(b.interval(confidence)),
        }
    }

    fn p_value(&self, delta0: f64) -> Result<f64, CompareError> {
        match self {
            Estimator::Binary(table, method) => table.p_value(*method, delta0),
            Estimator::T(t) => t.p_value(delta0),
            Estimator::Bootstrap(b) => Ok(b.p_value(delta0)),
        }
    }

    fn p_no_change(&self) -> Result<f64, CompareError> {
        match self {
            Estimator::Binary(table, _) => Ok(mcnemar(table)?.exact_p),
            other => other.p_value(0.0),
        }
    }

    fn method(&self) -> EstimateMethod {
        match self {
            Estimator::Binary(_, PairedMethod::Tango) => EstimateMethod::Tango,
            Estimator::Binary(_, PairedMethod::Newcombe) => EstimateMethod::Newcombe,
            Estimator::T(_) => EstimateMethod::PairedT,
            Estimator::Bootstrap(_) => EstimateMethod::Bootstrap,
        }
    }
}

/// Validates checks and data shared by the fixed and sequential gates; returns n.
pub(crate) fn validate_inputs(checks: &[Check], data: &PairedData) -> Result<usize, CompareError> {
    for check in checks {
        check.validate()?;
    }
    data.validate()?;
    match data.len() {
        0 => Err(CompareError::Empty { what: "the gate" }),
        1 => Err(CompareError::TooFew {
            what: "the gate",
            needed: 2,
            got: 1,
        }),
        n => Ok(n),
    }
}

/// Evaluates every check on the paired data (fixed sample: call it once, at the end).
///
/// For each check: Δ̂, its interval at the Holm-adjusted level (Tango/Newcombe for
/// conversion, paired t or bootstrap for signals; see the module docs), the p-values of
/// no change and of Δ = threshold (raw and Holm-adjusted across the gated checks), the
/// verdict by the rule, and a one-line explanation. Results keep the order of `checks`.
///
/// Errors: fewer than 2 pairs, a negative tolerance, columns of different lengths,
/// non-finite counts, a confidence outside (0, 1).
pub fn evaluate(
    checks: &[Check],
    data: &PairedData,
    config: &GateConfig,
) -> Result<Vec<CheckResult>, CompareError> {
    check_level("confidence", config.confidence)?;
    let n = validate_inputs(checks, data)?;
    let alpha = 1.0 - config.confidence;

    let mut estimators = Vec::with_capacity(checks.len());
    let mut unobserved = Vec::with_capacity(checks.len());
    for check in checks {
        let (diffs, missing) = data.differences(&check.metric);
        let estimator = match (&check.metric, config.count_method) {
            (Metric::Conversion, _) => Estimator::Binary(
                PairedTable::from_pairs(&data.conversion),
                config.paired_method,
            ),
            (Metric::Signal(_), CountMethod::T) => Estimator::T(TEstimator::new(&diffs)?),
            (Metric::Signal(_), CountMethod::Bootstrap { resamples, seed }) => {
                Estimator::Bootstrap(BootstrapEstimator::new(&diffs, resamples, seed)?)
            }
        };
        estimators.push(estimator);
        unobserved.push(missing);
    }

    let mut p_threshold = Vec::with_capacity(checks.len());
    let mut p_no_change = Vec::with_capacity(checks.len());
    for (check, estimator) in checks.iter().zip(&estimators) {
        p_threshold.push(estimator.p_value(check.threshold())?);
        p_no_change.push(estimator.p_no_change()?);
    }

    // Holm over the gated checks only.
    let gated: Vec<usize> = (0..checks.len())
        .filter(|&i| checks[i].level.is_gated())
        .collect();
    let pick = |p: &[f64]| gated.iter().map(|&i| p[i]).collect::<Vec<f64>>();
    let levels = holm_levels(&pick(&p_threshold), alpha)?;
    let adj_threshold = holm(&pick(&p_threshold))?;
    let adj_no_change = holm(&pick(&p_no_change))?;
    let mut level_of = vec![alpha; checks.len()];
    let mut adj_threshold_of = p_threshold.clone();
    let mut adj_no_change_of = p_no_change.clone();
    for (k, &i) in gated.iter().enumerate() {
        level_of[i] = levels[k];
        adj_threshold_of[i] = adj_threshold[k];
        adj_no_change_of[i] = adj_no_change[k];
    }

    let table = PairedTable::from_pairs(&data.conversion);
    let mut results = Vec::with_capacity(checks.len());
    for (i, (check, estimator)) in checks.iter().zip(&estimators).enumerate() {
        let interval = estimator.interval(1.0 - level_of[i])?;
        let (baseline, candidate) = data.means(&check.metric);
        let (diffs, _) = data.differences(&check.metric);
        let estimate = diffs.iter().sum::<f64>() / n as f64;
        let verdict = check.verdict(&interval);
        let mut explanation = explain(check, estimate, &interval, verdict);
        if unobserved[i] {
            explanation.push_str(" (never observed on either build)");
        }
        results.push(CheckResult {
            metric: check.metric.clone(),
            level: check.level,
            direction: check.direction,
            tolerance: check.tolerance,
            threshold: check.threshold(),
            pairs: n,
            baseline,
            candidate,
            estimate,
            interval,
            method: estimator.method(),
            p_value: p_no_change[i],
            p_value_adjusted: adj_no_change_of[i],
            p_threshold: p_threshold[i],
            p_threshold_adjusted: adj_threshold_of[i],
            discordant: (check.metric == Metric::Conversion)
                .then(|| Pair::new(table.baseline_only, table.candidate_only)),
            verdict,
            explanation,
        });
    }
    Ok(results)
}

/// A value of the metric's Δ in its units: percentage points for conversion, count per
/// session for signals.
fn amount(metric: &Metric, x: f64, signed: bool) -> String {
    match (metric, signed) {
        (Metric::Conversion, true) => format!("{:+.2} pp", 100.0 * x),
        (Metric::Conversion, false) => format!("{:.2} pp", 100.0 * x),
        (Metric::Signal(_), true) => format!("{x:+.3}"),
        (Metric::Signal(_), false) => format!("{x:.3}"),
    }
}

/// A confidence as a percentage: "95", "97.5", "98.3".
fn percent(confidence: f64) -> String {
    let p = 100.0 * confidence;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

/// One line for humans, e.g. "conversion changed -3.10 pp (98.3% CI -4.52 pp to -1.80 pp):
/// fail, worse than the allowed drop of 1.00 pp".
pub(crate) fn explain(
    check: &Check,
    estimate: f64,
    interval: &Interval,
    verdict: Verdict,
) -> String {
    let m = &check.metric;
    let bound = match check.direction {
        Direction::HigherIsBetter => "drop",
        Direction::LowerIsBetter => "rise",
    };
    let allowed = format!(
        "the allowed {bound} of {}",
        amount(m, check.tolerance, false)
    );
    let what = match verdict {
        Verdict::Pass => format!("pass, within {allowed}"),
        Verdict::Fail => format!("fail, worse than {allowed}"),
        Verdict::Inconclusive => format!("inconclusive, the interval straddles {allowed}"),
    };
    let prefix = if check.level.is_gated() {
        ""
    } else {
        "report only: "
    };
    format!(
        "{prefix}{m} changed {} ({}% CI {} to {}): {what}",
        amount(m, estimate, true),
        percent(interval.confidence),
        amount(m, interval.lower, true),
        amount(m, interval.upper, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// n pairs with `both`, `b_only`, `c_only` conversions and the rest neither.
    fn conversion(both: usize, b_only: usize, c_only: usize, neither: usize) -> Vec<Pair<bool>> {
        let mut v = vec![Pair::new(true, true); both];
        v.extend(vec![Pair::new(true, false); b_only]);
        v.extend(vec![Pair::new(false, true); c_only]);
        v.extend(vec![Pair::new(false, false); neither]);
        v
    }

    fn data(conv: Vec<Pair<bool>>) -> PairedData {
        PairedData {
            conversion: conv,
            signals: BTreeMap::new(),
        }
    }

    #[test]
    fn a_clear_regression_fails() {
        // Reference table: Δ = −0.025, Tango [−0.038, −0.014]; 1 pp may be lost.
        let d = data(conversion(270, 30, 5, 695));
        let checks = [Check::conversion_may_not_drop(0.01, Level::Error)];
        let r = evaluate(&checks, &d, &GateConfig::default()).unwrap();
        assert_eq!(r[0].verdict, Verdict::Fail, "{:?}", r[0]);
        assert!((r[0].interval.upper - -0.01430).abs() < 5e-5);
        assert_eq!(r[0].discordant, Some(Pair::new(30, 5)));
        assert!((r[0].p_value - 2.24e-5).abs() < 1e-7);
        assert!(r[0].explanation.contains("fail"), "{}", r[0].explanation);
        let out = overall(&r, false);
        assert_eq!((out.verdict, out.status), (Verdict::Fail, GateStatus::Fail));
        assert!(out.fails_run());
        // The same check at warn level only warns.
        let checks = [Check::conversion_may_not_drop(0.01, Level::Warn)];
        let out = overall(
            &evaluate(&checks, &d, &GateConfig::default()).unwrap(),
            false,
        );
        assert_eq!((out.verdict, out.status), (Verdict::Fail, GateStatus::Warn));
    }

    #[test]
    fn a_small_change_passes_non_inferiority() {
        // Δ = −0.002 with few discordant pairs; 2 pp may be lost.
        let d = data(conversion(290, 4, 2, 704));
        let checks = [Check::conversion_may_not_drop(0.02, Level::Error)];
        let r = evaluate(&checks, &d, &GateConfig::default()).unwrap();
        assert_eq!(r[0].verdict, Verdict::Pass, "{:?}", r[0]);
        assert_eq!(overall(&r, true).status, GateStatus::Pass);
    }

    #[test]
    fn too_few_pairs_are_inconclusive_and_the_flag_fails_them() {
        let d = data(conversion(3, 1, 0, 6));
        let checks = [Check::conversion_may_not_drop(0.01, Level::Error)];
        let r = evaluate(&checks, &d, &GateConfig::default()).unwrap();
        assert_eq!(r[0].verdict, Verdict::Inconclusive);
        assert_eq!(overall(&r, false).status, GateStatus::Warn);
        assert_eq!(overall(&r, true).status, GateStatus::Fail);
        // A warn-level inconclusive check never fails the run.
        let warn = [Check::conversion_may_not_drop(0.01, Level::Warn)];
        let r = evaluate(&warn, &d, &GateConfig::default()).unwrap();
        assert_eq!(overall(&r, true).status, GateStatus::Warn);
    }

    #[test]
    fn signals_use_holm_levels() {
        let n = 400;
        let mut d = data(conversion(120, 2, 2, n - 124));
        // rage clicks: +1 for every 4th user on the candidate (Δ = 0.25); dead clicks: none.
        d.signals.insert(
            "rage_click".into(),
            (0..n)
                .map(|i| Pair::new(0.0, f64::from(u8::from(i % 4 == 0))))
                .collect(),
        );
        d.signals
            .insert("dead_click".into(), vec![Pair::new(1.0, 1.0); n]);
        let checks = [
            Check::conversion_may_not_drop(0.02, Level::Error),
            Check::signal_may_not_rise("rage_click", 0.05, Level::Error),
            Check::signal_may_not_rise("dead_click", 0.05, Level::Warn),
            Check::signal_may_not_rise("js_error", 0.05, Level::Off),
        ];
        let r = evaluate(&checks, &d, &GateConfig::default()).unwrap();
        let verdicts: Vec<Verdict> = r.iter().map(|c| c.verdict).collect();
        assert_eq!(
            verdicts,
            [Verdict::Pass, Verdict::Fail, Verdict::Pass, Verdict::Pass]
        );
        // Three gated checks: the levels step down from α/3; off stays at 95%.
        let conf: Vec<f64> = r.iter().map(|c| c.interval.confidence).collect();
        assert!(
            conf[..3]
                .iter()
                .all(|c| (0.95..=1.0 - 0.05 / 3.0 + 1e-12).contains(c)),
            "{conf:?}"
        );
        assert_eq!(conf[3], 0.95);
        for c in &r {
            assert!(c.p_threshold_adjusted >= c.p_threshold);
            assert!(c.p_value_adjusted >= c.p_value);
            assert!(c.interval.contains(c.estimate));
        }
        assert!(
            r[3].explanation.starts_with("report only"),
            "{}",
            r[3].explanation
        );
        assert!(r[3].explanation.contains("never observed"));
        assert_eq!(r[1].method, EstimateMethod::PairedT);
        assert_eq!(r[1].discordant, None);
        assert!((r[1].estimate - 0.25).abs() < 1e-12);
        assert!((r[1].candidate - 0.25).abs() < 1e-12);
        let out = overall(&r, false);
        assert_eq!((out.gated, out.passed, out.failed), (3, 2, 1));
        assert!(out.fails_run());

        let boot = GateConfig {
            count_method: CountMethod::Bootstrap {
                resamples: 1000,
                seed: 3,
            },
            ..GateConfig::default()
        };
        let rb = evaluate(&checks, &d, &boot).unwrap();
        assert_eq!(rb[1].verdict, Verdict::Fail);
        assert_eq!(rb[1].method, EstimateMethod::Bootstrap);
        let json = serde_json::to_value(&rb).unwrap();
        assert_eq!(json[1]["metric"]["signal"], "rage_click");
        assert_eq!(json[1]["verdict"], "fail");
        assert_eq!(json[0]["metric"], "conversion");
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let checks = [Check::conversion_may_not_drop(0.01, Level::Error)];
        let cfg = GateConfig::default();
        assert!(matches!(
            evaluate(&checks, &PairedData::default(), &cfg),
            Err(CompareError::Empty { .. })
        ));
        let one = data(conversion(1, 0, 0, 0));
        assert!(matches!(
            evaluate(&checks, &one, &cfg),
            Err(CompareError::TooFew { .. })
        ));
        let mut bad = data(conversion(1, 0, 0, 1));
        bad.signals.insert("x".into(), vec![Pair::new(0.0, 0.0)]);
        assert!(matches!(
            evaluate(&checks, &bad, &cfg),
            Err(CompareError::LengthMismatch { .. })
        ));
        let neg = [Check::conversion_may_not_drop(-0.01, Level::Error)];
        assert!(matches!(
            evaluate(&neg, &data(conversion(1, 0, 0, 1)), &cfg),
            Err(CompareError::Tolerance { .. })
        ));
        let cfg = GateConfig {
            confidence: 1.0,
            ..cfg
        };
        assert!(evaluate(&checks, &data(conversion(1, 0, 0, 1)), &cfg).is_err());
        assert!("fatal".parse::<Level>().is_err());
        assert_eq!("warn".parse::<Level>().unwrap(), Level::Warn);
    }

    #[test]
    fn outcome_rules() {
        use Level::*;
        use Verdict::*;
        let o = GateOutcome::from_verdicts([(Error, Pass), (Warn, Fail), (Off, Fail)], false);
        assert_eq!((o.verdict, o.status, o.gated), (Fail, GateStatus::Warn, 2));
        let o = GateOutcome::from_verdicts([(Error, Pass), (Off, Fail)], false);
        assert_eq!((o.verdict, o.status), (Pass, GateStatus::Pass));
        let o = GateOutcome::from_verdicts([(Error, Inconclusive), (Warn, Pass)], false);
        assert_eq!((o.verdict, o.status), (Inconclusive, GateStatus::Warn));
        let o = GateOutcome::from_verdicts([], true);
        assert_eq!((o.verdict, o.status), (Pass, GateStatus::Pass));
    }

    #[test]
    fn from_sessions_fills_columns() {
        let mut b = SessionOutcome::default();
        b.signals.insert("js_error".into(), 2.0);
        let c = SessionOutcome {
            converted: true,
            ..Default::default()
        };
        let d = PairedData::from_sessions(&[Pair::new(b, c), Pair::default()]);
        assert_eq!(d.len(), 2);
        assert_eq!(d.conversion[0], Pair::new(false, true));
        assert_eq!(
            d.signals["js_error"],
            vec![Pair::new(2.0, 0.0), Pair::new(0.0, 0.0)]
        );
    }

    fn arb_check() -> impl Strategy<Value = Check> {
        let level = prop_oneof![Just(Level::Off), Just(Level::Warn), Just(Level::Error)];
        (0usize..3, 0.0f64..0.5, level).prop_map(|(which, tol, level)| match which {
            0 => Check::conversion_may_not_drop(tol, level),
            1 => Check::signal_may_not_rise("rage_click", tol, level),
            _ => Check::signal_may_not_rise("js_error", tol, level),
        })
    }

    proptest! {
        // No regression files: this module's tests must not write into the tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn identical_builds_never_fail(
            users in prop::collection::vec((any::<bool>(), 0u8..6, 0u8..3), 2..120),
            checks in prop::collection::vec(arb_check(), 1..5),
            bootstrap in any::<bool>(),
            newcombe in any::<bool>(),
        ) {
            let d = PairedData {
                conversion: users.iter().map(|u| Pair::new(u.0, u.0)).collect(),
                signals: BTreeMap::from([(
                    "rage_click".to_string(),
                    users.iter().map(|u| Pair::new(f64::from(u.1), f64::from(u.1))).collect(),
                )]),
            };
            let cfg = GateConfig {
                paired_method: if newcombe { PairedMethod::Newcombe } else { PairedMethod::Tango },
                count_method: if bootstrap {
                    CountMethod::Bootstrap { resamples: 200, seed: 1 }
                } else {
                    CountMethod::T
                },
                ..GateConfig::default()
            };
            let r = evaluate(&checks, &d, &cfg).unwrap();
            for c in &r {
                prop_assert!(c.verdict != Verdict::Fail, "{:?}", c);
                prop_assert!(c.interval.contains(c.estimate));
                prop_assert!(c.p_value_adjusted >= c.p_value);
            }
            prop_assert!(!overall(&r, false).fails_run());
        }
    }
}
