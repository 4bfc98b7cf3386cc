//! `capture.js`, the in-page recorder, embedded in the binary.
//!
//! The collector serves these exact bytes at `GET /capture.js`; the simulator injects the
//! same bytes into every simulated page. The script is plain JavaScript with no build step.
//! Its wire format is [`crate::event`]; its privacy rules are documented at its top.

/// The recorder script, byte for byte what pages load.
pub const SCRIPT: &str = include_str!("capture.js");

/// Version string of the script, as it reports in `meta.script`.
pub fn script_version() -> &'static str {
    SCRIPT
        .lines()
        .find_map(|l| l.trim().strip_prefix("var VERSION = \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_schema_version_matches_rust() {
        let needle = format!("var SCHEMA = {};", crate::event::SCHEMA_VERSION);
        assert!(
            SCRIPT.contains(&needle),
            "capture.js must declare `{needle}`"
        );
        assert_ne!(script_version(), "unknown");
    }
}
