//! The HTTP collector: receives batches from `capture.js` and stores them.
//!
//! This is the only module that knows HTTP. Endpoints:
//!
//! | method | path | what |
//! |---|---|---|
//! | `GET` | `/capture.js` | the recorder script ([`crate::capture::SCRIPT`]) |
//! | `GET` | `/healthz` | `{"status":"ok"}` while the store writer runs, else 503 |
//! | `POST` | `/v1/batches` | one [`Batch`](crate::event::Batch), JSON or gzip'd JSON |
//! | `DELETE` | `/v1/users/{user}` | forget a user (admin token, see [`admin`]) |
//! | `GET` | `/v1/sessions`, `/v1/sessions/{sid}` | list, export as NDJSON (admin token) |
//!
//! `POST /v1/batches` is sent by pages as `Content-Type: text/plain` so that browsers
//! skip the CORS preflight; gzip is recognised by its magic bytes (and
//! `Content-Encoding: gzip` is honoured). The answer is `200 {"status":"stored"}` or
//! `200 {"status":"duplicate"}`, only once the batch is durable. Refusals are 4xx
//! (400 bad input, 413 too large, 408 too slow, 415 unknown encoding) and store
//! failures 503, all with `{"error":"<message>"}`; nothing is stored for them. See
//! [`decode`] for the checks and [`Limits`] for the bounds.
//!
//! ## Open or with projects
//!
//! Without projects (plain [`serve`], [`serve_store`]) the collector is open, for local
//! use: any page may post, CORS allows any origin, the admin endpoints are off.
//!
//! With projects ([`Options::access`], from a projects file, see [`projects`]) a post
//! needs a project's ingest key as `?key=` (401 missing or unknown, 403 revoked), a page
//! `Origin` on the project's allow-list (403 otherwise; only allowed origins get CORS
//! headers), and fits the key's token bucket (429 with `Retry-After`). Every session is
//! claimed for the project that sent its first batch, in the transaction that stores it;
//! another project's key cannot add to it (403). The admin endpoints take a project's
//! bearer token and act on that project's sessions only.
//!
//! The admin endpoints and retention ([`Options::retain`]) run on a
//! second store connection ([`Options::admin_store`]); see [`admin`].
//!
//! A request decodes its body and encodes the batch for the store itself: where it arrives
//! when the JSON is small (nearly always), on a blocking thread when it is big; at most
//! [`Limits::max_in_flight`] at once. Every body, from its first byte until it is stored,
//! counts against [`Limits::max_buffered_bytes`] (503 with `Retry-After` past it). Both
//! bound memory. Storing goes through one writer thread with group commit, which only
//! runs SQL.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::cors::{Any, CorsLayer};

use crate::store::{EncodedBatch, PutOutcome, SessionStore, SqliteStore};

pub mod access;
pub mod admin;
pub mod decode;
mod error;
pub mod projects;
mod writer;

pub use access::Access;
use admin::AdminStore;
pub use admin::Retention;
pub use error::{ApiError, CollectError};
use projects::{Hash, KeyCheck, RateLimit};
use writer::{WriteError, Writer, WriterThread};

/// The path pages post batches to.
pub const BATCHES_PATH: &str = "/v1/batches";
/// The path the recorder script is served from.
pub const SCRIPT_PATH: &str = "/capture.js";

/// Bounds on what one request may cost the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body on the wire (413 above).
    pub max_body_bytes: usize,
    /// Largest body after gzip inflation (413 above).
    pub max_decoded_bytes: usize,
    /// Time allowed to receive a whole body (408 after).
    pub body_timeout: Duration,
    /// Bodies decoded or awaiting storage at once; more requests wait their turn.
    pub max_in_flight: usize,
    /// Bytes of request bodies being received, decoded or stored at once, each body
    /// counted at its declared `Content-Length` (at `max_body_bytes` when it declares
    /// none). A request that does not fit is answered 503 with `Retry-After` at once, so
    /// that many connections sending big or slow bodies cannot exhaust memory.
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_decoded_bytes: 8 << 20,
            body_timeout: Duration::from_secs(30),
            max_in_flight: 32,
            max_buffered_bytes: 256 << 20,
        }
    }
}

