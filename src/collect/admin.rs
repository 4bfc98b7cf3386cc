//! The collector's second store connection and what runs on it: session claims, the
//! admin endpoints (forget, list, export), retention, and the projects-file watcher.
//!
//! | method | path | what |
//! |---|---|---|
//! | `DELETE` | `/v1/users/{user}` | forget a user: every session of the caller's project that identified them |
//! | `GET` | `/v1/sessions` | the caller's project's sessions (summaries, JSON) |
//! | `GET` | `/v1/sessions/{sid}` | one session's batches as NDJSON, like `sessions export` |
//!
//! All need `Authorization: Bearer sk_…`, an admin token of the project; a token sees and
//! deletes only its own project's sessions. Without projects these endpoints are off.
//!
//! Ingest never waits for this connection except to claim a session it has not seen yet
//! (claims are cached), or, while a deletion runs, a session the cache gives to another
//! project, so admin work does not slow the hot path beyond SQLite's lock.
//!
//! Deleting sessions (forget, retention) also deletes their claims, so the cache must not
//! outlive a deletion: [`AdminStore::delete`] empties it when the deletion ends, whether
//! it succeeded or not (a forget whose closing WAL checkpoint fails has deleted the
//! sessions all the same). While a deletion runs, ingest still admits a session that the
//! cache gives to the sender's project, without waiting, and that session's claim is
//! written again after the deletion, in case the deletion removed it; a session the cache
//! gives to another project waits for the deletion and asks the store, so that a deleted
//! session is neither left unclaimed nor refused because of what the cache remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::access::{Access, Reload};
use super::{ApiError, Collector};
use crate::store::{SessionStore, StoreError};

/// Longest user id `DELETE /v1/users/{user}` accepts.
pub const MAX_USER_LEN: usize = 512;

/// Sessions whose claim is remembered in memory; past this the cache starts over.
const MAX_CACHED_CLAIMS: usize = 100_000;

type SharedStore = Arc<Mutex<Box<dyn SessionStore + Send>>>;

/// A store connection for everything but ingest, used from blocking threads.
#[derive(Clone)]
pub(crate) struct AdminStore {
    store: SharedStore,
    claims: Arc<Mutex<Claims>>,
}

/// The claims cache, and what a deletion running on the store means for it.
#[derive(Debug, Default)]
struct Claims {
    /// Session id → owning project, for sessions claimed or seen since start (or since
    /// the last deletion).
    owners: HashMap<String, Arc<str>>,
    /// A deletion (forget, prune) runs on the store. Deletions run one at a time, holding
    /// the store's lock from start to end.
    deleting: bool,
    /// Counts the deletions started: an owner read from the store before a deletion
    /// started may be of a session deleted since, so it is not cached after that.
    generation: u64,
    /// Sessions admitted from `owners` while a deletion ran, with their project: the
    /// deletion may have deleted their claim, so it is written again after it.
    admitted: HashMap<String, Arc<str>>,
}

impl std::fmt::Debug for AdminStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminStore").finish_non_exhaustive()
    }
}

impl AdminStore {
    pub(crate) fn new(store: Box<dyn SessionStore + Send>) -> AdminStore {
        AdminStore {
            store: Arc::new(Mutex::new(store)),
            claims: Arc::new(Mutex::new(Claims::default())),
        }
    }

