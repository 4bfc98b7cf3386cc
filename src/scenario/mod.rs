//! Scenario files: a TOML file → a validated run plan ([`Scenario`]).
//!
//! A scenario says which behaviour model plays the users, which two builds they visit
//! (baseline and candidate), what counts as converting (goals), how many paired users to
//! run and which changes fail the pull request (checks). This module owns the file format
//! and its validation; it does no I/O beyond reading the file ([`Scenario::load`]) and
//! knows nothing of browsers.
//!
//! Parsing happens in two passes: the file deserialises into [`RawScenario`], whose
//! `deny_unknown_fields` makes a typo fail loudly, and [`RawScenario::resolve`] checks every
//! value and fills the defaults. Command-line URLs go in between
//! ([`RawScenario::with_urls`]), so a scenario may leave `baseline` and `candidate` to CI.
//! Every error names the file, the field and what is wrong; TOML syntax and type errors
//! keep `toml`'s line and column.
//!
//! Files larger than [`MAX_FILE_BYTES`] are refused before they are parsed.
//!
//! A complete, commented scenario (also available as [`EXAMPLE`]):
//!
#![doc = concat!("```toml\n", include_str!("example.toml"), "```")]

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::compare::{Check, GateConfig, Level, Metric, SequentialPlan};
use crate::cook::{parse_goal, Goal};

/// The commented example scenario shown in the module docs, for `understudy init`.
pub const EXAMPLE: &str = include_str!("example.toml");

/// Scenario files larger than this (1 MiB) are refused.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Signal names a check may gate on (besides `conversion`).
pub const SIGNALS: &[&str] = &[
    "rage_click",
    "dead_click",
    "error_click",
    "js_error",
    "failed_request",
    "repeated_request",
];

/// The metric name for conversion checks.
pub const CONVERSION: &str = "conversion";

/// Defaults for fields the file leaves out.
pub mod defaults {
    /// `[pairs] min`.
    pub const MIN_PAIRS: usize = 100;
    /// `[pairs] max`.
    pub const MAX_PAIRS: usize = 400;
    /// `[pairs] check_every`.
    pub const CHECK_EVERY: usize = 50;
    /// `concurrency`.
    pub const CONCURRENCY: usize = 4;
    /// `seed`.
    pub const SEED: u64 = 1;
    /// `time_scale`.
    pub const TIME_SCALE: f64 = 0.2;
    /// `max_steps`.
    pub const MAX_STEPS: usize = 60;
    /// `confidence`.
    pub const CONFIDENCE: f64 = 0.95;
    /// `max_drop` of the conversion check used when the file has no `[[checks]]`.
    pub const CONVERSION_MAX_DROP: f64 = 0.02;
}

/// Upper bounds that catch a stray digit.
const MAX_CONCURRENCY: usize = 64;
const PAIRS_LIMIT: usize = 1_000_000;
const MAX_STEPS_LIMIT: usize = 10_000;
const MAX_TIME_SCALE: f64 = 10.0;
const MAX_NAME_CHARS: usize = 200;

/// Why a scenario file was rejected. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("failed to read scenario {}: {source}", path.display())]
    Read {
        /// The scenario file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is over [`MAX_FILE_BYTES`].
    #[error("scenario {} is too large: {size} bytes, the limit is {limit} bytes", path.display())]
    TooLarge {
        /// The scenario file.
        path: PathBuf,
        /// Its size (at least; reading stops past the limit).
        size: u64,
        /// [`MAX_FILE_BYTES`].
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("scenario {} is not UTF-8 text (is it a TOML file?)", path.display())]
    NotText {
        /// The scenario file.
        path: PathBuf,
    },
    /// TOML syntax, an unknown field or a value of the wrong type. `toml`'s message carries
    /// the line, the column and the offending text.
    #[error("scenario {}: {source}", path.display())]
    Parse {
        /// The scenario file.
        path: PathBuf,
        /// The parser's error.
        source: Box<toml::de::Error>,
    },
    /// A field is missing or has a value out of range.
    #[error("scenario {}: `{field}` {problem}", path.display())]
    Invalid {
        /// The scenario file.
        path: PathBuf,
        /// The field, as a path: `pairs.min`, `checks[2].metric`, `goals[0]`.
        field: String,
        /// What is wrong, e.g. "must be at most 64, got 100".
        problem: String,
    },
}