/// The collector's shared state: limits, the store writer, and (with projects) access
/// control and the admin store.
#[derive(Debug)]
pub struct Collector {
    limits: Limits,
    writer: Writer,
    in_flight: Semaphore,
    /// [`Limits::max_buffered_bytes`], in KiB.
    buffered: Semaphore,
    access: Option<Arc<Access>>,
    admin: Option<AdminStore>,
}

/// How a collector runs, beyond the store it writes to.
#[derive(Default)]
pub struct Options {
    pub limits: Limits,
    /// Projects: keys, origins, admin tokens, rate limits. `None`: an open collector.
    pub access: Option<Arc<Access>>,
    /// A second connection to the same store for everything but ingest: the admin
    /// endpoints and retention. Needed with `access` or `retain`.
    pub admin_store: Option<Box<dyn SessionStore + Send>>,
    /// Delete sessions whose last batch is older than this, at start and periodically.
    pub retain: Option<Retention>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("limits", &self.limits)
            .field("access", &self.access)
            .field("admin_store", &self.admin_store.is_some())
            .field("retain", &self.retain)
            .finish()
    }
}

impl Collector {
    /// Starts a collector over `store`. The returned [`StoreThread`] ends once every
    /// clone of the collector (and so every router using it) is dropped.
    pub fn start(
        store: impl SessionStore + Send + 'static,
        limits: Limits,
    ) -> Result<(Arc<Collector>, StoreThread), CollectError> {
        Collector::start_with(store, limits, None, None)
    }

    fn start_with(
        store: impl SessionStore + Send + 'static,
        limits: Limits,
        access: Option<Arc<Access>>,
        admin: Option<AdminStore>,
    ) -> Result<(Arc<Collector>, StoreThread), CollectError> {
        let (writer, thread) = Writer::start(store).map_err(CollectError::Thread)?;
        let in_flight = Semaphore::new(limits.max_in_flight.max(1));
        // Room for at least one body of the largest size.
        let buffered = Semaphore::new(kib(limits.max_buffered_bytes.max(limits.max_body_bytes)));
        let collector = Collector {
            limits,
            writer,
            in_flight,
            buffered,
            access,
            admin,
        };
        Ok((Arc::new(collector), StoreThread(thread)))
    }

    /// The limits this collector enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// The thread that owns the store. Join it after the server stops to close the store
/// cleanly.
#[derive(Debug)]
pub struct StoreThread(WriterThread);

impl StoreThread {
    /// Blocks until the store is closed (every [`Collector`] handle dropped).
    pub fn join(self) {
        self.0.join();
    }
}

/// The collector's routes. The script and health check allow any origin; ingest allows
/// any origin when open and each project's origins with projects; the admin endpoints
/// send no CORS headers (they are not for pages).
pub fn router(state: Arc<Collector>) -> Router {
    let any_origin = || {
        CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING])
            .max_age(Duration::from_secs(24 * 60 * 60))
    };
    let public = Router::new()
        .route(SCRIPT_PATH, get(script))
        .route("/healthz", get(healthz))
        .layer(any_origin());
    let ingest = Router::new().route(BATCHES_PATH, post(post_batch).options(preflight));
    let ingest = if state.access.is_none() {
        ingest.layer(any_origin())
    } else {
        ingest
    };
    let admin = Router::new()
        .route("/v1/users/{user}", delete(admin::forget_user))
        .route("/v1/sessions", get(admin::list_sessions))
        .route("/v1/sessions/{sid}", get(admin::export_session));
    Router::new()
        .merge(public)
        .merge(ingest)
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves the collector on `listener`, storing into the SQLite file `db` (created if
/// missing) with default [`Limits`], until `shutdown` resolves. Requests in flight are
/// finished and the store is closed before this returns.
pub async fn serve(
    listener: TcpListener,
    db: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CollectError> {
    let path = db.to_path_buf();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await??;
    serve_store(listener, store, Limits::default(), shutdown).await
}

/// Like [`serve`], over any store and with explicit limits.
pub async fn serve_store(
    listener: TcpListener,
    store: impl SessionStore + Send + 'static,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CollectError> {
    let options = Options {
        limits,
        ..Options::default()
    };
    serve_with(listener, store, options, shutdown).await
}

/// Like [`serve_store`], with projects, admin endpoints and retention as `options` say.
pub async fn serve_with(
    listener: TcpListener,
    store: impl SessionStore + Send + 'static,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CollectError> {
    let Options {
        limits,
        access,
        admin_store,
        retain,
    } = options;
    let admin = admin_store.map(AdminStore::new);
    if admin.is_none() && (access.is_some() || retain.is_some()) {
        return Err(CollectError::Config(
            "projects and retention need a second store connection (Options::admin_store)".into(),
        ));
    }
    let mut background = Vec::new();
    if let Some(access) = &access {
        background.push(tokio::spawn(admin::watch_projects(Arc::clone(access))));
    }
    if let (Some(retention), Some(admin)) = (retain, &admin) {
        background.push(tokio::spawn(admin::retain(admin.clone(), retention)));
    }
    let (collector, thread) = Collector::start_with(store, limits, access, admin)?;
    let app = router(collector);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    for task in background {
        task.abort();
    }
    // The router and every connection are gone now, so the writer drains and stops.
    tokio::task::spawn_blocking(move || thread.join()).await?;
    Ok(served?)
}

async fn script() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        crate::capture::SCRIPT,
    )
}

