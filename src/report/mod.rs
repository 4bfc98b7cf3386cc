//! Reports: what a gate run tells people and machines, one file per format.
//!
//! In: one [`RunResults`], the versioned record of a run (settings, per-build summaries,
//! every check's statistics and verdict, the gate's outcome, the worst sessions and any
//! infrastructure errors). Out, from [`write_all`] into the run's output folder:
//!
//! | file | for | module |
//! |---|---|---|
//! | `junit.xml` | CI test reporters: one testsuite per scenario, one testcase per check | `junit` |
//! | `report/index.html` | people: a self-contained page with inline CSS and SVG charts | `html`, `charts` |
//! | `summary.md` | the pull request: a compact Markdown summary, also appended to `$GITHUB_STEP_SUMMARY` | `markdown` |
//! | `results.json` | machines: [`RunResults`] as JSON, `format` + `version` first | `json` |
//!
//! and [`annotations`] gives the GitHub workflow commands (`::error …`) the CLI prints
//! under GitHub Actions.
//!
//! How a check shows up ([`CheckStatus`]), in every format alike, following Lighthouse CI
//! and Playwright conventions:
//!
//! | level | verdict | status | JUnit |
//! |---|---|---|---|
//! | off | any | `Off` | `<skipped>` |
//! | warn, error | pass | `Pass` | success |
//! | error | fail | `Fail` | `<failure type="GateViolation">` |
//! | error | inconclusive, with `fail_on_inconclusive` | `Fail` | `<failure type="Inconclusive">` |
//! | warn | fail or inconclusive | `Warn` | success, system-out starting `WARN` |
//! | error | inconclusive | `Warn` | success, system-out starting `WARN` |
//!
//! Infrastructure errors become one more testcase, `infrastructure`, with an `<error>`.
//!
//! Rendering is pure (values in, strings out: the `render_*` functions); only
//! [`write_all`] touches the file system. Every string that came from the app under test or
//! the command line (scenario names, URLs, step names, session ids, error messages) is
//! escaped for the format it lands in: XML by junit-report (plus CDATA splitting),
//! HTML by tera's autoescape and the chart code, Markdown by [`markdown::escape`], workflow
//! commands by [`github::escape_data`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::{
    BuildSummary, CheckResult, Direction, GateOutcome, GateStatus, Level, Metric, SequentialStatus,
    Verdict,
};

mod charts;
mod example;
pub mod github;
mod html;
mod json;
mod junit;
pub mod markdown;

pub use example::{example, Example};
pub use github::{annotations, append_step_summary};
pub use html::render_html;
pub(crate) use html::script_json;
pub use json::{from_json, to_json};
pub use junit::render_junit;
pub use markdown::render_summary;

/// The `format` tag of `results.json`.
pub const RESULTS_FORMAT: &str = "understudy-results";
/// The version of `results.json` this build writes and reads.
///
/// Changelog: 1 — first version.
pub const RESULTS_VERSION: u32 = 1;

/// Where the HTML report goes inside the output folder.
pub const HTML_PATH: &str = "report/index.html";
/// The JUnit file inside the output folder.
pub const JUNIT_PATH: &str = "junit.xml";
/// The Markdown summary inside the output folder.
pub const SUMMARY_PATH: &str = "summary.md";
/// The machine-readable results inside the output folder.
pub const JSON_PATH: &str = "results.json";

/// The `format` field of [`RunResults`]: always serialises as [`RESULTS_FORMAT`] and
/// refuses any other value when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatTag;

impl Serialize for FormatTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(RESULTS_FORMAT)
    }
}

impl<'de> Deserialize<'de> for FormatTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == RESULTS_FORMAT {
            Ok(FormatTag)
        } else {
            Err(serde::de::Error::custom(format!(
                "format is {s:?}, expected {RESULTS_FORMAT:?}"
            )))
        }
    }
}

/// Which build a session ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Build {
    /// The build the pull request starts from.
    Baseline,
    /// The build of the pull request.
    Candidate,
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Build::Baseline => "baseline",
            Build::Candidate => "candidate",
        })
    }
}

/// Which slice of the users a run covered (`--shard index/total`, 0-based index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// 0-based shard index, below `total`.
    pub index: u32,
    /// Number of shards.
    pub total: u32,
}

