//! The collector's errors: [`CollectError`] for running it, [`ApiError`] for answering a
//! request that cannot be served.
//!
//! Every rejected request gets a JSON body `{"error":"<message>"}` with a message meant
//! for a human, capped in length (it may quote the sender's own input).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::decode::DecodeError;
use crate::store::StoreError;

/// Why the collector could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The session store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The thread that owns the store could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The listener failed.
    #[error("collector server failed: {0}")]
    Serve(#[from] std::io::Error),
    /// A background task panicked or was cancelled.
    #[error("collector task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The options do not fit together.
    #[error("collector misconfigured: {0}")]
    Config(String),
}

/// Longest message sent back, in bytes.
const MAX_MESSAGE: usize = 512;

/// A request the collector refuses or cannot serve: a status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds the sender should wait before trying again (`Retry-After`), if it should.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status and message (shortened if very long).
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        ApiError {
            status,
            message,
            retry_after: None,
        }
    }

    /// The same error, telling the sender to retry after `secs` seconds.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The store failed: the sender should retry later.
    pub fn unavailable(err: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the session store is unavailable, retry later: {err}"),
        )
    }
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> Self {
        let status = match &err {
            e if e.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            DecodeError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "request failed");
        } else {
            tracing::debug!(status = %self.status, error = %self.message, "request rejected");
        }
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let e = ApiError::new(StatusCode::BAD_REQUEST, "é".repeat(1000));
        assert!(e.message.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(e.message.ends_with('…'));
    }

    #[test]
    fn decode_errors_map_to_statuses() {
        let too_big = ApiError::from(DecodeError::BodyTooLarge { limit: 1 });
        assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            ApiError::from(DecodeError::Empty).status,
            StatusCode::BAD_REQUEST
        );
    }
}
