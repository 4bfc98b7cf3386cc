//! `model show`: a readable summary of a fitted model.
//!
//! Sections: provenance, held-out evaluation, the most probable complete paths from START to
//! END (beam search over the smoothed chain), the most visited states (visits, `P(END | state)`
//! under the order-1 chain, median think time), and where users leave (states ranked by how
//! many sessions ended right after them). Pure: model in, text out.

use std::fmt::Write as _;

use super::{Evaluation, Model, StateId, END, START};
use crate::cook::format_epoch_ms;

/// Longest path the beam search explores.
pub const MAX_PATH_LEN: usize = 40;

/// The summary text, with `top` rows per section.
pub fn render(model: &Model, top: usize) -> String {
    let mut out = String::new();
    let p = &model.provenance;
    let _ = writeln!(
        out,
        "model: {} sessions ({} skipped without actions), {} events, {} actions",
        p.sessions, p.skipped_sessions, p.events, p.actions
    );
    let _ = writeln!(
        out,
        "recorded: {} .. {} (session starts)",
        format_epoch_ms(p.first_started_at),
        format_epoch_ms(p.last_started_at)
    );
    if p.goals.is_empty() {
        let _ = writeln!(out, "goals: none (conversion not modelled)");
    } else {
        let _ = writeln!(
            out,
            "goals: {} ({} of {} sessions converted)",
            p.goals.join(", "),
            p.converted_sessions,
            p.sessions
        );
    }
    let (kept, seen, min) = model.second_order_contexts();
    let order = if model.order() == 2 {
        format!("order 2 ({kept} of {seen} order-2 contexts kept, min count {min})")
    } else {
        "order 1".to_string()
    };
    let _ = writeln!(
        out,
        "chain: {order}, {} states, {} routes; Witten–Bell back-off order 2 → 1 → route → uniform",
        model.states().len(),
        model.routes().len()
    );
    if let Some(ms) = model.written_at_ms {
        let _ = writeln!(out, "written: {}", format_epoch_ms(ms));
    }
    let _ = writeln!(
        out,
        "think time: median {}, σ(log) {:.2}; typing: median {:.0} ms/key, {:.1}% deletions, {:.1}% pasted",
        ms(model.think_global.median()),
        model.think_global.sigma,
        model.typing_global.inter_key.median(),
        100.0 * model.typing_global.deletion_rate,
        100.0 * model.typing_global.paste_rate
    );
    let r = &model.retry;
    let pct = |p: Option<f64>| p.map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * p));
    let _ = writeln!(
        out,
        "after a dead click ({} seen): retried {}, left within {} actions {}, retry gap median {}",
        r.dead_clicks,
        pct(r.p_retry),
        r.leave_within,
        pct(r.p_leave),
        ms(r.gap.median())
    );
    if let Some(d) = model.devices.first() {
        let total: u64 = model.devices.iter().map(|d| d.sessions).sum();
        let _ = writeln!(
            out,
            "devices: {} kinds; most common {}x{} {} dpr {} ({} of {})",
            model.devices.len(),
            d.w,
            d.h,
            if d.touch { "touch" } else { "mouse" },
            d.dpr,
            d.sessions,
            total
        );
    }

    out.push('\n');
    out.push_str(&evaluation_text(model.evaluation.as_ref()));
    out.push('\n');

    let paths = top_paths(model, top);
    let _ = writeln!(
        out,
        "top {} paths (probability: START → … → END):",
        paths.len()
    );
    for (prob, path) in &paths {
        let names: Vec<&str> = path[1..]
            .iter()
            .map(|&s| model.state(s).map_or("?", |s| s.token.as_str()))
            .collect();
        let _ = writeln!(out, "  {prob:.4}  {}", names.join(" → "));
    }

    out.push('\n');
    let mut states: Vec<StateId> = (0..model.states().len() as StateId)
        .filter(|&s| s != START && s != END)
        .collect();
    states.sort_by(|&a, &b| model.visits(b).cmp(&model.visits(a)).then(a.cmp(&b)));
    let _ = writeln!(out, "states (top {} by visits):", top.min(states.len()));
    let _ = writeln!(
        out,
        "  {:>7}  {:>6}  {:>9}  state",
        "visits", "P(END)", "think"
    );
    for &s in states.iter().take(top) {
        let p_end = model
            .next_distribution(&[s], None)
            .iter()
            .find(|&&(a, _)| a == END)
            .map_or(0.0, |&(_, p)| p);
        let think = match model.state(s).and_then(|st| st.think) {
            Some(t) => ms(t.median()),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "  {:>7}  {:>6.3}  {:>9}  {}",
            model.visits(s),
            p_end,
            think,
            model.state(s).map_or("?", |st| st.token.as_str())
        );
    }

    out.push('\n');
    let total_exits = model.visits(END).max(1);
    let mut exits: Vec<StateId> = (0..model.states().len() as StateId)
        .filter(|&s| model.exits(s) > 0)
        .collect();
    exits.sort_by(|&a, &b| model.exits(b).cmp(&model.exits(a)).then(a.cmp(&b)));
    let _ = writeln!(
        out,
        "where users leave (top {} by exits):",
        top.min(exits.len())
    );
    let _ = writeln!(
        out,
        "  {:>7}  {:>6}  {:>9}  state",
        "exits", "share", "exit rate"
    );
    for &s in exits.iter().take(top) {
        let n = model.exits(s);
        let _ = writeln!(
            out,
            "  {:>7}  {:>6.3}  {:>9.3}  {}",
            n,
            n as f64 / total_exits as f64,
            n as f64 / model.visits(s).max(1) as f64,
            model.state(s).map_or("?", |st| st.token.as_str())
        );
    }
    out
}