impl ScenarioError {
    /// The field at fault, when the error is about one field's value.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A scenario file as written: every field the format knows, nothing checked yet.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Shown in every report.
    pub name: String,
    /// Behaviour model file, relative to the scenario's folder unless absolute.
    pub model: String,
    /// URL of the baseline build (may come from the command line instead).
    pub baseline: Option<String>,
    /// URL of the candidate build (may come from the command line instead).
    pub candidate: Option<String>,
    /// Goal specs (see [`crate::cook::goals`]).
    #[serde(default)]
    pub goals: Vec<String>,
    /// Funnel steps: route patterns (`*` glob) in the order users should pass them, for the
    /// drop-off per step in reports. Optional.
    #[serde(default)]
    pub funnel: Vec<String>,
    /// How many pairs to run.
    #[serde(default)]
    pub pairs: RawPairs,
    /// Browser contexts at once.
    pub concurrency: Option<usize>,
    /// The run's seed.
    pub seed: Option<u64>,
    /// Think-time multiplier.
    pub time_scale: Option<f64>,
    /// Actions per simulated user before giving up.
    pub max_steps: Option<usize>,
    /// Whether an inconclusive error-level check fails the run.
    pub fail_on_inconclusive: Option<bool>,
    /// Family confidence of the gate.
    pub confidence: Option<f64>,
    /// The `[[checks]]`.
    #[serde(default)]
    pub checks: Vec<RawCheck>,
}

/// The `[pairs]` table as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPairs {
    /// Burn-in: the first look.
    pub min: Option<usize>,
    /// The most pairs to run.
    pub max: Option<usize>,
    /// Pairs between looks.
    pub check_every: Option<usize>,
}

/// One `[[checks]]` entry as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// `conversion` or a name from [`SIGNALS`].
    pub metric: String,
    /// Conversion only: the largest tolerated absolute drop (0.02 = 2 pp).
    pub max_drop: Option<f64>,
    /// Signals only: the largest tolerated rise in count per session.
    pub max_rise: Option<f64>,
    /// `off`, `warn` or `error` (the default).
    pub level: Option<String>,
}

/// How many user pairs to run, and when to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairs {
    /// No look before this many pairs.
    pub min: usize,
    /// Stop here whatever the answer.
    pub max: usize,
    /// Look every this many pairs after `min`.
    pub check_every: usize,
}

/// A validated run plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// The scenario's name.
    pub name: String,
    /// The file it was read from (as given).
    pub source: PathBuf,
    /// The behaviour model file, resolved against the scenario's folder.
    pub model: PathBuf,
    /// The baseline build.
    pub baseline: Url,
    /// The candidate build.
    pub candidate: Url,
    /// The goals, parsed, in file order (at least one).
    pub goals: Vec<Goal>,
    /// Funnel steps, route patterns in order (may be empty).
    pub funnel: Vec<String>,
    /// How many pairs.
    pub pairs: Pairs,
    /// Browser contexts at once (1..=64).
    pub concurrency: usize,
    /// The run's seed.
    pub seed: u64,
    /// Think-time multiplier in (0, 10].
    pub time_scale: f64,
    /// Actions per simulated user before giving up.
    pub max_steps: usize,
    /// Whether an inconclusive error-level check fails the run.
    pub fail_on_inconclusive: bool,
    /// Family confidence of the gate, in [0.5, 1).
    pub confidence: f64,
    /// The checks, in file order (at least one; one per metric).
    pub checks: Vec<Check>,
}

impl Scenario {
    /// Reads, parses and resolves a scenario file. `baseline` and `candidate`, when given
    /// (from the command line), override the file's URLs.
    pub fn load(
        path: &Path,
        baseline: Option<Url>,
        candidate: Option<Url>,
    ) -> Result<Scenario, ScenarioError> {
        let text = read_capped(path)?;
        RawScenario::parse(&text, path)?
            .with_urls(baseline, candidate)
            .resolve(path)
    }

