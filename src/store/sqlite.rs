//! [`SqliteStore`]: the embedded, single-machine [`SessionStore`].
//!
//! One SQLite file in WAL mode with `synchronous=FULL`, so a committed transaction is on
//! disk before `put_*` returns (the collector only answers 2xx after that).
//! `secure_delete` is on, so deleted session data is overwritten, not merely unlinked
//! from the b-tree. The schema is created and upgraded by the embedded migrations in
//! `migrations/`, tracked with `PRAGMA user_version`.
//!
//! Writers take the database lock up front (`BEGIN IMMEDIATE`), so several processes may
//! share one file; `busy_timeout` makes them wait for each other instead of failing.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{EncodedBatch, ForgetReport, PutOutcome, SessionStore, SessionSummary, StoreError};
use crate::event::{Batch, Event};

mod admin;
mod checkpoint;

use checkpoint::Checkpointer;

/// Schema migrations, in order. Migration `i` takes `user_version` from `i` to `i + 1`.
/// Never edit a released migration; append a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_projects.sql"),
];

/// How long a writer waits for another writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL size from which a store checkpoints in the background ([`checkpoint`]).
const BACKGROUND_CHECKPOINT_FROM: u64 = 1 << 20;

/// A [`SessionStore`] in one SQLite file.
pub struct SqliteStore {
    /// Background WAL checkpoints: started once the WAL first grows past
    /// [`BACKGROUND_CHECKPOINT_FROM`] (busy writers only), `Err` if that failed. Declared
    /// first so that it stops before `conn` closes (the last connection to close
    /// checkpoints and removes the WAL).
    checkpointer: Option<Result<Checkpointer, ()>>,
    conn: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.conn.path())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        migrate(&mut conn).map_err(|e| match e {
            StoreError::Db(source) => open_err(source),
            other => other,
        })?;
        Ok(SqliteStore {
            checkpointer: None,
            conn,
        })
    }

    /// After a commit: hands WAL checkpoints to a background thread once the WAL has
    /// grown, and tells that thread there is something to copy.
    fn committed(&mut self) {
        match &self.checkpointer {
            Some(Ok(c)) => c.committed(),
            Some(Err(())) => {}
            None => {
                let Some(path) = self.conn.path().filter(|p| !p.is_empty()) else {
                    return;
                };
                let wal = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
                if wal < BACKGROUND_CHECKPOINT_FROM {
                    return;
                }
                let started = Checkpointer::start(Path::new(path))
                    .map_err(
                        |e| tracing::warn!(error = %e, "cannot start background WAL checkpoints"),
                    )
                    .and_then(|c| {
                        self.conn
                            .pragma_update(
                                None,
                                "wal_autocheckpoint",
                                checkpoint::WRITER_AUTOCHECKPOINT,
                            )
                            .map(|()| c)
                            .map_err(
                                |e| tracing::warn!(error = %e, "cannot raise wal_autocheckpoint"),
                            )
                    });
                if let Ok(c) = &started {
                    c.committed();
                }
                self.checkpointer = Some(started);
            }
        }
    }
}

/// Sets the connection's durability and safety pragmas.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Reading the journal mode back also checks that the file is a SQLite database.
    let _mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Applies the migrations the database has not seen yet, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > supported {
        return Err(StoreError::NewerSchema { found, supported });
    }
    if found < supported {
        for sql in &MIGRATIONS[found as usize..] {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", supported)?;
    }
    tx.commit()?;
    Ok(())
}

