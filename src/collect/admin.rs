//! The collector's second store connection and what runs on it: the
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
//! Session claims are not made here: the writer's store claims a project's session in
//! the transaction that stores its batch (see [`crate::store::SessionStore::put_encoded`]),
//! so ingest never waits for this connection, and no deletion, by this collector or by
//! `understudy sessions forget` in another process, can leave a stored session unclaimed.

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

type SharedStore = Arc<Mutex<Box<dyn SessionStore + Send>>>;

/// A store connection for everything but ingest, used from blocking threads.
#[derive(Clone)]
pub(crate) struct AdminStore {
    store: SharedStore,
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
    match admin.call(move |s| s.forget_user(&u, Some(&p))).await {
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
        match admin.call(move |s| s.prune_sessions(cutoff)).await {
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
