//! `understudy bench …` (stub, being written).
use super::BenchCommand;
pub(super) fn run(_cmd: BenchCommand) -> anyhow::Result<i32> {
    anyhow::bail!("bench is not built yet")
}