impl fmt::Display for ShardInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// A simulated session worth looking at (the report lists the worst ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRef {
    /// The simulated user's index (the same person on both builds).
    pub user: usize,
    /// Which build the session ran on.
    pub build: Build,
    /// The session id.
    pub session_id: String,
    /// Whether it reached a goal.
    pub converted: bool,
    /// Signal counts by name (only the non-zero ones need be present).
    pub signals: BTreeMap<String, u32>,
    /// The session's replay, as a relative link from the HTML report's folder
    /// (`<out>/report/`), e.g. `replays/<sid>.html`. Absolute URLs and paths are shown as
    /// text, never linked.
    pub replay: Option<String>,
}

/// Everything a gate run found: the one versioned record every report is rendered from.
///
/// Serialised as `results.json` ([`to_json`]); read back with [`from_json`], which refuses
/// other formats and versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Always [`RESULTS_FORMAT`].
    pub format: FormatTag,
    /// [`RESULTS_VERSION`] when written by this build.
    pub version: u32,
    /// understudy's version.
    pub tool_version: String,
    /// The Chromium version the sessions ran in.
    pub chromium_version: String,
    /// The run's seed: the same seed, model and builds give the same plan.
    pub seed: u64,
    /// The behaviour model file, as given.
    pub model_path: String,
    /// A hash of the model file's bytes, e.g. `sha256:…`.
    pub model_hash: String,
    /// The scenario's name.
    pub scenario: String,
    /// The baseline build's URL.
    pub baseline_url: String,
    /// The candidate build's URL.
    pub candidate_url: String,
    /// Set when these results cover one shard only.
    pub shard: Option<ShardInfo>,
    /// User pairs simulated (each user ran on both builds).
    pub pairs: usize,
    /// The gate's family confidence, e.g. 0.95.
    pub confidence: f64,
    /// Whether an inconclusive error-level check fails the run.
    pub fail_on_inconclusive: bool,
    /// The baseline's summary; `None` when too few of its sessions finished.
    pub baseline: Option<BuildSummary>,
    /// The candidate's summary; `None` when too few of its sessions finished.
    pub candidate: Option<BuildSummary>,
    /// Every check, evaluated, in scenario order.
    pub checks: Vec<CheckResult>,
    /// The gate's outcome over the checks.
    pub outcome: GateOutcome,
    /// The sequential stopping rule's last look, when it was used.
    pub sequential: Option<SequentialStatus>,
    /// The funnel's step names, in order (may be empty).
    pub funnel_steps: Vec<String>,
    /// When the run started (RFC 3339, e.g. `2025-01-31T12:00:00Z`).
    pub started: String,
    /// When the run finished (RFC 3339).
    pub finished: String,
    /// Wall-clock duration of the run in milliseconds.
    pub duration_ms: u64,
    /// The worst simulated sessions, worst first.
    pub sessions: Vec<SessionRef>,
    /// What went wrong outside the app's behaviour (browser crashes, unreachable builds).
    /// Non-empty means the run's verdict cannot be trusted (exit code 3).
    pub infrastructure_errors: Vec<String>,
}

/// How one check shows up in the reports (see the module docs' table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Level off: reported, never gating.
    Off,
    /// Gated and passed.
    Pass,
    /// Gated, did not pass, and only warns.
    Warn,
    /// Gated, did not pass, and fails the run.
    Fail,
}

impl CheckStatus {
    /// Where a check lands: its level, its verdict and the run's `fail_on_inconclusive`.
    pub fn of(check: &CheckResult, fail_on_inconclusive: bool) -> CheckStatus {
        match (check.level, check.verdict) {
            (Level::Off, _) => CheckStatus::Off,
            (_, Verdict::Pass) => CheckStatus::Pass,
            (Level::Error, Verdict::Fail) => CheckStatus::Fail,
            (Level::Error, Verdict::Inconclusive) if fail_on_inconclusive => CheckStatus::Fail,
            (_, Verdict::Fail | Verdict::Inconclusive) => CheckStatus::Warn,
        }
    }

    /// A lowercase word for CSS classes and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Off => "off",
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// The run as a whole, for banners and verdict lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every gated check passed.
    Passed,
    /// Nothing fails the run, but something warns.
    Warned,
    /// An error-level check failed (exit code 1).
    Failed,
    /// The run hit infrastructure errors (exit code 3).
    InfrastructureError,
}

