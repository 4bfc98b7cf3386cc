//! `junit.xml`: one `<testsuite>` for the scenario, one `<testcase>` per check, written with
//! junit-report.
//!
//! | check | testcase |
//! |---|---|
//! | level off | `<skipped type="Disabled">` with the report-only result as message |
//! | pass | success; system-out: the explanation and the statistics |
//! | warn-level fail or inconclusive, or error-level inconclusive | success; system-out starts `WARN:` |
//! | error-level fail | `<failure type="GateViolation">`, statistics in the body |
//! | error-level inconclusive with `fail_on_inconclusive` | `<failure type="Inconclusive">` |
//!
//! Infrastructure errors add a testcase `infrastructure` with `<error
//! type="InfrastructureError">`. The suite's system-out carries the run's metadata (seed,
//! URLs, versions, model), since junit-report has no `<properties>`. The suite timestamp is
//! the run's start; testcase times are 0 (checks share one run; its duration is in
//! system-out).
//!
//! junit-report writes system-out and failure bodies as CDATA without splitting `]]>`, and
//! XML 1.0 forbids most control characters anywhere: [`cdata`] and [`xml_text`] take care
//! of both for every string we pass.

use junit_report::{
    Duration, OffsetDateTime, ReportBuilder, TestCase, TestCaseBuilder, TestSuiteBuilder,
};

use super::{
    check_name, fmt_allowed, fmt_confidence, fmt_delta, fmt_duration, fmt_interval, fmt_value,
    CheckStatus, ReportError, RunResults,
};
use crate::compare::{CheckResult, Direction, EstimateMethod, Metric, Verdict};

/// Renders `junit.xml`.
pub fn render_junit(results: &RunResults) -> Result<String, ReportError> {
    let classname = xml_text(&results.scenario);
    let mut cases = Vec::with_capacity(results.checks.len() + 1);
    for check in &results.checks {
        let mut case = testcase(results, check);
        case.set_classname(&classname);
        cases.push(case);
    }
    if !results.infrastructure_errors.is_empty() {
        let n = results.infrastructure_errors.len();
        let message = format!(
            "{n} infrastructure error{}: {}",
            if n == 1 { "" } else { "s" },
            results.infrastructure_errors[0]
        );
        let mut case = TestCase::error(
            "infrastructure",
            Duration::ZERO,
            "InfrastructureError",
            &xml_text(&message),
        );
        if let junit_report::TestResult::Error { cause, .. } = &mut case.result {
            *cause = Some(cdata(&results.infrastructure_errors.join("\n")));
        }
        case.set_classname(&classname);
        cases.push(case);
    }

    let timestamp = parse_rfc3339(&results.started)
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let suite = TestSuiteBuilder::new(&xml_text(&results.scenario))
        .set_timestamp(timestamp)
        .add_testcases(cases)
        .set_system_out(&cdata(&suite_out(results)))
        .build();
    let report = ReportBuilder::new().add_testsuite(suite).build();
    let mut out = Vec::new();
    report.write_xml(&mut out)?;
    let mut xml = String::from_utf8(out).expect("junit-report writes UTF-8");
    xml.push('\n');
    Ok(xml)
}

fn testcase(results: &RunResults, check: &CheckResult) -> TestCase {
    let name = xml_text(check_name(&check.metric));
    let details = details(check);
    let explanation = xml_text(&check.explanation);
    match results.check_status(check) {
        CheckStatus::Off => {
            let mut case = TestCase::skipped_with_cause(&name, "Disabled", &explanation);
            case.set_system_out(&cdata(&details));
            case
        }
        CheckStatus::Pass => TestCaseBuilder::success(&name, Duration::ZERO)
            .set_system_out(&cdata(&format!("{}\n\n{details}", check.explanation)))
            .build(),
        CheckStatus::Warn => {
            let why = match check.verdict {
                Verdict::Inconclusive => "inconclusive, not failing the run",
                _ => "level warn, not failing the run",
            };
            TestCaseBuilder::success(&name, Duration::ZERO)
                .set_system_out(&cdata(&format!(
                    "WARN: {} ({why})\n\n{details}",
                    check.explanation
                )))
                .build()
        }
        CheckStatus::Fail => {
            let type_ = match check.verdict {
                Verdict::Inconclusive => "Inconclusive",
                _ => "GateViolation",
            };
            TestCaseBuilder::failure(&name, Duration::ZERO, type_, &explanation)
                .set_trace(&cdata(&details))
                .build()
        }
    }
}

