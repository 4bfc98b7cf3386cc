//! Metrics of one build on its own: conversion rate with a Wilson score interval, mean
//! signals per session with a t interval, time to convert (median, p90 over converters) and
//! funnel drop-off per step.
//!
//! These describe each build for the report; the gate itself uses the paired statistics of
//! `binary` and `counts`, which are far tighter under common random numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    check_finite, check_level, quantile_sorted, t_two_sided, z_two_sided, CompareError, Interval,
};

/// What one simulated (or real) session produced on one build.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionOutcome {
    /// Whether the session reached the scenario's goal.
    pub converted: bool,
    /// Time from session start to conversion, in milliseconds; `None` if it did not convert.
    pub time_to_convert_ms: Option<f64>,
    /// How many funnel steps the session reached in order (0 = not even the first).
    pub steps_reached: usize,
    /// Per-session signal counts by name (`rage_click`, `js_error`, …). A missing name
    /// means zero.
    pub signals: BTreeMap<String, f64>,
}

/// A proportion with its Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    /// Successes (e.g. converted sessions).
    pub successes: u64,
    /// Trials (sessions).
    pub trials: u64,
    /// successes / trials.
    pub estimate: f64,
    /// Wilson score interval.
    pub interval: Interval,
}

/// A mean with its Student's t interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanEstimate {
    /// Number of observations.
    pub n: usize,
    /// Sample mean.
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1).
    pub std_dev: f64,
    /// mean ± t_{n−1, 1−α/2} · sd/√n.
    pub interval: Interval,
}

/// Time to convert over the sessions that converted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeToConvert {
    /// Sessions with a conversion time.
    pub converters: usize,
    /// Median (type-7 quantile), in the input's unit.
    pub median: f64,
    /// 90th percentile (type-7 quantile), in the input's unit.
    pub p90: f64,
    /// Arithmetic mean, in the input's unit.
    pub mean: f64,
}

/// One step of a funnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// Step name, as given.
    pub name: String,
    /// Users who reached this step (and every step before it).
    pub reached: u64,
    /// reached / users.
    pub of_start: f64,
    /// reached / reached at the previous step (the first step: / users); `None` when the
    /// previous step was reached by nobody.
    pub of_previous: Option<f64>,
    /// Users who reached the previous step (the first step: all users) but not this one.
    pub dropped: u64,
}

/// Ordered funnel: how many users reach each step and where they drop off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    /// Users entering the funnel.
    pub users: u64,
    /// The steps, in order.
    pub steps: Vec<FunnelStep>,
}

/// Everything the report shows about one build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSummary {
    /// Sessions summarised.
    pub sessions: usize,
    /// Conversion rate with its Wilson interval.
    pub conversion: Proportion,
    /// Mean count per session of each signal seen in any session, with t intervals.
    pub signals: BTreeMap<String, MeanEstimate>,
    /// Time to convert; `None` when no session converted with a recorded time.
    pub time_to_convert: Option<TimeToConvert>,
    /// The funnel; `None` when no steps were given.
    pub funnel: Option<Funnel>,
}

/// Wilson score interval for a binomial proportion x/n.
///
/// ```text
/// p̂ = x/n,  z = z_{1−α/2}
/// centre = (p̂ + z²/(2n)) / (1 + z²/n)
/// half   = z/(1 + z²/n) · sqrt( p̂(1−p̂)/n + z²/(4n²) )
/// ```
///
/// Always within [0, 1], sensible at x = 0 and x = n. Reference: Wilson (1927), JASA 22:209;
/// `reference/models_stats.md` §3.3 (300/1000 → [0.27241, 0.32912]; 0/50 → [0, 0.07135]).
pub fn wilson_interval(
    successes: u64,
    trials: u64,
    confidence: f64,
) -> Result<Interval, CompareError> {
    check_level("confidence", confidence)?;
    if trials == 0 {
        return Err(CompareError::Empty {
            what: "a proportion",
        });
    }
    if successes > trials {
        return Err(CompareError::Successes { successes, trials });
    }
    let (lower, upper) = wilson_z(successes, trials, z_two_sided(confidence));
    Ok(Interval {
        lower,
        upper,
        confidence,
    })
}

/// Wilson limits for a critical value `z` (any z ≥ 0; z = 0 gives (p̂, p̂)). `trials` > 0,
/// `successes` ≤ `trials`. Clamped so that 0 ≤ lower ≤ p̂ ≤ upper ≤ 1 despite rounding.
pub(crate) fn wilson_z(successes: u64, trials: u64, z: f64) -> (f64, f64) {
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).clamp(0.0, p), (centre + half).clamp(p, 1.0))
}

