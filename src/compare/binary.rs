//! Paired conversion: from per-user pairs (baseline converted?, candidate converted?) to
//! the paired 2×2 table, the exact McNemar test and a paired interval for
//! Δ = p_candidate − p_baseline (Tango's score interval or Newcombe's method 10).
//!
//! Notation (`reference/models_stats.md` §3.1): a = both converted, b = baseline only,
//! c = candidate only, d = neither, n = a + b + c + d, Δ̂ = (c − b)/n. Under common random
//! numbers most pairs are concordant, so b + c is small and the exact test matters.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, Discrete, DiscreteCDF};

use super::per_build::wilson_z;
use super::{bisect, check_level, normal_sf, z_two_sided, CompareError, Interval, Pair};

/// The paired 2×2 table of conversion outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PairedTable {
    /// a: converted on both builds.
    pub both: u64,
    /// b (n₁₀): converted on the baseline only.
    pub baseline_only: u64,
    /// c (n₀₁): converted on the candidate only.
    pub candidate_only: u64,
    /// d: converted on neither.
    pub neither: u64,
}

/// Which paired interval to use for Δ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairedMethod {
    /// Tango's asymptotic score interval (test inversion; the default).
    #[default]
    Tango,
    /// Newcombe's hybrid score interval for paired data (method 10).
    Newcombe,
}

/// McNemar's test of "no change" (p_b = p_c) on the discordant pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// b: converted on the baseline only.
    pub baseline_only: u64,
    /// c: converted on the candidate only.
    pub candidate_only: u64,
    /// Exact conditional two-sided p: min(1, 2·P(X ≤ min(b, c))), X ~ Bin(b + c, ½).
    pub exact_p: f64,
    /// Mid-p: the exact p with half the probability of the observed value.
    pub mid_p: f64,
    /// (b − c)²/(b + c); 0 when b + c = 0.
    pub chi_square: f64,
    /// P(χ²₁ ≥ chi_square).
    pub asymptotic_p: f64,
    /// Continuity-corrected max(0, |b − c| − 1)²/(b + c).
    pub chi_square_corrected: f64,
    /// P(χ²₁ ≥ chi_square_corrected).
    pub corrected_p: f64,
}

/// Paired conversion comparison: rates, Δ, its interval and McNemar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedConversion {
    /// The paired table.
    pub table: PairedTable,
    /// (a + b)/n.
    pub baseline_rate: f64,
    /// (a + c)/n.
    pub candidate_rate: f64,
    /// Δ̂ = (c − b)/n.
    pub delta: f64,
    /// The paired interval for Δ.
    pub interval: Interval,
    /// How the interval was computed.
    pub method: PairedMethod,
    /// McNemar's test of no change.
    pub mcnemar: McNemar,
}

impl PairedTable {
    /// Builds a table from its four cells (a, b, c, d).
    pub fn new(both: u64, baseline_only: u64, candidate_only: u64, neither: u64) -> Self {
        PairedTable {
            both,
            baseline_only,
            candidate_only,
            neither,
        }
    }

    /// Counts the four cells from per-user pairs.
    pub fn from_pairs(pairs: &[Pair<bool>]) -> Self {
        let mut t = PairedTable::default();
        for p in pairs {
            match (p.baseline, p.candidate) {
                (true, true) => t.both += 1,
                (true, false) => t.baseline_only += 1,
                (false, true) => t.candidate_only += 1,
                (false, false) => t.neither += 1,
            }
        }
        t
    }

    /// Number of pairs, n.
    pub fn n(&self) -> u64 {
        self.both + self.baseline_only + self.candidate_only + self.neither
    }

    /// Number of discordant pairs, b + c.
    pub fn discordant(&self) -> u64 {
        self.baseline_only + self.candidate_only
    }

    /// Δ̂ = (c − b)/n; an error for an empty table.
    pub fn delta(&self) -> Result<f64, CompareError> {
        let n = self.nonempty()?;
        Ok((self.candidate_only as f64 - self.baseline_only as f64) / n)
    }

    /// The paired interval for Δ by `method`.
    pub fn interval(
        &self,
        method: PairedMethod,
        confidence: f64,
    ) -> Result<Interval, CompareError> {
        match method {
            PairedMethod::Tango => tango_interval(self, confidence),
            PairedMethod::Newcombe => newcombe_paired_interval(self, confidence),
        }
    }