    /// Parses and resolves scenario text as if read from `path` (which only names the file
    /// in errors and anchors the model path).
    pub fn from_toml(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        RawScenario::parse(text, path)?.resolve(path)
    }

    /// The names of the goals, in order.
    pub fn goal_specs(&self) -> Vec<String> {
        self.goals.iter().map(|g| g.spec.clone()).collect()
    }

    /// Settings for a fixed-sample gate evaluation (default interval methods).
    pub fn gate_config(&self) -> GateConfig {
        GateConfig {
            confidence: self.confidence,
            fail_on_inconclusive: self.fail_on_inconclusive,
            ..GateConfig::default()
        }
    }

    /// The sequential stopping plan: α = 1 − confidence, looks from `pairs.min` every
    /// `pairs.check_every` up to `pairs.max`, tuned for the default horizon clamped into
    /// [min, max], with the default variance floor.
    pub fn sequential_plan(&self) -> SequentialPlan {
        let default = SequentialPlan::default();
        SequentialPlan {
            alpha: 1.0 - self.confidence,
            min_pairs: self.pairs.min,
            max_pairs: self.pairs.max,
            check_every: self.pairs.check_every,
            tuned_for: default.tuned_for.clamp(self.pairs.min, self.pairs.max),
            variance_floor: default.variance_floor,
        }
    }
}

/// Reads at most [`MAX_FILE_BYTES`] of a file as UTF-8.
fn read_capped(path: &Path) -> Result<String, ScenarioError> {
    let read_err = |source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let too_large = |size| ScenarioError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FILE_BYTES,
    };
    if let Ok(meta) = file.metadata() {
        if meta.is_file() && meta.len() > MAX_FILE_BYTES {
            return Err(too_large(meta.len()));
        }
    }
    // The metadata may lie (a pipe, a growing file): read one byte past the limit.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| ScenarioError::NotText {
        path: path.to_path_buf(),
    })
}

