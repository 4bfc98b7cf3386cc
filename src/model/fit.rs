//! Fitting: cooked sessions → a [`Model`].
//!
//! Sessions without any action are skipped (and counted). Everything is deterministic: the
//! state table is sorted by token and every accumulator is ordered.
//!
//! # Transitions
//! Each session is the sequence `START a₁ … aₖ CONVERTED … aₙ END`; order-1 counts `c(s → a)`
//! and order-2 counts `c(p, s → a)` are taken over it. Order-2 contexts seen fewer than
//! [`FitOptions::min_context_count`] times are pruned. Prediction is described in the
//! `chain` module: interpolated Witten–Bell, order 2 → order 1 → route → uniform.
//!
//! # Think time
//! The think time of an action is the `think_ms` cook measured before it (tab-hidden time
//! excluded). The first action of a session has none. Gaps over [`BREAK_MS`] (30 min) are
//! breaks, not thinking, and are left out; gaps are floored at 1 ms before taking logs.
//! On the log scale, the MLE is `μ̂ = mean(ln x)`, `σ̂² = mean((ln x − μ̂)²)`. Estimates are
//! shrunk state → route → global with weight `w = n / (n + n₀)`, `n₀` = [`SHRINK_N0`]:
//! `μ = w·μ̂ + (1 − w)·μ_parent`, `σ² = w·σ̂² + (1 − w)·σ²_parent`. The global level falls back
//! to [`THINK_PRIOR`] when it has fewer than two observations.
//!
//! # Typing, values, retries, devices
//! * Inter-key interval per edit with ≥ 2 keys and a positive duration: `dur / (keys − 1)`;
//!   log-normal per field (input state) shrunk to the global one as above; deletion rate
//!   (`Σ dels / Σ keys`) and paste rate (pasted edits / edits) per field, shrunk to the global
//!   rates with `w = edits / (edits + n₀)`.
//! * Value classes: counts per input state and overall.
//! * Retries after dead clicks: see [`RetryModel`] ([`RETRY_MAX_GAP_MS`], [`LEAVE_WITHIN`]).
//! * Devices: sessions per (viewport rounded to 10 px, touch, dpr).

use std::collections::{BTreeMap, BTreeSet};

use super::chain::Chain;
use super::{
    DeviceBucket, LogNormal, Model, Provenance, RetryModel, RouteInfo, State, StateId, TypingModel,
    CONVERTED, END, MARKERS, START,
};
use crate::cook::{ActionKind, CookedSession, SignalKind};
use crate::event::ValueClass;

/// Gaps longer than this are breaks, not think time (30 minutes).
pub const BREAK_MS: i64 = 30 * 60 * 1000;
/// Shrinkage pseudo-count `n₀` of `w = n / (n + n₀)`.
pub const SHRINK_N0: f64 = 20.0;
/// Think-time prior when the data has fewer than two gaps: median 1.5 s, σ = 1.
pub const THINK_PRIOR: LogNormal = LogNormal {
    mu: 7.313_220_387_090_301, // ln 1500
    sigma: 1.0,
    n: 0,
};
/// Inter-key prior when no edit had two keystrokes: median 180 ms, σ = 0.5.
pub const INTER_KEY_PRIOR: LogNormal = LogNormal {
    mu: 5.192_956_850_890_211, // ln 180
    sigma: 0.5,
    n: 0,
};
/// Retry-gap prior when no retry was seen: median 250 ms, σ = 0.5 (models_stats §2.2).
pub const RETRY_GAP_PRIOR: LogNormal = LogNormal {
    mu: 5.521_460_917_862_246, // ln 250
    sigma: 0.5,
    n: 0,
};
/// Smallest σ a fitted level may have, so that a single repeated value stays a distribution.
pub const SIGMA_FLOOR: f64 = 0.05;
/// Longest gap between clicks of one retry episode.
pub const RETRY_MAX_GAP_MS: i64 = 10_000;
/// A dead click "made the user leave" when the session ended within this many actions.
pub const LEAVE_WITHIN: u32 = 2;
/// Viewport sizes are rounded to this many CSS px for the device mix.
pub const VIEWPORT_BUCKET_PX: u32 = 10;
/// Upper bound on states, far above any real site; a guard against runaway tokenisation.
pub const MAX_STATES: usize = 1_000_000;

