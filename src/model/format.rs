//! The model file format: versioned JSON, what `models/*.json` hold.
//!
//! ```text
//! {"format":"understudy-model","version":1,
//! "provenance":{…},
//! "chain":{"order":2,"min_context_count":5,"contexts_seen":…,
//!          "first":[[from,to,count],…],"second":[[prev,cur,to,count],…]},
//! "routes":[{"route":"/cart","think":{"mu":…,"sigma":…,"n":…}},…],
//! "states":[{"token":"START"},{"token":"END"},{"token":"CONVERTED"},
//!           {"token":"/cart|click|testid:checkout","route":"/cart","kind":"click",…},…],
//! "think_global":…,"typing_global":…,"value_classes_global":[["email",12],…],
//! "retry":…,"devices":[…],"evaluation":…,"written_at_ms":…}
//! ```
//!
//! Counts are sparse triples (order 1) and quadruples (order 2, pruned contexts only), never
//! dense matrices; top-level keys and each state sit on their own line so diffs stay readable.
//!
//! Reading is strict. A file must say `"format":"understudy-model"` and a version this build
//! reads ([`FORMAT_VERSION`]); unknown fields are rejected; and the content is validated:
//! indices in range, markers in place, tokens unique and consistent with their parts, counts
//! positive and consistent (flow conservation: what enters a state leaves it; order-2 rows
//! add up to their order-1 transition), every number finite. A file that passes can be used
//! without further checks.
//!
//! Changelog: version 1 — first version.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::chain::Chain;
use super::eval::Evaluation;
use super::{
    DeviceBucket, LogNormal, Model, Provenance, RetryModel, RouteInfo, State, StateId, TypingModel,
    END, MARKERS, START,
};
use crate::event::ValueClass;

/// The `format` value of a model file.
pub const FORMAT_NAME: &str = "understudy-model";
/// The model file version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest model file accepted, in bytes (256 MiB).
pub const MAX_MODEL_BYTES: usize = 256 * 1024 * 1024;

/// Why a model file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("model file is {bytes} bytes; the limit is {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("not an understudy model: no `format` field (expected \"{FORMAT_NAME}\")")]
    NotAModel,
    #[error("not an understudy model: expected a JSON object")]
    NotAnObject,
    #[error("unknown format {0} (expected \"{FORMAT_NAME}\")")]
    UnknownFormat(String),
    #[error("unsupported model version {found} (this build reads version {FORMAT_VERSION}); refit the model with this build")]
    UnsupportedVersion { found: String },
    #[error("malformed model: {0}")]
    Malformed(serde_json::Error),
    #[error("invalid model: {0}")]
    Invalid(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainWire {
    order: u8,
    min_context_count: u64,
    contexts_seen: u64,
    first: Vec<(StateId, StateId, u64)>,
    second: Vec<(StateId, StateId, StateId, u64)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    version: u32,
    provenance: Provenance,
    chain: ChainWire,
    routes: Vec<RouteInfo>,
    states: Vec<State>,
    think_global: LogNormal,
    typing_global: TypingModel,
    value_classes_global: Vec<(ValueClass, u64)>,
    retry: RetryModel,
    devices: Vec<DeviceBucket>,
    #[serde(default)]
    evaluation: Option<Evaluation>,
    #[serde(default)]
    written_at_ms: Option<i64>,
}

#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

impl Model {
    /// The model as a model file (see the module docs).
    pub fn to_json(&self) -> String {
        let chain = self.chain();
        let mut first: Vec<(StateId, StateId, u64)> = Vec::new();
        for (s, row) in chain.first.iter().enumerate() {
            first.extend(row.succ.iter().map(|&(a, c)| (s as StateId, a, c)));
        }
        let mut second: Vec<(StateId, StateId, StateId, u64)> = chain
            .second
            .iter()
            .flat_map(|(&(p, s), row)| row.succ.iter().map(move |&(a, c)| (p, s, a, c)))
            .collect();
        second.sort_unstable();
        let wire_chain = ChainWire {
            order: chain.order,
            min_context_count: chain.min_context_count,
            contexts_seen: chain.contexts_seen,
            first,
            second,
        };
        use erased::Ser;
        let lines = |items: Vec<String>| -> String {
            if items.is_empty() {
                "[]".into()
            } else {
                format!("[\n{}\n]", items.join(",\n"))
            }
        };
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"format\":{},\"version\":{}",
            FORMAT_NAME.json(),
            FORMAT_VERSION
        );
        let mut field = |k: &str, v: String| {
            let _ = write!(out, ",\n\"{k}\":{v}");
        };
        field("provenance", self.provenance.json());
        field("chain", wire_chain.json());
        field("routes", lines(self.routes.iter().map(Ser::json).collect()));
        field("states", lines(self.states.iter().map(Ser::json).collect()));
        field("think_global", self.think_global.json());
        field("typing_global", self.typing_global.json());
        field("value_classes_global", self.value_classes_global.json());
        field("retry", self.retry.json());
        field(
            "devices",
            lines(self.devices.iter().map(Ser::json).collect()),
        );
        field("evaluation", self.evaluation.json());
        field("written_at_ms", self.written_at_ms.json());
        out.push_str("\n}\n");
        out
    }

    /// Reads and validates a model file's text.
    pub fn from_json(text: &str) -> Result<Model, FormatError> {
        from_json_limited(text, MAX_MODEL_BYTES)
    }
}