/// The statistics of one check, one fact a line.
fn details(c: &CheckResult) -> String {
    let m = &c.metric;
    let better = match c.direction {
        Direction::HigherIsBetter => "higher is better",
        Direction::LowerIsBetter => "lower is better",
    };
    let method = match c.method {
        EstimateMethod::Tango => "Tango score interval",
        EstimateMethod::Newcombe => "Newcombe paired interval",
        EstimateMethod::PairedT => "paired t interval",
        EstimateMethod::Bootstrap => "paired bootstrap interval",
    };
    let unit = match m {
        Metric::Conversion => "conversion rate",
        Metric::Signal(_) => "per session",
    };
    let mut s = format!(
        "metric: {} ({unit}, {better})\nlevel: {}\nverdict: {}\npairs: {}\n\
         baseline: {}\ncandidate: {}\n\
         delta: {} {} at {} confidence ({method})\n\
         allowed: {} (threshold {})\n\
         p-value of no change: {:.4} (Holm-adjusted {:.4})\n\
         p-value at the threshold: {:.4} (Holm-adjusted {:.4})",
        check_name(m),
        c.level,
        c.verdict,
        c.pairs,
        fmt_value(m, c.baseline),
        fmt_value(m, c.candidate),
        fmt_delta(m, c.estimate),
        fmt_interval(m, c.interval.lower, c.interval.upper),
        fmt_confidence(c.interval.confidence),
        fmt_allowed(c),
        fmt_delta(m, c.threshold),
        c.p_value,
        c.p_value_adjusted,
        c.p_threshold,
        c.p_threshold_adjusted,
    );
    if let Some(d) = c.discordant {
        s.push_str(&format!(
            "\ndiscordant pairs: {} converted on the baseline only, {} on the candidate only",
            d.baseline, d.candidate
        ));
    }
    s
}

/// The run's metadata for the suite's system-out.
fn suite_out(r: &RunResults) -> String {
    let mut s = format!(
        "understudy {} gate: {}\n{}\n\nscenario: {}\nseed: {}\nbaseline: {}\ncandidate: {}\n\
         model: {} ({})\nchromium: {}\nunderstudy: {}\npairs: {}\nconfidence: {}\n\
         fail_on_inconclusive: {}\n",
        r.tool_version,
        r.status().word(),
        r.headline(),
        r.scenario,
        r.seed,
        r.baseline_url,
        r.candidate_url,
        r.model_path,
        r.model_hash,
        r.chromium_version,
        r.tool_version,
        r.pairs,
        fmt_confidence(r.confidence),
        r.fail_on_inconclusive,
    );
    if let Some(shard) = r.shard {
        s.push_str(&format!("shard: {shard} (0-based index/total)\n"));
    }
    s.push_str(&format!(
        "started: {}\nfinished: {}\nduration: {}\nreport: report/index.html\n",
        r.started,
        r.finished,
        fmt_duration(r.duration_ms)
    ));
    for e in &r.infrastructure_errors {
        s.push_str(&format!("infrastructure error: {e}\n"));
    }
    s
}

/// Drops the characters XML 1.0 cannot carry (control characters other than tab, newline
/// and carriage return, and the non-characters U+FFFE and U+FFFF).
pub(crate) fn xml_text(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || (!c.is_control() && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

/// Text for a CDATA section: [`xml_text`], and every `]]>` split across two sections so
/// it reads back unchanged.
pub(crate) fn cdata(s: &str) -> String {
    xml_text(s).replace("]]>", "]]]]><![CDATA[>")
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2025-01-31T12:00:00Z`,
/// `…T12:00:00.5+02:00`); fractions of a second are dropped. `None` if malformed.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{example, Example};

    #[test]
    fn rfc3339_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2025-01-31T12:00:00Z"), Some(1_738_324_800));
        assert_eq!(
            parse_rfc3339("2025-01-31T14:00:00.123+02:00"),
            Some(1_738_324_800)
        );
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2025-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2025-01-31T12:00:00"), None);
        assert_eq!(parse_rfc3339("2025-01-31T12:00:00.Z"), None);
    }

    #[test]
    fn cdata_survives_its_terminator_and_control_characters() {
        assert_eq!(cdata("a]]>b"), "a]]]]><![CDATA[>b");
        assert_eq!(xml_text("bell\u{7} tab\t"), "bell tab\t");
    }

    #[test]
    fn a_bad_start_time_does_not_break_the_report() {
        let mut r = example(Example::Pass);
        r.started = "not a time".into();
        let xml = render_junit(&r).unwrap();
        assert!(xml.contains("timestamp=\"1970-01-01T00:00:00Z\""), "{xml}");
    }

    #[test]
    fn levels_map_onto_testcase_kinds() {
        let xml = render_junit(&example(Example::Fail)).unwrap();
        assert!(xml.contains("<failure type=\"GateViolation\""), "{xml}");
        assert!(xml.contains("WARN: rage_click"), "{xml}");
        assert!(xml.contains("<skipped type=\"Disabled\""), "{xml}");
        assert!(!xml.contains("<error"), "{xml}");

        let mut r = example(Example::Inconclusive);
        let xml = render_junit(&r).unwrap();
        assert!(!xml.contains("<failure"), "{xml}");
        assert!(xml.contains("WARN: conversion changed"), "{xml}");
        r.fail_on_inconclusive = true;
        let xml = render_junit(&r).unwrap();
        assert!(xml.contains("<failure type=\"Inconclusive\""), "{xml}");

        let xml = render_junit(&example(Example::InfrastructureError)).unwrap();
        assert!(
            xml.contains("<testcase name=\"infrastructure\"")
                && xml.contains("<error type=\"InfrastructureError\""),
            "{xml}"
        );
    }
}
