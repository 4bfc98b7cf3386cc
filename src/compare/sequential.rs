//! Sequential stopping: an anytime-valid confidence sequence (CS) for each gated metric's
//! paired difference, looked at every k pairs between `min_pairs` and `max_pairs`, and the
//! rule that tells the runner to continue or stop.
//!
//! The CS is the two-sided normal-mixture boundary (Robbins 1970; Howard, Ramdas, McAuliffe
//! & Sekhon 2021, Ann. Stat. 49:1055, arXiv 1810.08240) with a plug-in variance, i.e. the
//! asymptotic CS of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (arXiv 2103.06476, R
//! `drconfseq::std_conjmix_margin`). With τ = ρσ it is the same martingale as the mSPRT of
//! Johari, Pekelis & Walsh (Oper. Res. 2022), so the always-valid p-value comes from the
//! same formula (`reference/models_stats.md` §3.5).
//!
//! **Error guarantee.** For i.i.d. differences with finite variance, the CS at level α
//! covers the true mean at *all* times simultaneously with probability → 1 − α as the
//! burn-in grows (time-uniform asymptotic coverage: it is a CLT-based, not an exact,
//! guarantee). Each of the m gated checks gets α/m (Bonferroni), so the chance that any
//! gated check is ever decided on the wrong side of its threshold — at any look, however
//! many looks the runner makes and whenever it stops — is at most α, asymptotically. The
//! burn-in (`min_pairs`, ≥ 100–200) and the variance floor (from A/A runs) keep the CLT
//! honest when few pairs are discordant.

use serde::{Deserialize, Serialize};

use super::gate::{explain, validate_inputs, Check, Level, Metric, PairedData, Verdict};
use super::per_build::mean_sd;
use super::{check_finite, check_level, CompareError, Interval};

/// When and how to look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialPlan {
    /// Family error rate across the gated checks (two-sided, over all looks), e.g. 0.05.
    pub alpha: f64,
    /// Burn-in: no look before this many pairs (≥ 2; 100–200 recommended).
    pub min_pairs: usize,
    /// Stop here whatever the answer (≥ `min_pairs`).
    pub max_pairs: usize,
    /// Look every this many pairs after `min_pairs` (≥ 1; 50–100 recommended).
    pub check_every: usize,
    /// t*: the number of pairs at which the boundary is tightest (ρ is tuned for it).
    pub tuned_for: usize,
    /// Smallest variance of a per-user difference to assume (≥ 0), in squared metric
    /// units. For conversion it is the discordance ψ that browser noise alone produces;
    /// measure it with A/A runs.
    pub variance_floor: f64,
}

impl Default for SequentialPlan {
    /// α = 0.05, burn-in 200, at most 2,000 pairs, a look every 50, tuned for 500 pairs,
    /// variance floor 0.005 (½% noise discordance).
    fn default() -> Self {
        SequentialPlan {
            alpha: 0.05,
            min_pairs: 200,
            max_pairs: 2000,
            check_every: 50,
            tuned_for: 500,
            variance_floor: 0.005,
        }
    }
}

/// The confidence sequence of one metric at the current number of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CsPoint {
    /// Pairs so far, t.
    pub pairs: usize,
    /// D̄_t.
    pub mean: f64,
    /// The σ̂_t used: max(sample sd, √floor).
    pub std_dev: f64,
    /// D̄_t ± margin; `confidence` is 1 − α, valid uniformly over time.
    pub interval: Interval,
}

/// One check at a look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialCheck {
    /// The metric.
    pub metric: Metric,
    /// The check's level.
    pub level: Level,
    /// D̄_t.
    pub estimate: f64,
    /// The confidence sequence at α/m (α for level off).
    pub interval: Interval,
    /// Always-valid p-value of Δ = threshold (raw; valid at any stopping time).
    pub p_threshold: f64,
    /// The gate's rule applied to the CS.
    pub verdict: Verdict,
    /// One line for humans.
    pub explanation: String,
}

/// Why the run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every gated check is decided (pass or fail).
    Decided,
    /// An error-level check failed: the gate fails whatever the others say.
    ErrorCheckFailed,
    /// `max_pairs` reached; undecided checks are inconclusive.
    MaxPairs,
}