/// How to fit (and evaluate).
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// 1, or 2 with back-off to 1.
    pub order: u8,
    /// Order-2 contexts seen fewer times are pruned.
    pub min_context_count: u64,
    /// Fraction of sessions, latest by start, held out for evaluation (0 ≤ h < 1).
    pub holdout: f64,
    /// Seed of the Monte-Carlo conversion estimate.
    pub seed: u64,
    /// Monte-Carlo walks for model-implied conversion.
    pub walks: usize,
    /// Longest walk, in steps; longer walks are stopped (and count as not converted unless
    /// they already were).
    pub max_walk_steps: usize,
    /// The goal specs the sessions were cooked with (for provenance; conversion is only
    /// evaluated when there are goals).
    pub goals: Vec<String>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            order: 2,
            min_context_count: 5,
            holdout: 0.2,
            seed: 1,
            walks: 20_000,
            max_walk_steps: 200,
            goals: Vec::new(),
        }
    }
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no session with at least one action to fit on ({skipped} read, all empty)")]
    NoSessions { skipped: u64 },
    #[error("order must be 1 or 2, not {0}")]
    BadOrder(u8),
    #[error("holdout must be a fraction in [0, 1), not {0}")]
    BadHoldout(f64),
    #[error("{0} distinct states is more than the limit of {MAX_STATES}")]
    TooManyStates(usize),
}

impl FitOptions {
    pub(crate) fn check(&self) -> Result<(), FitError> {
        if !(1..=2).contains(&self.order) {
            return Err(FitError::BadOrder(self.order));
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return Err(FitError::BadHoldout(self.holdout));
        }
        Ok(())
    }
}

/// Fits on all `sessions` and evaluates on a time split (see [`super::eval`]). The returned
/// model is the one fitted on all sessions; its `evaluation` describes a model fitted the
/// same way on the earlier sessions only.
pub fn fit_and_evaluate(sessions: &[CookedSession], opts: &FitOptions) -> Result<Model, FitError> {
    let mut model = fit(sessions, opts)?;
    model.evaluation = super::eval::evaluate(sessions, opts)?;
    Ok(model)
}

/// What names an action state: route, kind and target.
pub(crate) type ActionKey = (String, ActionKind, Option<String>);

/// The state key of an action.
fn action_key(a: &crate::cook::Action) -> ActionKey {
    (a.route.clone(), a.kind, a.target.clone())
}

/// Fits a model on `sessions` (without evaluation).
pub fn fit(sessions: &[CookedSession], opts: &FitOptions) -> Result<Model, FitError> {
    fit_refs(&sessions.iter().collect::<Vec<_>>(), opts)
}