/// Type erasure for `to_json`'s one-liner helper.
mod erased {
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize + ?Sized> Ser for T {
        fn json(&self) -> String {
            // Serialising plain data to a string cannot fail; non-finite floats become null
            // and are rejected on reading, and fitting never produces them.
            serde_json::to_string(self).unwrap_or_else(|_| "null".into())
        }
    }
}

pub(crate) fn from_json_limited(text: &str, limit: usize) -> Result<Model, FormatError> {
    if text.len() > limit {
        return Err(FormatError::TooLarge {
            bytes: text.len(),
            limit,
        });
    }
    if !text.trim_start().starts_with('{') {
        return Err(FormatError::NotAnObject);
    }
    let header: Header = serde_json::from_str(text).map_err(FormatError::Json)?;
    match header.format {
        None => return Err(FormatError::NotAModel),
        Some(serde_json::Value::String(f)) if f == FORMAT_NAME => {}
        Some(other) => return Err(FormatError::UnknownFormat(other.to_string())),
    }
    match header.version {
        Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(v) => {
            return Err(FormatError::UnsupportedVersion {
                found: v.to_string(),
            })
        }
        None => {
            return Err(FormatError::UnsupportedVersion {
                found: "(missing)".into(),
            })
        }
    }
    let w: Wire = serde_json::from_str(text).map_err(FormatError::Malformed)?;
    debug_assert_eq!(
        (w.format.as_str(), w.version),
        (FORMAT_NAME, FORMAT_VERSION)
    );
    validate(w)
}

fn invalid(msg: impl Into<String>) -> FormatError {
    FormatError::Invalid(msg.into())
}

fn check_ln(what: &str, l: &LogNormal) -> Result<(), FormatError> {
    if !(l.mu.is_finite() && l.sigma.is_finite() && l.sigma >= 0.0) {
        return Err(invalid(format!(
            "{what}: log-normal needs finite mu and sigma ≥ 0 (got mu {}, sigma {})",
            l.mu, l.sigma
        )));
    }
    Ok(())
}

fn check_typing(what: &str, t: &TypingModel) -> Result<(), FormatError> {
    check_ln(&format!("{what} inter_key"), &t.inter_key)?;
    for (name, r) in [
        ("deletion_rate", t.deletion_rate),
        ("paste_rate", t.paste_rate),
    ] {
        if !(0.0..=1.0).contains(&r) {
            return Err(invalid(format!("{what} {name} must be in [0, 1], got {r}")));
        }
    }
    Ok(())
}

fn check_prob(what: &str, p: Option<f64>) -> Result<(), FormatError> {
    match p {
        Some(p) if !(0.0..=1.0).contains(&p) => {
            Err(invalid(format!("{what} must be in [0, 1], got {p}")))
        }
        _ => Ok(()),
    }
}

