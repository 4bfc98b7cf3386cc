//! Run blobs: what a shard writes, self-describing enough that `understudy merge` can check
//! the shards belong together and combine them into exactly the run one machine would have
//! made.

use serde::{Deserialize, Serialize};

use super::runner::PairOutcome;

/// Format name of run blobs.
pub const BLOB_FORMAT: &str = "understudy-run-blob";
/// Version of the blob format this build reads and writes.
pub const BLOB_VERSION: u32 = 1;
/// Largest blob `merge` reads.
pub const MAX_BLOB_BYTES: u64 = 256 << 20;

/// One shard's paired outcomes and everything needed to check it fits with the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBlob {
    pub format: String,
    pub version: u32,
    pub tool_version: String,
    pub chromium_version: String,
    pub scenario: String,
    /// The scenario file as it was read, so `merge` applies the same checks and plan.
    pub scenario_toml: String,
    /// Where the scenario file was (anchors relative paths in it).
    pub scenario_path: String,
    pub seed: u64,
    pub model_path: String,
    pub model_hash: String,
    pub baseline_url: String,
    pub candidate_url: String,
    /// Shard index, from 0.
    pub shard: u32,
    /// Number of shards.
    pub shards: u32,
    /// The scenario's `max_pairs`: users `0..max_pairs` are split over the shards.
    pub max_pairs: usize,
    /// This shard's users: every `u` in `0..max_pairs` with `u % shards == shard`.
    pub pairs: Vec<PairOutcome>,
}

/// Why blobs cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("not a run blob: {0}")]
    Parse(String),
    #[error(
        "blob format `{found}` version {version} is not `{BLOB_FORMAT}` version {BLOB_VERSION}"
    )]
    Format { found: String, version: u32 },
    #[error("blobs disagree on {field}: `{a}` vs `{b}`")]
    Mismatch {
        field: &'static str,
        a: String,
        b: String,
    },
    #[error("shard {shard}/{shards} appears twice")]
    Duplicate { shard: u32, shards: u32 },
    #[error("shard {missing} of {shards} is missing")]
    Missing { missing: u32, shards: u32 },
    #[error("shard {shard}/{shards} holds user {user}, which is not its own")]
    WrongUser { shard: u32, shards: u32, user: u64 },
    #[error("no blobs given")]
    Empty,
}

/// The users shard `index` of `total` runs, in order.
pub fn shard_users(max_pairs: usize, index: u32, total: u32) -> Vec<u64> {
    (0..max_pairs as u64)
        .filter(|u| u % total as u64 == index as u64)
        .collect()
}

impl RunBlob {
    /// Parses and checks a blob's format.
    pub fn from_json(text: &str) -> Result<RunBlob, BlobError> {
        let blob: RunBlob =
            serde_json::from_str(text).map_err(|e| BlobError::Parse(e.to_string()))?;
        if blob.format != BLOB_FORMAT || blob.version != BLOB_VERSION {
            return Err(BlobError::Format {
                found: blob.format,
                version: blob.version,
            });
        }
        Ok(blob)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("blob serialises")
    }
}

/// Checks that blobs are the shards of one run and returns all pairs in user order, with
/// the first blob as the description of the run.
pub fn merge(mut blobs: Vec<RunBlob>) -> Result<(RunBlob, Vec<PairOutcome>), BlobError> {
    let first = blobs.first().cloned().ok_or(BlobError::Empty)?;
    let mut seen = vec![false; first.shards as usize];
    let mut pairs = Vec::new();
    for b in blobs.drain(..) {
        let same = [
            ("scenario", &first.scenario, &b.scenario),
            ("scenario file", &first.scenario_toml, &b.scenario_toml),
            ("model hash", &first.model_hash, &b.model_hash),
            ("baseline URL", &first.baseline_url, &b.baseline_url),
            ("candidate URL", &first.candidate_url, &b.candidate_url),
            ("tool version", &first.tool_version, &b.tool_version),
        ];
        for (field, a, c) in same {
            if a != c {
                return Err(BlobError::Mismatch {
                    field,
                    a: a.clone(),
                    b: c.clone(),
                });
            }
        }
        for (field, a, c) in [
            ("seed", first.seed, b.seed),
            ("shard count", first.shards as u64, b.shards as u64),
            ("max pairs", first.max_pairs as u64, b.max_pairs as u64),
        ] {
            if a != c {
                return Err(BlobError::Mismatch {
                    field,
                    a: a.to_string(),
                    b: c.to_string(),
                });
            }
        }
        let slot = seen.get_mut(b.shard as usize).ok_or(BlobError::WrongUser {
            shard: b.shard,
            shards: b.shards,
            user: 0,
        })?;
        if *slot {
            return Err(BlobError::Duplicate {
                shard: b.shard,
                shards: b.shards,
            });
        }
        *slot = true;
        for p in &b.pairs {
            if p.user % b.shards as u64 != b.shard as u64 {
                return Err(BlobError::WrongUser {
                    shard: b.shard,
                    shards: b.shards,
                    user: p.user,
                });
            }
        }
        pairs.extend(b.pairs);
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(BlobError::Missing {
            missing: missing as u32,
            shards: first.shards,
        });
    }
    pairs.sort_by_key(|p| p.user);
    Ok((first, pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Shards partition the users: every user in exactly one shard.
        #[test]
        fn shards_are_complete_and_disjoint(max in 0usize..500, total in 1u32..12) {
            let mut all: Vec<u64> = (0..total).flat_map(|i| shard_users(max, i, total)).collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..max as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn rejects_foreign_and_garbage_blobs() {
        assert!(matches!(RunBlob::from_json("{"), Err(BlobError::Parse(_))));
        assert!(matches!(RunBlob::from_json("[]"), Err(BlobError::Parse(_))));
        assert!(matches!(merge(vec![]), Err(BlobError::Empty)));
    }
}