/// Conversion rate of one build with its Wilson interval ([`wilson_interval`]).
pub fn conversion_rate(converted: &[bool], confidence: f64) -> Result<Proportion, CompareError> {
    let trials = converted.len() as u64;
    let successes = converted.iter().filter(|&&c| c).count() as u64;
    let interval = wilson_interval(successes, trials, confidence)?;
    Ok(Proportion {
        successes,
        trials,
        estimate: successes as f64 / trials as f64,
        interval,
    })
}

/// Mean with a Student's t interval: x̄ ± t_{n−1, 1−α/2} · s/√n, s with divisor n − 1.
///
/// Used for signals per session. Counts are skewed, but at the hundreds of sessions a run
/// has, the t interval on the mean is adequate (CLT). Needs n ≥ 2. Reference: any
/// textbook; `reference/models_stats.md` §3.4.
pub fn mean_interval(values: &[f64], confidence: f64) -> Result<MeanEstimate, CompareError> {
    check_level("confidence", confidence)?;
    let (mean, std_dev) = mean_sd(values, "a mean with an interval")?;
    let n = values.len();
    let half = t_two_sided(confidence, (n - 1) as f64)? * std_dev / (n as f64).sqrt();
    Ok(MeanEstimate {
        n,
        mean,
        std_dev,
        interval: Interval {
            lower: mean - half,
            upper: mean + half,
            confidence,
        },
    })
}

