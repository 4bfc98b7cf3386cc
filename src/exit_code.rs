//! Named process exit codes, and how an error maps onto them.
//!
//! `0` pass, `1` gate failed (a verdict, not an error), `2` usage, configuration or bad
//! input, `3` infrastructure (the app, the browser, the disk or the network failed us).

/// The command did what was asked.
pub const SUCCESS: i32 = 0;
/// The gate ran and found a regression.
pub const GATE_FAILED: i32 = 1;
/// The command line, a configuration file or an input file is wrong.
pub const USAGE: i32 = 2;
/// Something outside the tool failed: browser, app under test, disk, network.
pub const INFRA: i32 = 3;

/// Marks an error as the user's input being wrong (exit code [`USAGE`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Wraps any error as bad input, keeping its message chain.
pub fn bad_input(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(BadInput(err.to_string()))
}

/// The exit code for an error that reached the edge.
pub fn for_error(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<BadInput>()) {
        USAGE
    } else {
        INFRA
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_anywhere_in_the_chain_is_usage() {
        let e: anyhow::Error = Err::<(), _>(bad_input("no such field"))
            .context("reading model")
            .unwrap_err();
        assert_eq!(for_error(&e), USAGE);
        assert_eq!(for_error(&anyhow::anyhow!("disk on fire")), INFRA);
    }
}
