//! `understudy bench fit`: how fast sessions become a model, against the floor of merely
//! parsing them.
//!
//! Generates synthetic sessions ([`super::synth`]), serialises every batch to JSON text as
//! the store holds it, then times, best of [`REPS`] runs:
//!
//! * **(a) the anchor**: parsing that JSON into [`Batch`]es — the least any fit must pay to
//!   read its input;
//! * **(b) the pipeline**: parse, cook every session, fit on all of them and evaluate on a
//!   20% time split (Monte-Carlo conversion included), i.e. what `understudy fit` does
//!   between the store and the file.
//!
//! It prints events, seconds and events per second for each, the phases of (b), and the
//! ratio (b)/(a).

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::cook::{cook_session, parse_goal, CookedSession};
use crate::event::Batch;
use crate::model::{fit, FitOptions};

/// Runs per measurement; the fastest is reported.
pub const REPS: usize = 3;
/// Seed of the synthetic sessions.
pub const SEED: u64 = 1;
/// The conversion goal of the synthetic shop.
pub const GOAL: &str = "purchase=element:[data-testid=order-confirmation]";

pub fn run(sessions: usize) -> anyhow::Result<()> {
    anyhow::ensure!(sessions >= 2, "bench fit needs at least 2 sessions");
    let generated = super::synth::sessions(sessions, SEED);
    let stored: Vec<Vec<String>> = generated
        .iter()
        .map(|s| s.iter().map(serde_json::to_string).collect())
        .collect::<Result<_, _>>()?;
    drop(generated);
    let bytes: usize = stored.iter().flatten().map(String::len).sum();
    let goals = vec![parse_goal(GOAL)?];
    let opts = FitOptions {
        goals: vec![GOAL.to_string()],
        ..FitOptions::default()
    };

    let parse_all = || -> anyhow::Result<Vec<Vec<Batch>>> {
        stored
            .iter()
            .map(|s| {
                s.iter()
                    .map(|line| crate::event::from_json::<Batch>(line).map_err(Into::into))
                    .collect()
            })
            .collect()
    };

    let mut events = 0u64;
    let mut best_parse = Duration::MAX;
    for _ in 0..REPS {
        let t0 = Instant::now();
        let parsed = black_box(parse_all()?);
        best_parse = best_parse.min(t0.elapsed());
        events = parsed.iter().flatten().map(|b| b.events.len() as u64).sum();
    }

    let mut best = (
        Duration::MAX,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let mut states = 0;
    for _ in 0..REPS {
        let t0 = Instant::now();
        let parsed = parse_all()?;
        let t1 = Instant::now();
        let cooked: Vec<CookedSession> = parsed
            .iter()
            .map(|b| cook_session(&b[0].sid, b, &goals))
            .collect();
        let t2 = Instant::now();
        let mut model = fit(&cooked, &opts)?;
        let t3 = Instant::now();
        model.evaluation = crate::model::evaluate(&cooked, &opts)?;
        let total = t0.elapsed();
        states = black_box(&model).states().len();
        if total < best.0 {
            best = (total, t2 - t1, t3 - t2, total - (t3 - t0));
        }
    }

    let rate = |d: Duration| events as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "bench fit: {sessions} synthetic sessions, {events} events, {:.1} MB of batch JSON; best of {REPS} runs",
        bytes as f64 / 1e6
    );
    println!(
        "  (a) parse JSON → batches (anchor)     {:>8.3} s  {:>12.0} events/s",
        best_parse.as_secs_f64(),
        rate(best_parse)
    );
    println!(
        "  (b) parse + cook + fit + evaluate     {:>8.3} s  {:>12.0} events/s",
        best.0.as_secs_f64(),
        rate(best.0)
    );
    println!(
        "      of which cook {:.3} s, fit {:.3} s, evaluate {:.3} s ({} states, {} Monte-Carlo walks)",
        best.1.as_secs_f64(),
        best.2.as_secs_f64(),
        best.3.as_secs_f64(),
        states,
        opts.walks
    );
    println!(
        "  ratio (b)/(a): {:.2}×",
        best.0.as_secs_f64() / best_parse.as_secs_f64().max(1e-9)
    );
    Ok(())
}