/// Continue or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequentialDecision {
    /// Run more users; look again at `next_look` pairs.
    Continue {
        /// The next scheduled look (≤ `max_pairs`).
        next_look: usize,
    },
    /// Stop now; the checks' verdicts are the gate's.
    Stop(StopReason),
}

/// The answer at a look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialStatus {
    /// Pairs so far.
    pub pairs: usize,
    /// Continue or stop.
    pub decision: SequentialDecision,
    /// Every check's CS and verdict (empty before the burn-in).
    pub checks: Vec<SequentialCheck>,
}

impl SequentialPlan {
    /// Rejects inconsistent plans.
    pub fn validate(&self) -> Result<(), CompareError> {
        check_level("alpha", self.alpha)?;
        let problem = if self.min_pairs < 2 {
            Some("min_pairs must be at least 2")
        } else if self.max_pairs < self.min_pairs {
            Some("max_pairs must be at least min_pairs")
        } else if self.check_every == 0 {
            Some("check_every must be at least 1")
        } else if self.tuned_for == 0 {
            Some("tuned_for must be at least 1")
        } else if !(self.variance_floor.is_finite() && self.variance_floor >= 0.0) {
            Some("variance_floor must be finite and at least 0")
        } else {
            None
        };
        match problem {
            Some(p) => Err(CompareError::Invalid(format!("sequential plan: {p}"))),
            None => Ok(()),
        }
    }

    /// The first scheduled look after `pairs` pairs: `min_pairs`, then every `check_every`,
    /// capped at `max_pairs`.
    pub fn next_look(&self, pairs: usize) -> usize {
        if pairs < self.min_pairs {
            return self.min_pairs;
        }
        let steps = (pairs - self.min_pairs) / self.check_every + 1;
        (self.min_pairs + steps * self.check_every).min(self.max_pairs)
    }
}

/// Lambert W on its lower branch, W₋₁(x) for x ∈ [−1/e, 0): the w ≤ −1 with w·eʷ = x.
/// Solved by bisection on ln(−w) + w = ln(−x), increasing in w on (−∞, −1].
fn lambert_w_minus1(x: f64) -> f64 {
    let target = (-x).ln();
    let g = |w: f64| (-w).ln() + w - target;
    if g(-1.0) <= 0.0 {
        return -1.0;
    }
    let mut lo = -2.0;
    while g(lo) > 0.0 {
        lo *= 2.0;
    }
    super::bisect(g, lo, -1.0)
}

/// ρ² that makes the two-sided normal-mixture boundary tightest at t* pairs:
///
/// ```text
/// ρ² = (−W₋₁(−α² e^{α²−1}) − 1) / t*
/// ```
///
/// References: Howard et al. (2021); Waudby-Smith et al. (arXiv 2103.06476);
/// `reference/models_stats.md` §3.5 (≈ (−2 ln α + ln(−2 ln α + 1))/t*).
pub fn mixture_rho2(alpha: f64, tuned_for: usize) -> Result<f64, CompareError> {
    check_level("alpha", alpha)?;
    if tuned_for == 0 {
        return Err(CompareError::Invalid("tuned_for must be at least 1".into()));
    }
    let a2 = alpha * alpha;
    let w = lambert_w_minus1(-a2 * (a2 - 1.0).exp());
    Ok((-w - 1.0) / tuned_for as f64)
}

/// Half-width of the two-sided normal-mixture confidence sequence after t pairs:
///
/// ```text
/// margin_t = σ · sqrt( 2(tρ² + 1)/(t²ρ²) · ln( sqrt(tρ² + 1)/α ) )
/// ```
///
/// At t = t* with α = 0.05 this is 3.035·σ/√t (against 1.960 for a fixed-n interval).
pub fn cs_margin(t: usize, sigma: f64, alpha: f64, rho2: f64) -> f64 {
    let t = t as f64;
    let tr = t * rho2;
    sigma * (2.0 * (tr + 1.0) / (t * t * rho2) * ((tr + 1.0).sqrt() / alpha).ln()).sqrt()
}

/// σ̂ = max(sample sd, √floor), with the sample mean, of ≥ 2 differences.
fn plug_in(diffs: &[f64], variance_floor: f64) -> Result<(f64, f64), CompareError> {
    check_finite("variance_floor", variance_floor)?;
    let (mean, sd) = mean_sd(diffs, "a confidence sequence")?;
    Ok((mean, sd.max(variance_floor.max(0.0).sqrt())))
}