    /// Runs `f` on the store on a blocking thread.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn SessionStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        let result = tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut **guard)
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("admin task failed: {e}"),
            )
        })?;
        result.map_err(|err| match err {
            StoreError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, err.to_string()),
            StoreError::Invalid { .. } => ApiError::new(StatusCode::BAD_REQUEST, err.to_string()),
            other => ApiError::unavailable(other),
        })
    }

    /// Makes sure session `sid` is `project`'s: claims it if nobody has, refuses it (403)
    /// if another project has.
    pub(crate) async fn claim(&self, sid: &str, project: &str) -> Result<(), ApiError> {
        let (cached, generation) = {
            let mut claims = self.lock_claims();
            let mut cached = claims.owners.get(sid).cloned();
            if claims.deleting {
                match &cached {
                    // Admitted now; the claim is written again after the deletion.
                    Some(owner) if **owner == *project => {
                        claims.admitted.insert(sid.to_string(), Arc::clone(owner));
                    }
                    // The session may be being deleted: wait and ask the store.
                    _ => cached = None,
                }
            }
            (cached, claims.generation)
        };
        let owner = match cached {
            Some(owner) => owner,
            None => {
                let (s, p) = (sid.to_string(), project.to_string());
                let owner: Arc<str> = self.call(move |st| st.claim_session(&s, &p)).await?.into();
                let mut claims = self.lock_claims();
                if !claims.deleting && claims.generation == generation {
                    if claims.owners.len() >= MAX_CACHED_CLAIMS {
                        claims.owners.clear();
                    }
                    claims.owners.insert(sid.to_string(), Arc::clone(&owner));
                }
                owner
            }
        };
        if &*owner == project {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("session `{sid}` belongs to another project; this key cannot add to it"),
            ))
        }
    }

    /// Runs `f`, which deletes sessions (and so their claims), on the store like
    /// [`call`](Self::call), keeping the claims cache true to the store: see the module
    /// documentation. The cache is emptied when `f` returns, `Ok` or not, and the claims
    /// of sessions admitted from the cache meanwhile are written again.
    pub(crate) async fn delete<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn SessionStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let claims = Arc::clone(&self.claims);
        // All of it on the blocking thread, under the store's lock, so that it runs to the
        // end even if the request that asked for it goes away.
        self.call(move |store| {
            let deletion = Deletion::start(&claims);
            let result = f(&mut *store);
            deletion.finish(store);
            result
        })
        .await
    }

    fn lock_claims(&self) -> std::sync::MutexGuard<'_, Claims> {
        lock(&self.claims)
    }
}

fn lock(claims: &Mutex<Claims>) -> std::sync::MutexGuard<'_, Claims> {
    claims.lock().unwrap_or_else(|e| e.into_inner())
}

/// A deletion running on the store, as the claims cache sees it. Dropping it without
/// [`finish`](Self::finish) (if the deletion panicked) ends it without writing claims
/// again.
struct Deletion<'a> {
    claims: &'a Mutex<Claims>,
}

impl<'a> Deletion<'a> {
    fn start(claims: &'a Mutex<Claims>) -> Deletion<'a> {
        let mut c = lock(claims);
        c.deleting = true;
        c.generation += 1;
        Deletion { claims }
    }

    /// Ends the deletion: empties the cache, and returns the sessions admitted from it
    /// meanwhile.
    fn end(&self) -> HashMap<String, Arc<str>> {
        let mut c = lock(self.claims);
        c.deleting = false;
        c.owners.clear();
        std::mem::take(&mut c.admitted)
    }

    /// Ends the deletion, then writes the claims of the sessions admitted meanwhile, still
    /// holding the store (so no other claim of them runs before).
    fn finish(self, store: &mut dyn SessionStore) {
        let admitted = self.end();
        // Ended: nothing left for `drop`.
        std::mem::forget(self);
        for (sid, project) in admitted {
            match store.claim_session(&sid, &project) {
                Ok(owner) if *owner == *project => {}
                Ok(owner) => tracing::warn!(
                    sid,
                    %project,
                    %owner,
                    "a session admitted during a deletion is claimed by another project"
                ),
                Err(e) => tracing::warn!(
                    sid,
                    %project,
                    error = %e,
                    "cannot claim again a session admitted during a deletion"
                ),
            }
        }
    }
}

impl Drop for Deletion<'_> {
    fn drop(&mut self) {
        let lost = self.end();
        if !lost.is_empty() {
            tracing::warn!(
                sessions = lost.len(),
                "a deletion panicked; sessions admitted meanwhile were not claimed again"
            );
        }
    }
}