impl RawScenario {
    /// Parses scenario text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RawScenario, ScenarioError> {
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(ScenarioError::TooLarge {
                path: path.to_path_buf(),
                size: text.len() as u64,
                limit: MAX_FILE_BYTES,
            });
        }
        toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Replaces the file's URLs with those given (from the command line); `None` keeps the
    /// file's.
    pub fn with_urls(mut self, baseline: Option<Url>, candidate: Option<Url>) -> RawScenario {
        if let Some(url) = baseline {
            self.baseline = Some(url.into());
        }
        if let Some(url) = candidate {
            self.candidate = Some(url.into());
        }
        self
    }

    /// Checks every value and fills the defaults. `path` is the file this came from: it
    /// names the file in errors and anchors a relative `model` path.
    pub fn resolve(self, path: &Path) -> Result<Scenario, ScenarioError> {
        let invalid = |field: &str, problem: String| ScenarioError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            problem,
        };

        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                format!("must be one line of at most {MAX_NAME_CHARS} characters"),
            ));
        }

        if self.model.trim().is_empty() {
            return Err(invalid(
                "model",
                "must name a model file (from `understudy fit`)".into(),
            ));
        }
        let model = Path::new(self.model.trim());
        let model = if model.is_absolute() {
            model.to_path_buf()
        } else {
            path.parent().unwrap_or(Path::new("")).join(model)
        };

        let baseline =
            build_url("baseline", self.baseline.as_deref()).map_err(|p| invalid("baseline", p))?;
        let candidate = build_url("candidate", self.candidate.as_deref())
            .map_err(|p| invalid("candidate", p))?;

        if self.goals.is_empty() {
            return Err(invalid(
                "goals",
                "must list at least one goal, e.g. goals = [\"purchase=url:/order/*\"]".into(),
            ));
        }
        let mut goals = Vec::with_capacity(self.goals.len());
        let mut names = BTreeSet::new();
        for (i, spec) in self.goals.iter().enumerate() {
            let field = format!("goals[{i}]");
            let goal =
                parse_goal(spec).map_err(|e| invalid(&field, format!("is not a goal: {e}")))?;
            if !names.insert(goal.name.clone()) {
                return Err(invalid(
                    &field,
                    format!("repeats the goal name `{}`", goal.name),
                ));
            }
            goals.push(goal);
        }

        let pairs = Pairs {
            min: self.pairs.min.unwrap_or(defaults::MIN_PAIRS),
            max: self.pairs.max.unwrap_or(defaults::MAX_PAIRS),
            check_every: self.pairs.check_every.unwrap_or(defaults::CHECK_EVERY),
        };
        if pairs.min < 2 {
            return Err(invalid(
                "pairs.min",
                format!("must be at least 2, got {}", pairs.min),
            ));
        }
        if pairs.max > PAIRS_LIMIT {
            return Err(invalid(
                "pairs.max",
                format!("must be at most {PAIRS_LIMIT}, got {}", pairs.max),
            ));
        }
        if pairs.min > pairs.max {
            return Err(invalid(
                "pairs.min",
                format!(
                    "must not exceed pairs.max, got min = {} > max = {}",
                    pairs.min, pairs.max
                ),
            ));
        }
        if pairs.check_every == 0 {
            return Err(invalid(
                "pairs.check_every",
                "must be at least 1, got 0".into(),
            ));
        }

        let concurrency = self.concurrency.unwrap_or(defaults::CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(invalid(
                "concurrency",
                format!("must be between 1 and {MAX_CONCURRENCY}, got {concurrency}"),
            ));
        }

        let time_scale = self.time_scale.unwrap_or(defaults::TIME_SCALE);
        if !(time_scale > 0.0 && time_scale <= MAX_TIME_SCALE) {
            return Err(invalid(
                "time_scale",
                format!("must be in (0, {MAX_TIME_SCALE}], got {time_scale}"),
            ));
        }

        let max_steps = self.max_steps.unwrap_or(defaults::MAX_STEPS);
        if !(1..=MAX_STEPS_LIMIT).contains(&max_steps) {
            return Err(invalid(
                "max_steps",
                format!("must be between 1 and {MAX_STEPS_LIMIT}, got {max_steps}"),
            ));
        }

        let confidence = self.confidence.unwrap_or(defaults::CONFIDENCE);
        if !(0.5..1.0).contains(&confidence) {
            return Err(invalid(
                "confidence",
                format!("must be at least 0.5 and below 1 (e.g. 0.95), got {confidence}"),
            ));
        }

        let checks = if self.checks.is_empty() {
            vec![Check::conversion_may_not_drop(
                defaults::CONVERSION_MAX_DROP,
                Level::Error,
            )]
        } else {
            let mut checks: Vec<Check> = Vec::with_capacity(self.checks.len());
            for (i, raw) in self.checks.iter().enumerate() {
                let check = resolve_check(raw).map_err(|(field, problem)| {
                    invalid(&format!("checks[{i}].{field}"), problem)
                })?;
                if checks.iter().any(|c| c.metric == check.metric) {
                    return Err(invalid(
                        &format!("checks[{i}].metric"),
                        format!("checks `{}` a second time", raw.metric.trim()),
                    ));
                }
                checks.push(check);
            }
            checks
        };

        let funnel: Vec<String> = self.funnel.iter().map(|f| f.trim().to_string()).collect();
        if let Some((i, _)) = funnel
            .iter()
            .enumerate()
            .find(|(_, f)| !f.starts_with('/') && f.as_str() != "*")
        {
            return Err(invalid(
                &format!("funnel[{i}]"),
                "must be a route pattern starting with `/`, e.g. `/product/*`".into(),
            ));
        }

        Ok(Scenario {
            name,
            source: path.to_path_buf(),
            model,
            baseline,
            candidate,
            goals,
            funnel,
            pairs,
            concurrency,
            seed: self.seed.unwrap_or(defaults::SEED),
            time_scale,
            max_steps,
            fail_on_inconclusive: self.fail_on_inconclusive.unwrap_or(false),
            confidence,
            checks,
        })
    }
}

