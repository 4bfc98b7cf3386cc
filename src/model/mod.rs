//! Model: a Markov behaviour model fitted from cooked sessions, what the simulator samples
//! users from.
//!
//! In: [`CookedSession`](crate::cook::CookedSession)s. Out: a [`Model`], saved as versioned
//! JSON in `models/` ([`mod@format`]). Everything here is pure: no I/O, no clock, and the only
//! randomness (Monte-Carlo evaluation) comes from a seeded ChaCha generator.
//!
//! # States
//!
//! A state is an action on a target on a route, written `route|kind|target`
//! (`/cart|click|testid:checkout`; `/checkout|input|id:email` — never the value;
//! `/catalog|scroll` when there is no target), plus three markers: [`START`], [`END`] and
//! [`CONVERTED`]. A session becomes `START a₁ … aₙ END`, with `CONVERTED` inserted right after
//! the action during which a goal was first reached.
//!
//! # How a simulator uses it
//!
//! * Keep the history of state ids, starting with `[START]`. Call
//!   [`Model::next_distribution`] with the states whose targets exist (present, visible,
//!   enabled) on the live page; END is always allowed. Draw from it (e.g. Gumbel-max with a
//!   keyed hash), append the state, act, wait [`Model::think_time`].
//! * **Observed, not chosen.** Navigations that follow from a click (`navigate`/`back` states)
//!   and conversion are things the page does. After acting, map what the page did onto a
//!   state with [`Model::state_id`] and append it. For [`CONVERTED`]: it is *available* only
//!   when the live page has just converted (a goal reached for the first time). Either offer
//!   it in the mask at that step only and append it when drawn without any browser action,
//!   or, equivalently in practice, append it directly: after a converting action the fitted
//!   chain predicts it with probability close to one.
//! * Inputs: draw a value class from [`Model::value_class_distribution`] and type it with
//!   [`Model::typing`]. After a dead click, use [`Model::retry`]. Draw the viewport from
//!   [`Model::devices`].
//!
//! The sub-models are fitted from the data (see [`mod@fit`]), and the model states what it was
//! fitted on ([`Provenance`]) and how well it predicts held-out sessions ([`eval`]).

mod chain;
pub mod eval;
pub mod fit;
pub mod format;
pub mod show;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub use eval::{evaluate, Evaluation};
pub use fit::{fit, fit_and_evaluate, FitError, FitOptions};
pub use format::FormatError;

use crate::cook::ActionKind;
use crate::event::ValueClass;

/// Index of a state in [`Model::states`].
pub type StateId = u32;
/// Where every session begins. Never predicted.
pub const START: StateId = 0;
/// Where every session ends (the user left, or the recording stopped).
pub const END: StateId = 1;
/// Marker right after the action during which a goal was first reached.
pub const CONVERTED: StateId = 2;
/// Tokens of the three marker states, in id order.
pub const MARKERS: [&str; 3] = ["START", "END", "CONVERTED"];

/// One state of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// `route|kind|target`, or a marker name.
    pub token: String,
    /// Route template (action states only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ActionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Think time before this action (action states only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<LogNormal>,
    /// Typing cadence of this field (input states only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing: Option<TypingModel>,
    /// Observed value classes of this field (input states only), as `[class, count]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_classes: Option<Vec<(ValueClass, u64)>>,
}

impl State {
    /// The token of an action state.
    pub fn token_of(route: &str, kind: ActionKind, target: Option<&str>) -> String {
        match target {
            Some(t) => format!("{route}|{}|{t}", kind.as_str()),
            None => format!("{route}|{}", kind.as_str()),
        }
    }

    /// Whether this is one of START, END and CONVERTED.
    pub fn is_marker(&self) -> bool {
        self.kind.is_none()
    }
}

/// Think time per route: the middle level of the shrinkage hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteInfo {
    pub route: String,
    pub think: LogNormal,
}

/// A log-normal distribution: `ln X ~ Normal(mu, sigma²)`, times in milliseconds.
///
/// `n` is the number of observations at this level of the hierarchy; `mu` and `sigma` are the
/// estimates after shrinkage toward the level above (see [`mod@fit`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormal {
    pub mu: f64,
    pub sigma: f64,
    pub n: u64,
}

impl LogNormal {
    /// Median, `exp(mu)`.
    pub fn median(&self) -> f64 {
        self.mu.exp()
    }

    /// Mean, `exp(mu + sigma²/2)`.
    pub fn mean(&self) -> f64 {
        (self.mu + self.sigma * self.sigma / 2.0).exp()
    }