    /// Two-sided p-value of H₀: Δ = `delta0`, by inverting the interval family of `method`:
    /// the largest α at which the (1 − α) interval still contains `delta0`.
    pub fn p_value(&self, method: PairedMethod, delta0: f64) -> Result<f64, CompareError> {
        match method {
            PairedMethod::Tango => tango_p_value(self, delta0),
            PairedMethod::Newcombe => newcombe_paired_p_value(self, delta0),
        }
    }

    fn nonempty(&self) -> Result<f64, CompareError> {
        match self.n() {
            0 => Err(CompareError::Empty {
                what: "a paired table",
            }),
            n => Ok(n as f64),
        }
    }
}

/// McNemar's test on the discordant pairs b and c.
///
/// ```text
/// exact (conditional): p = min(1, 2·Σ_{i ≤ min(b,c)} C(b+c, i)·2^{−(b+c)})
/// mid-p:               the same with the i = min(b,c) term halved
/// asymptotic:          χ² = (b − c)²/(b + c), 1 df;  corrected: (|b − c| − 1)²/(b + c)
/// ```
///
/// With no discordant pairs every p-value is 1. Use the exact test when b + c < 25
/// (common under CRN). References: McNemar (1947), Psychometrika 12:153;
/// `reference/models_stats.md` §3.3; Fagerland, Lydersen & Laake (2013), BMC Med Res
/// Methodol 13:91.
pub fn mcnemar(table: &PairedTable) -> Result<McNemar, CompareError> {
    let (b, c) = (table.baseline_only, table.candidate_only);
    let m = b + c;
    let none = McNemar {
        baseline_only: b,
        candidate_only: c,
        exact_p: 1.0,
        mid_p: 1.0,
        chi_square: 0.0,
        asymptotic_p: 1.0,
        chi_square_corrected: 0.0,
        corrected_p: 1.0,
    };
    if m == 0 {
        return Ok(none);
    }
    let binom = Binomial::new(0.5, m)
        .map_err(|e| CompareError::Invalid(format!("binomial with {m} trials: {e}")))?;
    let k = b.min(c);
    let cdf = binom.cdf(k);
    let exact_p = (2.0 * cdf).min(1.0);
    let mid_p = (2.0 * (cdf - 0.5 * binom.pmf(k))).clamp(0.0, 1.0);
    let diff = b.abs_diff(c) as f64;
    let chi_square = diff * diff / m as f64;
    let corrected = (diff - 1.0).max(0.0);
    let chi_square_corrected = corrected * corrected / m as f64;
    Ok(McNemar {
        exact_p,
        mid_p,
        chi_square,
        // χ²₁ tail = two-sided normal tail of √χ².
        asymptotic_p: (2.0 * normal_sf(chi_square.sqrt())).min(1.0),
        chi_square_corrected,
        corrected_p: (2.0 * normal_sf(chi_square_corrected.sqrt())).min(1.0),
        ..none
    })
}

/// Tango's score statistic for H₀: Δ = δ, written for Δ = p_c − p_b (Tango's n₁₂ is our c,
/// n₂₁ our b; the formula is symmetric under that swap with δ → −δ):
///
/// ```text
/// T(δ) = (c − b − nδ) / sqrt( n·(2·p̃(δ) + δ(1 − δ)) )
/// p̃(δ) = (sqrt(B² − 4AC) − B)/(2A),  A = 2n,  B = −c − b + (2n − c + b)δ,  C = −b·δ(1 − δ)
/// ```
///
/// p̃ is the restricted ML estimate of P(baseline only) given Δ = δ. T is decreasing in δ.
/// Where the variance vanishes (a degenerate boundary), T is 0 if the numerator is 0 and
/// ±∞ with its sign otherwise.
fn tango_statistic(table: &PairedTable, delta: f64) -> f64 {
    let n = table.n() as f64;
    let b = table.baseline_only as f64;
    let c = table.candidate_only as f64;
    let a_coef = 2.0 * n;
    let b_coef = -c - b + (2.0 * n - c + b) * delta;
    let c_coef = -b * delta * (1.0 - delta);
    let root = (b_coef * b_coef - 4.0 * a_coef * c_coef).max(0.0).sqrt();
    // The larger root of A·x² + B·x + C, in the form that avoids cancellation.
    let p_tilde = if b_coef > 0.0 {
        -2.0 * c_coef / (root + b_coef)
    } else {
        (root - b_coef) / (2.0 * a_coef)
    };
    let numerator = c - b - n * delta;
    let variance = n * (2.0 * p_tilde + delta * (1.0 - delta));
    if variance <= 0.0 {
        if numerator == 0.0 {
            0.0
        } else {
            numerator.signum() * f64::INFINITY
        }
    } else {
        numerator / variance.sqrt()
    }
}

