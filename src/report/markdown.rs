//! `summary.md`: the compact pull-request summary (and `$GITHUB_STEP_SUMMARY`).
//!
//! A hidden marker line, a verdict line with plain status words (no emoji), a table of the
//! checks (Δ with its interval, what is allowed, the result), conversion per build, any
//! infrastructure errors, the worst sessions (folded) and the run's provenance: seed,
//! model, versions, URLs.
//!
//! Every string that did not come from understudy itself goes through [`escape`], which
//! neutralises table pipes, code spans, HTML, @mentions and emphasis, and is cut to a
//! sane length. The whole summary stays below [`MAX_SUMMARY_BYTES`], under GitHub's 1 MiB
//! step-summary cap.

use std::fmt::Write as _;

use super::{
    check_name, fmt_allowed, fmt_confidence, fmt_delta, fmt_duration, fmt_interval, fmt_percent,
    fmt_signals, fmt_status, fmt_value, RunResults,
};
use crate::compare::Proportion;

/// The hidden first line, so a CI step can find and update its own PR comment.
pub const MARKER: &str = "<!-- understudy:summary -->";

/// Summaries are cut to this many bytes (GitHub refuses step summaries over 1 MiB).
pub const MAX_SUMMARY_BYTES: usize = 1000 * 1024;

/// Untrusted strings longer than this many characters are cut, with an ellipsis.
const MAX_FIELD_CHARS: usize = 300;
/// At most this many infrastructure errors and sessions are listed.
const MAX_LIST: usize = 20;

/// Escapes an untrusted string for Markdown text and table cells: `\` `|` `` ` `` `*` `_`
/// `[` `]` `~` `#` get a backslash, `<` `>` `&` `@` become entities (no HTML, no
/// @mentions), line breaks become spaces, and anything past 300 characters is cut.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        if i == MAX_FIELD_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '~' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' => out.push_str("&#64;"),
            '\r' | '\n' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders `summary.md`.
pub fn render_summary(r: &RunResults) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{MARKER}");
    let _ = writeln!(
        md,
        "### understudy: {} · {}",
        r.status().word(),
        escape(&r.scenario)
    );
    let _ = writeln!(md);
    let _ = writeln!(md, "**{}**: {}", r.status().word(), r.headline());
    if let Some(seq) = &r.sequential {
        let _ = writeln!(md, "Sequential rule: {}.", sequential_words(seq));
    }
    let _ = writeln!(md);

    if r.checks.is_empty() {
        let _ = writeln!(md, "No check was evaluated.");
    } else {
        let _ = writeln!(
            md,
            "| check | level | baseline | candidate | Δ [interval] | CI | allowed | result |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---|---:|---|---|");
        for c in &r.checks {
            let m = &c.metric;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} {} | {} | {} | {} |",
                escape(check_name(m)),
                c.level,
                fmt_value(m, c.baseline),
                fmt_value(m, c.candidate),
                fmt_delta(m, c.estimate),
                fmt_interval(m, c.interval.lower, c.interval.upper),
                fmt_confidence(c.interval.confidence),
                fmt_allowed(c),
                fmt_status(c, r.check_status(c)),
            );
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "Δ is candidate − baseline over paired users; conversion in percentage points, signals per session. Intervals are Holm-adjusted across the gated checks."
        );
    }
    let _ = writeln!(md);

    let conversion = |p: &Proportion| {
        format!(
            "{} [{}, {}] ({}/{})",
            fmt_percent(p.estimate),
            fmt_percent(p.interval.lower),
            fmt_percent(p.interval.upper),
            p.successes,
            p.trials
        )
    };
    let build = |s: &Option<crate::compare::BuildSummary>| {
        s.as_ref().map_or("not enough sessions".to_string(), |s| {
            conversion(&s.conversion)
        })
    };
    let _ = writeln!(
        md,
        "**Conversion** ({} Wilson): baseline {} · candidate {}",
        fmt_confidence(
            r.baseline
                .as_ref()
                .or(r.candidate.as_ref())
                .map_or(r.confidence, |s| s.conversion.interval.confidence)
        ),
        build(&r.baseline),
        build(&r.candidate),
    );
    let _ = writeln!(md);

    if !r.infrastructure_errors.is_empty() {
        let _ = writeln!(
            md,
            "**Infrastructure errors** (the verdict cannot be trusted):"
        );
        let _ = writeln!(md);
        for e in r.infrastructure_errors.iter().take(MAX_LIST) {
            let _ = writeln!(md, "- {}", escape(e));
        }
        more(&mut md, r.infrastructure_errors.len());
        let _ = writeln!(md);
    }

    if !r.sessions.is_empty() {
        let _ = writeln!(
            md,
            "<details><summary>Worst sessions ({})</summary>",
            r.sessions.len()
        );
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "| user | build | session | converted | signals | replay |"
        );
        let _ = writeln!(md, "|---:|---|---|---|---|---|");
        for s in r.sessions.iter().take(MAX_LIST) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                s.user,
                s.build,
                escape(&s.session_id),
                if s.converted { "yes" } else { "no" },
                escape(&fmt_signals(&s.signals)),
                s.replay
                    .as_deref()
                    .map_or("-".to_string(), |p| format!("report/{}", escape(p))),
            );
        }
        more(&mut md, r.sessions.len());
        let _ = writeln!(md);
        let _ = writeln!(md, "</details>");
        let _ = writeln!(md);
    }

    let shard = r.shard.map(|s| format!(" · shard {s}")).unwrap_or_default();
    let _ = writeln!(
        md,
        "Seed {} · {} pairs{shard} · model {} ({}) · understudy {} · Chromium {}",
        r.seed,
        r.pairs,
        escape(&r.model_path),
        escape(&r.model_hash),
        escape(&r.tool_version),
        escape(&r.chromium_version),
    );
    let _ = writeln!(
        md,
        "Baseline {} · candidate {} · started {} · took {}",
        escape(&r.baseline_url),
        escape(&r.candidate_url),
        escape(&r.started),
        fmt_duration(r.duration_ms),
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "The full report (charts, funnels, replays) is `report/index.html` in the run's output folder."
    );
    truncate(md)
}

