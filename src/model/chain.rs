//! The transition counts and the interpolated Witten–Bell next-action distribution.
//!
//! Counts are kept sparse: one [`Row`] of successor counts per context. Three context levels:
//!
//! * order 2: the last two states `(p, s)`, kept only when seen at least `min_context_count`
//!   times (support pruning, Deshpande & Karypis 2004);
//! * order 1: the last state `s`;
//! * route: the route template `r` of the page the user is on (the route of the most recent
//!   action state in the history), pooling the order-1 rows of every state on that route.
//!
//! With `c(h, a)` the count of `a` after context `h`, `c(h) = Σₐ c(h, a)` and `T(h)` the
//! number of distinct successors of `h`, interpolated Witten–Bell is
//!
//! ```text
//! P_h(a) = (c(h, a) + T(h) · P_lower(a)) / (c(h) + T(h))        when c(h) > 0
//! P_h(a) = P_lower(a)                                            when h was never seen
//! ```
//!
//! chained as order 2 → order 1 → route → uniform `1/|V|`, where the vocabulary `V` is every
//! state except START (so END and CONVERTED included). Each level is a convex combination of a
//! distribution over `V` and the level below, so every level sums to one and gives every
//! token at least `Π λ / |V| > 0`. Sampling uses the same mixture form: at each level, draw
//! from the empirical row with probability `c(h)/(c(h)+T(h))`, else descend.

use std::collections::HashMap;

use rand::Rng;

use super::{StateId, START};

/// Successor counts of one context, sorted by state id.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Row {
    pub total: u64,
    pub succ: Vec<(StateId, u64)>,
}

impl Row {
    pub(crate) fn from_pairs(mut succ: Vec<(StateId, u64)>) -> Row {
        succ.sort_unstable_by_key(|&(s, _)| s);
        let total = succ.iter().map(|&(_, c)| c).sum();
        Row { total, succ }
    }

    pub(crate) fn count(&self, a: StateId) -> u64 {
        self.succ
            .binary_search_by_key(&a, |&(s, _)| s)
            .map(|i| self.succ[i].1)
            .unwrap_or(0)
    }

    fn types(&self) -> u64 {
        self.succ.len() as u64
    }

    /// Witten–Bell interpolation of this row with a lower-order probability.
    fn wb(&self, a: StateId, lower: f64) -> f64 {
        if self.total == 0 {
            return lower;
        }
        let t = self.types() as f64;
        (self.count(a) as f64 + t * lower) / (self.total as f64 + t)
    }

    /// The successor at cumulative position `u < total`.
    fn pick(&self, mut u: u64) -> StateId {
        for &(s, c) in &self.succ {
            if u < c {
                return s;
            }
            u -= c;
        }
        self.succ.last().map(|&(s, _)| s).unwrap_or(START)
    }
}

/// Where a prediction stands: the last two states and the current route, any of which may
/// be unknown (an empty history, or a state the model never saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Context {
    pub prev: Option<StateId>,
    pub cur: Option<StateId>,
    pub route: Option<u32>,
}

/// Counts plus the indexes that make lookups cheap.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chain {
    pub order: u8,
    pub min_context_count: u64,
    /// Order-2 contexts seen before pruning.
    pub contexts_seen: u64,
    pub n_states: u32,
    /// Order-1 rows, indexed by state.
    pub first: Vec<Row>,
    /// Retained order-2 rows.
    pub second: HashMap<(StateId, StateId), Row>,
    /// Route of each state (`None` for START, END, CONVERTED).
    pub state_route: Vec<Option<u32>>,
    /// Route rows, indexed by route.
    pub route_rows: Vec<Row>,
}

