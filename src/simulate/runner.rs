//! The runner: many simulated users at once, paired across two builds, on a small pool of
//! isolated browser contexts.
//!
//! * User *i* runs on the baseline and on the candidate with the same keyed draws (common
//!   random numbers), at the same time, in two fresh browser contexts.
//! * A semaphore bounds the tabs open at once. Every CDP call has a timeout (the driver's).
//! * A browser that fails (crash, hung CDP) is restarted and the user is run again, up to
//!   [`RunnerConfig::max_restarts`] times; the run still finishes.
//! * Users are run in blocks, so a caller can stop between blocks (sequential testing).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{RwLock, Semaphore};

use super::driver::{Chromium, DriverConfig, DriverError, TabOptions};
use super::user::{Exit, SimSession, UserConfig, Walk};
use crate::compare::SessionOutcome;
use crate::cook::{CookedSession, Goal};
use crate::model::Model;

/// How to run users.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Tabs open at once (each pair uses two).
    pub concurrency: usize,
    pub driver: DriverConfig,
    pub user: UserConfig,
    pub seed: u64,
    /// Browser restarts allowed per user before the run fails.
    pub max_restarts: usize,
    /// Route patterns of the funnel, in order (for drop-off per step).
    pub funnel: Vec<String>,
}

/// What one simulated session amounts to, small enough to ship between shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimOutcome {
    pub user: u64,
    pub sid: String,
    pub exit: Exit,
    pub steps: usize,
    pub browser_actions: usize,
    pub converted: bool,
    pub time_to_convert_ms: Option<f64>,
    pub steps_reached: usize,
    pub signals: BTreeMap<String, f64>,
    /// Length of the recorded session, ms.
    pub duration_ms: i64,
    /// Wall-clock time the simulation took, ms.
    pub wall_ms: f64,
}

impl SimOutcome {
    fn from_session(s: &SimSession, funnel: &[String], wall_ms: f64) -> SimOutcome {
        let c = &s.cooked;
        let mut signals = BTreeMap::new();
        for sig in &c.signals {
            *signals.entry(sig.kind.as_str().to_string()).or_insert(0.0) += 1.0;
        }
        SimOutcome {
            user: s.user,
            sid: c.sid.clone(),
            exit: s.exit,
            steps: s.steps,
            browser_actions: s.browser_actions,
            converted: c.converted,
            time_to_convert_ms: c
                .outcomes
                .first()
                .filter(|_| c.converted)
                .map(|o| o.t as f64),
            steps_reached: steps_reached(c, funnel),
            signals,
            duration_ms: c.duration_ms,
            wall_ms,
        }
    }

    /// The statistics' view of this session.
    pub fn session_outcome(&self) -> SessionOutcome {
        SessionOutcome {
            converted: self.converted,
            time_to_convert_ms: self.time_to_convert_ms,
            steps_reached: self.steps_reached,
            signals: self.signals.clone(),
        }
    }
}

/// How many funnel steps (route patterns, `*` glob) a session reached, in order.
pub fn steps_reached(c: &CookedSession, funnel: &[String]) -> usize {
    let mut step = 0;
    for a in &c.actions {
        if step < funnel.len() && glob(&funnel[step], &a.route) {
            step += 1;
        }
    }
    step
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.len() >= head.len() + tail.len()
                && s.starts_with(head)
                && glob_rest(tail, &s[head.len()..])
        }
    }
}

fn glob_rest(pattern: &str, s: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    (0..=s.len()).any(|i| s.is_char_boundary(i) && glob(pattern, &s[i..]))
}

/// A user's sessions on both builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairOutcome {
    pub user: u64,
    pub baseline: SimOutcome,
    pub candidate: SimOutcome,
}

/// A finished session with its recording, for callers that keep replays.
#[derive(Clone)]
pub struct Recorded {
    pub outcome: SimOutcome,
    pub session: SimSession,
}

/// The builds whose sessions a runner keeps, and the sessions kept, by (build URL, user).
type Memo = (Vec<String>, HashMap<(String, u64), Recorded>);

/// A pool of tabs on one Chromium, restarted when it fails.
pub struct Runner {
    browser: RwLock<(u64, Arc<Chromium>)>,
    gate: Arc<Semaphore>,
    config: RunnerConfig,
    model: Arc<Model>,
    goals: Arc<Vec<Goal>>,
    version: String,
    /// Builds whose sessions are kept and handed out again for the same user (see
    /// [`Runner::remember`]), and the sessions kept so far.
    memo: std::sync::Mutex<Memo>,
}

impl Runner {
    /// Launches (or connects to) Chromium.
    pub async fn start(
        config: RunnerConfig,
        model: Arc<Model>,
        goals: Vec<Goal>,
    ) -> Result<Runner, DriverError> {
        let chromium = Chromium::launch(config.driver.clone()).await?;
        let version = chromium.version().await?;
        Ok(Runner {
            browser: RwLock::new((0, Arc::new(chromium))),
            gate: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            model,
            goals: Arc::new(goals),
            version,
            memo: std::sync::Mutex::new((Vec::new(), HashMap::new())),
        })
    }

    /// The browser's product string.
    pub fn browser_version(&self) -> &str {
        &self.version
    }

    /// Fails with [`DriverError::Unreachable`] unless `url` loads.
    pub async fn check_reachable(&self, url: &str) -> Result<(), DriverError> {
        let (_, chromium) = self.browser.read().await.clone();
        let tab = chromium.open(&TabOptions::default()).await?;
        let r = tab.goto(url).await;
        chromium.dispose(tab).await;
        r
    }

