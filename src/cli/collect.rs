//! `understudy collect` (stub, being written).
use super::CollectArgs;
pub(super) fn run(_args: CollectArgs) -> anyhow::Result<i32> {
    anyhow::bail!("collect is not built yet")
}