/// The confidence sequence for the mean of the paired differences `diffs` (in arrival
/// order; only their mean and spread matter) at level α, tuned for t* = `tuned_for`:
///
/// ```text
/// C_t = D̄_t ± σ̂_t · sqrt( 2(tρ² + 1)/(t²ρ²) · ln( sqrt(tρ² + 1)/α ) )
/// σ̂_t² = max(s_t², floor)
/// ```
///
/// See the module docs for the guarantee. Needs t ≥ 2.
pub fn confidence_sequence(
    diffs: &[f64],
    alpha: f64,
    tuned_for: usize,
    variance_floor: f64,
) -> Result<CsPoint, CompareError> {
    let rho2 = mixture_rho2(alpha, tuned_for)?;
    let (mean, sigma) = plug_in(diffs, variance_floor)?;
    let margin = cs_margin(diffs.len(), sigma, alpha, rho2);
    Ok(CsPoint {
        pairs: diffs.len(),
        mean,
        std_dev: sigma,
        interval: Interval {
            lower: mean - margin,
            upper: mean + margin,
            confidence: 1.0 - alpha,
        },
    })
}

/// Always-valid p-value of H₀: E(D) = δ₀ from the normal-mixture likelihood ratio
/// (mSPRT), with τ² = ρ²σ̂² and ρ² tuned for (α, t*) as in [`confidence_sequence`]:
///
/// ```text
/// Λ_t = (1 + tρ²)^{−1/2} · exp( t²ρ²(D̄_t − δ₀)² / (2σ̂²(1 + tρ²)) ),   p_t = min(1, 1/Λ_t)
/// ```
///
/// P(p_τ ≤ a) ≤ a at any stopping time τ (asymptotically, with the plug-in σ̂), and
/// p_t > α exactly when δ₀ is inside the CS at level α. Reference: Johari, Pekelis & Walsh,
/// "Always valid inference", Oper. Res. 2022 (arXiv 1512.04922); `models_stats.md` §3.5.
pub fn always_valid_p_value(
    diffs: &[f64],
    delta0: f64,
    alpha: f64,
    tuned_for: usize,
    variance_floor: f64,
) -> Result<f64, CompareError> {
    check_finite("a hypothesised difference", delta0)?;
    let rho2 = mixture_rho2(alpha, tuned_for)?;
    let (mean, sigma) = plug_in(diffs, variance_floor)?;
    let t = diffs.len() as f64;
    let tr = t * rho2;
    let d = mean - delta0;
    if sigma == 0.0 {
        return Ok(if d == 0.0 { 1.0 } else { 0.0 });
    }
    let ln_lambda = -0.5 * tr.ln_1p() + t * tr * d * d / (2.0 * sigma * sigma * (1.0 + tr));
    Ok((-ln_lambda).exp().min(1.0))
}

/// The stop/continue rule, given all pairs so far (call it whenever a batch finishes;
/// the CS is anytime-valid, so looking off the schedule is harmless).
///
/// * Fewer than `min_pairs` pairs: Continue (no look, no checks).
/// * Otherwise every check gets its CS on the per-user differences (conversion as −1/0/1)
///   at α/m for the m gated checks (α for level off, which never stops anything), and the
///   gate's rule gives its verdict.
/// * Stop(ErrorCheckFailed) if an error-level check failed; Stop(Decided) if every gated
///   check passed or failed; Stop(MaxPairs) at `max_pairs`; else Continue to the next look.
///
/// When the run stops, these verdicts are the gate's (combine them with
/// `GateOutcome::from_verdicts`). The fixed-sample `evaluate` is for the report's
/// intervals: after optional stopping its coverage is no longer exact.
/// The variance floor for one check's differences. For conversion the per-user difference
/// is −1, 0 or +1, so its variance is at most the discordance rate ψ; with few pairs, and
/// above all with none discordant, the sample variance says little (zero discordant pairs
/// out of 30 does not mean ψ = 0). The floor is then ψ shrunk the Agresti–Coull way,
/// ψ̃ = (k + z²/2)/(t + z²) with z at the check's level: it stays near the sample value once
/// discordant pairs are many, and keeps early looks honest when they are few.
fn variance_floor_for(
    metric: &Metric,
    diffs: &[f64],
    alpha: f64,
    plan_floor: f64,
) -> Result<f64, CompareError> {
    if *metric != Metric::Conversion || diffs.is_empty() {
        return Ok(plan_floor);
    }
    let discordant = diffs.iter().filter(|d| **d != 0.0).count() as f64;
    let z2 = super::z_two_sided(1.0 - alpha).powi(2);
    let psi = (discordant + z2 / 2.0) / (diffs.len() as f64 + z2);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    Ok(plan_floor.max(psi - mean * mean))
}