/// [`fit`] on borrowed sessions (the evaluation fits on a subset without copying it).
pub(crate) fn fit_refs(sessions: &[&CookedSession], opts: &FitOptions) -> Result<Model, FitError> {
    opts.check()?;
    let used: Vec<&CookedSession> = sessions
        .iter()
        .copied()
        .filter(|s| !s.actions.is_empty())
        .collect();
    let skipped = (sessions.len() - used.len()) as u64;
    if used.is_empty() {
        return Err(FitError::NoSessions { skipped });
    }

    // State table: markers, then action states sorted by token.
    let keys: BTreeSet<ActionKey> = used
        .iter()
        .flat_map(|s| s.actions.iter().map(action_key))
        .collect();
    if keys.len() + MARKERS.len() > MAX_STATES {
        return Err(FitError::TooManyStates(keys.len() + MARKERS.len()));
    }
    let mut keyed: Vec<(String, ActionKey)> = keys
        .into_iter()
        .map(|k| (State::token_of(&k.0, k.1, k.2.as_deref()), k))
        .collect();
    keyed.sort();
    let route_names: BTreeSet<&str> = keyed.iter().map(|(_, k)| k.0.as_str()).collect();
    let route_names: Vec<String> = route_names.into_iter().map(str::to_string).collect();
    let route_id = |r: &str| route_names.binary_search_by(|x| x.as_str().cmp(r)).ok();
    let mut state_of: BTreeMap<ActionKey, StateId> = BTreeMap::new();
    let mut state_route: Vec<Option<u32>> = vec![None; MARKERS.len()];
    for (i, (_, k)) in keyed.iter().enumerate() {
        state_of.insert(k.clone(), (i + MARKERS.len()) as StateId);
        state_route.push(route_id(&k.0).map(|r| r as u32));
    }
    let n_states = MARKERS.len() + keyed.len();

    // Counts and per-state samples.
    let mut c1: BTreeMap<(StateId, StateId), u64> = BTreeMap::new();
    let mut c2: BTreeMap<(StateId, StateId, StateId), u64> = BTreeMap::new();
    let mut think_state: Vec<Vec<f64>> = vec![Vec::new(); n_states];
    let mut think_route: Vec<Vec<f64>> = vec![Vec::new(); route_names.len()];
    let mut think_all: Vec<f64> = Vec::new();
    let mut typing = TypingAcc::new(n_states);
    let mut values: BTreeMap<StateId, BTreeMap<ValueClass, u64>> = BTreeMap::new();
    let mut values_all: BTreeMap<ValueClass, u64> = BTreeMap::new();
    let mut devices: BTreeMap<(u32, u32, bool, u64), u64> = BTreeMap::new();
    let mut retry = RetryAcc::default();
    let (mut events, mut actions, mut converted) = (0u64, 0u64, 0u64);

    for s in &used {
        events += s.events;
        actions += s.actions.len() as u64;
        converted += u64::from(s.converted);
        let seq = sequence(s, &state_of);
        for w in seq.windows(2) {
            *c1.entry((w[0], w[1])).or_insert(0) += 1;
        }
        for w in seq.windows(3) {
            *c2.entry((w[0], w[1], w[2])).or_insert(0) += 1;
        }
        for (i, a) in s.actions.iter().enumerate() {
            let id = state_of[&action_key(a)];
            if i > 0 && a.think_ms <= BREAK_MS {
                let x = (a.think_ms.max(1) as f64).ln();
                think_state[id as usize].push(x);
                if let Some(r) = state_route[id as usize] {
                    think_route[r as usize].push(x);
                }
                think_all.push(x);
            }
            if a.kind == ActionKind::Input {
                if let Some(t) = a.typing {
                    typing.add(id, t);
                }
                if let Some(vc) = a.value_class {
                    *values.entry(id).or_default().entry(vc).or_insert(0) += 1;
                    *values_all.entry(vc).or_insert(0) += 1;
                }
            }
        }
        if let Some(d) = s.device {
            let round = |v: u32| {
                (v.saturating_add(VIEWPORT_BUCKET_PX / 2)) / VIEWPORT_BUCKET_PX * VIEWPORT_BUCKET_PX
            };
            let dpr = if d.dpr.is_finite() && d.dpr > 0.0 {
                (d.dpr * 1000.0).round() as u64
            } else {
                1000
            };
            *devices
                .entry((round(d.w), round(d.h), d.touch, dpr))
                .or_insert(0) += 1;
        }
        retry.add(s);
    }

    // Order-2 support pruning.
    let mut ctx_total: BTreeMap<(StateId, StateId), u64> = BTreeMap::new();
    for (&(p, s, _), &c) in &c2 {
        *ctx_total.entry((p, s)).or_insert(0) += c;
    }
    let contexts_seen = ctx_total.len() as u64;
    let second: Vec<(StateId, StateId, StateId, u64)> = if opts.order >= 2 {
        c2.iter()
            .filter(|(&(p, s, _), _)| ctx_total[&(p, s)] >= opts.min_context_count)
            .map(|(&(p, s, a), &c)| (p, s, a, c))
            .collect()
    } else {
        Vec::new()
    };
    let first: Vec<(StateId, StateId, u64)> = c1.iter().map(|(&(s, a), &c)| (s, a, c)).collect();

    // Think times, shrunk state → route → global.
    let think_global = fit_global(&think_all, THINK_PRIOR);
    let routes: Vec<RouteInfo> = route_names
        .iter()
        .zip(&think_route)
        .map(|(r, xs)| RouteInfo {
            route: r.clone(),
            think: shrink(xs, think_global),
        })
        .collect();

    let typing_global = typing.global();
    let mut states: Vec<State> = MARKERS
        .iter()
        .map(|m| State {
            token: m.to_string(),
            route: None,
            kind: None,
            target: None,
            think: None,
            typing: None,
            value_classes: None,
        })
        .collect();
    for (i, (token, (route, kind, target))) in keyed.into_iter().enumerate() {
        let id = i + MARKERS.len();
        let parent = state_route[id]
            .map(|r| routes[r as usize].think)
            .unwrap_or(think_global);
        let is_input = kind == ActionKind::Input;
        states.push(State {
            token,
            route: Some(route),
            kind: Some(kind),
            target,
            think: Some(shrink(&think_state[id], parent)),
            typing: is_input.then(|| typing.field(id as StateId, &typing_global)),
            value_classes: is_input
                .then(|| values.get(&(id as StateId)))
                .flatten()
                .map(|m| m.iter().map(|(&k, &v)| (k, v)).collect()),
        });
    }

    let mut device_mix: Vec<DeviceBucket> = devices
        .into_iter()
        .map(|((w, h, touch, dpr), n)| DeviceBucket {
            w,
            h,
            touch,
            dpr: dpr as f64 / 1000.0,
            sessions: n,
        })
        .collect();
    device_mix.sort_by_key(|d| std::cmp::Reverse(d.sessions));

    let provenance = Provenance {
        sessions: used.len() as u64,
        skipped_sessions: skipped,
        events,
        actions,
        first_started_at: used.iter().map(|s| s.started_at).min().unwrap_or(0),
        last_started_at: used.iter().map(|s| s.started_at).max().unwrap_or(0),
        goals: opts.goals.clone(),
        converted_sessions: converted,
        order: opts.order,
    };
    let chain = Chain::new(
        opts.order,
        opts.min_context_count,
        contexts_seen,
        state_route,
        routes.len(),
        &first,
        &second,
    );
    Ok(Model::assemble(
        provenance,
        states,
        routes,
        think_global,
        typing_global,
        values_all.into_iter().collect(),
        retry.finish(),
        device_mix,
        chain,
    ))
}

