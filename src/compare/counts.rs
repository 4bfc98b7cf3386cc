//! Paired count metrics (rage, dead and error clicks, JS errors, failed requests per
//! session): the mean paired difference D̄ with a Student's t interval, or a seeded
//! percentile bootstrap over users for heavy-tailed, zero-inflated counts.
//!
//! Dᵢ = Xᵢᶜ − Xᵢᴮ is the candidate-minus-baseline difference of user i, so pairing removes
//! the between-user variance (`reference/models_stats.md` §3.4).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::per_build::mean_sd;
use super::{
    check_finite, check_level, quantile_sorted, t_sf, t_two_sided, CompareError, Interval, Pair,
};

/// How to get the interval of a paired mean difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountMethod {
    /// Student's t on the differences (the default).
    #[default]
    T,
    /// Percentile bootstrap over users with a seeded ChaCha8 stream.
    Bootstrap {
        /// Number of resamples, at least 100; 2,000 is usual.
        resamples: usize,
        /// Seed of the ChaCha8 stream (derive it from the run's seed).
        seed: u64,
    },
}

/// A paired mean difference with its interval and p-value of no change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedMean {
    /// Number of pairs.
    pub n: usize,
    /// Mean on the baseline.
    pub baseline_mean: f64,
    /// Mean on the candidate.
    pub candidate_mean: f64,
    /// D̄ = mean of candidate − baseline.
    pub difference: f64,
    /// Sample standard deviation of the differences (divisor n − 1).
    pub std_dev: f64,
    /// s_D/√n.
    pub std_error: f64,
    /// Interval for the mean difference.
    pub interval: Interval,
    /// Two-sided p-value of H₀: mean difference = 0.
    pub p_value: f64,
    /// How the interval and p-value were computed.
    pub method: CountMethod,
}

/// The paired t machinery: interval and p-value at any level and null.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TEstimator {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
}

impl TEstimator {
    pub fn new(diffs: &[f64]) -> Result<Self, CompareError> {
        let (mean, sd) = mean_sd(diffs, "a paired mean difference")?;
        Ok(TEstimator {
            n: diffs.len(),
            mean,
            sd,
        })
    }

    fn std_error(&self) -> f64 {
        self.sd / (self.n as f64).sqrt()
    }

    /// D̄ ± t_{n−1, 1−α/2}·s_D/√n.
    pub fn interval(&self, confidence: f64) -> Result<Interval, CompareError> {
        let half = t_two_sided(confidence, (self.n - 1) as f64)? * self.std_error();
        Ok(Interval {
            lower: self.mean - half,
            upper: self.mean + half,
            confidence,
        })
    }

    /// 2·P(T_{n−1} > |D̄ − δ₀|/SE). With zero spread: 1 if δ₀ = D̄, else 0.
    pub fn p_value(&self, delta0: f64) -> Result<f64, CompareError> {
        let se = self.std_error();
        if se == 0.0 {
            return Ok(if delta0 == self.mean { 1.0 } else { 0.0 });
        }
        let t = ((self.mean - delta0) / se).abs();
        Ok((2.0 * t_sf(t, (self.n - 1) as f64)?).min(1.0))
    }
}

/// The bootstrap distribution of the mean difference, sorted.
#[derive(Debug, Clone)]
pub(crate) struct BootstrapEstimator {
    sorted: Vec<f64>,
}

