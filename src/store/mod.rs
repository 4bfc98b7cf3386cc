//! Session storage: the [`SessionStore`] trait and its SQLite implementation.
//!
//! This module owns the on-disk layout of recorded sessions and is the only one that
//! knows SQL. What goes in is validated [`Batch`]es (the wire format of
//! [`crate::event`]); what comes out is the same batches, ordered by `seq`, plus a cheap
//! per-session [`SessionSummary`] for listings.
//!
//! Guarantees every implementation keeps:
//! * `(sid, seq)` is the identity of a batch. Storing it again is a no-op reported as
//!   [`PutOutcome::Duplicate`]; the first copy wins.
//! * A successful put is durable: when it returns `Ok`, the batch is on disk.
//! * Batches may arrive in any order; reads return them ordered by `seq`.
//! * Events are stored as they were decoded, as plain JSON text (never compressed, so
//!   that privacy audits can grep the raw files).
//!
//! The trait is synchronous. Async callers (the collector) run it on a blocking thread.

use crate::event::Batch;

mod sqlite;

pub use sqlite::SqliteStore;

/// A place where recorded sessions are kept.
pub trait SessionStore {
    /// Stores one batch; (sid, seq) already present → Ok(PutOutcome::Duplicate), nothing changes.
    fn put_batch(&mut self, batch: &Batch, received_at_ms: i64) -> Result<PutOutcome, StoreError>;

    /// Stores many batches in one transaction: all or nothing.
    fn put_batches(
        &mut self,
        batches: &[Batch],
        received_at_ms: i64,
    ) -> Result<PutReport, StoreError>;

    /// All sessions, oldest first by started_at.
    fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError>;

    /// A session's batches ordered by seq (out-of-order arrival is ordered on read). Unknown id → StoreError::NotFound.
    fn session_batches(&self, sid: &str) -> Result<Vec<Batch>, StoreError>;

    /// Stores many batches in one transaction and reports each one's outcome, in order.
    ///
    /// This is what lets the collector commit the batches of many concurrent requests
    /// with one disk sync (group commit) and still answer each request on its own.
    /// All or nothing, like [`SessionStore::put_batches`]. The default implementation
    /// stores them one by one, without a shared transaction.
    fn put_batches_each(
        &mut self,
        batches: &[Batch],
        received_at_ms: i64,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        batches
            .iter()
            .map(|b| self.put_batch(b, received_at_ms))
            .collect()
    }
}

/// What happened to one stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The batch is new and is now stored.
    Stored,
    /// A batch with the same `(sid, seq)` was already stored; nothing changed.
    Duplicate,
}

/// Counts of what a multi-batch put did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutReport {
    /// Batches newly stored.
    pub stored: usize,
    /// Batches skipped because their `(sid, seq)` was already stored (or appeared earlier
    /// in the same call).
    pub duplicates: usize,
}

impl PutReport {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: PutOutcome) {
        match outcome {
            PutOutcome::Stored => self.stored += 1,
            PutOutcome::Duplicate => self.duplicates += 1,
        }
    }
}

/// One line of a session listing, kept up to date on every insert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionSummary {
    /// Session id (`sid`).
    pub id: String,
    /// Earliest event timestamp, epoch ms.
    pub started_at: i64,
    /// Latest event timestamp, epoch ms.
    pub ended_at: i64,
    /// Batches stored.
    pub batches: u64,
    /// Events stored, over all batches.
    pub events: u64,
    /// Distinct page views (`pvid`).
    pub pages: u64,
    /// URL of the earliest `meta` event, if any arrived.
    pub first_url: Option<String>,
    /// `data.user` of the latest custom `identify` event, if any.
    pub user: Option<String>,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No session has this id.
    #[error("no session with id `{0}`")]
    NotFound(String),
    /// The batch breaks the wire format's rules; stores refuse such batches.
    #[error("batch {seq} of session `{sid}` is invalid: {reason}")]
    Invalid {
        sid: String,
        seq: u64,
        reason: String,
    },
    /// The database could not be opened or prepared.
    #[error("cannot open session database {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer build.
    #[error("session database schema version {found} is newer than this build supports ({supported}); upgrade understudy")]
    NewerSchema { found: i64, supported: i64 },
    /// A stored batch cannot be read back.
    #[error("stored batch {seq} of session `{sid}` is unreadable: {reason}")]
    Corrupt {
        sid: String,
        seq: i64,
        reason: String,
    },
    /// The database failed.
    #[error("session database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// Facts about one batch that the session summary is made of.
#[derive(Debug, Clone, PartialEq)]
struct BatchFacts {
    first_t: i64,
    last_t: i64,
    events: u64,
    /// `(t, url)` of the earliest `meta` event in the batch.
    first_meta: Option<(i64, String)>,
    /// `(t, user)` of the latest `identify` event in the batch.
    last_identify: Option<(i64, String)>,
}

impl BatchFacts {
    fn of(batch: &Batch) -> Self {
        use crate::event::Event;
        let mut first_meta: Option<(i64, String)> = None;
        let mut last_identify: Option<(i64, String)> = None;
        for event in &batch.events {
            match event {
                Event::Meta(m) if first_meta.as_ref().is_none_or(|(t, _)| m.t < *t) => {
                    first_meta = Some((m.t, m.url.clone()));
                }
                Event::Custom(c) if c.name == "identify" => {
                    let user = match c.data.get("user") {
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                        _ => None,
                    };
                    if let Some(user) = user {
                        if last_identify.as_ref().is_none_or(|(t, _)| c.t >= *t) {
                            last_identify = Some((c.t, user));
                        }
                    }
                }
                _ => {}
            }
        }
        BatchFacts {
            first_t: batch.first_t().unwrap_or(0),
            last_t: batch.last_t().unwrap_or(0),
            events: batch.events.len() as u64,
            first_meta,
            last_identify,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(events: &str) -> Batch {
        serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"s1","pvid":"p1","seq":0,"events":{events}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn facts_pick_earliest_meta_and_latest_identify() {
        let b = batch(
            r#"[
            {"k":"meta","t":20,"url":"http://a/late","load":"navigate","w":1,"h":1},
            {"k":"meta","t":10,"url":"http://a/early","load":"navigate","w":1,"h":1},
            {"k":"custom","t":11,"name":"identify","data":{"user":"ann"}},
            {"k":"custom","t":15,"name":"identify","data":{"user":42}},
            {"k":"custom","t":16,"name":"identify","data":{"nope":1}},
            {"k":"custom","t":17,"name":"other","data":{"user":"eve"}}
        ]"#,
        );
        let f = BatchFacts::of(&b);
        assert_eq!(f.first_t, 10);
        assert_eq!(f.last_t, 20);
        assert_eq!(f.events, 6);
        assert_eq!(f.first_meta, Some((10, "http://a/early".into())));
        assert_eq!(f.last_identify, Some((15, "42".into())));
    }

    #[test]
    fn report_counts_outcomes() {
        let mut r = PutReport::default();
        r.add(PutOutcome::Stored);
        r.add(PutOutcome::Duplicate);
        r.add(PutOutcome::Stored);
        assert_eq!(
            r,
            PutReport {
                stored: 2,
                duplicates: 1
            }
        );
    }
}