/// Tango's asymptotic score interval for the paired difference Δ = p_c − p_b:
/// CI = { δ ∈ [−1, 1] : −z ≤ T(δ) ≤ z } with T from Tango's score statistic (above),
/// z = z_{1−α/2}. The limits are found by bisection on [−1, Δ̂] and [Δ̂, 1].
///
/// Well behaved with zero discordant pairs (all concordant gives ±z²/(n + z²)), at
/// Δ̂ = ±1 and for n = 1. Reference: Tango (1998), Stat Med 17:891–908, and correction
/// Stat Med 18:3511 (1999); the R function `Tango_asymptotic_score_CI_paired_2x2` of
/// Fagerland, Lydersen & Laake, *Statistical Analysis of Contingency Tables* (2017);
/// `reference/models_stats.md` §3.3.
pub fn tango_interval(table: &PairedTable, confidence: f64) -> Result<Interval, CompareError> {
    check_level("confidence", confidence)?;
    let delta_hat = table.delta()?;
    let z = z_two_sided(confidence);
    let lower = if delta_hat <= -1.0 {
        -1.0
    } else {
        bisect(|d| tango_statistic(table, d) - z, -1.0, delta_hat)
    };
    let upper = if delta_hat >= 1.0 {
        1.0
    } else {
        bisect(|d| tango_statistic(table, d) + z, delta_hat, 1.0)
    };
    Ok(Interval {
        lower: lower.min(delta_hat),
        upper: upper.max(delta_hat),
        confidence,
    })
}

/// Two-sided p-value of Tango's score test of H₀: Δ = `delta0`: p = 2·(1 − Φ(|T(δ₀)|)).
///
/// This inverts [`tango_interval`] exactly: the (1 − α) interval contains δ₀ iff p ≥ α.
/// δ₀ outside [−1, 1] (impossible values) gets p = 0.
pub fn tango_p_value(table: &PairedTable, delta0: f64) -> Result<f64, CompareError> {
    super::check_finite("a hypothesised difference", delta0)?;
    let delta_hat = table.delta()?;
    if delta0 == delta_hat {
        return Ok(1.0);
    }
    if !(-1.0..=1.0).contains(&delta0) {
        return Ok(0.0);
    }
    let t = tango_statistic(table, delta0);
    Ok((2.0 * normal_sf(t.abs())).min(1.0))
}

/// The correlation term φ of Newcombe's method 10: with marginal product
/// P = (a+b)(c+d)(a+c)(b+d) and B = ad − bc,
/// φ = (B − n/2)/√P if B > n/2, B/√P if B < 0, else 0; and 0 when any margin is 0.
fn newcombe_phi(t: &PairedTable) -> f64 {
    let (a, b, c, d) = (
        t.both as f64,
        t.baseline_only as f64,
        t.candidate_only as f64,
        t.neither as f64,
    );
    let n = a + b + c + d;
    let product = (a + b) * (c + d) * (a + c) * (b + d);
    if product == 0.0 {
        return 0.0;
    }
    let cross = a * d - b * c;
    let corrected = if cross > n / 2.0 {
        cross - n / 2.0
    } else if cross < 0.0 {
        cross
    } else {
        0.0
    };
    (corrected / product.sqrt()).clamp(-1.0, 1.0)
}