/// Mean and sample standard deviation (two-pass, divisor n − 1) of ≥ 2 finite values.
pub(crate) fn mean_sd(values: &[f64], what: &'static str) -> Result<(f64, f64), CompareError> {
    if values.is_empty() {
        return Err(CompareError::Empty { what });
    }
    if values.len() < 2 {
        return Err(CompareError::TooFew {
            what,
            needed: 2,
            got: values.len(),
        });
    }
    for &v in values {
        check_finite("an observation", v)?;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    Ok((mean, (ss / (n - 1.0)).sqrt()))
}

/// Median, 90th percentile and mean time to convert over the converters' times.
///
/// Quantiles are type 7 (linear interpolation between order statistics, R's default;
/// Hyndman & Fan 1996, Am. Stat. 50:361). Times must be finite and ≥ 0.
pub fn time_to_convert(times: &[f64]) -> Result<TimeToConvert, CompareError> {
    if times.is_empty() {
        return Err(CompareError::Empty {
            what: "time to convert",
        });
    }
    let mut sorted = Vec::with_capacity(times.len());
    for &t in times {
        check_finite("a time to convert", t)?;
        if t < 0.0 {
            return Err(CompareError::Invalid(format!(
                "time to convert must be at least 0, got {t}"
            )));
        }
        sorted.push(t);
    }
    sorted.sort_by(f64::total_cmp);
    Ok(TimeToConvert {
        converters: sorted.len(),
        median: quantile_sorted(&sorted, 0.5),
        p90: quantile_sorted(&sorted, 0.9),
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
    })
}

/// Funnel from how many steps each user reached in order (`reached[i]` ∈ 0..=steps.len()).
///
/// reached_k = #{users with reached ≥ k+1}; of_start = reached_k/users;
/// of_previous = reached_k/reached_{k−1}; dropped = reached_{k−1} − reached_k.
pub fn funnel(steps: &[String], reached: &[usize]) -> Result<Funnel, CompareError> {
    if reached.is_empty() {
        return Err(CompareError::Empty { what: "a funnel" });
    }
    if steps.is_empty() {
        return Err(CompareError::Invalid(
            "a funnel needs at least one step".into(),
        ));
    }
    if let Some(&bad) = reached.iter().find(|&&r| r > steps.len()) {
        return Err(CompareError::Invalid(format!(
            "a user reached step {bad} of a {}-step funnel",
            steps.len()
        )));
    }
    let users = reached.len() as u64;
    let mut previous = users;
    let mut out = Vec::with_capacity(steps.len());
    for (k, name) in steps.iter().enumerate() {
        let at = reached.iter().filter(|&&r| r > k).count() as u64;
        out.push(FunnelStep {
            name: name.clone(),
            reached: at,
            of_start: at as f64 / users as f64,
            of_previous: (previous > 0).then(|| at as f64 / previous as f64),
            dropped: previous - at,
        });
        previous = at;
    }
    Ok(Funnel { users, steps: out })
}

/// Funnel from per-user step hits (`hits[i][k]`: user i hit step k at some point).
///
/// Strict funnel semantics: a user counts at step k only if they hit steps 0..=k, so a
/// user who skips a step leaves the funnel there. Every row must have one entry per step.
pub fn funnel_from_hits(steps: &[String], hits: &[Vec<bool>]) -> Result<Funnel, CompareError> {
    let mut reached = Vec::with_capacity(hits.len());
    for (i, row) in hits.iter().enumerate() {
        if row.len() != steps.len() {
            return Err(CompareError::Invalid(format!(
                "user {i} has {} step hits for a {}-step funnel",
                row.len(),
                steps.len()
            )));
        }
        reached.push(row.iter().take_while(|&&h| h).count());
    }
    funnel(steps, &reached)
}

/// Summarises one build's sessions for the report. Needs at least 2 sessions (for the
/// signal intervals). Signals absent from a session count as 0.
pub fn summarize_build(
    sessions: &[SessionOutcome],
    funnel_steps: &[String],
    confidence: f64,
) -> Result<BuildSummary, CompareError> {
    if sessions.is_empty() {
        return Err(CompareError::Empty {
            what: "a build summary",
        });
    }
    if sessions.len() < 2 {
        return Err(CompareError::TooFew {
            what: "a build summary",
            needed: 2,
            got: sessions.len(),
        });
    }
    let converted: Vec<bool> = sessions.iter().map(|s| s.converted).collect();
    let conversion = conversion_rate(&converted, confidence)?;
    let names: std::collections::BTreeSet<&String> =
        sessions.iter().flat_map(|s| s.signals.keys()).collect();
    let mut signals = BTreeMap::new();
    for name in names {
        let values: Vec<f64> = sessions
            .iter()
            .map(|s| s.signals.get(name).copied().unwrap_or(0.0))
            .collect();
        signals.insert(name.clone(), mean_interval(&values, confidence)?);
    }
    let times: Vec<f64> = sessions
        .iter()
        .filter(|s| s.converted)
        .filter_map(|s| s.time_to_convert_ms)
        .collect();
    let time_to_convert = if times.is_empty() {
        None
    } else {
        Some(time_to_convert(&times)?)
    };
    let funnel = if funnel_steps.is_empty() {
        None
    } else {
        let reached: Vec<usize> = sessions.iter().map(|s| s.steps_reached).collect();
        Some(funnel(funnel_steps, &reached)?)
    };
    Ok(BuildSummary {
        sessions: sessions.len(),
        conversion,
        signals,
        time_to_convert,
        funnel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_reference_vectors() {
        // models_stats.md §3.3.
        let ci = wilson_interval(300, 1000, 0.95).unwrap();
        assert!(
            close(ci.lower, 0.27241, 5e-6) && close(ci.upper, 0.32912, 5e-6),
            "{ci:?}"
        );
        let ci = wilson_interval(0, 50, 0.95).unwrap();
        assert_eq!(ci.lower, 0.0);
        assert!(close(ci.upper, 0.07135, 5e-6), "{ci:?}");
    }

    #[test]
    fn wilson_at_the_edges() {
        let all = wilson_interval(50, 50, 0.95).unwrap();
        assert_eq!(all.upper, 1.0);
        assert!(close(all.lower, 1.0 - 0.07135, 5e-6));
        let one = wilson_interval(1, 1, 0.95).unwrap();
        assert!(one.lower > 0.0 && one.upper == 1.0);
        assert_eq!(
            wilson_interval(0, 0, 0.95),
            Err(CompareError::Empty {
                what: "a proportion"
            })
        );
        assert!(matches!(
            wilson_interval(3, 2, 0.95),
            Err(CompareError::Successes { .. })
        ));
        assert!(matches!(
            wilson_interval(1, 2, 1.0),
            Err(CompareError::Level { .. })
        ));
        assert!(matches!(
            conversion_rate(&[], 0.95),
            Err(CompareError::Empty { .. })
        ));
    }

    #[test]
    fn mean_interval_is_a_t_interval() {
        // 30 values 0..29: mean 14.5, sd = sqrt(77.5); t_{29,0.975} = 2.045230.
        let xs: Vec<f64> = (0..30).map(f64::from).collect();
        let m = mean_interval(&xs, 0.95).unwrap();
        let half = 2.045230 * 77.5f64.sqrt() / 30f64.sqrt();
        assert!(close(m.mean, 14.5, 1e-12));
        assert!(close(m.interval.lower, 14.5 - half, 1e-5));
        assert!(close(m.interval.upper, 14.5 + half, 1e-5));
        let flat = mean_interval(&[2.0, 2.0, 2.0], 0.95).unwrap();
        assert_eq!((flat.interval.lower, flat.interval.upper), (2.0, 2.0));
        assert!(matches!(
            mean_interval(&[1.0], 0.95),
            Err(CompareError::TooFew { got: 1, .. })
        ));
        assert!(matches!(
            mean_interval(&[], 0.95),
            Err(CompareError::Empty { .. })
        ));
        assert!(matches!(
            mean_interval(&[1.0, f64::NAN], 0.95),
            Err(CompareError::NotFinite { .. })
        ));
    }

    #[test]
    fn time_to_convert_quantiles() {
        let t = time_to_convert(&[4000.0, 1000.0, 3000.0, 2000.0, 10000.0]).unwrap();
        assert_eq!(t.converters, 5);
        assert_eq!(t.median, 3000.0);
        assert!(close(t.p90, 7600.0, 1e-9));
        assert_eq!(t.mean, 4000.0);
        assert!(matches!(
            time_to_convert(&[]),
            Err(CompareError::Empty { .. })
        ));
        assert!(time_to_convert(&[-1.0]).is_err());
    }

    #[test]
    fn funnel_drop_off() {
        let steps: Vec<String> = ["product", "cart", "checkout"].map(String::from).to_vec();
        let f = funnel(&steps, &[0, 1, 1, 2, 3, 3, 3, 2]).unwrap();
        let reached: Vec<u64> = f.steps.iter().map(|s| s.reached).collect();
        assert_eq!(reached, [7, 5, 3]);
        let dropped: Vec<u64> = f.steps.iter().map(|s| s.dropped).collect();
        assert_eq!(dropped, [1, 2, 2]);
        assert_eq!(f.steps[1].of_previous, Some(5.0 / 7.0));
        assert_eq!(f.steps[2].of_start, 3.0 / 8.0);

        let nobody = funnel(&steps, &[0, 0]).unwrap();
        assert_eq!(nobody.steps[1].of_previous, None);
        assert!(funnel(&steps, &[4]).is_err());
        assert!(funnel(&steps, &[]).is_err());

        let hits = vec![
            vec![true, false, true], // skipped the cart: leaves after product
            vec![true, true, true],
            vec![false, true, true],
        ];
        let h = funnel_from_hits(&steps, &hits).unwrap();
        let reached: Vec<u64> = h.steps.iter().map(|s| s.reached).collect();
        assert_eq!(reached, [2, 1, 1]);
        assert!(funnel_from_hits(&steps, &[vec![true]]).is_err());
    }

    #[test]
    fn build_summary_fills_missing_signals_with_zero() {
        let mut a = SessionOutcome {
            converted: true,
            time_to_convert_ms: Some(1200.0),
            steps_reached: 2,
            ..Default::default()
        };
        a.signals.insert("rage_click".into(), 2.0);
        let b = SessionOutcome::default();
        let steps = vec!["a".to_string(), "b".to_string()];
        let s = summarize_build(&[a, b], &steps, 0.95).unwrap();
        assert_eq!(s.conversion.successes, 1);
        assert_eq!(s.signals["rage_click"].mean, 1.0);
        assert_eq!(s.time_to_convert.unwrap().median, 1200.0);
        assert_eq!(s.funnel.unwrap().steps[1].reached, 1);
        assert!(summarize_build(&[], &steps, 0.95).is_err());
        assert!(summarize_build(&[SessionOutcome::default()], &[], 0.95).is_err());
    }

    proptest! {
        // No regression files: this module's tests must not write into the tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn wilson_is_within_unit_interval_and_contains_estimate(
            n in 1u64..5000, frac in 0.0f64..=1.0, conf in 0.5f64..0.9999,
        ) {
            let x = ((n as f64) * frac).round() as u64;
            let ci = wilson_interval(x, n, conf).unwrap();
            let p = x as f64 / n as f64;
            prop_assert!(0.0 <= ci.lower && ci.upper <= 1.0);
            prop_assert!(ci.contains(p));
            prop_assert!(ci.lower.is_finite() && ci.upper.is_finite());
        }

        #[test]
        fn mean_interval_contains_the_mean(xs in prop::collection::vec(0.0f64..50.0, 2..60)) {
            let m = mean_interval(&xs, 0.95).unwrap();
            prop_assert!(m.interval.contains(m.mean));
        }
    }
}