fn validate(w: Wire) -> Result<Model, FormatError> {
    let n = w.states.len();
    if n < MARKERS.len() {
        return Err(invalid(format!(
            "{n} states; a model has at least START, END and CONVERTED"
        )));
    }
    if n > super::fit::MAX_STATES {
        return Err(invalid(format!("{n} states is over the limit")));
    }
    if w.provenance.order != w.chain.order {
        return Err(invalid(format!(
            "provenance says order {} but the chain has order {}",
            w.provenance.order, w.chain.order
        )));
    }
    if !(1..=2).contains(&w.chain.order) {
        return Err(invalid(format!(
            "chain order must be 1 or 2, got {}",
            w.chain.order
        )));
    }

    // Routes and states.
    let mut route_index: BTreeMap<&str, u32> = BTreeMap::new();
    for (i, r) in w.routes.iter().enumerate() {
        if route_index.insert(r.route.as_str(), i as u32).is_some() {
            return Err(invalid(format!("route {:?} listed twice", r.route)));
        }
        check_ln(&format!("route {:?} think", r.route), &r.think)?;
    }
    let mut tokens = HashSet::new();
    let mut state_route = Vec::with_capacity(n);
    for (i, s) in w.states.iter().enumerate() {
        if !tokens.insert(s.token.as_str()) {
            return Err(invalid(format!("state token {:?} listed twice", s.token)));
        }
        if i < MARKERS.len() {
            let bare = s.route.is_none()
                && s.kind.is_none()
                && s.target.is_none()
                && s.think.is_none()
                && s.typing.is_none()
                && s.value_classes.is_none();
            if s.token != MARKERS[i] || !bare {
                return Err(invalid(format!(
                    "state {i} must be the bare marker {}",
                    MARKERS[i]
                )));
            }
            state_route.push(None);
            continue;
        }
        let (Some(route), Some(kind)) = (&s.route, s.kind) else {
            return Err(invalid(format!(
                "state {i} ({:?}) needs a route and a kind",
                s.token
            )));
        };
        if s.token != State::token_of(route, kind, s.target.as_deref()) {
            return Err(invalid(format!(
                "state {i}: token {:?} does not match its route, kind and target",
                s.token
            )));
        }
        let Some(&r) = route_index.get(route.as_str()) else {
            return Err(invalid(format!(
                "state {i}: route {route:?} is not in `routes`"
            )));
        };
        state_route.push(Some(r));
        match &s.think {
            Some(t) => check_ln(&format!("state {i} think"), t)?,
            None => return Err(invalid(format!("state {i} has no think time"))),
        }
        if let Some(t) = &s.typing {
            check_typing(&format!("state {i} typing"), t)?;
        }
    }

    // Order-1 counts: in range, positive, unique, never out of END nor into START, and flow
    // conservation.
    let in_range = |s: StateId| (s as usize) < n;
    let mut seen1: HashSet<(StateId, StateId)> = HashSet::new();
    let mut out_sum = vec![0u64; n];
    let mut in_sum = vec![0u64; n];
    for &(s, a, c) in &w.chain.first {
        if !in_range(s) || !in_range(a) {
            return Err(invalid(format!(
                "transition [{s}, {a}] refers to a state out of range (there are {n})"
            )));
        }
        if c == 0 || s == END || a == START {
            return Err(invalid(format!(
                "transition [{s}, {a}, {c}]: counts are positive, nothing leaves END or enters START"
            )));
        }
        if !seen1.insert((s, a)) {
            return Err(invalid(format!("transition [{s}, {a}] listed twice")));
        }
        let add = |v: &mut u64| v.checked_add(c).ok_or_else(|| invalid("counts overflow"));
        out_sum[s as usize] = add(&mut out_sum[s as usize])?;
        in_sum[a as usize] = add(&mut in_sum[a as usize])?;
    }
    for i in 0..n {
        let id = i as StateId;
        if id != START && id != END && in_sum[i] != out_sum[i] {
            return Err(invalid(format!(
                "state {i}: {} transitions enter but {} leave",
                in_sum[i], out_sum[i]
            )));
        }
    }
    let sessions = w.provenance.sessions;
    if out_sum[START as usize] != sessions || in_sum[END as usize] != sessions {
        return Err(invalid(format!(
            "{sessions} sessions, but {} leave START and {} reach END",
            out_sum[START as usize], in_sum[END as usize]
        )));
    }

    // Order-2 counts: each kept context's row sums to its order-1 transition.
    let c1: BTreeMap<(StateId, StateId), u64> =
        w.chain.first.iter().map(|&(s, a, c)| ((s, a), c)).collect();
    let mut ctx_sum: BTreeMap<(StateId, StateId), u64> = BTreeMap::new();
    let mut seen2 = HashSet::new();
    for &(p, s, a, c) in &w.chain.second {
        if !in_range(p) || !in_range(s) || !in_range(a) || c == 0 || a == START {
            return Err(invalid(format!(
                "order-2 transition [{p}, {s}, {a}, {c}] is out of range or empty"
            )));
        }
        if !seen2.insert((p, s, a)) {
            return Err(invalid(format!(
                "order-2 transition [{p}, {s}, {a}] listed twice"
            )));
        }
        if c1.get(&(s, a)).is_none_or(|&c1sa| c > c1sa) {
            return Err(invalid(format!(
                "order-2 transition [{p}, {s}, {a}, {c}] exceeds its order-1 count"
            )));
        }
        let e = ctx_sum.entry((p, s)).or_insert(0);
        *e = e.checked_add(c).ok_or_else(|| invalid("counts overflow"))?;
    }
    for (&(p, s), &total) in &ctx_sum {
        if c1.get(&(p, s)) != Some(&total) {
            return Err(invalid(format!(
                "order-2 context [{p}, {s}] counts {total} successors but [{p}, {s}] occurs {} times",
                c1.get(&(p, s)).copied().unwrap_or(0)
            )));
        }
        if total < w.chain.min_context_count {
            return Err(invalid(format!(
                "order-2 context [{p}, {s}] has {total} observations, under min_context_count {}",
                w.chain.min_context_count
            )));
        }
    }
    if w.chain.order == 1 && !w.chain.second.is_empty() {
        return Err(invalid("an order-1 model has no order-2 counts"));
    }

    // Sub-models and evaluation numbers.
    check_ln("think_global", &w.think_global)?;
    check_typing("typing_global", &w.typing_global)?;
    check_ln("retry gap", &w.retry.gap)?;
    check_prob("retry p_retry", w.retry.p_retry)?;
    check_prob("retry p_leave", w.retry.p_leave)?;
    if w.retry.retried > w.retry.dead_clicks || w.retry.left > w.retry.dead_clicks {
        return Err(invalid("retry: more retries or exits than dead clicks"));
    }
    for d in &w.devices {
        if !(d.dpr.is_finite() && d.dpr > 0.0) {
            return Err(invalid(format!(
                "device dpr must be positive, got {}",
                d.dpr
            )));
        }
    }
    if let Some(e) = &w.evaluation {
        let nums = [
            e.holdout,
            e.model.log_loss_bits,
            e.model.perplexity,
            e.top1_accuracy,
            e.baseline_top1_accuracy,
        ];
        if nums.iter().any(|x| !x.is_finite()) {
            return Err(invalid("evaluation numbers must be finite"));
        }
    }

    let chain = Chain::new(
        w.chain.order,
        w.chain.min_context_count,
        w.chain.contexts_seen,
        state_route,
        w.routes.len(),
        &w.chain.first,
        &w.chain.second,
    );
    let mut model = Model::assemble(
        w.provenance,
        w.states,
        w.routes,
        w.think_global,
        w.typing_global,
        w.value_classes_global,
        w.retry,
        w.devices,
        chain,
    );
    model.evaluation = w.evaluation;
    model.written_at_ms = w.written_at_ms;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::small_model;

    fn text() -> String {
        small_model().to_json()
    }

    fn err(s: &str) -> String {
        Model::from_json(s)
            .expect_err("must be rejected")
            .to_string()
    }

    /// Edits the model's JSON as a value and serialises it back.
    fn edited(f: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&text()).unwrap();
        f(&mut v);
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn round_trip_is_exact() {
        let m = small_model();
        let back = Model::from_json(&m.to_json()).unwrap();
        assert_eq!(&back, m);
        assert_eq!(back.to_json(), m.to_json());
    }

    #[test]
    fn rejects_other_formats_and_versions() {
        assert!(err("").contains("expected a JSON object"));
        assert!(err("[1,2]").contains("expected a JSON object"));
        assert!(err("{\"format\":").contains("not valid JSON"));
        assert!(err("{}").contains("no `format` field"));
        assert!(err(r#"{"format":"rrweb","version":1}"#).contains("unknown format \"rrweb\""));
        let e = edited(|v| v["version"] = 2.into());
        assert!(
            err(&e).contains("unsupported model version 2"),
            "{}",
            err(&e)
        );
        let e = edited(|v| v["version"] = "1".into());
        assert!(err(&e).contains("unsupported model version \"1\""));
    }

    #[test]
    fn rejects_truncated_and_unknown_fields() {
        let t = text();
        let cut = &t[..t.len() / 2];
        assert!(err(cut).contains("not valid JSON"));
        let e = edited(|v| v["surprise"] = 1.into());
        assert!(err(&e).contains("unknown field `surprise`"), "{}", err(&e));
        let e = edited(|v| {
            v.as_object_mut()
                .unwrap()
                .remove("chain")
                .map(|_| ())
                .unwrap()
        });
        assert!(err(&e).contains("missing field `chain`"));
    }

    #[test]
    fn rejects_out_of_range_and_inconsistent_counts() {
        let e = edited(|v| v["chain"]["first"][0][1] = 100_000.into());
        assert!(err(&e).contains("out of range"), "{}", err(&e));
        let e = edited(|v| {
            let c = v["chain"]["first"][0][2].as_u64().unwrap();
            v["chain"]["first"][0][2] = (c + 1).into();
        });
        assert!(
            err(&e).contains("leave") || err(&e).contains("enter"),
            "{}",
            err(&e)
        );
        let e = edited(|v| v["chain"]["second"][0][3] = 1_000_000.into());
        assert!(err(&e).contains("order-2"), "{}", err(&e));
        let e = edited(|v| v["states"][0]["token"] = "BEGIN".into());
        assert!(err(&e).contains("bare marker START"));
        let e = edited(|v| v["states"][5]["token"] = "/x|click".into());
        assert!(err(&e).contains("does not match"));
        let e = edited(|v| v["provenance"]["sessions"] = 1.into());
        assert!(err(&e).contains("leave START"));
    }

    #[test]
    fn rejects_nan_huge_and_negative_numbers() {
        // JSON has no NaN: a writer that tried produces null, which is a type error.
        let e = edited(|v| v["think_global"]["mu"] = serde_json::Value::Null);
        assert!(err(&e).contains("malformed model"), "{}", err(&e));
        let t = text().replacen(
            "\"think_global\":{\"mu\":",
            "\"think_global\":{\"mu\":1e999,\"x\":",
            1,
        );
        assert!(
            err(&t).contains("malformed") || err(&t).contains("JSON"),
            "{}",
            err(&t)
        );
        let e = edited(|v| v["think_global"]["sigma"] = (-1.0).into());
        assert!(err(&e).contains("sigma"));
        let e = edited(|v| v["chain"]["first"][0][2] = serde_json::json!(u64::MAX));
        assert!(
            err(&e).contains("overflow") || err(&e).contains("leave"),
            "{}",
            err(&e)
        );
        let e = edited(|v| v["chain"]["first"][0][0] = serde_json::json!(1u64 << 40));
        assert!(err(&e).contains("malformed"), "{}", err(&e));
        let e = from_json_limited(&text(), 100).unwrap_err().to_string();
        assert!(e.contains("limit is 100"));
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"format\":{}", "[".repeat(100_000));
        assert!(err(&deep).contains("not valid JSON"));
    }
}