/// A build URL: present, absolute, http or https, with a host.
fn build_url(which: &str, raw: Option<&str>) -> Result<Url, String> {
    let Some(raw) = raw else {
        return Err(format!(
            "is missing: set `{which} = \"http://…\"` in the scenario or pass --{which} URL"
        ));
    };
    let url = Url::parse(raw.trim()).map_err(|e| format!("is not a URL ({e}): {raw:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http or https URL, got scheme `{}` in {raw:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("has no host: {raw:?}"));
    }
    Ok(url)
}

/// One check; errors are (field within the check, problem).
fn resolve_check(raw: &RawCheck) -> Result<Check, (&'static str, String)> {
    let level = match raw.level.as_deref().map(str::trim) {
        None => Level::Error,
        Some(s) => s.parse::<Level>().map_err(|_| {
            (
                "level",
                format!("must be \"off\", \"warn\" or \"error\", got {s:?}"),
            )
        })?,
    };
    let metric = raw.metric.trim();
    let tolerance = |name: &'static str, value: f64| {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err((name, format!("must be a number at least 0, got {value}")))
        }
    };
    if metric == CONVERSION {
        if raw.max_rise.is_some() {
            return Err((
                "max_rise",
                "does not apply to conversion (a rise is good): use max_drop".into(),
            ));
        }
        let Some(by) = raw.max_drop else {
            return Err((
                "max_drop",
                "is missing: a conversion check needs the largest tolerated drop, e.g. max_drop = 0.02 (2 percentage points)".into(),
            ));
        };
        let by = tolerance("max_drop", by)?;
        if by > 1.0 {
            return Err((
                "max_drop",
                format!("is an absolute proportion and must be at most 1 (0.02 = 2 pp), got {by}"),
            ));
        }
        Ok(Check::conversion_may_not_drop(by, level))
    } else if SIGNALS.contains(&metric) {
        if raw.max_drop.is_some() {
            return Err((
                "max_drop",
                format!("does not apply to {metric} (a drop is good): use max_rise"),
            ));
        }
        let Some(by) = raw.max_rise else {
            return Err((
                "max_rise",
                format!("is missing: a {metric} check needs the largest tolerated rise per session, e.g. max_rise = 0.05"),
            ));
        };
        Ok(Check::signal_may_not_rise(
            metric,
            tolerance("max_rise", by)?,
            level,
        ))
    } else {
        Err((
            "metric",
            format!(
                "is unknown: {metric:?}; expected one of: {CONVERSION}, {}",
                SIGNALS.join(", ")
            ),
        ))
    }
}

impl fmt::Display for Pairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..={} pairs, a look every {}",
            self.min, self.max, self.check_every
        )
    }
}