/// Newcombe's limits for Δ at critical value `z` (z = 0 gives (Δ̂, Δ̂)).
fn newcombe_paired_limits(t: &PairedTable, z: f64) -> (f64, f64) {
    let n = t.n();
    let p_b = (t.both + t.baseline_only) as f64 / n as f64;
    let p_c = (t.both + t.candidate_only) as f64 / n as f64;
    let (l_b, u_b) = wilson_z(t.both + t.baseline_only, n, z);
    let (l_c, u_c) = wilson_z(t.both + t.candidate_only, n, z);
    let phi = newcombe_phi(t);
    let delta = p_c - p_b;
    let root = |x: f64, y: f64| (x * x + y * y - 2.0 * phi * x * y).max(0.0).sqrt();
    (
        delta - root(p_c - l_c, u_b - p_b),
        delta + root(u_c - p_c, p_b - l_b),
    )
}

/// Newcombe's hybrid score interval for a paired difference (his method 10), for
/// Δ = p_c − p_b, with p_b = (a+b)/n, p_c = (a+c)/n, Wilson limits (l_b, u_b), (l_c, u_c)
/// and φ as in Newcombe's correlation correction:
///
/// ```text
/// L = Δ̂ − sqrt( (p_c − l_c)² − 2φ(p_c − l_c)(u_b − p_b) + (u_b − p_b)² )
/// U = Δ̂ + sqrt( (u_c − p_c)² − 2φ(u_c − p_c)(p_b − l_b) + (p_b − l_b)² )
/// φ = (B − n/2)/√P if B > n/2;  B/√P if B < 0;  0 otherwise (and when P = 0)
/// B = ad − bc,  P = (a+b)(c+d)(a+c)(b+d)
/// ```
///
/// (The reference text writes it for p_b − p_c; this is the same interval negated.)
/// Reference: Newcombe (1998), Stat Med 17:2635–2650, method 10; R
/// `Newcombe_square_and_add_CI_paired_2x2` (Fagerland et al. 2017); `ebuzh`
/// `confIntPairedProportion`; `reference/models_stats.md` §3.3.
pub fn newcombe_paired_interval(
    table: &PairedTable,
    confidence: f64,
) -> Result<Interval, CompareError> {
    check_level("confidence", confidence)?;
    table.nonempty()?;
    let (lower, upper) = newcombe_paired_limits(table, z_two_sided(confidence));
    Ok(Interval {
        lower: lower.max(-1.0),
        upper: upper.min(1.0),
        confidence,
    })
}

/// Two-sided p-value for H₀: Δ = δ₀ by inverting the Newcombe family: find z* where the
/// limit on δ₀'s side reaches δ₀, then p = 2·(1 − Φ(z*)). The limits move monotonically
/// with z, so bisection on z ∈ [0, 40] finds it; beyond reach (δ₀ outside every interval)
/// p is the tail at z = 40, effectively 0.
fn newcombe_paired_p_value(table: &PairedTable, delta0: f64) -> Result<f64, CompareError> {
    super::check_finite("a hypothesised difference", delta0)?;
    let delta_hat = table.delta()?;
    if delta0 == delta_hat {
        return Ok(1.0);
    }
    let limit = |z: f64| {
        let (l, u) = newcombe_paired_limits(table, z);
        if delta0 < delta_hat {
            l - delta0
        } else {
            u - delta0
        }
    };
    const Z_MAX: f64 = 40.0;
    let reaches = if delta0 < delta_hat {
        limit(Z_MAX) <= 0.0
    } else {
        limit(Z_MAX) >= 0.0
    };
    if !reaches {
        return Ok(2.0 * normal_sf(Z_MAX));
    }
    let z = bisect(limit, 0.0, Z_MAX);
    Ok((2.0 * normal_sf(z)).min(1.0))
}

