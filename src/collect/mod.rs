//! The HTTP collector: receives batches from `capture.js` and stores them.
//!
//! This is the only module that knows HTTP. Endpoints:
//!
//! | method | path | what |
//! |---|---|---|
//! | `GET` | `/capture.js` | the recorder script ([`crate::capture::SCRIPT`]) |
//! | `GET` | `/healthz` | `{"status":"ok"}` while the store writer runs, else 503 |
//! | `POST` | `/v1/batches` | one [`Batch`](crate::event::Batch), JSON or gzip'd JSON |
//!
//! `POST /v1/batches` is sent by pages as `Content-Type: text/plain` so that browsers
//! skip the CORS preflight; gzip is recognised by its magic bytes (and
//! `Content-Encoding: gzip` is honoured). The answer is `200 {"status":"stored"}` or
//! `200 {"status":"duplicate"}`, only once the batch is durable. Refusals are 4xx
//! (400 bad input, 413 too large, 408 too slow, 415 unknown encoding) and store
//! failures 503, all with `{"error":"<message>"}`; nothing is stored for them. See
//! [`decode`] for the checks and [`Limits`] for the bounds.
//!
//! CORS allows any origin for now, so a page anywhere can load the script and post.
//!
//! Decoding runs on blocking threads, at most [`Limits::max_in_flight`] at once, which
//! bounds memory; storing goes through one writer thread with group commit.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::cors::{Any, CorsLayer};

use crate::store::{PutOutcome, SessionStore, SqliteStore};

pub mod decode;
mod error;
mod writer;

pub use error::{ApiError, CollectError};
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_decoded_bytes: 8 << 20,
            body_timeout: Duration::from_secs(30),
            max_in_flight: 32,
        }
    }
}

/// The collector's shared state: limits and the store writer.
#[derive(Debug)]
pub struct Collector {
    limits: Limits,
    writer: Writer,
    in_flight: Semaphore,
}

impl Collector {
    /// Starts a collector over `store`. The returned [`StoreThread`] ends once every
    /// clone of the collector (and so every router using it) is dropped.
    pub fn start(
        store: impl SessionStore + Send + 'static,
        limits: Limits,
    ) -> Result<(Arc<Collector>, StoreThread), CollectError> {
        let (writer, thread) = Writer::start(store).map_err(CollectError::Thread)?;
        let in_flight = Semaphore::new(limits.max_in_flight.max(1));
        let collector = Collector {
            limits,
            writer,
            in_flight,
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

/// The collector's routes, with CORS for any origin.
pub fn router(state: Arc<Collector>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING])
        .max_age(Duration::from_secs(24 * 60 * 60));
    Router::new()
        .route(SCRIPT_PATH, get(script))
        .route("/healthz", get(healthz))
        .route(BATCHES_PATH, post(post_batch))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(cors)
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
    let (collector, thread) = Collector::start(store, limits)?;
    let app = router(collector);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
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

async fn post_batch(
    State(state): State<Arc<Collector>>,
    headers: HeaderMap,
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

    let bytes = read_body(body, limits, too_large).await?;

    // Bounds decoding memory: each permit covers one body, its inflated copy and its batch.
    let _permit = state
        .in_flight
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("the collector is shutting down"))?;
    let (max_body, max_decoded) = (limits.max_body_bytes, limits.max_decoded_bytes);
    let batch = tokio::task::spawn_blocking(move || {
        decode::decode_body(&bytes, encoding.as_deref(), max_body, max_decoded)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("decoder failed: {e}"),
        )
    })??;

    let status = match state.writer.put(batch).await {
        Ok(PutOutcome::Stored) => "stored",
        Ok(PutOutcome::Duplicate) => "duplicate",
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
