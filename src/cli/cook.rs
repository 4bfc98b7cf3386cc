//! `understudy cook` (stub, being written).
use super::CookArgs;
pub(super) fn run(_args: CookArgs) -> anyhow::Result<i32> {
    anyhow::bail!("cook is not built yet")
}