/// Newcombe's hybrid score interval for two **independent** proportions, for
/// Δ = p_c − p_b, with Wilson limits (l_b, u_b) and (l_c, u_c):
///
/// ```text
/// L = Δ̂ − sqrt( (p_c − l_c)² + (u_b − p_b)² )
/// U = Δ̂ + sqrt( (u_c − p_c)² + (p_b − l_b)² )
/// ```
///
/// Only for unpaired arms (an A/A sanity check, legacy data): paired runs should use
/// [`tango_interval`]. Arguments are (successes, trials). Reference: Newcombe (1998),
/// Stat Med 17:873–890, method 10; `reference/models_stats.md` §3.3.
pub fn newcombe_unpaired_interval(
    baseline: (u64, u64),
    candidate: (u64, u64),
    confidence: f64,
) -> Result<Interval, CompareError> {
    check_level("confidence", confidence)?;
    for (x, n) in [baseline, candidate] {
        if n == 0 {
            return Err(CompareError::Empty {
                what: "a proportion",
            });
        }
        if x > n {
            return Err(CompareError::Successes {
                successes: x,
                trials: n,
            });
        }
    }
    let z = z_two_sided(confidence);
    let p_b = baseline.0 as f64 / baseline.1 as f64;
    let p_c = candidate.0 as f64 / candidate.1 as f64;
    let (l_b, u_b) = wilson_z(baseline.0, baseline.1, z);
    let (l_c, u_c) = wilson_z(candidate.0, candidate.1, z);
    let delta = p_c - p_b;
    Ok(Interval {
        lower: delta - (p_c - l_c).hypot(u_b - p_b),
        upper: delta + (u_c - p_c).hypot(p_b - l_b),
        confidence,
    })
}