impl Chain {
    /// Builds the chain from sparse counts. The caller has validated ids and contexts.
    pub(crate) fn new(
        order: u8,
        min_context_count: u64,
        contexts_seen: u64,
        state_route: Vec<Option<u32>>,
        n_routes: usize,
        first: &[(StateId, StateId, u64)],
        second: &[(StateId, StateId, StateId, u64)],
    ) -> Chain {
        let n_states = state_route.len() as u32;
        let mut rows1: Vec<Vec<(StateId, u64)>> = vec![Vec::new(); n_states as usize];
        let mut route_acc: Vec<HashMap<StateId, u64>> = vec![HashMap::new(); n_routes];
        for &(s, a, c) in first {
            rows1[s as usize].push((a, c));
            if let Some(r) = state_route[s as usize] {
                *route_acc[r as usize].entry(a).or_insert(0) += c;
            }
        }
        let mut rows2: HashMap<(StateId, StateId), Vec<(StateId, u64)>> = HashMap::new();
        for &(p, s, a, c) in second {
            rows2.entry((p, s)).or_default().push((a, c));
        }
        Chain {
            order,
            min_context_count,
            contexts_seen,
            n_states,
            first: rows1.into_iter().map(Row::from_pairs).collect(),
            second: rows2
                .into_iter()
                .map(|(k, v)| (k, Row::from_pairs(v)))
                .collect(),
            state_route,
            route_rows: route_acc
                .into_iter()
                .map(|m| Row::from_pairs(m.into_iter().collect()))
                .collect(),
        }
    }

    /// Uniform probability over the vocabulary (every state but START).
    pub(crate) fn uniform(&self) -> f64 {
        1.0 / f64::from(self.n_states.saturating_sub(1).max(1))
    }

    /// The context of a history of state ids (unknown ids are treated as unseen states).
    pub(crate) fn context(&self, history: &[StateId]) -> Context {
        let known = |s: StateId| (s < self.n_states).then_some(s);
        let cur = match history.last() {
            Some(&s) => known(s),
            None => Some(START),
        };
        let prev = if history.len() >= 2 {
            known(history[history.len() - 2])
        } else {
            None
        };
        let route = history
            .iter()
            .rev()
            .find_map(|&s| known(s).and_then(|s| self.state_route[s as usize]));
        Context { prev, cur, route }
    }

    fn row2(&self, ctx: Context) -> Option<&Row> {
        if self.order < 2 {
            return None;
        }
        self.second.get(&(ctx.prev?, ctx.cur?))
    }

    fn row1(&self, ctx: Context) -> Option<&Row> {
        self.first.get(ctx.cur? as usize).filter(|r| r.total > 0)
    }

    fn row_route(&self, ctx: Context) -> Option<&Row> {
        self.route_rows
            .get(ctx.route? as usize)
            .filter(|r| r.total > 0)
    }

    /// `P(a | context)` under the full back-off chain. `a` must not be START.
    pub(crate) fn prob(&self, ctx: Context, a: StateId) -> f64 {
        if a == START || a >= self.n_states {
            return 0.0;
        }
        let mut p = self.uniform();
        if let Some(r) = self.row_route(ctx) {
            p = r.wb(a, p);
        }
        if let Some(r) = self.row1(ctx) {
            p = r.wb(a, p);
        }
        if let Some(r) = self.row2(ctx) {
            p = r.wb(a, p);
        }
        p
    }

    /// The most probable next state (ties: smallest id). Only states with a count at some
    /// level can beat the uniform floor, so only they are scored.
    pub(crate) fn argmax(&self, ctx: Context) -> StateId {
        let mut best = (f64::NEG_INFINITY, StateId::MAX);
        let rows = [self.row2(ctx), self.row1(ctx), self.row_route(ctx)];
        for row in rows.into_iter().flatten() {
            for &(a, _) in &row.succ {
                let p = self.prob(ctx, a);
                if p > best.0 || (p == best.0 && a < best.1) {
                    best = (p, a);
                }
            }
        }
        if best.1 == StateId::MAX {
            super::END.min(self.n_states.saturating_sub(1))
        } else {
            best.1
        }
    }

    /// Draws the next state exactly from [`Chain::prob`], level by level.
    pub(crate) fn sample<R: Rng>(&self, ctx: Context, rng: &mut R) -> StateId {
        for row in [self.row2(ctx), self.row1(ctx), self.row_route(ctx)]
            .into_iter()
            .flatten()
        {
            let u = rng.random_range(0..row.total + row.types());
            if u < row.total {
                return row.pick(u);
            }
        }
        1 + rng.random_range(0..self.n_states.saturating_sub(1).max(1))
    }

