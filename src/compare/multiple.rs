//! Multiple-testing adjustment across the gated metrics: Holm's step-down procedure
//! (family-wise error, any dependence) for the gate, and Benjamini–Hochberg (false
//! discovery rate) for report-only metrics.
//!
//! All functions take and return p-values in input order.

use super::{check_level, CompareError};

fn validate(p_values: &[f64]) -> Result<(), CompareError> {
    for &p in p_values {
        if !(0.0..=1.0).contains(&p) {
            return Err(CompareError::Invalid(format!(
                "a p-value must be in [0, 1], got {p}"
            )));
        }
    }
    Ok(())
}

/// Indices that sort `p_values` ascending (stable: ties keep input order).
fn ascending(p_values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    order
}

/// Holm-adjusted p-values.
///
/// ```text
/// sort p₍₁₎ ≤ … ≤ p₍ₘ₎;   p̃₍ᵢ₎ = max_{k ≤ i} min(1, (m − k + 1)·p₍ₖ₎)
/// ```
///
/// Rejecting every H with p̃ ≤ α is Holm's procedure; it controls the family-wise error
/// rate at α under any dependence. Adjusted values are ≥ the raw ones and keep their order.
/// An empty list gives an empty list. Reference: Holm (1979), Scand J Stat 6:65–70;
/// `reference/models_stats.md` §3.6.
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>, CompareError> {
    validate(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in ascending(p_values).iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    Ok(adjusted)
}

/// Per-hypothesis test levels that reproduce Holm's decisions at family level `alpha`:
/// hypothesis j is rejected by Holm iff p_j ≤ level_j.
///
/// ```text
/// k₀ = the first rank i with p₍ᵢ₎ > α/(m − i + 1)   (m + 1 if none)
/// level₍ᵢ₎ = α/(m − i + 1)    for i < k₀  (rejected, step by step)
/// level₍ᵢ₎ = α/(m − k₀ + 1)   for i ≥ k₀  (Bonferroni over the m − k₀ + 1 not rejected)
/// ```
///
/// The gate computes each metric's interval at confidence 1 − level, so "the interval
/// excludes the threshold" is exactly Holm's rejection when the interval and p-value come
/// from the same test (the levels of the not-rejected hypotheses are those of Strassburger
/// & Bretz 2008, Stat Med 27:4914, for their intervals).
pub fn holm_levels(p_values: &[f64], alpha: f64) -> Result<Vec<f64>, CompareError> {
    check_level("alpha", alpha)?;
    validate(p_values)?;
    let m = p_values.len();
    let mut levels = vec![0.0; m];
    // Once Holm stops at a rank, every later rank keeps that rank's level.
    let mut stopped: Option<f64> = None;
    for (rank, &i) in ascending(p_values).iter().enumerate() {
        let step = alpha / (m - rank) as f64;
        let level = match stopped {
            Some(level) => level,
            None if p_values[i] <= step => step,
            None => *stopped.insert(step),
        };
        levels[i] = level;
    }
    Ok(levels)
}

/// Benjamini–Hochberg adjusted p-values (q-values).
///
/// ```text
/// sort p₍₁₎ ≤ … ≤ p₍ₘ₎;   q₍ᵢ₎ = min_{k ≥ i} min(1, m·p₍ₖ₎/k)
/// ```
///
/// Controls the false discovery rate at α when rejecting q ≤ α, for independent or PRDS
/// p-values. Use it for report-only metrics, not for the gate. Reference: Benjamini &
/// Hochberg (1995), JRSS-B 57:289–300; `reference/models_stats.md` §3.6.
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>, CompareError> {
    validate(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in ascending(p_values).iter().enumerate().rev() {
        running = running.min(m as f64 * p_values[i] / (rank + 1) as f64);
        // q ≥ p holds exactly; the max only undoes rounding in m·p/k.
        adjusted[i] = running.max(p_values[i]);
    }
    Ok(adjusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close_all(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn holm_by_hand() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]).unwrap();
        assert!(close_all(&adj, &[0.03, 0.06, 0.06, 0.02]), "{adj:?}");
        assert!(holm(&[]).unwrap().is_empty());
        assert_eq!(holm(&[0.7]).unwrap(), vec![0.7]);
        assert!(holm(&[f64::NAN]).is_err());
        assert!(holm(&[1.5]).is_err());
    }

    #[test]
    fn bh_by_hand() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH") = 0.02 0.04 0.04 0.02
        let adj = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]).unwrap();
        assert!(close_all(&adj, &[0.02, 0.04, 0.04, 0.02]), "{adj:?}");
    }

    #[test]
    fn holm_levels_step_down_then_stop() {
        // Sorted: 0.005 (α/4 = 0.0125, rejected), 0.01 (α/3 = 0.0167, rejected),
        // 0.03 (α/2 = 0.025, not rejected → stop), 0.04 (stays at α/2).
        let levels = holm_levels(&[0.01, 0.04, 0.03, 0.005], 0.05).unwrap();
        assert!(
            close_all(&levels, &[0.05 / 3.0, 0.025, 0.025, 0.0125]),
            "{levels:?}"
        );
        // Everything rejected: the last gets the full α.
        let levels = holm_levels(&[0.001, 0.002], 0.05).unwrap();
        assert!(close_all(&levels, &[0.025, 0.05]), "{levels:?}");
        // Nothing rejected: Bonferroni for all.
        let levels = holm_levels(&[0.5, 0.9, 0.2], 0.05).unwrap();
        assert!(close_all(&levels, &[0.05 / 3.0; 3]), "{levels:?}");
    }

    proptest! {
        // No regression files: this module's tests must not write into the tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn holm_is_monotone_and_never_below_raw(p in prop::collection::vec(0.0f64..=1.0, 0..12)) {
            let adj = holm(&p).unwrap();
            for i in 0..p.len() {
                prop_assert!(adj[i] >= p[i] && adj[i] <= 1.0);
                for j in 0..p.len() {
                    if p[i] <= p[j] {
                        prop_assert!(adj[i] <= adj[j]);
                    }
                }
            }
            let bh = benjamini_hochberg(&p).unwrap();
            for i in 0..p.len() {
                prop_assert!(bh[i] >= p[i] && bh[i] <= adj[i] + 1e-12);
            }
        }

        #[test]
        fn holm_levels_reproduce_holm(p in prop::collection::vec(0.0f64..=0.2, 1..10)) {
            let adj = holm(&p).unwrap();
            let levels = holm_levels(&p, 0.05).unwrap();
            for i in 0..p.len() {
                prop_assert_eq!(
                    adj[i] <= 0.05,
                    p[i] <= levels[i],
                    "{:?} {:?} {:?}",
                    p,
                    adj,
                    levels
                );
            }
        }
    }
}