/// Which project an admin request acts for, or the refusal.
fn authorize(
    state: &Collector,
    headers: &HeaderMap,
) -> Result<(String, AdminStore), Box<Response>> {
    let (Some(access), Some(admin)) = (&state.access, &state.admin) else {
        return Err(Box::new(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "admin endpoints are off: this collector runs without --projects \
                 (use `understudy sessions … --db` where the database is)",
            )
            .into_response(),
        ));
    };
    let challenge = |error: &str, message: &str| {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
        let value = format!("Bearer realm=\"understudy\"{error}");
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        Box::new(r)
    };
    let Some(token) = bearer(headers) else {
        return Err(challenge(
            "",
            "missing admin token: send `Authorization: Bearer sk_…` (an admin token of the project)",
        ));
    };
    match access.projects().check_admin(token) {
        Some(project) => Ok((project.name.clone(), admin.clone())),
        None => Err(challenge(
            ", error=\"invalid_token\"",
            "invalid admin token (unknown, or rotated out)",
        )),
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `DELETE /v1/users/{user}`: forgets the user in the caller's project.
pub(super) async fn forget_user(
    State(state): State<Arc<Collector>>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (project, admin) = match authorize(&state, &headers) {
        Ok(a) => a,
        Err(refusal) => return *refusal,
    };
    if user.is_empty() || user.len() > MAX_USER_LEN {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("user id must be 1..={MAX_USER_LEN} bytes"),
        )
        .into_response();
    }
    let (u, p) = (user.clone(), project.clone());
    match admin.delete(move |s| s.forget_user(&u, Some(&p))).await {
        Ok(report) => {
            tracing::info!(%project, sessions = report.sessions, "forgot a user");
            Json(serde_json::json!({
                "user": user,
                "project": project,
                "sessions": report.sessions,
                "batches": report.batches,
                "events": report.events,
            }))
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/sessions`: the caller's project's sessions.
pub(super) async fn list_sessions(
    State(state): State<Arc<Collector>>,
    headers: HeaderMap,
) -> Response {
    let (project, admin) = match authorize(&state, &headers) {
        Ok(a) => a,
        Err(refusal) => return *refusal,
    };
    let p = project.clone();
    match admin.call(move |s| s.list_project_sessions(&p)).await {
        Ok(sessions) => {
            Json(serde_json::json!({ "project": project, "sessions": sessions })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/sessions/{sid}`: one session of the caller's project as NDJSON.
pub(super) async fn export_session(
    State(state): State<Arc<Collector>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (project, admin) = match authorize(&state, &headers) {
        Ok(a) => a,
        Err(refusal) => return *refusal,
    };
    let (s, p) = (sid.clone(), project.clone());
    let exported = admin
        .call(move |store| {
            // Another project's session is answered exactly like a missing one.
            if store.session_project(&s)?.as_deref() != Some(p.as_str()) {
                return Err(StoreError::NotFound(s));
            }
            let mut out = String::new();
            for batch in store.session_batches(&s)? {
                let line = crate::event::to_json(&batch).map_err(|e| StoreError::Corrupt {
                    sid: s.clone(),
                    seq: batch.seq as i64,
                    reason: e.to_string(),
                })?;
                out.push_str(&line);
                out.push('\n');
            }
            Ok(out)
        })
        .await;
    match exported {
        Ok(ndjson) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            )],
            Body::from(ndjson),
        )
            .into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no session with id `{sid}` in project `{project}`"),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Retention: delete sessions whose last batch is older than `max_age`, now and then
/// every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub every: Duration,
}

impl Retention {
    /// Keep `days` days, pruning hourly.
    pub fn days(days: u32) -> Retention {
        Retention {
            max_age: Duration::from_secs(u64::from(days) * 86_400),
            every: Duration::from_secs(3600),
        }
    }
}

/// Runs retention until aborted.
pub(crate) async fn retain(admin: AdminStore, retention: Retention) {
    let mut tick = tokio::time::interval(retention.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(age);
        match admin.delete(move |s| s.prune_sessions(cutoff)).await {
            Ok(report) => {
                tracing::info!(
                    sessions = report.sessions,
                    batches = report.batches,
                    "retention: deleted sessions whose last batch is older than the limit"
                );
            }
            Err(e) => tracing::warn!(error = %e.message, "retention: pruning failed; will retry"),
        }
    }
}

/// Re-reads the projects file every [`Access::poll_every`] until aborted. A broken file
/// is reported once per distinct error; the projects in force stay.
pub(crate) async fn watch_projects(access: Arc<Access>) {
    let mut tick = tokio::time::interval(access.poll_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last_error: Option<String> = None;
    loop {
        tick.tick().await;
        let a = Arc::clone(&access);
        let Ok(result) = tokio::task::spawn_blocking(move || a.reload()).await else {
            continue;
        };
        match result {
            Ok(Reload::Changed) => {
                last_error = None;
                tracing::warn!(file = %access.path().display(), "projects file changed: reloaded");
            }
            Ok(Reload::Unchanged) => last_error = None,
            Err(e) => {
                let message = e.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, "projects file not reloaded; the previous projects stay in force");
                    last_error = Some(message);
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// An admin store over a fresh SQLite store with sessions `s-1` and `s-2`, both of
    /// which identify `ann` (nobody has claimed them yet).
    fn admin_with_ann() -> (tempfile::TempDir, AdminStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        for sid in ["s-1", "s-2"] {
            let batch = serde_json::from_str(&format!(
                r#"{{"v":1,"sid":"{sid}","pvid":"p-{sid}","seq":0,"events":[{{"k":"custom","t":1733300000000,"name":"identify","data":{{"user":"ann"}}}}]}}"#
            ))
            .unwrap();
            store.put_batch(&batch, 1_733_300_000_000).unwrap();
        }
        (dir, AdminStore::new(Box::new(store)))
    }

    async fn owner(admin: &AdminStore, sid: &str) -> Option<String> {
        let sid = sid.to_string();
        admin.call(move |s| s.session_project(&sid)).await.unwrap()
    }

    /// What a forget returns when its closing checkpoint cannot empty the WAL: the
    /// sessions are deleted all the same.
    fn checkpoint_failed() -> StoreError {
        StoreError::Db(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("deleted 2 sessions, but …: the deleted data may remain in the -wal file".into()),
        ))
    }

    /// A forget that deleted sessions and then failed (on its checkpoint) leaves no claim
    /// in the cache: the owner's next batch claims the session in the store again, and
    /// another project is not refused a session that no longer exists.
    #[tokio::test]
    async fn a_failed_forget_still_empties_the_claims_cache() {
        let (_dir, admin) = admin_with_ann();
        admin.claim("s-1", "shop").await.unwrap();
        admin.claim("s-2", "shop").await.unwrap();
        let err = admin
            .delete(|s| {
                assert_eq!(s.forget_user("ann", Some("shop"))?.sessions, 2);
                Err::<(), _>(checkpoint_failed())
            })
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(owner(&admin, "s-1").await, None);
        admin.claim("s-1", "shop").await.unwrap();
        assert_eq!(owner(&admin, "s-1").await.as_deref(), Some("shop"));
        admin.claim("s-2", "blog").await.unwrap();
        assert_eq!(owner(&admin, "s-2").await.as_deref(), Some("blog"));
        let refused = admin.claim("s-2", "shop").await.unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }

    /// While a forget holds the store, the cache still admits a session to its own
    /// project at once, and that claim is written again after the forget deleted it; a
    /// claim the cache would refuse waits for the forget and asks the store instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_during_a_deletion_match_the_store_after_it() {
        let (_dir, admin) = admin_with_ann();
        admin.claim("s-1", "shop").await.unwrap();
        admin.claim("s-2", "shop").await.unwrap();
        let (deleted_tx, deleted_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let forget = {
            let admin = admin.clone();
            tokio::spawn(async move {
                admin
                    .delete(move |s| {
                        let report = s.forget_user("ann", Some("shop"))?;
                        deleted_tx.send(()).unwrap();
                        // Until the test says so (or gives up and drops `go_tx`).
                        let _ = go_rx.recv();
                        Ok(report)
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || deleted_rx.recv().unwrap())
            .await
            .unwrap();
        // Both sessions and their claims are deleted; the forget still holds the store.
        tokio::time::timeout(Duration::from_secs(5), admin.claim("s-1", "shop"))
            .await
            .expect("a cached claim waited for the deletion")
            .unwrap();
        let blog = {
            let admin = admin.clone();
            tokio::spawn(async move { admin.claim("s-2", "blog").await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !blog.is_finished(),
            "blog's claim was answered from the cache during the deletion"
        );
        go_tx.send(()).unwrap();
        assert_eq!(forget.await.unwrap().unwrap().sessions, 2);
        // shop's batch of s-1 was admitted during the forget: s-1 is shop's again.
        assert_eq!(owner(&admin, "s-1").await.as_deref(), Some("shop"));
        // s-2 was deleted, and nobody sent to it meanwhile: blog may have it.
        blog.await.unwrap().unwrap();
        assert_eq!(owner(&admin, "s-2").await.as_deref(), Some("blog"));
        assert_eq!(
            admin.claim("s-1", "blog").await.unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer sk_abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("sk_abc"));
        h.insert(header::AUTHORIZATION, "bearer   sk_abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("sk_abc"));
        h.insert(header::AUTHORIZATION, "Basic c2s6YWJj".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