/// Paired conversion comparison from per-user pairs: table, rates, Δ̂, the paired interval
/// by `method` and McNemar's test. An error for no pairs.
pub fn paired_conversion(
    pairs: &[Pair<bool>],
    method: PairedMethod,
    confidence: f64,
) -> Result<PairedConversion, CompareError> {
    let table = PairedTable::from_pairs(pairs);
    let n = table.nonempty()?;
    Ok(PairedConversion {
        table,
        baseline_rate: (table.both + table.baseline_only) as f64 / n,
        candidate_rate: (table.both + table.candidate_only) as f64 / n,
        delta: table.delta()?,
        interval: table.interval(method, confidence)?,
        method,
        mcnemar: mcnemar(&table)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// models_stats.md §3.3: (a, b, c, d) = (270, 30, 5, 695); baseline − candidate = +0.025.
    fn reference_table() -> PairedTable {
        PairedTable::new(270, 30, 5, 695)
    }

    /// Cavo et al. (2012), the worked example of Fagerland et al. (2017) ch. 8:
    /// n₁₁ = 59, n₁₂ = 6, n₂₁ = 16, n₂₂ = 80, so b = 6 and c = 16 here.
    fn cavo() -> PairedTable {
        PairedTable::new(59, 6, 16, 80)
    }

    #[test]
    fn tango_matches_reference_vectors() {
        // Reference reports baseline − candidate: [0.01430, 0.03804]; we report the negation.
        let ci = tango_interval(&reference_table(), 0.95).unwrap();
        assert!(
            close(ci.lower, -0.03804, 5e-6) && close(ci.upper, -0.01430, 5e-6),
            "{ci:?}"
        );
        // Cavo: R gives −0.0621 (−0.1240 to −0.0054) for p₁₊ − p₊₁.
        let ci = tango_interval(&cavo(), 0.95).unwrap();
        assert!(
            close(ci.lower, 0.0054, 5e-5) && close(ci.upper, 0.1240, 5e-5),
            "{ci:?}"
        );
    }

    #[test]
    fn newcombe_matches_reference_vectors() {
        let ci = newcombe_paired_interval(&reference_table(), 0.95).unwrap();
        assert!(
            close(ci.lower, -0.03682, 5e-6) && close(ci.upper, -0.01333, 5e-6),
            "{ci:?}"
        );
        // Cavo: R gives −0.0621 (−0.1186 to −0.0046).
        let ci = newcombe_paired_interval(&cavo(), 0.95).unwrap();
        assert!(
            close(ci.lower, 0.0046, 5e-5) && close(ci.upper, 0.1186, 5e-5),
            "{ci:?}"
        );
    }

    #[test]
    fn newcombe_unpaired_matches_reference_vector() {
        // 300/1000 vs 270/1000: d = 0.030, CI [−0.00957, 0.06944].
        let ci = newcombe_unpaired_interval((270, 1000), (300, 1000), 0.95).unwrap();
        assert!(
            close(ci.lower, -0.00957, 5e-6) && close(ci.upper, 0.06944, 5e-6),
            "{ci:?}"
        );
        assert!(newcombe_unpaired_interval((0, 0), (1, 2), 0.95).is_err());
    }

    #[test]
    fn mcnemar_matches_reference_vectors() {
        let m = mcnemar(&reference_table()).unwrap();
        assert!(close(m.chi_square, 17.857, 1e-3));
        assert!(close(m.asymptotic_p, 2.38e-5, 0.01e-5), "{m:?}");
        assert!(close(m.exact_p, 2.24e-5, 0.01e-5), "{m:?}");
        assert!(close(m.mid_p, 1.29e-5, 0.01e-5), "{m:?}");
        // Cavo (R): exact 0.052479, mid-p 0.034690, asymptotic 0.033006, corrected 0.055009.
        let m = mcnemar(&cavo()).unwrap();
        assert!(close(m.exact_p, 0.052479, 1e-6), "{m:?}");
        assert!(close(m.mid_p, 0.034690, 1e-6), "{m:?}");
        assert!(close(m.asymptotic_p, 0.033006, 1e-6), "{m:?}");
        assert!(close(m.corrected_p, 0.055009, 1e-6), "{m:?}");
        // §5: b = 5, c = 15 → exact p = 0.04139.
        let m = mcnemar(&PairedTable::new(0, 5, 15, 0)).unwrap();
        assert!(close(m.exact_p, 0.04139, 1e-5), "{m:?}");
    }

    #[test]
    fn no_discordant_pairs() {
        let t = PairedTable::new(40, 0, 0, 60);
        let m = mcnemar(&t).unwrap();
        assert_eq!(
            (m.exact_p, m.mid_p, m.asymptotic_p, m.corrected_p),
            (1.0, 1.0, 1.0, 1.0)
        );
        let ci = tango_interval(&t, 0.95).unwrap();
        let z2 = 1.959964f64.powi(2);
        assert!(close(ci.upper, z2 / (100.0 + z2), 1e-9), "{ci:?}");
        assert!(close(ci.lower, -z2 / (100.0 + z2), 1e-9), "{ci:?}");
        let ci = newcombe_paired_interval(&t, 0.95).unwrap();
        assert!(ci.lower < 0.0 && ci.upper > 0.0, "{ci:?}");
        assert_eq!(tango_p_value(&t, 0.0).unwrap(), 1.0);
    }

    #[test]
    fn edge_tables() {
        // n = 1, each possible pair.
        for t in [
            PairedTable::new(1, 0, 0, 0),
            PairedTable::new(0, 1, 0, 0),
            PairedTable::new(0, 0, 1, 0),
            PairedTable::new(0, 0, 0, 1),
        ] {
            for method in [PairedMethod::Tango, PairedMethod::Newcombe] {
                let ci = t.interval(method, 0.95).unwrap();
                let d = t.delta().unwrap();
                assert!(ci.lower.is_finite() && ci.upper.is_finite(), "{t:?} {ci:?}");
                assert!(-1.0 <= ci.lower && ci.upper <= 1.0, "{t:?} {ci:?}");
                assert!(ci.contains(d), "{t:?} {method:?} {ci:?}");
            }
        }
        // Δ̂ = −1 and +1: every user flipped.
        let all_lost = PairedTable::new(0, 20, 0, 0);
        let ci = tango_interval(&all_lost, 0.95).unwrap();
        assert_eq!(ci.lower, -1.0);
        assert!(ci.upper < -0.5);
        let all_won = PairedTable::new(0, 0, 20, 0);
        let ci = tango_interval(&all_won, 0.95).unwrap();
        assert_eq!(ci.upper, 1.0);
        // p = 0 and p = 1 on both builds.
        for t in [PairedTable::new(0, 0, 0, 30), PairedTable::new(30, 0, 0, 0)] {
            let ci = newcombe_paired_interval(&t, 0.95).unwrap();
            assert!(ci.contains(0.0) && ci.lower.is_finite(), "{ci:?}");
        }
        // Empty input is an error, not a NaN.
        let empty = PairedTable::default();
        assert!(matches!(
            tango_interval(&empty, 0.95),
            Err(CompareError::Empty { .. })
        ));
        assert!(matches!(
            newcombe_paired_interval(&empty, 0.95),
            Err(CompareError::Empty { .. })
        ));
        assert!(matches!(
            paired_conversion(&[], PairedMethod::Tango, 0.95),
            Err(CompareError::Empty { .. })
        ));
        assert_eq!(mcnemar(&empty).unwrap().exact_p, 1.0);
    }

    #[test]
    fn p_values_invert_the_intervals() {
        for t in [reference_table(), cavo(), PairedTable::new(10, 2, 0, 30)] {
            for method in [PairedMethod::Tango, PairedMethod::Newcombe] {
                let ci = t.interval(method, 0.95).unwrap();
                for limit in [ci.lower, ci.upper] {
                    let p = t.p_value(method, limit).unwrap();
                    assert!(close(p, 0.05, 1e-6), "{t:?} {method:?} {limit} → {p}");
                }
                assert_eq!(t.p_value(method, t.delta().unwrap()).unwrap(), 1.0);
            }
        }
        assert_eq!(tango_p_value(&cavo(), 1.5).unwrap(), 0.0);
    }

    #[test]
    fn paired_conversion_summarises_pairs() {
        let mut pairs = vec![Pair::new(true, true); 3];
        pairs.push(Pair::new(true, false));
        pairs.extend([Pair::new(false, true); 2]);
        pairs.extend([Pair::new(false, false); 4]);
        let pc = paired_conversion(&pairs, PairedMethod::Tango, 0.95).unwrap();
        assert_eq!(pc.table, PairedTable::new(3, 1, 2, 4));
        assert!(close(pc.baseline_rate, 0.4, 1e-12));
        assert!(close(pc.candidate_rate, 0.5, 1e-12));
        assert!(close(pc.delta, 0.1, 1e-12));
        assert!(pc.interval.contains(pc.delta));
        let json = serde_json::to_value(pc).unwrap();
        assert_eq!(json["method"], "tango");
    }

    /// Draws n pairs with cell probabilities (p11, p10, p01, p00).
    fn draw(rng: &mut ChaCha8Rng, n: usize, p11: f64, p10: f64, p01: f64) -> PairedTable {
        let mut t = PairedTable::default();
        for _ in 0..n {
            let u: f64 = rng.random();
            if u < p11 {
                t.both += 1;
            } else if u < p11 + p10 {
                t.baseline_only += 1;
            } else if u < p11 + p10 + p01 {
                t.candidate_only += 1;
            } else {
                t.neither += 1;
            }
        }
        t
    }

    #[test]
    fn paired_intervals_cover_near_nominal() {
        // 400 replications of n = 300 with a CRN-like coupling: p_b = 0.30, ψ = 0.07,
        // Δ = +0.03. Nominal 95%.
        let (p11, p10, p01) = (0.28, 0.02, 0.05);
        let truth = p01 - p10;
        let mut rng = ChaCha8Rng::seed_from_u64(20240611);
        let reps = 400;
        let (mut tango, mut newcombe) = (0, 0);
        for _ in 0..reps {
            let t = draw(&mut rng, 300, p11, p10, p01);
            tango += usize::from(tango_interval(&t, 0.95).unwrap().contains(truth));
            newcombe += usize::from(newcombe_paired_interval(&t, 0.95).unwrap().contains(truth));
        }
        let (tango, newcombe) = (tango as f64 / reps as f64, newcombe as f64 / reps as f64);
        assert!(tango >= 0.93, "Tango coverage {tango}");
        assert!(newcombe >= 0.93, "Newcombe coverage {newcombe}");
    }

    proptest! {
        // No regression files: this module's tests must not write into the tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn paired_intervals_contain_the_estimate(
            a in 0u64..200, b in 0u64..40, c in 0u64..40, d in 0u64..200, conf in 0.5f64..0.999,
        ) {
            let t = PairedTable::new(a, b, c, d);
            prop_assume!(t.n() > 0);
            let delta = t.delta().unwrap();
            for method in [PairedMethod::Tango, PairedMethod::Newcombe] {
                let ci = t.interval(method, conf).unwrap();
                prop_assert!(ci.contains(delta), "{:?} {:?} {:?}", t, method, ci);
                prop_assert!(-1.0 <= ci.lower && ci.upper <= 1.0);
            }
            let m = mcnemar(&t).unwrap();
            prop_assert!((0.0..=1.0).contains(&m.exact_p) && m.mid_p <= m.exact_p);
        }
    }
}
