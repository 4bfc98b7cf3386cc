//! `understudy bench …`: benchmarks that print their figures beside their anchors.

use super::BenchCommand;
use crate::exit_code;

pub(super) fn run(cmd: BenchCommand) -> anyhow::Result<i32> {
    match cmd {
        BenchCommand::Collect {
            sessions,
            connections,
        } => crate::bench::collect::run(sessions, connections)?,
        BenchCommand::Fit { sessions } => crate::bench::fit::run(sessions)?,
        BenchCommand::Click => crate::bench::click::run()?,
    }
    Ok(exit_code::SUCCESS)
}
