//! `understudy fit` and `understudy model show` (stub, being written).
use super::FitArgs;
pub(super) fn run(_args: FitArgs) -> anyhow::Result<i32> {
    anyhow::bail!("fit is not built yet")
}
pub(super) fn show(_file: &std::path::Path, _top: usize) -> anyhow::Result<i32> {
    anyhow::bail!("model show is not built yet")
}