    /// Order-1 count of `s → a`.
    pub(crate) fn count1(&self, s: StateId, a: StateId) -> u64 {
        self.first.get(s as usize).map(|r| r.count(a)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CONVERTED, END};
    use rand::SeedableRng;

    /// States: 0 START, 1 END, 2 CONVERTED, 3 a (route 0), 4 b (route 0), 5 c (route 1).
    fn chain(order: u8) -> Chain {
        let routes = vec![None, None, None, Some(0), Some(0), Some(1)];
        let first = [
            (START, 3, 6),
            (START, 5, 2),
            (3, 4, 5),
            (3, END, 1),
            (4, END, 3),
            (4, 5, 2),
            (5, CONVERTED, 2),
            (CONVERTED, END, 2),
        ];
        let second = [(START, 3, 4, 5), (START, 3, END, 1)];
        Chain::new(order, 5, 4, routes, 2, &first, &second)
    }

    fn row_sum(c: &Chain, ctx: Context) -> f64 {
        (1..c.n_states).map(|a| c.prob(ctx, a)).sum()
    }

    #[test]
    fn every_level_sums_to_one() {
        for order in [1, 2] {
            let c = chain(order);
            for prev in [None, Some(START), Some(3), Some(99)] {
                for cur in [
                    None,
                    Some(START),
                    Some(3),
                    Some(4),
                    Some(CONVERTED),
                    Some(END),
                ] {
                    for route in [None, Some(0), Some(1)] {
                        let ctx = Context { prev, cur, route };
                        let s = row_sum(&c, ctx);
                        assert!((s - 1.0).abs() < 1e-12, "{ctx:?}: {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn witten_bell_by_hand() {
        let c = chain(1);
        // Route 0 pools a's and b's rows: {4:5, END:4, 5:2}, total 11, T = 3; U = 1/5.
        let pr = |a: u64| (a as f64 + 3.0 * 0.2) / 14.0;
        // State a: {4:5, END:1}, total 6, T = 2.
        let ctx = Context {
            prev: None,
            cur: Some(3),
            route: Some(0),
        };
        let want = (5.0 + 2.0 * pr(5)) / 8.0;
        assert!((c.prob(ctx, 4) - want).abs() < 1e-12);
        let want_end = (1.0 + 2.0 * pr(4)) / 8.0;
        assert!((c.prob(ctx, END) - want_end).abs() < 1e-12);
        // Order 2 adds the (START, a) row {4:5, END:1}.
        let c2 = chain(2);
        let ctx2 = Context {
            prev: Some(START),
            ..ctx
        };
        let want2 = (5.0 + 2.0 * want) / 8.0;
        assert!((c2.prob(ctx2, 4) - want2).abs() < 1e-12);
    }

    #[test]
    fn sampling_matches_probabilities() {
        let c = chain(2);
        let ctx = c.context(&[START, 3]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let mut hits = vec![0u32; c.n_states as usize];
        for _ in 0..n {
            hits[c.sample(ctx, &mut rng) as usize] += 1;
        }
        for a in 1..c.n_states {
            let p = c.prob(ctx, a);
            let f = f64::from(hits[a as usize]) / f64::from(n);
            let se = (p * (1.0 - p) / f64::from(n)).sqrt();
            assert!((f - p).abs() < 5.0 * se + 1e-4, "state {a}: {f} vs {p}");
        }
        assert_eq!(hits[START as usize], 0);
    }

    #[test]
    fn context_from_history() {
        let c = chain(2);
        let ctx = c.context(&[START, 3, CONVERTED]);
        assert_eq!(ctx.prev, Some(3));
        assert_eq!(ctx.cur, Some(CONVERTED));
        assert_eq!(ctx.route, Some(0), "the route of the last action state");
        let ctx = c.context(&[]);
        assert_eq!((ctx.prev, ctx.cur, ctx.route), (None, Some(START), None));
        let ctx = c.context(&[START, 1000]);
        assert_eq!(ctx.cur, None);
        assert_eq!(c.argmax(c.context(&[START])), 3);
    }
}
