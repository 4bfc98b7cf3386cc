//! `understudy bench …`: benchmarks that print their figures beside their anchors.

use super::BenchCommand;
use crate::exit_code;

pub(super) fn run(cmd: BenchCommand) -> anyhow::Result<i32> {
    match cmd {
        BenchCommand::Collect {
            db,
            connections,
            seconds,
            sessions,
            profile,
        } => crate::bench::collect::run(&crate::bench::collect::Options {
            db,
            connections,
            seconds,
            sessions,
            profile,
        })?,
        BenchCommand::Fit { sessions } => crate::bench::fit::run(sessions)?,
        BenchCommand::Click => crate::bench::click::run()?,
        BenchCommand::Capture {
            soak: Some(secs), ..
        } => crate::bench::capture::soak(secs)?,
        BenchCommand::Capture {
            rrweb,
            capture_min,
            runs,
            only,
            quiet_ms,
            profile,
            dump,
            rrweb_options,
            soak: None,
        } => crate::bench::capture::run(crate::bench::capture::Options {
            rrweb,
            capture_min,
            runs,
            only,
            quiet_ms,
            profile,
            dump,
            rrweb_options,
        })?,
    }
    Ok(exit_code::SUCCESS)
}