    async fn restart(&self, seen_generation: u64) -> Result<(), DriverError> {
        let mut guard = self.browser.write().await;
        if guard.0 != seen_generation {
            return Ok(()); // someone else already restarted it
        }
        tracing::warn!("restarting chromium after a failure");
        let fresh = Chromium::launch(self.config.driver.clone()).await?;
        *guard = (seen_generation + 1, Arc::new(fresh));
        Ok(())
    }

    /// Keeps every session run on `url` and answers a later run of the same user on it with
    /// the kept session instead of walking again. With one seed and one model a user's walk
    /// on a build is fixed by its keyed draws, so gating several candidates against one
    /// baseline needs the baseline's users only once (`understudy demo` does this).
    pub fn remember(&self, url: &str) {
        let mut memo = self.memo.lock().unwrap();
        if !memo.0.iter().any(|u| u == url) {
            memo.0.push(url.to_string());
        }
    }

    /// Runs one user on one build, restarting the browser on infrastructure failures.
    pub async fn run_user(&self, user: u64, url: &str) -> Result<Recorded, DriverError> {
        let remembered = {
            let memo = self.memo.lock().unwrap();
            if !memo.0.iter().any(|u| u == url) {
                None
            } else if let Some(r) = memo.1.get(&(url.to_string(), user)) {
                return Ok(r.clone());
            } else {
                Some(url.to_string())
            }
        };
        let r = self.walk_user(user, url).await?;
        if let Some(url) = remembered {
            self.memo.lock().unwrap().1.insert((url, user), r.clone());
        }
        Ok(r)
    }

    async fn walk_user(&self, user: u64, url: &str) -> Result<Recorded, DriverError> {
        let mut attempts = 0;
        loop {
            let (generation, chromium) = self.browser.read().await.clone();
            let walk = Walk {
                model: &self.model,
                goals: &self.goals,
                config: &self.config.user,
                seed: self.config.seed,
                user,
            };
            let permit = self
                .gate
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let started = Instant::now();
            let result = walk.run(&chromium, url).await;
            drop(permit);
            match result {
                Ok(session) => {
                    let wall = started.elapsed().as_secs_f64() * 1000.0;
                    return Ok(Recorded {
                        outcome: SimOutcome::from_session(&session, &self.config.funnel, wall),
                        session,
                    });
                }
                Err(e @ DriverError::Unreachable { .. }) => return Err(e),
                Err(e) if attempts < self.config.max_restarts => {
                    tracing::warn!(user, error = %e, "simulated user failed; re-running");
                    attempts += 1;
                    self.restart(generation).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs users `users` as pairs on both builds, all at once within the concurrency bound.
    /// Results come back in user order. `on_done` is called as each pair finishes.
    pub async fn run_pairs(
        self: &Arc<Self>,
        users: &[u64],
        baseline: &str,
        candidate: &str,
        on_done: &(dyn Fn(&PairOutcome, &Recorded, &Recorded) + Sync),
    ) -> Result<Vec<PairOutcome>, DriverError> {
        let mut tasks = tokio::task::JoinSet::new();
        for &user in users {
            let me = self.clone();
            let (b, c) = (baseline.to_string(), candidate.to_string());
            tasks.spawn(async move {
                let (rb, rc) = tokio::join!(me.run_user(user, &b), me.run_user(user, &c));
                (user, rb, rc)
            });
        }
        let mut out = Vec::with_capacity(users.len());
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            let (user, rb, rc) = match joined {
                Ok(v) => v,
                Err(e) => {
                    failure.get_or_insert(DriverError::Launch(format!("user task panicked: {e}")));
                    continue;
                }
            };
            match (rb, rc) {
                (Ok(b), Ok(c)) => {
                    let pair = PairOutcome {
                        user,
                        baseline: b.outcome.clone(),
                        candidate: c.outcome.clone(),
                    };
                    on_done(&pair, &b, &c);
                    out.push(pair);
                }
                (Err(e), _) | (_, Err(e)) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        out.sort_by_key(|p| p.user);
        Ok(out)
    }

    /// Runs users on one build (no pairing): `understudy simulate`.
    pub async fn run_single(
        self: &Arc<Self>,
        users: &[u64],
        url: &str,
        on_done: &(dyn Fn(&Recorded) + Sync),
    ) -> Result<Vec<SimOutcome>, DriverError> {
        let mut tasks = tokio::task::JoinSet::new();
        for &user in users {
            let me = self.clone();
            let url = url.to_string();
            tasks.spawn(async move { me.run_user(user, &url).await });
        }
        let mut out = Vec::with_capacity(users.len());
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(r)) => {
                    on_done(&r);
                    out.push(r.outcome);
                }
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    failure.get_or_insert(DriverError::Launch(format!("user task panicked: {e}")));
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        out.sort_by_key(|o| o.user);
        Ok(out)
    }

    /// Closes the browser.
    pub async fn shutdown(self) {
        let (_, chromium) = self.browser.into_inner();
        if let Ok(c) = Arc::try_unwrap(chromium) {
            c.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funnel_globs_match_in_order() {
        assert!(glob("/product/*", "/product/:id"));
        assert!(glob("/cart", "/cart"));
        assert!(!glob("/cart", "/carts"));
        assert!(glob("*", "/anything"));
        assert!(glob("/a*/c*", "/ab/cd"));
        assert!(!glob("/a*/c", "/ab/cd"));
    }
}
