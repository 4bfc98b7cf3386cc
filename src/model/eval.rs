//! Evaluation on a held-out split by time (`reference/models_stats.md` §2.3).
//!
//! Sessions with actions are sorted by start time (then id); the latest
//! `round(holdout · n)` are held out (at most `n − 1`; no evaluation when that is 0). A model
//! is fitted on the rest with the same options and scored on the held-out sequences
//! `START a₁ … END` (CONVERTED included). The model saved by `fit` is afterwards refitted on
//! all sessions; the evaluation describes how the method generalises forward in time.
//!
//! Per step `t` (every token after START), with `p_t` the probability of the token that came:
//!
//! * log-loss `H = −(1/N) Σ log₂ p_t` bits, perplexity `2^H`;
//! * a first-order unsmoothed MLE baseline `p_t = c(s, a)/c(s)`, which gives 0 to unseen
//!   transitions: its perplexity is infinite (reported as `null`) as soon as one step has
//!   probability 0, so both models are also scored on the steps the baseline covers;
//! * top-1 accuracy: the most probable next token was the one that came;
//! * steps whose token the training data never saw (a new target, a new route) cannot be
//!   scored by either model; they are counted as `oov_steps` and left out of all scores,
//!   though their context still informs the next step (backing off to the route, if known);
//! * conversion: the fraction of held-out sessions that converted (with a 95% Wilson
//!   interval) against the fraction of Monte-Carlo walks of the chain, from START until END
//!   or `max_walk_steps`, that pass through CONVERTED. Walks use ChaCha8 seeded with `seed`.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::chain::{Chain, Context};
use super::fit::{fit_refs, FitError, FitOptions};
use super::{Model, StateId, CONVERTED, END, START};
use crate::cook::{ActionKind, CookedSession};

/// 97.5% quantile of the standard normal, for 95% intervals.
const Z95: f64 = 1.959_963_984_540_054;

/// How well a model fitted on earlier sessions predicts later ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// Always `"time"`: held out by start time, never by event.
    pub split: String,
    pub holdout: f64,
    pub train: SplitInfo,
    pub test: SplitInfo,
    /// Held-out steps, OOV included.
    pub steps: u64,
    /// Steps whose token the training data never saw (not scored).
    pub oov_steps: u64,
    /// The model on all scored steps.
    pub model: Score,
    /// The first-order MLE baseline on all scored steps (`null` scores when infinite).
    pub baseline: BaselineScore,
    /// Both on the steps the baseline gives a non-zero probability.
    pub covered: CoveredScore,
    pub top1_accuracy: f64,
    pub baseline_top1_accuracy: f64,
    /// Only when goals were given.
    pub conversion: Option<ConversionCheck>,
}