/// The metric name a check is written with in a scenario file.
pub fn metric_name(metric: &Metric) -> &str {
    match metric {
        Metric::Conversion => CONVERSION,
        Metric::Signal(name) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Direction;

    const MINIMAL: &str = r#"
name = "smoke"
model = "models/shop.json"
baseline = "http://127.0.0.1:8080/"
candidate = "https://candidate.example/"
goals = ["purchase=url:/confirm*"]
"#;

    fn path() -> &'static Path {
        Path::new("scenarios/smoke.toml")
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml(text, path())
    }

    /// `MINIMAL` plus `extra` lines.
    fn with(extra: &str) -> Result<Scenario, ScenarioError> {
        parse(&format!("{MINIMAL}{extra}"))
    }

    /// Asserts the error is about `field` and its message contains every needle.
    fn assert_invalid(result: Result<Scenario, ScenarioError>, field: &str, needles: &[&str]) {
        let err = result.expect_err("should be rejected");
        let msg = err.to_string();
        assert_eq!(err.field(), Some(field), "{msg}");
        assert!(msg.contains("scenarios/smoke.toml"), "{msg}");
        for needle in needles {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
    }

    fn assert_parse_error(result: Result<Scenario, ScenarioError>, needles: &[&str]) {
        let err = result.expect_err("should be rejected");
        let msg = err.to_string();
        assert!(matches!(err, ScenarioError::Parse { .. }), "{msg}");
        assert!(msg.contains("scenarios/smoke.toml"), "{msg}");
        for needle in needles {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
    }

    #[test]
    fn the_example_resolves() {
        let s = Scenario::from_toml(EXAMPLE, Path::new("scenarios/checkout.toml")).unwrap();
        assert_eq!(s.name, "checkout");
        assert_eq!(s.model, Path::new("scenarios/../models/shop.json"));
        assert_eq!(s.goals.len(), 3);
        assert_eq!(s.goals[0].name, "purchase");
        assert_eq!(s.checks.len(), 4);
        assert_eq!(
            s.checks[0],
            Check::conversion_may_not_drop(0.02, Level::Error)
        );
        assert_eq!(
            s.checks[2],
            Check::signal_may_not_rise("js_error", 0.1, Level::Warn)
        );
        assert_eq!(s.checks[3].level, Level::Off);
        assert_eq!(s.baseline.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn defaults_fill_the_gaps() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(
            s.pairs,
            Pairs {
                min: 100,
                max: 400,
                check_every: 50
            }
        );
        assert_eq!(s.concurrency, 4);
        assert_eq!(s.seed, 1);
        assert_eq!(s.time_scale, 0.2);
        assert_eq!(s.max_steps, 60);
        assert!(!s.fail_on_inconclusive);
        assert_eq!(s.confidence, 0.95);
        assert_eq!(s.model, Path::new("scenarios/models/shop.json"));
        assert_eq!(s.checks.len(), 1);
        assert_eq!(s.checks[0].metric, Metric::Conversion);
        assert_eq!(s.checks[0].direction, Direction::HigherIsBetter);
        assert_eq!(s.checks[0].tolerance, 0.02);

        let plan = s.sequential_plan();
        plan.validate().unwrap();
        assert!((plan.alpha - 0.05).abs() < 1e-12);
        assert_eq!(
            (plan.min_pairs, plan.max_pairs, plan.tuned_for),
            (100, 400, 400)
        );
        let gate = s.gate_config();
        assert_eq!(gate.confidence, 0.95);
        assert!(!gate.fail_on_inconclusive);
    }

    #[test]
    fn every_field_is_read() {
        let s = with(
            r#"
concurrency = 8
seed = 18446744073
time_scale = 1
max_steps = 90
fail_on_inconclusive = true
confidence = 0.9
[pairs]
min = 20
max = 20
check_every = 5
[[checks]]
metric = "repeated_request"
max_rise = 0
"#,
        )
        .unwrap();
        assert_eq!(s.concurrency, 8);
        assert_eq!(s.seed, 18_446_744_073);
        assert_eq!(s.time_scale, 1.0);
        assert_eq!(s.max_steps, 90);
        assert!(s.fail_on_inconclusive && s.gate_config().fail_on_inconclusive);
        assert_eq!(s.confidence, 0.9);
        assert_eq!((s.pairs.min, s.pairs.max, s.pairs.check_every), (20, 20, 5));
        assert_eq!(
            s.checks,
            [Check::signal_may_not_rise(
                "repeated_request",
                0.0,
                Level::Error
            )]
        );
        assert_eq!(s.sequential_plan().tuned_for, 20);
    }

    #[test]
    fn absolute_model_paths_stay() {
        let s = parse(&MINIMAL.replace("models/shop.json", "/srv/models/shop.json")).unwrap();
        assert_eq!(s.model, Path::new("/srv/models/shop.json"));
    }

    #[test]
    fn command_line_urls_override_and_fill_in() {
        let text = r#"
name = "no urls"
model = "m.json"
goals = ["url:/done"]
"#;
        assert_invalid(parse(text), "baseline", &["is missing", "--baseline"]);
        let only_base = RawScenario::parse(text, path())
            .unwrap()
            .with_urls(Some(Url::parse("http://localhost:1/").unwrap()), None)
            .resolve(path());
        assert_invalid(only_base, "candidate", &["is missing", "--candidate"]);

        let s = RawScenario::parse(MINIMAL, path())
            .unwrap()
            .with_urls(None, Some(Url::parse("http://localhost:2/x").unwrap()))
            .resolve(path())
            .unwrap();
        assert_eq!(s.baseline.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.candidate.as_str(), "http://localhost:2/x");
        // A URL given on the command line is held to the same rules.
        let ftp = RawScenario::parse(MINIMAL, path())
            .unwrap()
            .with_urls(Some(Url::parse("ftp://host/").unwrap()), None)
            .resolve(path());
        assert_invalid(ftp, "baseline", &["http or https", "ftp"]);
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_line() {
        assert_parse_error(with("concurency = 3\n"), &["concurency", "line 7"]);
        assert_parse_error(with("[pairs]\nmin = 10\nmaximum = 20\n"), &["maximum"]);
        assert_parse_error(
            with("[[checks]]\nmetric = \"conversion\"\nmax_drop = 0.1\nseverity = \"warn\"\n"),
            &["severity"],
        );
    }

    #[test]
    fn wrong_types_keep_the_location() {
        assert_parse_error(with("seed = -1\n"), &["seed", "line 7"]);
        assert_parse_error(with("concurrency = \"four\"\n"), &["line 7"]);
        let missing_name = MINIMAL.replace("name = \"smoke\"", "");
        assert_parse_error(parse(&missing_name), &["name"]);
    }

    #[test]
    fn bad_urls() {
        let bad = |url: &str| parse(&MINIMAL.replace("http://127.0.0.1:8080/", url));
        assert_invalid(bad("not a url"), "baseline", &["is not a URL"]);
        assert_invalid(bad("file:///etc/passwd"), "baseline", &["http or https"]);
        assert_invalid(bad("javascript:alert(1)"), "baseline", &["http or https"]);
        assert_invalid(bad("/relative/path"), "baseline", &["is not a URL"]);
    }

    #[test]
    fn bad_levels() {
        let check = |level: &str| {
            with(&format!(
                "[[checks]]\nmetric = \"conversion\"\nmax_drop = 0.01\nlevel = \"{level}\"\n"
            ))
        };
        assert_invalid(
            check("fatal"),
            "checks[0].level",
            &["off", "warn", "error", "fatal"],
        );
        assert_invalid(check("ERROR"), "checks[0].level", &["\"ERROR\""]);
        assert_eq!(check("warn").unwrap().checks[0].level, Level::Warn);
    }

    #[test]
    fn pair_counts_must_be_consistent() {
        assert_invalid(
            with("[pairs]\nmin = 500\nmax = 400\n"),
            "pairs.min",
            &["500", "400"],
        );
        assert_invalid(with("[pairs]\nmin = 1\n"), "pairs.min", &["at least 2"]);
        assert_invalid(
            with("[pairs]\ncheck_every = 0\n"),
            "pairs.check_every",
            &["at least 1"],
        );
        assert_invalid(
            with("[pairs]\nmax = 100000000\n"),
            "pairs.max",
            &["at most"],
        );
    }

    #[test]
    fn ranges_of_the_scalars() {
        assert_invalid(
            with("concurrency = 0\n"),
            "concurrency",
            &["between 1 and 64", "0"],
        );
        assert_invalid(with("concurrency = 65\n"), "concurrency", &["65"]);
        assert_invalid(with("time_scale = 0\n"), "time_scale", &["(0, 10]"]);
        assert_invalid(with("time_scale = 10.5\n"), "time_scale", &["10.5"]);
        assert_invalid(with("time_scale = nan\n"), "time_scale", &["NaN"]);
        assert!(with("time_scale = 10\n").is_ok());
        assert_invalid(with("max_steps = 0\n"), "max_steps", &["between"]);
        assert_invalid(with("confidence = 1.0\n"), "confidence", &["below 1"]);
        assert_invalid(with("confidence = 95\n"), "confidence", &["0.95"]);
    }

    #[test]
    fn name_and_model_must_be_present() {
        assert_invalid(
            parse(&MINIMAL.replace("\"smoke\"", "\"  \"")),
            "name",
            &["must not be empty"],
        );
        assert_invalid(
            parse(&MINIMAL.replace("\"smoke\"", "\"two\\nlines\"")),
            "name",
            &["one line"],
        );
        assert_invalid(
            parse(&MINIMAL.replace("models/shop.json", "")),
            "model",
            &["model file"],
        );
    }

    #[test]
    fn unknown_metrics_list_the_allowed_ones() {
        assert_invalid(
            with("[[checks]]\nmetric = \"rage_clicks\"\nmax_rise = 0.1\n"),
            "checks[0].metric",
            &[
                "\"rage_clicks\"",
                "conversion",
                "rage_click",
                "repeated_request",
            ],
        );
    }

    #[test]
    fn thresholds_must_fit_the_metric() {
        let check = |body: &str| with(&format!("[[checks]]\n{body}\n"));
        assert_invalid(
            check("metric = \"conversion\""),
            "checks[0].max_drop",
            &["is missing", "max_drop = 0.02"],
        );
        assert_invalid(
            check("metric = \"js_error\""),
            "checks[0].max_rise",
            &["is missing"],
        );
        assert_invalid(
            check("metric = \"conversion\"\nmax_rise = 0.1"),
            "checks[0].max_rise",
            &["use max_drop"],
        );
        assert_invalid(
            check("metric = \"dead_click\"\nmax_drop = 0.1"),
            "checks[0].max_drop",
            &["use max_rise"],
        );
        assert_invalid(
            check("metric = \"dead_click\"\nmax_rise = -0.1"),
            "checks[0].max_rise",
            &["at least 0"],
        );
        assert_invalid(
            check("metric = \"conversion\"\nmax_drop = 2"),
            "checks[0].max_drop",
            &["at most 1"],
        );
        assert_invalid(
            check("metric = \"conversion\"\nmax_drop = inf"),
            "checks[0].max_drop",
            &["at least 0"],
        );
        assert_invalid(
            with(
                "[[checks]]\nmetric = \"js_error\"\nmax_rise = 0.1\n\
                 [[checks]]\nmetric = \"js_error\"\nmax_rise = 0.2\n",
            ),
            "checks[1].metric",
            &["second time"],
        );
    }

    #[test]
    fn bad_goals() {
        let goals = |list: &str| parse(&MINIMAL.replace("[\"purchase=url:/confirm*\"]", list));
        assert_invalid(
            goals("[\"purchase=confirm\"]"),
            "goals[0]",
            &["is not a goal"],
        );
        assert_invalid(
            goals("[\"url:/a\", \"request:POST\"]"),
            "goals[1]",
            &["request:METHOD"],
        );
        assert_invalid(goals("[]"), "goals", &["at least one goal"]);
        assert_invalid(
            goals("[\"a=url:/x\", \"a=url:/y\"]"),
            "goals[1]",
            &["repeats", "`a`"],
        );
        let ok = goals("[\"element:[data-testid=x]\", \"request:POST /api/pay\"]").unwrap();
        assert_eq!(ok.goals.len(), 2);
        assert_eq!(
            ok.goal_specs(),
            ["element:[data-testid=x]", "request:POST /api/pay"]
        );
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert_parse_error(parse("this is { not toml"), &["TOML parse error", "line 1"]);
        assert_parse_error(parse("<html><body>404</body></html>"), &["line 1"]);
        assert_parse_error(parse(""), &["name"]);
    }

    #[test]
    fn files_too_large_or_not_text_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        // 10 MiB of comment lines: valid TOML, but no scenario is that large.
        let line = format!("#{}\n", "x".repeat(1023));
        std::fs::write(&big, line.repeat(10 * 1024)).unwrap();
        let err = Scenario::load(&big, None, None).unwrap_err();
        assert!(matches!(err, ScenarioError::TooLarge { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("big.toml") && msg.contains("too large") && msg.contains("1048576"),
            "{msg}"
        );

        let binary = dir.path().join("binary.toml");
        std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
        let err = Scenario::load(&binary, None, None).unwrap_err();
        assert!(matches!(err, ScenarioError::NotText { .. }), "{err}");

        let missing = dir.path().join("missing.toml");
        let err = Scenario::load(&missing, None, None).unwrap_err();
        assert!(matches!(err, ScenarioError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.toml"));

        let good = dir.path().join("good.toml");
        std::fs::write(&good, MINIMAL).unwrap();
        let s = Scenario::load(&good, None, None).unwrap();
        assert_eq!(s.model, dir.path().join("models/shop.json"));
        assert_eq!(s.source, good);
    }

    #[test]
    fn metric_names_round_trip() {
        assert_eq!(metric_name(&Metric::Conversion), "conversion");
        assert_eq!(metric_name(&Metric::Signal("js_error".into())), "js_error");
    }
}