    /// The value at standard-normal quantile `z`: `exp(mu + sigma·z)`.
    pub fn at_z(&self, z: f64) -> f64 {
        (self.mu + self.sigma * z).exp()
    }
}

/// Typing cadence of one field, or of all fields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypingModel {
    /// Input edits observed.
    pub inputs: u64,
    /// Keystrokes observed.
    pub keys: u64,
    /// Interval between keystrokes, ms (from `dur / (keys − 1)` of edits with ≥ 2 keys).
    pub inter_key: LogNormal,
    /// Deletions per keystroke.
    pub deletion_rate: f64,
    /// Fraction of edits whose text was pasted or dropped.
    pub paste_rate: f64,
}

/// What users were seen to do after a dead click.
///
/// An episode starts at a dead-click signal's first click. Retries are the following clicks on
/// the same target in the same page view, each at most [`RetryModel::max_gap_ms`] after the
/// previous one (the merged clicks of the signal included). "Left" means the session ended
/// within [`RetryModel::leave_within`] actions after the episode's last click.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryModel {
    pub max_gap_ms: i64,
    pub leave_within: u32,
    /// Episodes observed.
    pub dead_clicks: u64,
    /// Episodes with at least one retry.
    pub retried: u64,
    /// `retried / dead_clicks` (MLE), `None` without episodes.
    pub p_retry: Option<f64>,
    /// Histogram of extra clicks per episode: `[extra, episodes]`, zero included.
    pub extra_clicks: Vec<(u32, u64)>,
    /// Gap between retry clicks, ms (a prior when no retry was observed: `n` = 0).
    pub gap: LogNormal,
    /// Episodes after which the session ended soon.
    pub left: u64,
    /// `left / dead_clicks` (MLE), `None` without episodes.
    pub p_leave: Option<f64>,
}

/// One device class and how many sessions used it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceBucket {
    /// Viewport width and height, rounded to the nearest 10 CSS px.
    pub w: u32,
    pub h: u32,
    pub touch: bool,
    pub dpr: f64,
    pub sessions: u64,
}

/// What a model was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Sessions fitted on (those with at least one action).
    pub sessions: u64,
    /// Sessions read but skipped because they had no action.
    pub skipped_sessions: u64,
    /// Raw events in the sessions fitted on.
    pub events: u64,
    pub actions: u64,
    /// Start of the earliest and latest session fitted on, epoch ms.
    pub first_started_at: i64,
    pub last_started_at: i64,
    /// Goal specs that defined conversion.
    pub goals: Vec<String>,
    pub converted_sessions: u64,
    /// Markov order of the chain (1, or 2 with back-off).
    pub order: u8,
}

/// A fitted behaviour model. Build one with [`fit()`]; read one with [`Model::from_json`].
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub provenance: Provenance,
    states: Vec<State>,
    routes: Vec<RouteInfo>,
    /// Think time over all actions: the top of the shrinkage hierarchy.
    pub think_global: LogNormal,
    /// Typing over all fields: the fallback for fields without data.
    pub typing_global: TypingModel,
    /// Value classes over all fields, as `[class, count]`.
    pub value_classes_global: Vec<(ValueClass, u64)>,
    pub retry: RetryModel,
    /// Device mix, most common first.
    pub devices: Vec<DeviceBucket>,
    /// Held-out evaluation (of a model fitted on the earlier sessions; see [`eval`]).
    pub evaluation: Option<Evaluation>,
    /// Set by the CLI when writing the file; not part of the fit.
    pub written_at_ms: Option<i64>,
    chain: chain::Chain,
    by_token: HashMap<String, StateId>,
}

/// Weight of the global value-class distribution, in pseudo-observations, when a field's own
/// counts are combined with it: `p(v) = (c_field(v) + α·p_global(v)) / (n_field + α)`.
pub const VALUE_CLASS_PRIOR_WEIGHT: f64 = 2.0;