/// Inserts one batch inside `tx` and folds it into its session's summary; with a
/// project, claims its session first, or refuses it if another project has it.
fn put_in(
    tx: &Transaction<'_>,
    batch: &EncodedBatch,
    received_at_ms: i64,
) -> Result<PutOutcome, StoreError> {
    if let Some(project) = &batch.project {
        match admin::owner(tx, &batch.sid)? {
            Some(owner) if owner != *project => return Ok(PutOutcome::Foreign),
            Some(_) => {}
            None => {
                tx.prepare_cached(
                    "INSERT INTO session_projects (session_id, project) VALUES (?1, ?2)",
                )?
                .execute(params![batch.sid, project])?;
            }
        }
    }
    let facts = &batch.facts;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO batches
                 (session_id, seq, v, pvid, sent, received_at, first_t, last_t, n_events, events)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (session_id, seq) DO NOTHING",
        )?
        .execute(params![
            batch.sid,
            batch.seq,
            batch.v,
            batch.pvid,
            batch.sent,
            received_at_ms,
            facts.first_t,
            facts.last_t,
            facts.events as i64,
            batch.events,
        ])?;
    if inserted == 0 {
        return Ok(PutOutcome::Duplicate);
    }

    let new_page = tx
        .prepare_cached(
            "INSERT INTO page_views (session_id, pvid) VALUES (?1, ?2)
             ON CONFLICT (session_id, pvid) DO NOTHING",
        )?
        .execute(params![batch.sid, batch.pvid])?;

    let (url_t, url) = facts
        .first_meta
        .as_ref()
        .map_or((None, None), |(t, u)| (Some(*t), Some(u.as_str())));
    let (user_t, user) = facts
        .last_identify
        .as_ref()
        .map_or((None, None), |(t, u)| (Some(*t), Some(u.as_str())));
    // In an upsert, bare column names are the stored row's values before the update.
    tx.prepare_cached(
        "INSERT INTO sessions
             (id, started_at, ended_at, batches, events, pages,
              first_url, first_url_t, first_url_seq, user, user_t, user_seq, received_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?8, ?11)
         ON CONFLICT (id) DO UPDATE SET
             started_at = min(started_at, excluded.started_at),
             ended_at = max(ended_at, excluded.ended_at),
             batches = batches + 1,
             events = events + excluded.events,
             pages = pages + excluded.pages,
             first_url = CASE WHEN excluded.first_url_t IS NOT NULL AND (first_url_t IS NULL
                     OR (excluded.first_url_t, excluded.first_url_seq) < (first_url_t, first_url_seq))
                 THEN excluded.first_url ELSE first_url END,
             first_url_seq = CASE WHEN excluded.first_url_t IS NOT NULL AND (first_url_t IS NULL
                     OR (excluded.first_url_t, excluded.first_url_seq) < (first_url_t, first_url_seq))
                 THEN excluded.first_url_seq ELSE first_url_seq END,
             first_url_t = CASE WHEN excluded.first_url_t IS NOT NULL AND (first_url_t IS NULL
                     OR (excluded.first_url_t, excluded.first_url_seq) < (first_url_t, first_url_seq))
                 THEN excluded.first_url_t ELSE first_url_t END,
             user = CASE WHEN excluded.user_t IS NOT NULL AND (user_t IS NULL
                     OR (excluded.user_t, excluded.user_seq) > (user_t, user_seq))
                 THEN excluded.user ELSE user END,
             user_seq = CASE WHEN excluded.user_t IS NOT NULL AND (user_t IS NULL
                     OR (excluded.user_t, excluded.user_seq) > (user_t, user_seq))
                 THEN excluded.user_seq ELSE user_seq END,
             user_t = CASE WHEN excluded.user_t IS NOT NULL AND (user_t IS NULL
                     OR (excluded.user_t, excluded.user_seq) > (user_t, user_seq))
                 THEN excluded.user_t ELSE user_t END,
             received_at = max(received_at, excluded.received_at)",
    )?
    .execute(params![
        batch.sid,
        facts.first_t,
        facts.last_t,
        facts.events as i64,
        new_page as i64,
        url,
        url_t,
        batch.seq,
        user,
        user_t,
        received_at_ms,
    ])?;
    Ok(PutOutcome::Stored)
}

