//! `results.json`: [`RunResults`] as pretty JSON, and reading it back.
//!
//! The file starts with `"format": "understudy-results"` and `"version": 1`. Readers refuse
//! another format or a version they do not know, before looking at anything else, so a
//! future version fails with a clear message rather than a missing-field error.

use super::{ReportError, RunResults, RESULTS_FORMAT, RESULTS_VERSION};

/// `results` as pretty-printed JSON with a trailing newline.
pub fn to_json(results: &RunResults) -> Result<String, ReportError> {
    let mut s = serde_json::to_string_pretty(results)?;
    s.push('\n');
    Ok(s)
}

/// Reads `results.json` text, refusing other formats and versions.
pub fn from_json(text: &str) -> Result<RunResults, ReportError> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let format = value.get("format").and_then(|f| f.as_str());
    if format != Some(RESULTS_FORMAT) {
        return Err(ReportError::Version(format!(
            "not an understudy results file: format is {}, expected {RESULTS_FORMAT:?}",
            format.map_or("missing".to_string(), |f| format!("{f:?}"))
        )));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(RESULTS_VERSION) => {}
        Some(v) => {
            return Err(ReportError::Version(format!(
                "results version {v} is not supported by this understudy (it reads version {RESULTS_VERSION})"
            )))
        }
        None => {
            return Err(ReportError::Version(
                "results file has no numeric `version`".into(),
            ))
        }
    }
    Ok(serde_json::from_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{example, Example};

    #[test]
    fn round_trips_with_the_header_first() {
        let r = example(Example::Fail);
        let text = to_json(&r).unwrap();
        assert!(
            text.starts_with("{\n  \"format\": \"understudy-results\",\n  \"version\": 1,\n"),
            "{}",
            &text[..80]
        );
        assert_eq!(from_json(&text).unwrap(), r);
    }

    #[test]
    fn other_formats_and_versions_are_refused() {
        let text = to_json(&example(Example::Pass)).unwrap();
        let v2 = text.replacen("\"version\": 1", "\"version\": 2", 1);
        let err = from_json(&v2).unwrap_err().to_string();
        assert!(
            err.contains("version 2") && err.contains("reads version 1"),
            "{err}"
        );
        let other = text.replacen("understudy-results", "lighthouse", 1);
        let err = from_json(&other).unwrap_err().to_string();
        assert!(err.contains("\"lighthouse\""), "{err}");
        assert!(from_json("{}").unwrap_err().to_string().contains("missing"));
        assert!(matches!(from_json("[1, 2"), Err(ReportError::Json(_))));
        let broken = text.replacen("\"seed\": 1", "\"seed\": \"one\"", 1);
        assert!(matches!(from_json(&broken), Err(ReportError::Json(_))));
    }
}