/// The state-id sequence of a session: START, actions (CONVERTED after the converting one),
/// END. Actions missing from `state_of` are skipped (evaluation maps them separately).
pub(crate) fn sequence(s: &CookedSession, state_of: &BTreeMap<ActionKey, StateId>) -> Vec<StateId> {
    let mut seq = Vec::with_capacity(s.actions.len() + 3);
    seq.push(START);
    for (i, a) in s.actions.iter().enumerate() {
        if let Some(&id) = state_of.get(&action_key(a)) {
            seq.push(id);
        }
        if s.converted_after == Some(i) {
            seq.push(CONVERTED);
        }
    }
    seq.push(END);
    seq
}

/// Log-scale MLE `(μ̂, σ̂², n)` of samples already on the log scale.
fn mle(xs: &[f64]) -> (f64, f64, u64) {
    let n = xs.len();
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    let mu = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / n as f64;
    (mu, var, n as u64)
}

/// The top of a hierarchy: the MLE, or `prior` with fewer than two observations.
pub(crate) fn fit_global(xs: &[f64], prior: LogNormal) -> LogNormal {
    let (mu, var, n) = mle(xs);
    if n < 2 {
        return LogNormal { n, ..prior };
    }
    LogNormal {
        mu,
        sigma: var.sqrt().max(SIGMA_FLOOR),
        n,
    }
}

/// The MLE of `xs` shrunk toward `parent` with weight `n / (n + n₀)`.
pub(crate) fn shrink(xs: &[f64], parent: LogNormal) -> LogNormal {
    let (mu_hat, var_hat, n) = mle(xs);
    let w = n as f64 / (n as f64 + SHRINK_N0);
    let var = w * var_hat + (1.0 - w) * parent.sigma * parent.sigma;
    LogNormal {
        mu: w * mu_hat + (1.0 - w) * parent.mu,
        sigma: var.sqrt().max(SIGMA_FLOOR),
        n,
    }
}

struct TypingAcc {
    iki: Vec<Vec<f64>>,
    inputs: Vec<u64>,
    keys: Vec<u64>,
    dels: Vec<u64>,
    pasted: Vec<u64>,
}

impl TypingAcc {
    fn new(n: usize) -> Self {
        TypingAcc {
            iki: vec![Vec::new(); n],
            inputs: vec![0; n],
            keys: vec![0; n],
            dels: vec![0; n],
            pasted: vec![0; n],
        }
    }

    fn add(&mut self, id: StateId, t: crate::cook::Typing) {
        let i = id as usize;
        self.inputs[i] += 1;
        self.keys[i] += u64::from(t.keys);
        self.dels[i] += u64::from(t.dels);
        self.pasted[i] += u64::from(t.paste);
        if t.keys >= 2 && t.dur_ms > 0 {
            self.iki[i].push((f64::from(t.dur_ms) / f64::from(t.keys - 1)).ln());
        }
    }

    fn global(&self) -> TypingModel {
        let all: Vec<f64> = self.iki.iter().flatten().copied().collect();
        let inputs: u64 = self.inputs.iter().sum();
        let keys: u64 = self.keys.iter().sum();
        let dels: u64 = self.dels.iter().sum();
        let pasted: u64 = self.pasted.iter().sum();
        TypingModel {
            inputs,
            keys,
            inter_key: fit_global(&all, INTER_KEY_PRIOR),
            deletion_rate: ratio(dels, keys),
            paste_rate: ratio(pasted, inputs),
        }
    }

