//! Session storage: the [`SessionStore`] trait, its SQLite and PostgreSQL
//! implementations, and [`open`], which picks one from a `--db` value ([`DbSpec`]).
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
//! * A batch put for a project ([`EncodedBatch::for_project`]) claims its session for
//!   that project in the same transaction, or is refused ([`PutOutcome::Foreign`]) if
//!   another project has it: a stored session of a project is never left unclaimed.
//!
//! The trait is synchronous. Async callers (the collector) run it on a blocking thread.

use crate::event::Batch;

mod postgres;
mod spec;
mod sqlite;

pub use postgres::{PgError, PostgresStore};
pub use spec::{open, DbSpec, SpecError};
pub use sqlite::SqliteStore;

/// A place where recorded sessions are kept.
///
/// Adding a method? Implement it for both backends and forward it in the `Box<S>` impl
/// below (a defaulted method that is not forwarded silently skips the backend's own).
pub trait SessionStore {
    /// Stores encoded batches in one transaction (all or nothing) and reports each one's
    /// outcome, in order: a `(sid, seq)` already stored, or earlier in the same call, is
    /// [`PutOutcome::Duplicate`] and changes nothing.
    ///
    /// A batch [`for_project`](EncodedBatch::for_project) claims its session for that
    /// project, in the same transaction, if no project has it yet; if another project has
    /// it, the batch is [`PutOutcome::Foreign`] and changes nothing. So a project's stored
    /// session always has its claim, whatever deleted the claim before (a forget by
    /// another process, say).
    ///
    /// This is what lets the collector commit the batches of many concurrent requests
    /// with one disk sync (group commit) and still answer each request on its own; the
    /// requests encode their batches ([`EncodedBatch::of`]) before, in parallel.
    fn put_encoded(
        &mut self,
        batches: &[EncodedBatch],
        received_at_ms: i64,
    ) -> Result<Vec<PutOutcome>, StoreError>;

    /// Stores one encoded batch in a transaction of its own, like [`put_encoded`](Self::put_encoded).
    fn put_one(
        &mut self,
        batch: &EncodedBatch,
        received_at_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        let outcomes = self.put_encoded(std::slice::from_ref(batch), received_at_ms)?;
        outcomes
            .first()
            .copied()
            .ok_or_else(|| StoreError::Invalid {
                sid: batch.sid.clone(),
                seq: batch.seq(),
                reason: "the store reported no outcome".into(),
            })
    }

    /// Stores one batch; (sid, seq) already present → Ok(PutOutcome::Duplicate), nothing changes.
    fn put_batch(&mut self, batch: &Batch, received_at_ms: i64) -> Result<PutOutcome, StoreError> {
        self.put_one(&EncodedBatch::of(batch)?, received_at_ms)
    }

    /// Stores many batches in one transaction: all or nothing.
    fn put_batches(
        &mut self,
        batches: &[Batch],
        received_at_ms: i64,
    ) -> Result<PutReport, StoreError> {
        let mut report = PutReport::default();
        for outcome in self.put_batches_each(batches, received_at_ms)? {
            report.add(outcome);
        }
        Ok(report)
    }

    /// All sessions, oldest first by started_at.
    fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError>;

    /// A session's batches ordered by seq (out-of-order arrival is ordered on read). Unknown id → StoreError::NotFound.
    fn session_batches(&self, sid: &str) -> Result<Vec<Batch>, StoreError>;

    /// Stores many batches in one transaction and reports each one's outcome, in order,
    /// like [`SessionStore::put_encoded`]. An invalid batch refuses the whole call before
    /// the database is touched.
    fn put_batches_each(
        &mut self,
        batches: &[Batch],
        received_at_ms: i64,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        let encoded = batches
            .iter()
            .map(EncodedBatch::of)
            .collect::<Result<Vec<_>, _>>()?;
        self.put_encoded(&encoded, received_at_ms)
    }

    /// Deletes every session in which `user` was identified, with all its batches, in one
    /// transaction.
    ///
    /// A session is the user's if any of its events is a custom `identify` whose
    /// `data.user` is `user` (a string, or a number written as `user`; see
    /// [`identified_user`]), or if its summary's `user` is `user`. With `project`, only
    /// sessions claimed by that project (see [`SessionStore::put_encoded`]) are deleted.
    /// The deleted bytes must not stay readable in the store's files (SQLite:
    /// `secure_delete` and a WAL checkpoint).
    fn forget_user(
        &mut self,
        user: &str,
        project: Option<&str>,
    ) -> Result<ForgetReport, StoreError>;

    /// Deletes every session whose latest batch was received (collector clock) before
    /// `received_before_ms`, epoch ms. Retention: `collect --retain-days`, `sessions prune`.
    fn prune_sessions(&mut self, received_before_ms: i64) -> Result<ForgetReport, StoreError>;

    /// The project that claimed session `sid`, if any.
    fn session_project(&self, sid: &str) -> Result<Option<String>, StoreError>;