impl Model {
    /// Assembles a model; `fit` and `format` are the only callers and validate first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        provenance: Provenance,
        states: Vec<State>,
        routes: Vec<RouteInfo>,
        think_global: LogNormal,
        typing_global: TypingModel,
        value_classes_global: Vec<(ValueClass, u64)>,
        retry: RetryModel,
        devices: Vec<DeviceBucket>,
        chain: chain::Chain,
    ) -> Model {
        let by_token = states
            .iter()
            .enumerate()
            .map(|(i, s)| (s.token.clone(), i as StateId))
            .collect();
        Model {
            provenance,
            states,
            routes,
            think_global,
            typing_global,
            value_classes_global,
            retry,
            devices,
            evaluation: None,
            written_at_ms: None,
            chain,
            by_token,
        }
    }

    /// Every state, indexed by [`StateId`]; 0..3 are START, END and CONVERTED.
    pub fn states(&self) -> &[State] {
        &self.states
    }

    /// One state.
    pub fn state(&self, id: StateId) -> Option<&State> {
        self.states.get(id as usize)
    }

    /// Routes with their think-time level.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// Markov order used for prediction (1, or 2 with back-off).
    pub fn order(&self) -> u8 {
        self.chain.order
    }

    /// Order-2 contexts kept after support pruning, and the threshold.
    pub fn second_order_contexts(&self) -> (usize, u64, u64) {
        (
            self.chain.second.len(),
            self.chain.contexts_seen,
            self.chain.min_context_count,
        )
    }

    /// The state with this token.
    pub fn lookup(&self, token: &str) -> Option<StateId> {
        self.by_token.get(token).copied()
    }

    /// The state of an action, if the model knows it.
    pub fn state_id(&self, route: &str, kind: ActionKind, target: Option<&str>) -> Option<StateId> {
        self.lookup(&State::token_of(route, kind, target))
    }

    /// The action states on a route template, in id order: the candidates a simulator checks
    /// against the live page before calling [`Model::next_distribution`].
    pub fn states_on_route<'a>(&'a self, route: &'a str) -> impl Iterator<Item = StateId> + 'a {
        self.states
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.route.as_deref() == Some(route))
            .map(|(i, _)| i as StateId)
    }

    /// How often a state was entered in the data (for START: sessions).
    pub fn visits(&self, id: StateId) -> u64 {
        if id == START {
            return self.chain.first.first().map(|r| r.total).unwrap_or(0);
        }
        self.chain
            .first
            .get(id as usize)
            .map(|r| r.total)
            .unwrap_or(0)
            + u64::from(id == END) * self.exits_total()
    }

    /// Observed `from → to` transitions.
    pub fn transition_count(&self, from: StateId, to: StateId) -> u64 {
        self.chain.count1(from, to)
    }

    /// Sessions that ended right after this state.
    pub fn exits(&self, id: StateId) -> u64 {
        self.chain.count1(id, END)
    }

    fn exits_total(&self) -> u64 {
        self.chain.first.iter().map(|r| r.count(END)).sum()
    }

    /// The next-state distribution after `history` (state ids, oldest first; empty means
    /// `[START]`), sorted by state id.
    ///
    /// Without `available`, over every state but START. With it, over the given states
    /// (those whose target exists on the live page) plus END, renormalised; ids that are
    /// START or out of range are ignored. The result is never empty, is non-negative and
    /// sums to one. Unknown ids in the history are treated as unseen states (the chain backs
    /// off to the route, then to uniform).
    pub fn next_distribution(
        &self,
        history: &[StateId],
        available: Option<&[StateId]>,
    ) -> Vec<(StateId, f64)> {
        let ctx = self.chain.context(history);
        let mut ids: Vec<StateId> = match available {
            None => (1..self.chain.n_states).collect(),
            Some(av) => {
                let mut v: Vec<StateId> = av
                    .iter()
                    .copied()
                    .filter(|&s| s != START && s < self.chain.n_states)
                    .chain([END])
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        };
        ids.retain(|&s| s != START);
        let mut out: Vec<(StateId, f64)> = ids
            .into_iter()
            .map(|a| (a, self.chain.prob(ctx, a)))
            .collect();
        let total: f64 = out.iter().map(|&(_, p)| p).sum();
        if total > 0.0 && total.is_finite() {
            for (_, p) in &mut out {
                *p /= total;
            }
        }
        out
    }

    /// Think time before acting in `id` (the global one for markers and unknown ids).
    pub fn think_time(&self, id: StateId) -> LogNormal {
        self.state(id)
            .and_then(|s| s.think)
            .unwrap_or(self.think_global)
    }

    /// Typing cadence of an input state (the global one when the field has no data).
    pub fn typing(&self, id: StateId) -> TypingModel {
        self.state(id)
            .and_then(|s| s.typing)
            .unwrap_or(self.typing_global)
    }

    /// Value-class distribution for an input state: its own counts combined with the global
    /// ones (weight [`VALUE_CLASS_PRIOR_WEIGHT`]); the global distribution for other states.
    /// Sorted by class; empty only if no input was ever seen.
    pub fn value_class_distribution(&self, id: StateId) -> Vec<(ValueClass, f64)> {
        let global_n: u64 = self.value_classes_global.iter().map(|&(_, c)| c).sum();
        let mut acc: BTreeMap<ValueClass, f64> = BTreeMap::new();
        let own = self.state(id).and_then(|s| s.value_classes.as_ref());
        let own_n: u64 = own.map(|v| v.iter().map(|&(_, c)| c).sum()).unwrap_or(0);
        let alpha = if own_n > 0 {
            VALUE_CLASS_PRIOR_WEIGHT
        } else {
            1.0
        };
        if global_n > 0 {
            for &(vc, c) in &self.value_classes_global {
                *acc.entry(vc).or_default() += alpha * c as f64 / global_n as f64;
            }
        }
        if let Some(own) = own {
            for &(vc, c) in own {
                *acc.entry(vc).or_default() += c as f64;
            }
        }
        let total: f64 = acc.values().sum();
        if total <= 0.0 {
            return Vec::new();
        }
        acc.into_iter().map(|(vc, w)| (vc, w / total)).collect()
    }

    pub(crate) fn chain(&self) -> &chain::Chain {
        &self.chain
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::synth;
    use crate::cook::{cook_session, parse_goal, CookedSession};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    pub(crate) fn goal_specs() -> Vec<String> {
        vec!["purchase=element:[data-testid=order-confirmation]".to_string()]
    }

    pub(crate) fn cooked(n: usize, seed: u64) -> Vec<CookedSession> {
        let goals: Vec<_> = goal_specs()
            .iter()
            .map(|s| parse_goal(s).unwrap())
            .collect();
        synth::sessions(n, seed)
            .iter()
            .map(|b| cook_session(&b[0].sid, b, &goals))
            .collect()
    }

    pub(crate) fn small_model() -> &'static Model {
        static M: OnceLock<Model> = OnceLock::new();
        M.get_or_init(|| {
            let opts = FitOptions {
                goals: goal_specs(),
                walks: 2000,
                ..FitOptions::default()
            };
            fit_and_evaluate(&cooked(150, 11), &opts).unwrap()
        })
    }

    #[test]
    fn masked_distribution_renormalises_and_keeps_end() {
        let m = small_model();
        let d = m.next_distribution(&[START], Some(&[5, 5, START, 10_000]));
        let ids: Vec<_> = d.iter().map(|&(s, _)| s).collect();
        assert_eq!(ids, vec![END, 5]);
        assert!((d.iter().map(|&(_, p)| p).sum::<f64>() - 1.0).abs() < 1e-12);
        let d = m.next_distribution(&[START], Some(&[]));
        assert_eq!(d, vec![(END, 1.0)]);
    }

    #[test]
    fn states_by_route() {
        let m = small_model();
        let on_cart: Vec<_> = m.states_on_route("/cart").collect();
        assert!(!on_cart.is_empty());
        assert!(on_cart
            .iter()
            .all(|&s| m.state(s).unwrap().route.as_deref() == Some("/cart")));
        assert_eq!(m.states_on_route("/nowhere").count(), 0);
    }

    #[test]
    fn entry_is_learned() {
        let m = small_model();
        let d = m.next_distribution(&[], None);
        let (best, p) = d
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(p > 0.3, "{p}");
        assert_eq!(m.state(best).unwrap().kind, Some(ActionKind::Navigate));
    }

    #[test]
    fn value_classes_for_the_email_field() {
        let m = small_model();
        let email = m
            .states()
            .iter()
            .position(|s| s.kind == Some(ActionKind::Input) && s.token.contains("email"))
            .expect("an email input state") as StateId;
        let d = m.value_class_distribution(email);
        let p_email = d
            .iter()
            .find(|&&(vc, _)| vc == ValueClass::Email)
            .map(|&(_, p)| p)
            .unwrap();
        assert!(p_email > 0.5, "{d:?}");
        assert!((d.iter().map(|&(_, p)| p).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(m.typing(email).inter_key.median() > 20.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn next_distribution_is_a_distribution(
            history in proptest::collection::vec(0u32..400, 0..6),
            mask in proptest::option::of(proptest::collection::vec(0u32..400, 0..40)),
        ) {
            let m = small_model();
            let d = m.next_distribution(&history, mask.as_deref());
            prop_assert!(!d.is_empty());
            prop_assert!(d.iter().all(|&(s, p)| p >= 0.0 && p.is_finite() && s != START));
            let sum: f64 = d.iter().map(|&(_, p)| p).sum();
            prop_assert!((sum - 1.0).abs() < 1e-9, "sum {}", sum);
            prop_assert!(d.iter().any(|&(s, _)| s == END));
        }
    }
}