    fn field(&self, id: StateId, global: &TypingModel) -> TypingModel {
        let i = id as usize;
        let inputs = self.inputs[i];
        let w = inputs as f64 / (inputs as f64 + SHRINK_N0);
        let rate = |own: Option<f64>, g: f64| match own {
            Some(r) => w * r + (1.0 - w) * g,
            None => g,
        };
        TypingModel {
            inputs,
            keys: self.keys[i],
            inter_key: shrink(&self.iki[i], global.inter_key),
            deletion_rate: rate(
                (self.keys[i] > 0).then(|| ratio(self.dels[i], self.keys[i])),
                global.deletion_rate,
            ),
            paste_rate: rate(
                (inputs > 0).then(|| ratio(self.pasted[i], inputs)),
                global.paste_rate,
            ),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f64 / b as f64).clamp(0.0, 1.0)
    }
}

#[derive(Default)]
struct RetryAcc {
    episodes: u64,
    retried: u64,
    left: u64,
    extra: BTreeMap<u32, u64>,
    gaps: Vec<f64>,
}

impl RetryAcc {
    /// Adds the dead-click episodes of one session (see [`RetryModel`]).
    fn add(&mut self, s: &CookedSession) {
        let mut consumed_until: Option<usize> = None;
        for sig in s.signals.iter().filter(|g| g.kind == SignalKind::DeadClick) {
            let Some(i) = s.actions.iter().position(|a| {
                a.kind == ActionKind::Click && a.t == sig.t && a.target == sig.target
            }) else {
                continue;
            };
            if consumed_until.is_some_and(|c| i <= c) {
                continue;
            }
            let first = &s.actions[i];
            let mut last = i;
            let mut extra = 0u32;
            while let Some(next) = s.actions.get(last + 1) {
                let gap = next.t - s.actions[last].t;
                let same = next.kind == ActionKind::Click
                    && next.target == first.target
                    && next.page == first.page;
                if !same || !(0..=RETRY_MAX_GAP_MS).contains(&gap) {
                    break;
                }
                self.gaps.push((gap.max(1) as f64).ln());
                extra += 1;
                last += 1;
            }
            consumed_until = Some(last);
            self.episodes += 1;
            self.retried += u64::from(extra > 0);
            *self.extra.entry(extra).or_insert(0) += 1;
            let after = s.actions.len() - 1 - last;
            self.left += u64::from(after <= LEAVE_WITHIN as usize);
        }
    }