/// The sessions on one side of the split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitInfo {
    pub sessions: u64,
    pub events: u64,
    pub actions: u64,
    pub first_started_at: i64,
    pub last_started_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Score {
    pub steps: u64,
    pub log_loss_bits: f64,
    pub perplexity: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineScore {
    /// `None` (infinite) when some step had probability 0.
    pub log_loss_bits: Option<f64>,
    pub perplexity: Option<f64>,
    pub zero_probability_steps: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoveredScore {
    pub steps: u64,
    /// `None` when the baseline covers no step.
    pub model_log_loss_bits: Option<f64>,
    pub model_perplexity: Option<f64>,
    pub baseline_log_loss_bits: Option<f64>,
    pub baseline_perplexity: Option<f64>,
}

/// Observed held-out conversion against the chain's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionCheck {
    pub sessions: u64,
    pub converted: u64,
    pub observed: f64,
    /// 95% Wilson score interval of `observed`.
    pub observed_ci95: [f64; 2],
    /// Fraction of walks that passed through CONVERTED.
    pub model_implied: f64,
    /// Monte-Carlo standard error of `model_implied`.
    pub model_implied_se: f64,
    pub walks: u64,
    pub max_steps: u64,
    /// Walks stopped at `max_steps` before END.
    pub truncated_walks: u64,
    pub seed: u64,
}

/// Evaluates `opts` on a time split of `sessions`; `Ok(None)` when nothing is held out.
pub fn evaluate(
    sessions: &[CookedSession],
    opts: &FitOptions,
) -> Result<Option<Evaluation>, FitError> {
    opts.check()?;
    let mut used: Vec<&CookedSession> = sessions.iter().filter(|s| !s.actions.is_empty()).collect();
    used.sort_by(|a, b| (a.started_at, &a.sid).cmp(&(b.started_at, &b.sid)));
    let n = used.len();
    let n_test = ((opts.holdout * n as f64).round() as usize).min(n.saturating_sub(1));
    if n_test == 0 {
        return Ok(None);
    }
    let (train, test) = used.split_at(n - n_test);
    let model = fit_refs(train, opts)?;
    let chain = model.chain();

    let mut acc = Acc::default();
    for s in test {
        score_session(&model, s, &mut acc);
    }
    let scored = acc.scored.max(1) as f64;
    let baseline_ok = acc.zero == 0;
    let mean = |bits: f64, n: u64| (n > 0).then(|| bits / n as f64);
    let model_ll = acc.model_bits / scored;

    let conversion = (!opts.goals.is_empty()).then(|| {
        let converted = test.iter().filter(|s| s.converted).count() as u64;
        let sessions = test.len() as u64;
        let (walks, hits, truncated) = walk(chain, opts);
        let p = hits as f64 / walks.max(1) as f64;
        ConversionCheck {
            sessions,
            converted,
            observed: converted as f64 / sessions as f64,
            observed_ci95: wilson(converted, sessions),
            model_implied: p,
            model_implied_se: (p * (1.0 - p) / walks.max(1) as f64).sqrt(),
            walks,
            max_steps: opts.max_walk_steps as u64,
            truncated_walks: truncated,
            seed: opts.seed,
        }
    });

    Ok(Some(Evaluation {
        split: "time".into(),
        holdout: opts.holdout,
        train: split_info(train),
        test: split_info(test),
        steps: acc.steps,
        oov_steps: acc.steps - acc.scored,
        model: Score {
            steps: acc.scored,
            log_loss_bits: model_ll,
            perplexity: model_ll.exp2(),
        },
        baseline: BaselineScore {
            log_loss_bits: baseline_ok.then(|| acc.base_bits_cov / scored),
            perplexity: baseline_ok.then(|| (acc.base_bits_cov / scored).exp2()),
            zero_probability_steps: acc.zero,
        },
        covered: CoveredScore {
            steps: acc.covered,
            model_log_loss_bits: mean(acc.model_bits_cov, acc.covered),
            model_perplexity: mean(acc.model_bits_cov, acc.covered).map(f64::exp2),
            baseline_log_loss_bits: mean(acc.base_bits_cov, acc.covered),
            baseline_perplexity: mean(acc.base_bits_cov, acc.covered).map(f64::exp2),
        },
        top1_accuracy: acc.top1 as f64 / scored,
        baseline_top1_accuracy: acc.base_top1 as f64 / scored,
        conversion,
    }))
}

#[derive(Default)]
struct Acc {
    steps: u64,
    scored: u64,
    zero: u64,
    covered: u64,
    model_bits: f64,
    model_bits_cov: f64,
    base_bits_cov: f64,
    top1: u64,
    base_top1: u64,
}

/// A held-out token: a state the model knows, or an unseen one (with its route, if known).
#[derive(Clone, Copy)]
enum Tok {
    Known(StateId),
    Unseen(Option<u32>),
}

fn score_session(model: &Model, s: &CookedSession, acc: &mut Acc) {
    let chain = model.chain();
    let route_index: BTreeMap<&str, u32> = model
        .routes()
        .iter()
        .enumerate()
        .map(|(i, r)| (r.route.as_str(), i as u32))
        .collect();
    let tok = |route: &str, kind: ActionKind, target: Option<&str>| match model
        .state_id(route, kind, target)
    {
        Some(id) => Tok::Known(id),
        None => Tok::Unseen(route_index.get(route).copied()),
    };
    let mut seq = vec![Tok::Known(START)];
    for (i, a) in s.actions.iter().enumerate() {
        seq.push(tok(&a.route, a.kind, a.target.as_deref()));
        if s.converted_after == Some(i) {
            seq.push(Tok::Known(CONVERTED));
        }
    }
    seq.push(Tok::Known(END));

    let known = |t: Tok| match t {
        Tok::Known(id) => Some(id),
        Tok::Unseen(_) => None,
    };
    let mut route: Option<u32> = None;
    for i in 1..seq.len() {
        // Route of the page the user is on: the latest action token's route.
        match seq[i - 1] {
            Tok::Known(id) => {
                if let Some(r) = chain.state_route[id as usize] {
                    route = Some(r);
                }
            }
            Tok::Unseen(r) => route = r.or(route),
        }
        let ctx = Context {
            prev: if i >= 2 { known(seq[i - 2]) } else { None },
            cur: known(seq[i - 1]),
            route,
        };
        acc.steps += 1;
        let Tok::Known(a) = seq[i] else { continue };
        acc.scored += 1;
        let p = chain.prob(ctx, a);
        let bits = -p.log2();
        acc.model_bits += bits;
        if chain.argmax(ctx) == a {
            acc.top1 += 1;
        }
        let base = ctx.cur.map(|c| &chain.first[c as usize]);
        let pb = match base {
            Some(row) if row.total > 0 => row.count(a) as f64 / row.total as f64,
            _ => 0.0,
        };
        if pb > 0.0 {
            acc.covered += 1;
            acc.model_bits_cov += bits;
            acc.base_bits_cov += -pb.log2();
        } else {
            acc.zero += 1;
        }
        let base_best = base.and_then(|row| {
            row.succ
                .iter()
                .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)))
                .map(|&(s, _)| s)
        });
        if base_best == Some(a) {
            acc.base_top1 += 1;
        }
    }
}