impl RunStatus {
    /// The status word shown in reports: `PASSED`, `PASSED WITH WARNINGS`, `FAILED`,
    /// `INFRASTRUCTURE ERROR`.
    pub fn word(self) -> &'static str {
        match self {
            RunStatus::Passed => "PASSED",
            RunStatus::Warned => "PASSED WITH WARNINGS",
            RunStatus::Failed => "FAILED",
            RunStatus::InfrastructureError => "INFRASTRUCTURE ERROR",
        }
    }

    /// A lowercase word for CSS classes.
    pub fn class(self) -> &'static str {
        match self {
            RunStatus::Passed => "pass",
            RunStatus::Warned => "warn",
            RunStatus::Failed => "fail",
            RunStatus::InfrastructureError => "error",
        }
    }
}

impl RunResults {
    /// The run's status: infrastructure errors first, then the gate's.
    pub fn status(&self) -> RunStatus {
        if !self.infrastructure_errors.is_empty() {
            return RunStatus::InfrastructureError;
        }
        match self.outcome.status {
            GateStatus::Pass => RunStatus::Passed,
            GateStatus::Warn => RunStatus::Warned,
            GateStatus::Fail => RunStatus::Failed,
        }
    }

    /// Each check's status, in order.
    pub fn check_status(&self, check: &CheckResult) -> CheckStatus {
        CheckStatus::of(check, self.fail_on_inconclusive)
    }

    /// One sentence on what the gate found, e.g. "1 of 3 gated checks failed the run, 1
    /// warned; 400 pairs."
    pub fn headline(&self) -> String {
        let o = &self.outcome;
        let (mut fail, mut warn, mut pass) = (0, 0, 0);
        for c in &self.checks {
            match self.check_status(c) {
                CheckStatus::Fail => fail += 1,
                CheckStatus::Warn => warn += 1,
                CheckStatus::Pass => pass += 1,
                CheckStatus::Off => {}
            }
        }
        let mut parts = Vec::new();
        if o.gated == 0 {
            parts.push("no gated checks".to_string());
        } else {
            let checks = if o.gated == 1 { "check" } else { "checks" };
            if fail > 0 {
                parts.push(format!(
                    "{fail} of {} gated {checks} failed the run",
                    o.gated
                ));
            } else {
                parts.push(format!("{pass} of {} gated {checks} passed", o.gated));
            }
            if warn > 0 {
                parts.push(format!("{warn} warned"));
            }
        }
        let pairs = if self.pairs == 1 { "pair" } else { "pairs" };
        let mut s = format!("{}; {} {pairs}", parts.join(", "), self.pairs);
        if let Some(shard) = self.shard {
            s.push_str(&format!(" in shard {shard}"));
        }
        let errors = self.infrastructure_errors.len();
        if errors > 0 {
            let e = if errors == 1 { "error" } else { "errors" };
            s.push_str(&format!("; {errors} infrastructure {e}"));
        }
        s.push('.');
        s
    }
}

/// The name of a check in reports: `conversion` or the signal's name.
pub fn check_name(metric: &Metric) -> &str {
    match metric {
        Metric::Conversion => "conversion",
        Metric::Signal(name) => name,
    }
}

/// A value of Δ (or a threshold) in the metric's units: "-4.25 pp", "+0.200".
pub fn fmt_delta(metric: &Metric, x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x }; // no "-0.00"
    match metric {
        Metric::Conversion => format!("{:+.2} pp", 100.0 * x),
        Metric::Signal(_) => format!("{x:+.3}"),
    }
}

/// A build's value of the metric: "31.25%" for conversion, "0.120" per session for signals.
pub fn fmt_value(metric: &Metric, x: f64) -> String {
    match metric {
        Metric::Conversion => fmt_percent(x),
        Metric::Signal(_) => format!("{x:.3}"),
    }
}