async fn healthz(State(state): State<Arc<Collector>>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.writer.is_running() {
        Ok(Json(serde_json::json!({ "status": "ok" })))
    } else {
        Err(ApiError::unavailable("the store writer has stopped"))
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// A post that passed the key and origin checks.
struct Admitted {
    project: String,
    key: Hash,
    rate: RateLimit,
    /// The page's origin, allowed: echoed in `Access-Control-Allow-Origin`.
    origin: Option<HeaderValue>,
}

impl Admitted {
    /// Lets the page read the answer.
    fn cors(&self, response: &mut Response) {
        if let Some(origin) = &self.origin {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// Longest part of a refused `Origin` quoted back.
const MAX_ORIGIN_SHOWN: usize = 100;

/// Checks the ingest key (`?key=`) and the page's `Origin` against the projects.
fn admit(access: &Access, uri: &Uri, headers: &HeaderMap) -> Result<Admitted, ApiError> {
    let key = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
    });
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing ingest key: post to /v1/batches?key=pk_… (capture.js sends its script \
             tag's data-key)",
        ));
    };
    let projects = access.projects();
    let (project, hash) = match projects.check_key(&key) {
        KeyCheck::Active(project, hash) => (project, hash),
        KeyCheck::Revoked(project) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "ingest key revoked: project `{}` has a new key; update the script tag",
                    project.name
                ),
            ))
        }
        KeyCheck::Unknown => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown ingest key",
            ))
        }
    };
    let origin = headers.get(header::ORIGIN);
    if let Some(origin) = origin {
        if !origin.to_str().is_ok_and(|o| project.allows_origin(o)) {
            let shown: String = String::from_utf8_lossy(origin.as_bytes())
                .chars()
                .take(MAX_ORIGIN_SHOWN)
                .collect();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "origin `{shown}` may not send sessions to project `{}`; add it to the project's origins",
                    project.name
                ),
            ));
        }
    }
    Ok(Admitted {
        project: project.name.clone(),
        key: hash,
        rate: project.rate,
        origin: origin.cloned(),
    })
}

async fn post_batch(
    State(state): State<Arc<Collector>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(access) = &state.access else {
        return ingest(&state, None, &headers, body).await.into_response();
    };
    let admitted = match admit(access, &uri, &headers) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(wait) = access.take(&admitted.key, admitted.rate, std::time::Instant::now()) {
        let secs = (wait.as_secs_f64().ceil() as u64).max(1);
        let message = format!(
            "rate limit of project `{}` exceeded ({} batches/s, burst {}); retry after {secs} s",
            admitted.project, admitted.rate.per_second, admitted.rate.burst
        );
        let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
            .retry_after(secs)
            .into_response();
        admitted.cors(&mut response);
        return response;
    }
    let mut response = ingest(&state, Some(&admitted.project), &headers, body)
        .await
        .into_response();
    admitted.cors(&mut response);
    response
}

