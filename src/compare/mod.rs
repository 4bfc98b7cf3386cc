//! Paired statistics and the gate: how the candidate build differs from the baseline, how
//! sure we are, and whether the pull request may pass.
//!
//! What goes in: per-user outcomes from paired simulated users (user *i* ran on both builds
//! with the same random stream, see `reference/models_stats.md` §3.2), as [`Pair`]s of
//! booleans (conversion) or numbers (per-session signal counts). What comes out: estimates,
//! intervals, p-values and verdicts, all plain serialisable values for `report`.
//!
//! The module is pure and synchronous: no I/O, no clock, and the only randomness (the
//! paired bootstrap) is a seeded ChaCha stream.
//!
//! Files, in the order a run uses them:
//! * `per_build.rs`: one build alone: conversion rate (Wilson), signals per
//!   session (t interval), time to convert, funnel drop-off.
//! * `binary.rs`: paired conversion: the paired 2×2 table, exact McNemar,
//!   Tango's score interval, Newcombe's paired (method 10) and unpaired hybrid intervals.
//! * `counts.rs`: paired count metrics: mean difference with a t interval or a
//!   seeded percentile bootstrap.
//! * `multiple.rs`: Holm (and Benjamini–Hochberg) adjustment.
//! * `sequential.rs`: the anytime-valid normal-mixture confidence sequence
//!   and the stop/continue rule checked every k pairs.
//! * `gate.rs`: checks, levels, verdicts and the exit decision.
//!
//! Sign convention everywhere: a change is **candidate − baseline**.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

mod binary;
mod counts;
mod gate;
mod multiple;
mod per_build;
mod sequential;

pub use binary::{
    mcnemar, newcombe_paired_interval, newcombe_unpaired_interval, paired_conversion,
    tango_interval, tango_p_value, McNemar, PairedConversion, PairedMethod, PairedTable,
};
pub use counts::{paired_bootstrap, paired_t, CountMethod, PairedMean};
pub use gate::{
    evaluate, overall, Check, CheckResult, Direction, EstimateMethod, GateConfig, GateOutcome,
    GateStatus, Level, Metric, PairedData, Verdict,
};
pub use multiple::{benjamini_hochberg, holm, holm_levels};
pub use per_build::{
    conversion_rate, funnel, funnel_from_hits, mean_interval, summarize_build, time_to_convert,
    wilson_interval, BuildSummary, Funnel, FunnelStep, MeanEstimate, Proportion, SessionOutcome,
    TimeToConvert,
};
pub use sequential::{
    always_valid_p_value, confidence_sequence, cs_margin, mixture_rho2, sequential_decision,
    CsPoint, SequentialCheck, SequentialDecision, SequentialPlan, SequentialStatus, StopReason,
};

/// One simulated user's value on both builds (user *i* saw the same random stream on both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pair<T> {
    /// The value on the baseline build.
    pub baseline: T,
    /// The value on the candidate build.
    pub candidate: T,
}

impl<T> Pair<T> {
    /// A pair from its baseline and candidate values.
    pub fn new(baseline: T, candidate: T) -> Self {
        Pair {
            baseline,
            candidate,
        }
    }
}

/// A two-sided interval with the confidence it was computed at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower limit.
    pub lower: f64,
    /// Upper limit.
    pub upper: f64,
    /// Two-sided confidence level, e.g. `0.95`.
    pub confidence: f64,
}

impl Interval {
    /// Whether `x` lies in the closed interval.
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }

    /// `upper − lower`.
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }
}

