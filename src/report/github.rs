//! GitHub Actions: workflow-command annotations and the job's step summary.
//!
//! [`annotations`] returns lines such as
//! `::error title=understudy%3A conversion::conversion changed -4.25 pp …` for the CLI to
//! print when `GITHUB_ACTIONS=true`: an `error` for every check that fails the run and every
//! infrastructure error, a `warning` for every check that only warns. GitHub shows at most
//! 10 of each per step, so past 10 the rest are counted in one `notice`. Messages are escaped
//! as the runner expects (`%` `\r` `\n`; in properties also `:` and `,`).
//!
//! [`append_step_summary`] appends Markdown to the file named by `$GITHUB_STEP_SUMMARY`.

use std::io::Write as _;
use std::path::Path;

use super::{check_name, CheckStatus, ReportError, RunResults};

/// GitHub shows at most this many error (and, separately, warning) annotations per step.
pub const MAX_PER_KIND: usize = 10;

/// Escapes a workflow command's message: `%` → `%25`, `\r` → `%0D`, `\n` → `%0A`.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value: as [`escape_data`], plus `:` → `%3A` and
/// `,` → `%2C`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The workflow commands for a run (see the module docs). Empty when everything passed.
pub fn annotations(results: &RunResults) -> Vec<String> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for e in &results.infrastructure_errors {
        errors.push(command("error", "understudy: infrastructure error", e));
    }
    for c in &results.checks {
        let title = format!("understudy: {}", check_name(&c.metric));
        match results.check_status(c) {
            CheckStatus::Fail => errors.push(command("error", &title, &c.explanation)),
            CheckStatus::Warn => warnings.push(command("warning", &title, &c.explanation)),
            CheckStatus::Pass | CheckStatus::Off => {}
        }
    }
    let hidden =
        errors.len().saturating_sub(MAX_PER_KIND) + warnings.len().saturating_sub(MAX_PER_KIND);
    errors.truncate(MAX_PER_KIND);
    warnings.truncate(MAX_PER_KIND);
    let mut out = errors;
    out.append(&mut warnings);
    if hidden > 0 {
        out.push(command(
            "notice",
            "understudy",
            &format!("{hidden} more annotations are in the step summary and results.json"),
        ));
    }
    out
}

fn command(kind: &str, title: &str, message: &str) -> String {
    format!(
        "::{kind} title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// Appends `markdown` (and a newline) to the step-summary file, creating it if needed.
pub fn append_step_summary(path: &Path, markdown: &str) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    file.write_all(markdown.as_bytes()).map_err(io)?;
    if !markdown.ends_with('\n') {
        file.write_all(b"\n").map_err(io)?;
    }
    file.write_all(b"\n").map_err(io)?;
    file.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{example, Example};

    #[test]
    fn escaping_follows_the_runner() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn failing_checks_are_errors_and_warnings_warn() {
        let lines = annotations(&example(Example::Fail));
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0]
                .starts_with("::error title=understudy%3A conversion::conversion changed -4.25 pp"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("::warning title=understudy%3A rage_click::"),
            "{}",
            lines[1]
        );
        assert!(annotations(&example(Example::Pass)).is_empty());

        let mut r = example(Example::Inconclusive);
        assert!(annotations(&r)[0].starts_with("::warning "));
        r.fail_on_inconclusive = true;
        assert!(annotations(&r)[0].starts_with("::error "));

        let lines = annotations(&example(Example::InfrastructureError));
        assert_eq!(lines.len(), 2);
        assert!(lines
            .iter()
            .all(|l| l.starts_with("::error title=understudy%3A infrastructure error::")));
    }

    #[test]
    fn messages_cannot_inject_commands() {
        let mut r = example(Example::Pass);
        r.infrastructure_errors = vec!["boom\n::error::fake 100%".into()];
        let lines = annotations(&r);
        assert_eq!(
            lines,
            ["::error title=understudy%3A infrastructure error::boom%0A::error::fake 100%25"]
        );
    }

    #[test]
    fn past_ten_per_kind_a_notice_counts_the_rest() {
        let mut r = example(Example::Pass);
        r.infrastructure_errors = (0..13).map(|i| format!("error {i}")).collect();
        let lines = annotations(&r);
        assert_eq!(lines.len(), 11);
        assert!(
            lines[10].starts_with("::notice title=understudy::3 more annotations"),
            "{}",
            lines[10]
        );
    }

    #[test]
    fn the_step_summary_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary");
        append_step_summary(&path, "one").unwrap();
        append_step_summary(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n\ntwo\n\n");
    }
}