/// A `sessions` row selected as `id, started_at, ended_at, batches, events, pages,
/// first_url, user`.
fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        id: row.get(0)?,
        started_at: row.get(1)?,
        ended_at: row.get(2)?,
        batches: row.get(3)?,
        events: row.get(4)?,
        pages: row.get(5)?,
        first_url: row.get(6)?,
        user: row.get(7)?,
    })
}

impl SessionStore for SqliteStore {
    fn put_encoded(
        &mut self,
        batches: &[EncodedBatch],
        received_at_ms: i64,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        // Dropping the transaction on any error rolls everything back.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcomes = batches
            .iter()
            .map(|b| put_in(&tx, b, received_at_ms))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        self.committed();
        Ok(outcomes)
    }

    fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, started_at, ended_at, batches, events, pages, first_url, user
             FROM sessions ORDER BY started_at, id",
        )?;
        let rows = stmt.query_map([], summary)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn session_batches(&self, sid: &str) -> Result<Vec<Batch>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, v, pvid, sent, events FROM batches
             WHERE session_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([sid])?;
        let mut batches = Vec::new();
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let corrupt = |reason: String| StoreError::Corrupt {
                sid: sid.to_string(),
                seq,
                reason,
            };
            let json: String = row.get(4)?;
            let events: Vec<Event> =
                crate::event::from_json(&json).map_err(|e| corrupt(e.to_string()))?;
            batches.push(Batch {
                v: row.get(1)?,
                sid: sid.to_string(),
                pvid: row.get(2)?,
                seq: u64::try_from(seq).map_err(|_| corrupt("negative seq".into()))?,
                sent: row.get(3)?,
                events,
            });
        }
        if batches.is_empty() {
            // A session row without batches cannot exist; check anyway for a clear error.
            let known: Option<String> = self
                .conn
                .query_row("SELECT id FROM sessions WHERE id = ?1", [sid], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Err(StoreError::NotFound(sid.to_string()));
            }
        }
        Ok(batches)
    }

    fn forget_user(
        &mut self,
        user: &str,
        project: Option<&str>,
    ) -> Result<ForgetReport, StoreError> {
        admin::forget_user(&mut self.conn, user, project)
    }

    fn prune_sessions(&mut self, received_before_ms: i64) -> Result<ForgetReport, StoreError> {
        admin::prune_sessions(&mut self.conn, received_before_ms)
    }

    fn session_project(&self, sid: &str) -> Result<Option<String>, StoreError> {
        admin::owner(&self.conn, sid)
    }

    fn list_project_sessions(&self, project: &str) -> Result<Vec<SessionSummary>, StoreError> {
        admin::list_project_sessions(&self.conn, project)
    }
}

#[cfg(test)]
mod tests {
    //! What only SQLite has. The behaviour every store shares is tested once for both
    //! backends in `tests/store_suite` (run by `tests/store_sqlite.rs` and
    //! `tests/store_postgres.rs`).
    use super::*;

    fn batch(sid: &str, pvid: &str, seq: u64, events: &str) -> Batch {
        let b: Batch = serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"{sid}","pvid":"{pvid}","seq":{seq},"events":{events}}}"#
        ))
        .unwrap();
        b.validate().unwrap();
        b
    }

    #[test]
    fn data_survives_reopen_and_is_plain_json_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let b = batch(
            "s1",
            "p1",
            0,
            r#"[{"k":"custom","t":1000,"name":"note","data":{"canary":"CANARY-7f3a"}}]"#,
        );
        SqliteStore::open(&path).unwrap().put_batch(&b, 0).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.session_batches("s1").unwrap(), vec![b]);
        drop(store);
        // The WAL may still hold the page; look in both files.
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend(std::fs::read(dir.path().join("s.db-wal")).unwrap_or_default());
        assert!(raw.windows(11).any(|w| w == b"CANARY-7f3a"));
    }

    #[test]
    fn refuses_newer_schema_and_non_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err}"
        );

        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0xAB; 8192]).unwrap();
        let err = SqliteStore::open(&junk).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("junk.db"), "{err}");
    }
}