/// Monte-Carlo walks from START: `(walks, walks through CONVERTED, walks truncated)`.
fn walk(chain: &Chain, opts: &FitOptions) -> (u64, u64, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (mut hits, mut truncated) = (0u64, 0u64);
    let mut history: Vec<StateId> = Vec::with_capacity(opts.max_walk_steps + 1);
    for _ in 0..opts.walks {
        history.clear();
        history.push(START);
        let mut converted = false;
        let mut ended = false;
        for _ in 0..opts.max_walk_steps {
            let next = chain.sample(chain.context(&history), &mut rng);
            if next == END {
                ended = true;
                break;
            }
            converted |= next == CONVERTED;
            history.push(next);
        }
        hits += u64::from(converted);
        truncated += u64::from(!ended);
    }
    (opts.walks as u64, hits, truncated)
}

/// 95% Wilson score interval for `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

fn split_info(s: &[&CookedSession]) -> SplitInfo {
    SplitInfo {
        sessions: s.len() as u64,
        events: s.iter().map(|x| x.events).sum(),
        actions: s.iter().map(|x| x.actions.len() as u64).sum(),
        first_started_at: s.iter().map(|x| x.started_at).min().unwrap_or(0),
        last_started_at: s.iter().map(|x| x.started_at).max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{cooked, goal_specs, small_model};

    #[test]
    fn wilson_matches_known_values() {
        // 30/100: [0.2189, 0.3958] (Newcombe 1998, method 3).
        let [lo, hi] = wilson(30, 100);
        assert!(
            (lo - 0.2189).abs() < 1e-4 && (hi - 0.3958).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
        assert_eq!(wilson(0, 10)[0], 0.0);
    }

    #[test]
    fn evaluation_is_sane_and_beats_the_baseline_where_it_can() {
        let e = small_model().evaluation.clone().expect("held out 20%");
        assert_eq!(e.split, "time");
        assert_eq!(e.train.sessions + e.test.sessions, 150);
        assert!(e.train.last_started_at <= e.test.first_started_at);
        assert!(e.model.log_loss_bits > 0.0 && e.model.perplexity.is_finite());
        assert!(e.covered.steps + e.baseline.zero_probability_steps == e.model.steps);
        let (m, b) = (
            e.covered.model_perplexity.unwrap(),
            e.covered.baseline_perplexity.unwrap(),
        );
        assert!(m < b * 1.05, "smoothed {m} vs MLE {b} on covered steps");
        assert!((0.0..=1.0).contains(&e.top1_accuracy));
        let c = e.conversion.expect("goals were given");
        assert!(c.observed_ci95[0] <= c.observed && c.observed <= c.observed_ci95[1]);
        assert!(
            (c.model_implied - c.observed).abs() < 0.2,
            "model {} vs observed {}",
            c.model_implied,
            c.observed
        );
    }

    #[test]
    fn evaluation_is_deterministic_and_optional() {
        let s = cooked(40, 9);
        let opts = FitOptions {
            goals: goal_specs(),
            walks: 500,
            ..FitOptions::default()
        };
        assert_eq!(evaluate(&s, &opts).unwrap(), evaluate(&s, &opts).unwrap());
        let none = FitOptions {
            holdout: 0.0,
            ..opts
        };
        assert_eq!(evaluate(&s, &none).unwrap(), None);
    }
}
