//! `understudy sessions …` (stub, being written).
use super::SessionsCommand;
pub(super) fn run(_cmd: SessionsCommand) -> anyhow::Result<i32> {
    anyhow::bail!("sessions is not built yet")
}