pub fn sequential_decision(
    checks: &[Check],
    data: &PairedData,
    plan: &SequentialPlan,
) -> Result<SequentialStatus, CompareError> {
    plan.validate()?;
    let n = validate_inputs(checks, data)?;
    if n < plan.min_pairs {
        return Ok(SequentialStatus {
            pairs: n,
            decision: SequentialDecision::Continue {
                next_look: plan.min_pairs,
            },
            checks: Vec::new(),
        });
    }
    let gated = checks.iter().filter(|c| c.level.is_gated()).count().max(1);
    let mut out = Vec::with_capacity(checks.len());
    for check in checks {
        let alpha = if check.level.is_gated() {
            plan.alpha / gated as f64
        } else {
            plan.alpha
        };
        let (diffs, _) = data.differences(&check.metric);
        let floor = variance_floor_for(&check.metric, &diffs, alpha, plan.variance_floor)?;
        let mut cs = confidence_sequence(&diffs, alpha, plan.tuned_for, floor)?;
        if check.metric == Metric::Conversion {
            cs.interval.lower = cs.interval.lower.max(-1.0);
            cs.interval.upper = cs.interval.upper.min(1.0);
        }
        let verdict = check.verdict(&cs.interval);
        out.push(SequentialCheck {
            metric: check.metric.clone(),
            level: check.level,
            estimate: cs.mean,
            interval: cs.interval,
            p_threshold: always_valid_p_value(
                &diffs,
                check.threshold(),
                alpha,
                plan.tuned_for,
                floor,
            )?,
            explanation: format!(
                "{} [confidence sequence]",
                explain(check, cs.mean, &cs.interval, verdict)
            ),
            verdict,
        });
    }
    let gated_checks = || out.iter().filter(|c| c.level.is_gated());
    let decision = if gated_checks().any(|c| c.level == Level::Error && c.verdict == Verdict::Fail)
    {
        SequentialDecision::Stop(StopReason::ErrorCheckFailed)
    } else if gated_checks().all(|c| c.verdict != Verdict::Inconclusive) {
        SequentialDecision::Stop(StopReason::Decided)
    } else if n >= plan.max_pairs {
        SequentialDecision::Stop(StopReason::MaxPairs)
    } else {
        SequentialDecision::Continue {
            next_look: plan.next_look(n),
        }
    };
    Ok(SequentialStatus {
        pairs: n,
        decision,
        checks: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Pair;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeMap;

    #[test]
    fn boundary_matches_the_reference() {
        // models_stats.md §3.5: at t* with α = 0.05 the margin is 3.035 σ/√t, and it stays
        // within about 3.1–3.3 σ/√t at t*/4, 4t* and 16t*.
        let rho2 = mixture_rho2(0.05, 500).unwrap();
        let at = |t: usize| cs_margin(t, 1.0, 0.05, rho2) * (t as f64).sqrt();
        assert!((at(500) - 3.035).abs() < 1e-3, "{}", at(500));
        for t in [125, 2000, 8000] {
            assert!((3.05..3.35).contains(&at(t)), "t = {t}: {}", at(t));
        }
        // The closed-form approximation of ρ² t* is close to the exact one.
        let approx = -2.0 * 0.05f64.ln() + (-2.0 * 0.05f64.ln() + 1.0).ln();
        assert!(
            (rho2 * 500.0 - approx).abs() < 0.5,
            "{} vs {approx}",
            rho2 * 500.0
        );
    }

    #[test]
    fn lambert_w_lower_branch() {
        for x in [-0.3, -0.01, -1e-6] {
            let w = lambert_w_minus1(x);
            assert!(
                w <= -1.0 && ((w * w.exp() - x) / x).abs() < 1e-9,
                "{x}: {w}"
            );
        }
        assert!((lambert_w_minus1(-1.0 / std::f64::consts::E) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn msprt_matches_the_reference_example() {
        // §3.5: n = 1000, D̄ = 0.025, V = 0.0344, τ = 0.03 → Λ = 1218 (p ≈ 8e-4).
        // With τ = ρσ, ρ² = τ²/V; we check the formula through the CS duality instead:
        // p at the CS limit equals α.
        let diffs: Vec<f64> = std::iter::repeat_n(-1.0, 30)
            .chain(std::iter::repeat_n(1.0, 5))
            .chain(std::iter::repeat_n(0.0, 965))
            .collect();
        let cs = confidence_sequence(&diffs, 0.05, 500, 0.0).unwrap();
        for limit in [cs.interval.lower, cs.interval.upper] {
            let p = always_valid_p_value(&diffs, limit, 0.05, 500, 0.0).unwrap();
            assert!((p - 0.05).abs() < 1e-9, "{p}");
        }
        assert_eq!(
            always_valid_p_value(&diffs, cs.mean, 0.05, 500, 0.0).unwrap(),
            1.0
        );
        // Direct Λ with the reference's numbers: τ = 0.03, V = 0.0344 → Λ ≈ 1218.
        let (v, tau2, t, d) = (0.0344f64, 0.03f64 * 0.03, 1000.0f64, 0.025f64);
        let lambda =
            (v / (v + t * tau2)).sqrt() * (t * t * tau2 * d * d / (2.0 * v * (v + t * tau2))).exp();
        assert!((lambda - 1218.0).abs() / 1218.0 < 0.01, "{lambda}");
        let rho2 = tau2 / v;
        let tr = t * rho2;
        let ours = (-0.5 * tr.ln_1p() + t * tr * d * d / (2.0 * v * (1.0 + tr))).exp();
        assert!((ours - lambda).abs() / lambda < 1e-9);
    }

    fn conversion_data(pairs: &[(bool, bool)]) -> PairedData {
        PairedData {
            conversion: pairs.iter().map(|&(b, c)| Pair::new(b, c)).collect(),
            signals: BTreeMap::new(),
        }
    }

    #[test]
    fn plan_schedule_and_validation() {
        let plan = SequentialPlan::default();
        assert_eq!(plan.next_look(0), 200);
        assert_eq!(plan.next_look(200), 250);
        assert_eq!(plan.next_look(237), 250);
        assert_eq!(plan.next_look(1990), 2000);
        assert_eq!(plan.next_look(5000), 2000);
        assert!(plan.validate().is_ok());
        let bad = SequentialPlan {
            max_pairs: 10,
            ..plan
        };
        assert!(bad.validate().is_err());
        let bad = SequentialPlan {
            check_every: 0,
            ..plan
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn no_discordant_pairs_in_a_short_run_prove_nothing() {
        // 30 identical pairs: with the plan's floor alone (σ = 0.07) the CS would call a
        // 5 pp tolerance met; zero discordant out of 30 is compatible with ψ near 10%.
        let plan = SequentialPlan {
            min_pairs: 30,
            max_pairs: 300,
            check_every: 30,
            ..SequentialPlan::default()
        };
        let checks = [Check::conversion_may_not_drop(0.05, Level::Error)];
        let same: Vec<(bool, bool)> = (0..30).map(|i| (i % 3 == 0, i % 3 == 0)).collect();
        let s = sequential_decision(&checks, &conversion_data(&same), &plan).unwrap();
        assert_eq!(s.checks[0].verdict, Verdict::Inconclusive, "{s:?}");
        assert!(s.checks[0].interval.lower < -0.05, "{s:?}");
        assert!(matches!(s.decision, SequentialDecision::Continue { .. }));
        // Many discordant pairs: the shrinkage hardly moves the plug-in variance.
        let (diffs, _) = conversion_data(
            &(0..400)
                .map(|i| (i % 4 == 0, i % 4 == 0 || i % 5 == 1))
                .collect::<Vec<_>>(),
        )
        .differences(&Metric::Conversion);
        let (_, sd) = mean_sd(&diffs, "test").unwrap();
        let floor = variance_floor_for(&Metric::Conversion, &diffs, 0.05, 0.0).unwrap();
        assert!(floor.sqrt() < sd * 1.05, "{} vs {sd}", floor.sqrt());
    }

    #[test]
    fn stops_early_for_identical_builds_and_for_a_big_regression() {
        let plan = SequentialPlan::default();
        let checks = [Check::conversion_may_not_drop(0.02, Level::Error)];
        // Before the burn-in: continue to min_pairs.
        let few = conversion_data(&[(true, true); 50]);
        let s = sequential_decision(&checks, &few, &plan).unwrap();
        assert_eq!(s.decision, SequentialDecision::Continue { next_look: 200 });
        assert!(s.checks.is_empty());
        // 300 identical pairs (30% converting): the floor keeps the CS honest, and 2 pp
        // tolerance is met: pass.
        let same: Vec<(bool, bool)> = (0..300).map(|i| (i % 10 < 3, i % 10 < 3)).collect();
        let s = sequential_decision(&checks, &conversion_data(&same), &plan).unwrap();
        assert_eq!(
            s.decision,
            SequentialDecision::Stop(StopReason::Decided),
            "{s:?}"
        );
        assert_eq!(s.checks[0].verdict, Verdict::Pass);
        // 10% of users lose their conversion: fail at the first look.
        let worse: Vec<(bool, bool)> = (0..200).map(|i| (i % 10 < 3, i % 10 < 2)).collect();
        let s = sequential_decision(&checks, &conversion_data(&worse), &plan).unwrap();
        assert_eq!(
            s.decision,
            SequentialDecision::Stop(StopReason::ErrorCheckFailed),
            "{s:?}"
        );
        // A small, unclear change: continue; at max_pairs: stop, inconclusive.
        let unclear: Vec<(bool, bool)> = (0..400)
            .map(|i| (i % 10 < 3 || i % 50 == 7, i % 10 < 3 || i % 40 == 9))
            .collect();
        let tight = SequentialPlan {
            variance_floor: 0.02,
            ..plan
        };
        let s = sequential_decision(&checks, &conversion_data(&unclear), &tight).unwrap();
        assert_eq!(
            s.decision,
            SequentialDecision::Continue { next_look: 450 },
            "{s:?}"
        );
        let capped = SequentialPlan {
            max_pairs: 400,
            ..tight
        };
        let s = sequential_decision(&checks, &conversion_data(&unclear), &capped).unwrap();
        assert_eq!(s.decision, SequentialDecision::Stop(StopReason::MaxPairs));
        assert_eq!(s.checks[0].verdict, Verdict::Inconclusive);
        assert!(serde_json::to_string(&s).unwrap().contains("max_pairs"));
    }

    #[test]
    fn confidence_sequence_errors_and_floor() {
        assert!(matches!(
            confidence_sequence(&[], 0.05, 500, 0.0),
            Err(CompareError::Empty { .. })
        ));
        assert!(matches!(
            confidence_sequence(&[1.0], 0.05, 500, 0.0),
            Err(CompareError::TooFew { .. })
        ));
        let zeros = vec![0.0; 300];
        let cs = confidence_sequence(&zeros, 0.05, 500, 0.005).unwrap();
        assert!(cs.interval.lower < 0.0 && cs.interval.upper > 0.0);
        assert!((cs.std_dev - 0.005f64.sqrt()).abs() < 1e-15);
        let cs = confidence_sequence(&zeros, 0.05, 500, 0.0).unwrap();
        assert_eq!((cs.interval.lower, cs.interval.upper), (0.0, 0.0));
        assert_eq!(
            always_valid_p_value(&zeros, 0.0, 0.05, 500, 0.0).unwrap(),
            1.0
        );
    }

    #[test]
    fn time_uniform_coverage_is_near_nominal() {
        // 200 paths of 1,000 paired conversions (ψ = 0.07, Δ = 0.03), looked at every 50
        // pairs from 200: the CS at α = 0.05 should miss the truth on at most ~5% of paths.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let truth = 0.03;
        let mut missed = 0;
        let paths = 200;
        for _ in 0..paths {
            let diffs: Vec<f64> = (0..1000)
                .map(|_| {
                    let u: f64 = rng.random();
                    if u < 0.02 {
                        -1.0
                    } else if u < 0.07 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let miss = (200..=1000).step_by(50).any(|t| {
                let cs = confidence_sequence(&diffs[..t], 0.05, 500, 0.0).unwrap();
                !cs.interval.contains(truth)
            });
            missed += usize::from(miss);
        }
        let rate = missed as f64 / paths as f64;
        assert!(rate <= 0.07, "time-uniform miss rate {rate}");
    }
}