fn more(md: &mut String, total: usize) {
    if total > MAX_LIST {
        let _ = writeln!(md, "\n…and {} more in results.json.", total - MAX_LIST);
    }
}

/// "stopped after 400 pairs: an error-level check failed".
pub(crate) fn sequential_words(seq: &crate::compare::SequentialStatus) -> String {
    use crate::compare::{SequentialDecision, StopReason};
    match seq.decision {
        SequentialDecision::Continue { next_look } => {
            format!(
                "still running at {} pairs, next look at {next_look}",
                seq.pairs
            )
        }
        SequentialDecision::Stop(reason) => {
            let why = match reason {
                StopReason::Decided => "every gated check was decided",
                StopReason::ErrorCheckFailed => "an error-level check failed",
                StopReason::MaxPairs => "the maximum number of pairs was reached",
            };
            format!("stopped after {} pairs: {why}", seq.pairs)
        }
    }
}

/// Cuts a summary over [`MAX_SUMMARY_BYTES`] at a line break, with a note.
fn truncate(mut md: String) -> String {
    if md.len() <= MAX_SUMMARY_BYTES {
        return md;
    }
    let note = "\n\n(summary truncated; see summary.md and results.json in the run's output)\n";
    let mut cut = MAX_SUMMARY_BYTES - note.len();
    while !md.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(nl) = md[..cut].rfind('\n') {
        cut = nl;
    }
    md.truncate(cut);
    md.push_str(note);
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{example, Example};

    #[test]
    fn escaping_neutralises_markdown_and_html() {
        assert_eq!(escape("a | b"), "a \\| b");
        assert_eq!(escape("`code`"), "\\`code\\`");
        assert_eq!(escape("<script>"), "&lt;script&gt;");
        assert_eq!(escape("@everyone"), "&#64;everyone");
        assert_eq!(escape("two\nlines"), "two lines");
        assert_eq!(
            escape("**bold** [link](x)"),
            "\\*\\*bold\\*\\* \\[link\\](x)"
        );
        assert_eq!(escape("null\u{0}byte"), "nullbyte");
        let long = "x".repeat(1000);
        assert_eq!(escape(&long).chars().count(), MAX_FIELD_CHARS + 1);
    }

    #[test]
    fn the_summary_has_the_verdict_and_a_row_per_check() {
        let r = example(Example::Fail);
        let md = render_summary(&r);
        assert!(md.starts_with(MARKER));
        assert!(md.contains("### understudy: FAILED · checkout"));
        let rows = md
            .lines()
            .filter(|l| {
                l.starts_with("| ") && !l.starts_with("| check") && !l.starts_with("| user")
            })
            .count();
        assert_eq!(rows, r.checks.len() + r.sessions.len());
        assert!(md.contains("| conversion | error | 30.0% | 25.8% | -4.25 pp [-6.44 pp, -2.31 pp] | 98.3% | drop ≤ 2.00 pp | FAIL |"), "{md}");
        assert!(md.contains("WARN (fail)"));
        assert!(md.contains("Seed 1"));
    }

    #[test]
    fn huge_summaries_are_cut_under_the_cap() {
        let mut r = example(Example::Fail);
        r.checks = vec![r.checks[0].clone(); 20_000];
        let md = render_summary(&r);
        assert!(md.len() <= MAX_SUMMARY_BYTES, "{}", md.len());
        assert!(md.ends_with("results.json in the run's output)\n"));
    }
}