/// A CORS preflight for `/v1/batches` with projects: allowed only for a known key and an
/// allowed origin. (Open collectors answer preflights in their CORS layer.)
async fn preflight(State(state): State<Arc<Collector>>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(access) = &state.access else {
        return StatusCode::NO_CONTENT.into_response();
    };
    match admit(access, &uri, &headers) {
        Ok(admitted) => {
            let mut response = (
                StatusCode::NO_CONTENT,
                [
                    (
                        header::ACCESS_CONTROL_ALLOW_METHODS,
                        HeaderValue::from_static("POST"),
                    ),
                    (
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("content-type, content-encoding"),
                    ),
                    (
                        header::ACCESS_CONTROL_MAX_AGE,
                        HeaderValue::from_static("86400"),
                    ),
                ],
            )
                .into_response();
            admitted.cors(&mut response);
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Reads, decodes, (with projects) claims and stores one batch.
async fn ingest(
    state: &Collector,
    project: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limits = &state.limits;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than {} bytes",
                limits.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    let encoding = match headers.get(header::CONTENT_ENCODING) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unreadable Content-Encoding header",
                    )
                })?
                .to_owned(),
        ),
    };

    // Counts this body against the memory budget until it is stored or refused.
    let size = declared.map_or(limits.max_body_bytes, |n| n as usize);
    let units = u32::try_from(kib(size).max(1)).unwrap_or(u32::MAX);
    let _buffered = state.buffered.try_acquire_many(units).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the collector is receiving too much at once; retry later",
        )
        .retry_after(1)
    })?;
    let bytes = read_body(body, limits, too_large).await?;

    // Bounds decoding memory: each permit covers one body, its inflated copy and its batch.
    let _permit = state
        .in_flight
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("the collector is shutting down"))?;
    let (max_body, max_decoded) = (limits.max_body_bytes, limits.max_decoded_bytes);
    // Tells the writer a batch is on its way, so the group it forms can wait for it.
    let ticket = state.writer.ticket();
    // A typical body decodes and encodes in well under a millisecond: here, without a
    // hop to another thread. Big ones go to a blocking thread.
    let small = decode::decode_small_body(
        &bytes,
        encoding.as_deref(),
        max_body,
        max_decoded,
        DECODE_HERE_BYTES,
    )?;
    let batch = match small {
        Some(batch) => encode(&batch)?,
        None => tokio::task::spawn_blocking(move || {
            let batch = decode::decode_body(&bytes, encoding.as_deref(), max_body, max_decoded)?;
            encode(&batch)
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("decoder failed: {e}"),
            )
        })??,
    };

    // The store claims the session for the project in the batch's own transaction, or
    // refuses the batch if another project has it.
    let batch = match project {
        Some(project) => batch.for_project(project),
        None => batch,
    };
    let sid = batch.sid().to_string();

    let status = match ticket.put(batch).await {
        Ok(PutOutcome::Stored) => "stored",
        Ok(PutOutcome::Duplicate) => "duplicate",
        Ok(PutOutcome::Foreign) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("session `{sid}` belongs to another project; this key cannot add to it"),
            ))
        }
        Err(WriteError::Store(crate::store::StoreError::Invalid { reason, .. })) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid batch: {reason}"),
            ))
        }
        Err(err) => return Err(ApiError::unavailable(err)),
    };
    Ok(Json(serde_json::json!({ "status": status })))
}

/// `bytes` in KiB, rounded up.
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// Largest JSON text decoded on the async thread that received it (about a millisecond
/// of work); bigger bodies are decoded on a blocking thread.
const DECODE_HERE_BYTES: usize = 128 << 10;

/// Encodes a decoded batch for the store, where the request is (not on the store's one
/// writer thread). The decoder has checked everything the store checks.
fn encode(batch: &crate::event::Batch) -> Result<EncodedBatch, ApiError> {
    EncodedBatch::of(batch).map_err(|e| match e {
        crate::store::StoreError::Invalid { reason, .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, format!("invalid batch: {reason}"))
        }
        other => ApiError::unavailable(other),
    })
}

/// Receives the whole body, at most `max_body_bytes` of it, within `body_timeout`.
async fn read_body(
    body: Body,
    limits: &Limits,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    let collected = tokio::time::timeout(
        limits.body_timeout,
        Limited::new(body, limits.max_body_bytes).collect(),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body was not received within {} s",
                limits.body_timeout.as_secs()
            ),
        )
    })?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        )),
    }
}