/// Why a statistic could not be computed. Never a NaN in its place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    /// There were no observations at all.
    #[error("no observations for {what}")]
    Empty {
        /// What needed them.
        what: &'static str,
    },
    /// There were some observations, but too few for this statistic.
    #[error("too few observations for {what}: need at least {needed}, got {got}")]
    TooFew {
        /// What needed them.
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// How many there were.
        got: usize,
    },
    /// A confidence level or α outside (0, 1).
    #[error("{what} must be strictly between 0 and 1, got {value}")]
    Level {
        /// Which parameter.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A NaN or infinite input value.
    #[error("{what} must be a finite number, got {value}")]
    NotFinite {
        /// Which input.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// More successes than trials.
    #[error("{successes} successes out of {trials} trials is impossible")]
    Successes {
        /// Successes given.
        successes: u64,
        /// Trials given.
        trials: u64,
    },
    /// Paired series of different lengths.
    #[error("paired series differ in length: {what} has {got} pairs, expected {expected}")]
    LengthMismatch {
        /// Which series.
        what: String,
        /// Its length.
        got: usize,
        /// The length of the conversion series.
        expected: usize,
    },
    /// A check's tolerance is negative or not finite.
    #[error("check on {metric}: tolerance must be finite and at least 0, got {tolerance}")]
    Tolerance {
        /// The metric checked.
        metric: String,
        /// The tolerance given.
        tolerance: f64,
    },
    /// Any other invalid argument (funnel step out of range, bad sequential plan, …).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Rejects confidence levels and α outside the open interval (0, 1).
pub(crate) fn check_level(what: &'static str, value: f64) -> Result<(), CompareError> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(CompareError::Level { what, value })
    }
}

/// Rejects NaN and ±∞.
pub(crate) fn check_finite(what: &'static str, value: f64) -> Result<(), CompareError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(CompareError::NotFinite { what, value })
    }
}

/// z_{1−(1−confidence)/2}: the two-sided standard-normal critical value.
pub(crate) fn z_two_sided(confidence: f64) -> f64 {
    Normal::standard().inverse_cdf(0.5 + confidence / 2.0)
}

/// P(Z > z) for a standard normal Z, accurate in the far tail.
pub(crate) fn normal_sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// t_{df, 1−(1−confidence)/2}: the two-sided Student's t critical value.
pub(crate) fn t_two_sided(confidence: f64, df: f64) -> Result<f64, CompareError> {
    Ok(students_t(df)?.inverse_cdf(0.5 + confidence / 2.0))
}

/// P(T > t) for Student's t with `df` degrees of freedom.
pub(crate) fn t_sf(t: f64, df: f64) -> Result<f64, CompareError> {
    Ok(students_t(df)?.sf(t))
}

fn students_t(df: f64) -> Result<StudentsT, CompareError> {
    StudentsT::new(0.0, 1.0, df)
        .map_err(|e| CompareError::Invalid(format!("Student's t with {df} df: {e}")))
}

/// Finds a root of `f` on `[lo, hi]` by bisection, where `f(lo)` and `f(hi)` have opposite
/// signs (either may be zero). Bisection is slow but cannot fail or leave the bracket,
/// which is what a gate wants. Stops when the bracket is below 1e-13 wide.
pub(crate) fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let f_lo = f(lo);
    if f_lo == 0.0 {
        return lo;
    }
    let lo_negative = f_lo < 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if (hi - lo).abs() < 1e-13 {
            return mid;
        }
        let f_mid = f(mid);
        if f_mid == 0.0 {
            return mid;
        }
        if (f_mid < 0.0) == lo_negative {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The `q`-quantile of sorted data with linear interpolation between order statistics
/// (Hyndman & Fan type 7, R's default): h = (n − 1)q, x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋+1 − x_⌊h⌋).
/// `sorted` must be non-empty and ascending.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let i = h.floor() as usize;
    let frac = h - i as f64;
    match sorted.get(i + 1) {
        Some(next) if frac > 0.0 => sorted[i] + frac * (next - sorted[i]),
        _ => sorted[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_values_match_the_reference() {
        // models_stats.md §5: z_{0.975} = 1.959964, t_{29, 0.975} = 2.045230.
        assert!((z_two_sided(0.95) - 1.959964).abs() < 1e-6);
        assert!((t_two_sided(0.95, 29.0).unwrap() - 2.045230).abs() < 1e-6);
    }

    #[test]
    fn bisection_finds_roots_of_either_slope() {
        let up = bisect(|x| x * x - 2.0, 0.0, 2.0);
        assert!((up - 2f64.sqrt()).abs() < 1e-12);
        let down = bisect(|x| 1.0 - x, 0.0, 3.0);
        assert!((down - 1.0).abs() < 1e-12);
    }

    #[test]
    fn type_7_quantiles() {
        let xs = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile_sorted(&xs, 0.5), 3.0);
        assert!((quantile_sorted(&xs, 0.9) - 7.6).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[5.0], 0.9), 5.0);
        assert_eq!(quantile_sorted(&xs, 1.0), 10.0);
    }
}