/// The `k` most probable complete paths START → … → END under the smoothed chain, by beam
/// search (beam width `max(4k, 32)`, paths up to [`MAX_PATH_LEN`] steps). Probabilities are
/// of the whole path. CONVERTED appears where the chain puts it.
pub fn top_paths(model: &Model, k: usize) -> Vec<(f64, Vec<StateId>)> {
    if k == 0 {
        return Vec::new();
    }
    let width = (4 * k).max(32);
    let mut beam: Vec<(f64, Vec<StateId>)> = vec![(0.0, vec![START])];
    let mut done: Vec<(f64, Vec<StateId>)> = Vec::new();
    for _ in 0..MAX_PATH_LEN {
        let mut next: Vec<(f64, Vec<StateId>)> = Vec::new();
        for (lp, path) in &beam {
            let mut d = model.next_distribution(path, None);
            d.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for &(s, p) in d.iter().take(width) {
                let mut np = path.clone();
                np.push(s);
                let item = (lp + p.ln(), np);
                if s == END {
                    done.push(item);
                } else {
                    next.push(item);
                }
            }
        }
        let by_prob = |a: &(f64, Vec<StateId>), b: &(f64, Vec<StateId>)| {
            b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
        };
        done.sort_by(by_prob);
        done.truncate(k);
        next.sort_by(by_prob);
        next.truncate(width);
        // Extending a path only lowers its probability: stop once no partial path can
        // enter the top k.
        let kth = if done.len() == k {
            done[k - 1].0
        } else {
            f64::NEG_INFINITY
        };
        next.retain(|(lp, _)| *lp > kth);
        if next.is_empty() {
            break;
        }
        beam = next;
    }
    done.into_iter().map(|(lp, p)| (lp.exp(), p)).collect()
}

/// The evaluation section: held-out log-loss and perplexity against the baseline, top-1
/// accuracy, and observed against model-implied conversion.
pub fn evaluation_text(evaluation: Option<&Evaluation>) -> String {
    let mut out = String::new();
    match evaluation {
        None => {
            let _ = writeln!(out, "evaluation: none (nothing held out)");
        }
        Some(e) => {
            let _ = writeln!(
                out,
                "evaluation by time: fitted on the earliest {} sessions ({} events), scored on the latest {} ({} events); the saved model is refitted on all",
                e.train.sessions, e.train.events, e.test.sessions, e.test.events
            );
            let _ = writeln!(
                out,
                "  log-loss {:.3} bits/step, perplexity {:.2}, over {} steps ({} with unseen states, not scored)",
                e.model.log_loss_bits, e.model.perplexity, e.model.steps, e.oov_steps
            );
            let base = match e.baseline.perplexity {
                Some(pp) => format!("perplexity {pp:.2}"),
                None => format!(
                    "perplexity ∞ ({} steps with probability 0)",
                    e.baseline.zero_probability_steps
                ),
            };
            let _ = writeln!(out, "  first-order MLE baseline: {base}");
            if let (Some(m), Some(b)) = (e.covered.model_perplexity, e.covered.baseline_perplexity)
            {
                let _ = writeln!(
                    out,
                    "  on the {} steps the baseline covers: perplexity {m:.2} vs baseline {b:.2} (ratio {:.3})",
                    e.covered.steps,
                    m / b
                );
            }
            let _ = writeln!(
                out,
                "  top-1 accuracy {:.3} (baseline {:.3})",
                e.top1_accuracy, e.baseline_top1_accuracy
            );
            if let Some(c) = &e.conversion {
                let _ = writeln!(
                    out,
                    "  conversion: observed {:.3} [{:.3}, {:.3}] ({}/{}) vs model-implied {:.3} ± {:.3} ({} walks, seed {})",
                    c.observed,
                    c.observed_ci95[0],
                    c.observed_ci95[1],
                    c.converted,
                    c.sessions,
                    c.model_implied,
                    c.model_implied_se,
                    c.walks,
                    c.seed
                );
            }
        }
    }
    out
}

fn ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.1}s", x / 1000.0)
    } else {
        format!("{x:.0}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::small_model;

    #[test]
    fn show_snapshot() {
        insta::assert_snapshot!("model_show", render(small_model(), 5));
    }

    #[test]
    fn top_paths_are_sorted_complete_and_probable() {
        let m = small_model();
        let paths = top_paths(m, 10);
        assert_eq!(paths.len(), 10);
        assert!(paths.windows(2).all(|w| w[0].0 >= w[1].0));
        for (p, path) in &paths {
            assert_eq!(path[0], START);
            assert_eq!(*path.last().unwrap(), END);
            assert!(*p > 0.0 && *p <= 1.0);
        }
        assert!(top_paths(m, 0).is_empty());
    }
}