    fn finish(self) -> RetryModel {
        let p = |k: u64| (self.episodes > 0).then(|| k as f64 / self.episodes as f64);
        RetryModel {
            max_gap_ms: RETRY_MAX_GAP_MS,
            leave_within: LEAVE_WITHIN,
            dead_clicks: self.episodes,
            retried: self.retried,
            p_retry: p(self.retried),
            extra_clicks: self.extra.into_iter().collect(),
            gap: fit_global(&self.gaps, RETRY_GAP_PRIOR),
            left: self.left,
            p_leave: p(self.left),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cook::{Action, Signal};
    use crate::model::tests::cooked;

    fn action(t: i64, kind: ActionKind, target: Option<&str>, think_ms: i64) -> Action {
        Action {
            t,
            kind,
            route: "/a".into(),
            target: target.map(str::to_string),
            value_class: None,
            typing: None,
            think_ms,
            page: 0,
        }
    }

    fn session(sid: &str, actions: Vec<Action>, signals: Vec<Signal>) -> CookedSession {
        CookedSession {
            sid: sid.into(),
            started_at: 0,
            duration_ms: 0,
            events: 10,
            pages: 1,
            device: None,
            user: None,
            actions,
            signals,
            outcomes: vec![],
            converted: false,
            converted_after: None,
        }
    }

    #[test]
    fn log_normal_mle_and_shrinkage() {
        let xs: Vec<f64> = [100.0f64, 1000.0, 10_000.0]
            .iter()
            .map(|x| x.ln())
            .collect();
        let g = fit_global(&xs, THINK_PRIOR);
        assert!((g.median() - 1000.0).abs() < 1e-6);
        let want_sigma = ((2.0 * 10f64.ln().powi(2)) / 3.0).sqrt();
        assert!(
            (g.sigma - want_sigma).abs() < 1e-12,
            "MLE uses n, not n − 1"
        );
        // 20 observations get half weight.
        let ys = vec![(10.0f64).ln(); 20];
        let s = shrink(&ys, g);
        assert!((s.mu - (0.5 * 10f64.ln() + 0.5 * g.mu)).abs() < 1e-12);
        assert!((s.sigma - (0.5 * g.sigma * g.sigma).sqrt()).abs() < 1e-12);
        // No data: the parent.
        let e = shrink(&[], g);
        assert_eq!((e.mu, e.sigma, e.n), (g.mu, g.sigma, 0));
        // One observation at the top: the prior, with n recorded.
        assert_eq!(fit_global(&[1.0], THINK_PRIOR).mu, THINK_PRIOR.mu);
    }

    #[test]
    fn breaks_are_not_think_time() {
        let s = session(
            "a",
            vec![
                action(0, ActionKind::Navigate, None, 0),
                action(1000, ActionKind::Click, Some("x"), 1000),
                action(BREAK_MS + 5000, ActionKind::Click, Some("y"), BREAK_MS + 1),
            ],
            vec![],
        );
        let m = fit(&[s], &FitOptions::default()).unwrap();
        assert_eq!(m.think_global.n, 1);
    }

    #[test]
    fn counts_are_consistent() {
        let sessions = cooked(80, 3);
        let m = fit(&sessions, &FitOptions::default()).unwrap();
        let n = m.provenance.sessions;
        assert_eq!(m.visits(START), n);
        assert_eq!(m.visits(END), n);
        for id in 2..m.states().len() as StateId {
            let into: u64 = (0..m.states().len() as StateId)
                .map(|f| m.transition_count(f, id))
                .sum();
            assert_eq!(into, m.visits(id), "flow conservation at {id}");
        }
        assert_eq!(
            m.provenance.actions,
            sessions.iter().map(|s| s.actions.len() as u64).sum::<u64>()
        );
    }

    #[test]
    fn retry_episodes_from_dead_clicks() {
        let dead = |t| Signal {
            t,
            kind: SignalKind::DeadClick,
            route: "/a".into(),
            target: Some("pay".into()),
            count: 1,
            detail: None,
        };
        let s1 = session(
            "a",
            vec![
                action(0, ActionKind::Navigate, None, 0),
                action(1000, ActionKind::Click, Some("pay"), 1000),
                action(1300, ActionKind::Click, Some("pay"), 300),
                action(4000, ActionKind::Click, Some("pay"), 2700),
                action(9000, ActionKind::Click, Some("home"), 5000),
                action(9500, ActionKind::Scroll, None, 500),
                action(9900, ActionKind::Scroll, None, 400),
            ],
            // The second dead signal falls inside the first episode and is not recounted.
            vec![dead(1000), dead(4000)],
        );
        let s2 = session(
            "b",
            vec![
                action(0, ActionKind::Navigate, None, 0),
                action(500, ActionKind::Click, Some("pay"), 500),
            ],
            vec![dead(500)],
        );
        let m = fit(&[s1, s2], &FitOptions::default()).unwrap();
        let r = &m.retry;
        assert_eq!((r.dead_clicks, r.retried, r.left), (2, 1, 1));
        assert_eq!(r.extra_clicks, vec![(0, 1), (2, 1)]);
        assert_eq!(r.p_retry, Some(0.5));
        assert_eq!(r.gap.n, 2);
        assert!((r.gap.median() - (300.0f64 * 2700.0).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn bad_options_and_empty_input() {
        let bad = FitOptions {
            order: 3,
            ..FitOptions::default()
        };
        assert_eq!(fit(&[], &bad).unwrap_err(), FitError::BadOrder(3));
        let bad = FitOptions {
            holdout: 1.0,
            ..FitOptions::default()
        };
        assert!(matches!(fit(&[], &bad), Err(FitError::BadHoldout(_))));
        let empty = session("e", vec![], vec![]);
        assert_eq!(
            fit(&[empty], &FitOptions::default()).unwrap_err(),
            FitError::NoSessions { skipped: 1 }
        );
    }

    #[test]
    fn order_one_has_no_second_order_contexts() {
        let sessions = cooked(40, 5);
        let m = fit(
            &sessions,
            &FitOptions {
                order: 1,
                ..FitOptions::default()
            },
        )
        .unwrap();
        assert_eq!(m.second_order_contexts().0, 0);
        assert_eq!(m.order(), 1);
    }
}
