//! The collector's live view of the projects file: the current [`Projects`], swapped on
//! reload, and the per-key rate limiter.
//!
//! [`Access::reload`] re-reads the file and swaps it in only if its bytes changed and it
//! checks out; a broken edit keeps the previous projects (and says why). The collector
//! calls it every [`Access::poll_every`] and the CLI on SIGHUP, so rotating a key or a
//! token takes effect without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::projects::{sha256, Hash, Projects, ProjectsError, RateLimit};

/// Projects and their rate limiter, shared by every request.
#[derive(Debug)]
pub struct Access {
    path: PathBuf,
    poll_every: Duration,
    state: RwLock<Loaded>,
    buckets: Mutex<HashMap<Hash, Bucket>>,
}

#[derive(Debug)]
struct Loaded {
    projects: Arc<Projects>,
    /// SHA-256 of the file bytes last loaded.
    fingerprint: Hash,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The file changed and the new projects are in force.
    Changed,
    /// The file has the same bytes as before.
    Unchanged,
}

impl Access {
    /// Loads the projects file at `path`; it is polled for changes every `poll_every`.
    pub fn load(path: &Path, poll_every: Duration) -> Result<Access, ProjectsError> {
        let (projects, fingerprint) = read(path)?;
        Ok(Access {
            path: path.to_path_buf(),
            poll_every,
            state: RwLock::new(Loaded {
                projects: Arc::new(projects),
                fingerprint,
            }),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The projects file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How often the collector looks at the file for changes.
    pub fn poll_every(&self) -> Duration {
        self.poll_every
    }

    /// The projects in force now.
    pub fn projects(&self) -> Arc<Projects> {
        Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .projects,
        )
    }

    /// Re-reads the file. On any error the projects in force stay as they are.
    pub fn reload(&self) -> Result<Reload, ProjectsError> {
        let (projects, fingerprint) = read(&self.path)?;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.fingerprint == fingerprint {
            return Ok(Reload::Unchanged);
        }
        *state = Loaded {
            projects: Arc::new(projects),
            fingerprint,
        };
        drop(state);
        // Buckets of keys that are gone would never be used again.
        let live = self.projects();
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| live.iter().any(|p| p.has_key_hash(key)));
        Ok(Reload::Changed)
    }

    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub fn take(&self, key: &Hash, rate: RateLimit, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .entry(*key)
            .or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now)
    }
}

fn read(path: &Path) -> Result<(Projects, Hash), ProjectsError> {
    let bytes = std::fs::read(path).map_err(|source| ProjectsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ProjectsError::Parse {
        path: path.to_path_buf(),
        reason: "the file is not UTF-8 text".into(),
    })?;
    let projects = Projects::parse(&text, path)?;
    Ok((projects, sha256(text.as_bytes())))
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: RateLimit, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate.burst),
            at: now,
        }
    }

    fn take(&mut self, rate: RateLimit, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::projects::{KeyCheck, ProjectsFile};

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let rate = RateLimit {
            per_second: 2.0,
            burst: 3,
        };
        let t0 = Instant::now();
        let mut b = Bucket::full(rate, t0);
        for _ in 0..3 {
            b.take(rate, t0).unwrap();
        }
        let wait = b.take(rate, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        b.take(rate, t1).unwrap();
        assert!(b.take(rate, t1).is_err());
        // A long pause refills to the burst, no further.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            b.take(rate, t2).unwrap();
        }
        assert!(b.take(rate, t2).is_err());
    }

    #[test]
    fn reload_swaps_only_good_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projects.toml");
        let mut file = ProjectsFile::default();
        let first = file.add_project("shop", &["*".to_string()], None).unwrap();
        file.save(&path).unwrap();
        let access = Access::load(&path, Duration::from_secs(1)).unwrap();
        let key = first.key.unwrap();
        assert!(matches!(
            access.projects().check_key(&key),
            KeyCheck::Active(..)
        ));
        assert_eq!(access.reload().unwrap(), Reload::Unchanged);

        let new_key = file.rotate_key("shop", false).unwrap();
        file.save(&path).unwrap();
        assert_eq!(access.reload().unwrap(), Reload::Changed);
        assert!(matches!(
            access.projects().check_key(&key),
            KeyCheck::Revoked(_)
        ));
        assert!(matches!(
            access.projects().check_key(&new_key),
            KeyCheck::Active(..)
        ));

        // A broken edit is refused and the projects in force stay.
        std::fs::write(&path, "[[project]\n").unwrap();
        let err = access.reload().unwrap_err();
        assert!(err.to_string().contains("not valid TOML"), "{err}");
        assert!(matches!(
            access.projects().check_key(&new_key),
            KeyCheck::Active(..)
        ));
    }
}