impl BootstrapEstimator {
    /// Resamples user indices with replacement `resamples` times (ChaCha8, `seed`).
    pub fn new(diffs: &[f64], resamples: usize, seed: u64) -> Result<Self, CompareError> {
        mean_sd(diffs, "a paired bootstrap")?;
        if resamples < 100 {
            return Err(CompareError::Invalid(format!(
                "a bootstrap needs at least 100 resamples, got {resamples}"
            )));
        }
        let n = diffs.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sorted: Vec<f64> = (0..resamples)
            .map(|_| (0..n).map(|_| diffs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
            .collect();
        sorted.sort_by(f64::total_cmp);
        Ok(BootstrapEstimator { sorted })
    }

    /// Percentile interval: the α/2 and 1 − α/2 type-7 quantiles of the resampled means.
    pub fn interval(&self, confidence: f64) -> Interval {
        let tail = (1.0 - confidence) / 2.0;
        Interval {
            lower: quantile_sorted(&self.sorted, tail),
            upper: quantile_sorted(&self.sorted, 1.0 - tail),
            confidence,
        }
    }

    /// Percentile-inverted p-value: min(1, 2·min(#{θ* ≤ δ₀}, #{θ* ≥ δ₀})/B).
    pub fn p_value(&self, delta0: f64) -> f64 {
        let below = self.sorted.partition_point(|&x| x <= delta0);
        let above = self.sorted.len() - self.sorted.partition_point(|&x| x < delta0);
        (2.0 * below.min(above) as f64 / self.sorted.len() as f64).min(1.0)
    }
}

fn differences(pairs: &[Pair<f64>]) -> Result<(Vec<f64>, f64, f64), CompareError> {
    let mut diffs = Vec::with_capacity(pairs.len());
    let (mut sum_b, mut sum_c) = (0.0, 0.0);
    for p in pairs {
        check_finite("a baseline value", p.baseline)?;
        check_finite("a candidate value", p.candidate)?;
        sum_b += p.baseline;
        sum_c += p.candidate;
        diffs.push(p.candidate - p.baseline);
    }
    let n = pairs.len().max(1) as f64;
    Ok((diffs, sum_b / n, sum_c / n))
}

/// Paired t: D̄ ± t_{n−1, 1−α/2}·s_D/√n, and the two-sided p-value of H₀: E(D) = 0,
/// p = 2·P(T_{n−1} > |D̄|/(s_D/√n)).
///
/// Needs n ≥ 2. With zero spread (e.g. identical builds) the interval is [D̄, D̄] and p is 1
/// if D̄ = 0, else 0. Reference: Student (1908); `reference/models_stats.md` §3.4 (the same
/// as statrs `ttest_onesample` on the differences).
pub fn paired_t(pairs: &[Pair<f64>], confidence: f64) -> Result<PairedMean, CompareError> {
    check_level("confidence", confidence)?;
    let (diffs, baseline_mean, candidate_mean) = differences(pairs)?;
    let t = TEstimator::new(&diffs)?;
    Ok(PairedMean {
        n: t.n,
        baseline_mean,
        candidate_mean,
        difference: t.mean,
        std_dev: t.sd,
        std_error: t.std_error(),
        interval: t.interval(confidence)?,
        p_value: t.p_value(0.0)?,
        method: CountMethod::T,
    })
}

/// Paired percentile bootstrap: resample users (pairs) with replacement B times, take the
/// mean difference of each resample θ*_1..θ*_B, and report
///
/// ```text
/// CI = [ q_{α/2}(θ*), q_{1−α/2}(θ*) ]            (type-7 quantiles)
/// p  = min(1, 2·min(#{θ* ≤ 0}, #{θ* ≥ 0}) / B)    (percentile-inverted, H₀: E(D) = 0)
/// ```
///
/// Deterministic for a given seed (ChaCha8 is portable across platforms and versions).
/// Needs n ≥ 2 and B ≥ 100. Reference: Efron & Tibshirani (1993), *An Introduction to the
/// Bootstrap*, ch. 13; `reference/models_stats.md` §3.4.
pub fn paired_bootstrap(
    pairs: &[Pair<f64>],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Result<PairedMean, CompareError> {
    check_level("confidence", confidence)?;
    let (diffs, baseline_mean, candidate_mean) = differences(pairs)?;
    let t = TEstimator::new(&diffs)?;
    let boot = BootstrapEstimator::new(&diffs, resamples, seed)?;
    Ok(PairedMean {
        n: t.n,
        baseline_mean,
        candidate_mean,
        difference: t.mean,
        std_dev: t.sd,
        std_error: t.std_error(),
        interval: boot.interval(confidence),
        p_value: boot.p_value(0.0),
        method: CountMethod::Bootstrap { resamples, seed },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    // Explicit, so that it wins over the `Rng` of proptest's prelude.
    use rand::Rng;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn pairs(b: &[f64], c: &[f64]) -> Vec<Pair<f64>> {
        b.iter().zip(c).map(|(&b, &c)| Pair::new(b, c)).collect()
    }

    #[test]
    fn paired_t_by_hand() {
        // Differences 0..29: mean 14.5, sd √77.5, t_{29,0.975} = 2.045230.
        let b = vec![1.0; 30];
        let c: Vec<f64> = (0..30).map(|i| 1.0 + f64::from(i)).collect();
        let m = paired_t(&pairs(&b, &c), 0.95).unwrap();
        let se = 77.5f64.sqrt() / 30f64.sqrt();
        assert!(close(m.difference, 14.5, 1e-12));
        assert!(close(m.std_error, se, 1e-12));
        assert!(close(m.interval.lower, 14.5 - 2.045230 * se, 1e-5));
        assert!(close(
            m.candidate_mean - m.baseline_mean,
            m.difference,
            1e-12
        ));
        assert!(m.p_value < 1e-9);
    }

    #[test]
    fn paired_t_p_value_matches_known_t() {
        // Differences 1, 2, 3, −1: mean 1.25, sd 1.7078, t = 1.4639 on 3 df → p = 0.2394.
        let m = paired_t(&pairs(&[0.0; 4], &[1.0, 2.0, 3.0, -1.0]), 0.95).unwrap();
        assert!(close(m.p_value, 0.2394, 1e-4), "{m:?}");
    }

    #[test]
    fn identical_builds_give_a_point_at_zero() {
        let xs = [0.0, 3.0, 1.0, 0.0, 7.0];
        let m = paired_t(&pairs(&xs, &xs), 0.95).unwrap();
        assert_eq!(
            (m.interval.lower, m.interval.upper, m.p_value),
            (0.0, 0.0, 1.0)
        );
        let m = paired_bootstrap(&pairs(&xs, &xs), 0.95, 500, 7).unwrap();
        assert_eq!(
            (m.interval.lower, m.interval.upper, m.p_value),
            (0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn edge_inputs_are_errors() {
        assert!(matches!(
            paired_t(&[], 0.95),
            Err(CompareError::Empty { .. })
        ));
        assert!(matches!(
            paired_t(&[Pair::new(1.0, 2.0)], 0.95),
            Err(CompareError::TooFew { got: 1, .. })
        ));
        assert!(matches!(
            paired_t(&[Pair::new(1.0, f64::INFINITY), Pair::new(0.0, 0.0)], 0.95),
            Err(CompareError::NotFinite { .. })
        ));
        let two = [Pair::new(1.0, 2.0), Pair::new(0.0, 0.0)];
        assert!(paired_bootstrap(&two, 0.95, 10, 1).is_err());
        assert!(paired_bootstrap(&[], 0.95, 1000, 1).is_err());
    }

    #[test]
    fn bootstrap_is_seeded_and_close_to_t() {
        let b: Vec<f64> = (0..200).map(|i| f64::from(i % 3)).collect();
        let c: Vec<f64> = (0..200)
            .map(|i| f64::from(i % 3) + f64::from(u8::from(i % 5 == 0)))
            .collect();
        let p = pairs(&b, &c);
        let one = paired_bootstrap(&p, 0.95, 2000, 42).unwrap();
        let again = paired_bootstrap(&p, 0.95, 2000, 42).unwrap();
        assert_eq!(one, again);
        let t = paired_t(&p, 0.95).unwrap();
        assert!(
            close(one.interval.lower, t.interval.lower, 0.01),
            "{one:?} vs {t:?}"
        );
        assert!(
            close(one.interval.upper, t.interval.upper, 0.01),
            "{one:?} vs {t:?}"
        );
        assert_eq!(one.p_value, 0.0);
        assert_eq!(
            serde_json::to_value(one.method).unwrap()["bootstrap"]["seed"],
            42
        );
    }

    #[test]
    fn t_interval_covers_near_nominal_for_skewed_counts() {
        // 400 replications of 300 pairs. Baseline counts are zero-inflated (80% zero, else
        // 1–3); under CRN the candidate differs for few users: one signal more for 8%, one
        // fewer for 3% of those with any (noise goes both ways). Truth: Δ = 0.08 − 0.03·0.2.
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let (mut covered, reps) = (0, 400);
        for _ in 0..reps {
            let p: Vec<Pair<f64>> = (0..300)
                .map(|_| {
                    let base = if rng.random::<f64>() < 0.2 {
                        f64::from(rng.random_range(1..4u8))
                    } else {
                        0.0
                    };
                    let u: f64 = rng.random();
                    let change = if u < 0.08 {
                        1.0
                    } else if u < 0.11 && base > 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                    Pair::new(base, base + change)
                })
                .collect();
            covered += usize::from(
                paired_t(&p, 0.95)
                    .unwrap()
                    .interval
                    .contains(0.08 - 0.03 * 0.2),
            );
        }
        let coverage = covered as f64 / reps as f64;
        assert!(coverage >= 0.93, "coverage {coverage}");
    }

    proptest! {
        // No regression files: this module's tests must not write into the tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn t_interval_contains_the_difference(
            d in prop::collection::vec((0u8..5, 0u8..5), 2..50), conf in 0.5f64..0.999,
        ) {
            let p: Vec<Pair<f64>> = d
                .iter()
                .map(|&(b, c)| Pair::new(f64::from(b), f64::from(c)))
                .collect();
            let m = paired_t(&p, conf).unwrap();
            prop_assert!(m.interval.contains(m.difference));
            prop_assert!((0.0..=1.0).contains(&m.p_value));
        }
    }
}