/// A proportion as a percentage with one decimal: "31.3%".
pub fn fmt_percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A confidence level: "95%", "97.5%", "98.3%".
pub fn fmt_confidence(c: f64) -> String {
    let p = 100.0 * c;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// "[-6.40 pp, -2.31 pp]".
pub fn fmt_interval(metric: &Metric, lower: f64, upper: f64) -> String {
    format!(
        "[{}, {}]",
        fmt_delta(metric, lower),
        fmt_delta(metric, upper)
    )
}

/// What the check allows, e.g. "drop ≤ 2.00 pp", "rise ≤ 0.050".
pub fn fmt_allowed(check: &CheckResult) -> String {
    let tol = match check.metric {
        Metric::Conversion => format!("{:.2} pp", 100.0 * check.tolerance),
        Metric::Signal(_) => format!("{:.3}", check.tolerance),
    };
    match check.direction {
        Direction::HigherIsBetter => format!("drop ≤ {tol}"),
        Direction::LowerIsBetter => format!("rise ≤ {tol}"),
    }
}

/// The check's result in words: "pass", "FAIL", "FAIL (inconclusive)", "WARN (fail)",
/// "WARN (inconclusive)", "off (report only: pass)".
pub fn fmt_status(check: &CheckResult, status: CheckStatus) -> String {
    match status {
        CheckStatus::Off => format!("off (report only: {})", check.verdict),
        CheckStatus::Pass => "pass".into(),
        CheckStatus::Fail if check.verdict == Verdict::Fail => "FAIL".into(),
        CheckStatus::Fail => format!("FAIL ({})", check.verdict),
        CheckStatus::Warn => format!("WARN ({})", check.verdict),
    }
}

/// Milliseconds as "12.3 s", "4 min 05 s".
pub fn fmt_duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// Signal counts as "rage_click 3, js_error 1" (zeros left out), or "none".
pub fn fmt_signals(signals: &BTreeMap<String, u32>) -> String {
    let parts: Vec<String> = signals
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Why writing a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder could not be written.
    #[error("failed to write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The HTML template failed to render (a bug).
    #[error("failed to render the HTML report: {0}")]
    Template(String),
    /// The JUnit writer failed.
    #[error("failed to write JUnit XML: {0}")]
    Junit(#[from] junit_report::Error),
    /// `results.json` could not be written or read.
    #[error("results JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `results.json` of another format or version.
    #[error("results JSON: {0}")]
    Version(String),
}

/// The files [`write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenReports {
    /// `<out>/junit.xml`.
    pub junit: PathBuf,
    /// `<out>/report/index.html`.
    pub html: PathBuf,
    /// `<out>/summary.md`.
    pub summary: PathBuf,
    /// `<out>/results.json`.
    pub json: PathBuf,
    /// The step-summary file the summary was appended to, if any.
    pub step_summary: Option<PathBuf>,
}

/// Writes every report into `out_dir` (created if needed) and, when the environment
/// variable `GITHUB_STEP_SUMMARY` names a file, appends the Markdown summary to it.
pub fn write_all(results: &RunResults, out_dir: &Path) -> Result<WrittenReports, ReportError> {
    let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    write_all_with(results, out_dir, step_summary.as_deref())
}

/// [`write_all`] with the step-summary file given explicitly (`None`: don't append).
pub fn write_all_with(
    results: &RunResults,
    out_dir: &Path,
    step_summary: Option<&Path>,
) -> Result<WrittenReports, ReportError> {
    let junit = render_junit(results)?;
    let html = render_html(results)?;
    let summary = render_summary(results);
    let json = to_json(results)?;

    let written = WrittenReports {
        junit: out_dir.join(JUNIT_PATH),
        html: out_dir.join(HTML_PATH),
        summary: out_dir.join(SUMMARY_PATH),
        json: out_dir.join(JSON_PATH),
        step_summary: step_summary.map(Path::to_path_buf),
    };
    let report_dir = written.html.parent().unwrap_or(out_dir);
    std::fs::create_dir_all(report_dir).map_err(|source| ReportError::Io {
        path: report_dir.to_path_buf(),
        source,
    })?;
    write_file(&written.junit, junit.as_bytes())?;
    write_file(&written.html, html.as_bytes())?;
    write_file(&written.summary, summary.as_bytes())?;
    write_file(&written.json, json.as_bytes())?;
    if let Some(path) = step_summary {
        append_step_summary(path, &summary)?;
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_level(level: Level, verdict: Verdict) -> CheckResult {
        let mut c = example(Example::Pass).checks[0].clone();
        c.level = level;
        c.verdict = verdict;
        c
    }

    #[test]
    fn statuses_follow_the_levels() {
        use CheckStatus as S;
        use Level::*;
        use Verdict::*;
        let cases = [
            (Off, Fail, false, S::Off),
            (Off, Inconclusive, true, S::Off),
            (Warn, Pass, false, S::Pass),
            (Error, Pass, true, S::Pass),
            (Error, Fail, false, S::Fail),
            (Warn, Fail, true, S::Warn),
            (Error, Inconclusive, false, S::Warn),
            (Error, Inconclusive, true, S::Fail),
            (Warn, Inconclusive, true, S::Warn),
        ];
        for (level, verdict, foi, want) in cases {
            let c = with_level(level, verdict);
            assert_eq!(CheckStatus::of(&c, foi), want, "{level} {verdict} {foi}");
        }
        let c = with_level(Error, Inconclusive);
        assert_eq!(fmt_status(&c, CheckStatus::Fail), "FAIL (inconclusive)");
        assert_eq!(fmt_status(&c, CheckStatus::Warn), "WARN (inconclusive)");
        assert_eq!(
            fmt_status(&c, CheckStatus::Off),
            "off (report only: inconclusive)"
        );
    }

    #[test]
    fn run_status_puts_infrastructure_first() {
        assert_eq!(example(Example::Pass).status(), RunStatus::Passed);
        assert_eq!(example(Example::Fail).status(), RunStatus::Failed);
        assert_eq!(example(Example::Inconclusive).status(), RunStatus::Warned);
        assert_eq!(
            example(Example::InfrastructureError).status(),
            RunStatus::InfrastructureError
        );
        assert_eq!(
            example(Example::Fail).headline(),
            "1 of 3 gated checks failed the run, 1 warned; 400 pairs."
        );
    }

    #[test]
    fn number_formats() {
        let conv = Metric::Conversion;
        let sig = Metric::Signal("rage_click".into());
        assert_eq!(fmt_delta(&conv, -0.0425), "-4.25 pp");
        assert_eq!(fmt_delta(&conv, -0.0), "+0.00 pp");
        assert_eq!(fmt_delta(&sig, 0.2), "+0.200");
        assert_eq!(fmt_value(&conv, 0.3126), "31.3%");
        assert_eq!(fmt_value(&sig, 0.12), "0.120");
        assert_eq!(fmt_confidence(0.95), "95%");
        assert_eq!(fmt_confidence(0.975), "97.5%");
        assert_eq!(fmt_interval(&conv, -0.064, -0.0231), "[-6.40 pp, -2.31 pp]");
        assert_eq!(fmt_duration(12_345), "12.3 s");
        assert_eq!(fmt_duration(245_000), "4 min 05 s");
        let mut s = BTreeMap::new();
        assert_eq!(fmt_signals(&s), "none");
        s.insert("rage_click".to_string(), 3);
        s.insert("dead_click".to_string(), 0);
        s.insert("js_error".to_string(), 1);
        assert_eq!(fmt_signals(&s), "js_error 1, rage_click 3");
    }

    #[test]
    fn write_all_writes_every_file_and_appends_the_step_summary() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("understudy-out");
        let step = dir.path().join("step_summary.md");
        std::fs::write(&step, "earlier step\n").unwrap();
        let r = example(Example::Fail);
        let w = write_all_with(&r, &out, Some(&step)).unwrap();
        for p in [&w.junit, &w.html, &w.summary, &w.json] {
            assert!(p.is_file(), "{}", p.display());
        }
        assert_eq!(w.html, out.join("report/index.html"));
        let appended = std::fs::read_to_string(&step).unwrap();
        assert!(appended.starts_with("earlier step\n"));
        assert!(appended.contains("FAILED"));
        let back = from_json(&std::fs::read_to_string(&w.json).unwrap()).unwrap();
        assert_eq!(back, r);

        // An unwritable output folder is an I/O error naming the path.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let err = write_all_with(&r, &blocked, None).unwrap_err();
        assert!(matches!(err, ReportError::Io { .. }), "{err}");
        assert!(err.to_string().contains("file"), "{err}");
    }
}