    /// The sessions claimed by `project`, ordered like [`SessionStore::list_sessions`].
    fn list_project_sessions(&self, project: &str) -> Result<Vec<SessionSummary>, StoreError> {
        let mut out = Vec::new();
        for s in self.list_sessions()? {
            if self.session_project(&s.id)?.as_deref() == Some(project) {
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// What forgetting a user or pruning old sessions deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForgetReport {
    /// Sessions deleted.
    pub sessions: u64,
    /// Batches deleted.
    pub batches: u64,
    /// Events in those batches.
    pub events: u64,
}

impl ForgetReport {
    /// Adds another report's counts.
    pub fn add(&mut self, other: ForgetReport) {
        self.sessions += other.sessions;
        self.batches += other.batches;
        self.events += other.events;
    }
}

/// The user an `identify` custom event's `data` names: `data.user` as a string, or a
/// number written out (`42`). The same rule picks [`SessionSummary::user`].
pub fn identified_user(data: &serde_json::Value) -> Option<String> {
    match data.get("user") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether any event of `events` identifies `user` ([`identified_user`]).
pub fn identifies(events: &[crate::event::Event], user: &str) -> bool {
    events.iter().any(|e| match e {
        crate::event::Event::Custom(c) if c.name == "identify" => {
            identified_user(&c.data).as_deref() == Some(user)
        }
        _ => false,
    })
}

/// A boxed store is a store, so that [`open`] can return either backend. Every trait
/// method is forwarded, defaulted ones included.
impl<S: SessionStore + ?Sized> SessionStore for Box<S> {
    fn put_encoded(
        &mut self,
        batches: &[EncodedBatch],
        received_at_ms: i64,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        (**self).put_encoded(batches, received_at_ms)
    }

    fn put_one(
        &mut self,
        batch: &EncodedBatch,
        received_at_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        (**self).put_one(batch, received_at_ms)
    }

    fn put_batch(&mut self, batch: &Batch, received_at_ms: i64) -> Result<PutOutcome, StoreError> {
        (**self).put_batch(batch, received_at_ms)
    }

    fn put_batches(
        &mut self,
        batches: &[Batch],
        received_at_ms: i64,
    ) -> Result<PutReport, StoreError> {
        (**self).put_batches(batches, received_at_ms)
    }

    fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        (**self).list_sessions()
    }

    fn session_batches(&self, sid: &str) -> Result<Vec<Batch>, StoreError> {
        (**self).session_batches(sid)
    }

    fn put_batches_each(
        &mut self,
        batches: &[Batch],
        received_at_ms: i64,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        (**self).put_batches_each(batches, received_at_ms)
    }

    fn forget_user(
        &mut self,
        user: &str,
        project: Option<&str>,
    ) -> Result<ForgetReport, StoreError> {
        (**self).forget_user(user, project)
    }

    fn prune_sessions(&mut self, received_before_ms: i64) -> Result<ForgetReport, StoreError> {
        (**self).prune_sessions(received_before_ms)
    }

    fn session_project(&self, sid: &str) -> Result<Option<String>, StoreError> {
        (**self).session_project(sid)
    }

    fn list_project_sessions(&self, project: &str) -> Result<Vec<SessionSummary>, StoreError> {
        (**self).list_project_sessions(project)
    }
}

/// What happened to one stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The batch is new and is now stored.
    Stored,
    /// A batch with the same `(sid, seq)` was already stored; nothing changed.
    Duplicate,
    /// The batch was put for a project, and another project has its session; nothing
    /// changed.
    Foreign,
}

/// Counts of what a multi-batch put did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutReport {
    /// Batches newly stored.
    pub stored: usize,
    /// Batches skipped because their `(sid, seq)` was already stored (or appeared earlier
    /// in the same call).
    pub duplicates: usize,
    /// Batches refused because another project has their session.
    pub foreign: usize,
}

impl PutReport {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: PutOutcome) {
        match outcome {
            PutOutcome::Stored => self.stored += 1,
            PutOutcome::Duplicate => self.duplicates += 1,
            PutOutcome::Foreign => self.foreign += 1,
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
    /// The PostgreSQL server could not be reached, or its database not prepared.
    #[error("cannot open session database {url}: {source}")]
    PostgresOpen {
        /// The URL, password hidden.
        url: String,
        #[source]
        source: PgError,
    },
    /// PostgreSQL failed.
    #[error("session database error: {0}")]
    Postgres(#[source] PgError),
}

/// One batch, checked and encoded for storage: the JSON text of its events as both stores
/// keep it, and the facts its session's summary is made of.
///
/// Encoding a batch costs about as much CPU as the SQL that stores it, so the collector
/// encodes on its request threads, in parallel, and its single writer only runs SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    sid: String,
    seq: i64,
    v: i64,
    pvid: String,
    sent: Option<i64>,
    facts: BatchFacts,
    events: String,
    /// The project the batch is put for, which claims its session.
    project: Option<String>,
}

impl EncodedBatch {
    /// Checks `batch` ([`Batch::validate`]) and encodes it.
    pub fn of(batch: &Batch) -> Result<EncodedBatch, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            sid: batch.sid.clone(),
            seq: batch.seq,
            reason,
        };
        batch.validate().map_err(|e| invalid(e.to_string()))?;
        let seq =
            i64::try_from(batch.seq).map_err(|_| invalid("seq does not fit in 63 bits".into()))?;
        let events = crate::event::events_to_json(&batch.events)
            .map_err(|e| invalid(format!("events cannot be encoded: {e}")))?;
        Ok(EncodedBatch {
            sid: batch.sid.clone(),
            seq,
            v: i64::from(batch.v),
            pvid: batch.pvid.clone(),
            sent: batch.sent,
            facts: BatchFacts::of(batch),
            events,
            project: None,
        })
    }

    /// The same batch, put for `project`: storing it claims its session for `project` if
    /// no project has it, and is refused ([`PutOutcome::Foreign`]) if another has.
    pub fn for_project(mut self, project: &str) -> EncodedBatch {
        self.project = Some(project.to_string());
        self
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The batch's sequence number within its session.
    pub fn seq(&self) -> u64 {
        self.seq.unsigned_abs()
    }

    /// How many events the batch holds.
    pub fn events(&self) -> u64 {
        self.facts.events
    }
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
                duplicates: 1,
                foreign: 0,
            }
        );
    }
}
