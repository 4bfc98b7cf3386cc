//! [`SqliteStore`](super::SqliteStore)'s deletions and project claims: forgetting a user,
//! pruning old sessions, and which project owns a session.
//!
//! Deletions run with `secure_delete` on (set for every connection in `configure`), so
//! freed cells and pages are overwritten with zeros, and end with a `TRUNCATE` WAL
//! checkpoint, so the WAL frames that still held the deleted rows are gone from the `-wal`
//! file too. Finding a user's sessions reads outside the write transaction (WAL readers do
//! not block the collector's writer); only the deletes hold the write lock, and pruning
//! deletes in small transactions.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::event::Event;
use crate::store::{identifies, ForgetReport, SessionSummary, StoreError};

/// Sessions deleted per transaction when pruning, so the writer never waits long.
const PRUNE_CHUNK: usize = 256;

pub(super) fn forget_user(
    conn: &mut Connection,
    user: &str,
    project: Option<&str>,
) -> Result<ForgetReport, StoreError> {
    let mut sids = BTreeSet::new();
    {
        // The user as it appears inside the stored JSON text (both stores write events
        // with serde_json), to skip batches that cannot mention them.
        let quoted = serde_json::to_string(user).map_err(|e| StoreError::Invalid {
            sid: String::new(),
            seq: 0,
            reason: e.to_string(),
        })?;
        let needle = &quoted[1..quoted.len() - 1];
        let mut stmt = conn.prepare(
            "SELECT session_id, seq, events FROM batches
             WHERE instr(events, 'identify') > 0 AND instr(events, ?1) > 0",
        )?;
        let mut rows = stmt.query([needle])?;
        while let Some(row) = rows.next()? {
            let sid: String = row.get(0)?;
            if sids.contains(&sid) {
                continue;
            }
            let seq: i64 = row.get(1)?;
            let json: String = row.get(2)?;
            let events: Vec<Event> =
                crate::event::from_json(&json).map_err(|e| StoreError::Corrupt {
                    sid: sid.clone(),
                    seq,
                    reason: e.to_string(),
                })?;
            if identifies(&events, user) {
                sids.insert(sid);
            }
        }
        let mut stmt = conn.prepare("SELECT id FROM sessions WHERE user = ?1")?;
        for id in stmt.query_map([user], |r| r.get::<_, String>(0))? {
            sids.insert(id?);
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut report = ForgetReport::default();
    for sid in &sids {
        if let Some(project) = project {
            if owner(&tx, sid)?.as_deref() != Some(project) {
                continue;
            }
        }
        report.add(delete_session(&tx, sid)?);
    }
    tx.commit()?;
    if report.sessions > 0 {
        checkpoint(conn)?;
    }
    Ok(report)
}

pub(super) fn prune_sessions(
    conn: &mut Connection,
    received_before_ms: i64,
) -> Result<ForgetReport, StoreError> {
    let mut report = ForgetReport::default();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let sids: Vec<String> = tx
            .prepare_cached("SELECT id FROM sessions WHERE received_at < ?1 LIMIT ?2")?
            .query_map(
                rusqlite::params![received_before_ms, PRUNE_CHUNK as i64],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        if sids.is_empty() {
            break;
        }
        for sid in &sids {
            report.add(delete_session(&tx, sid)?);
        }
        tx.commit()?;
    }
    if report.sessions > 0 {
        checkpoint(conn)?;
    }
    Ok(report)
}

/// Deletes one session: batches, page views, summary and claim.
fn delete_session(tx: &Transaction<'_>, sid: &str) -> Result<ForgetReport, StoreError> {
    let (batches, events): (i64, i64) = tx
        .prepare_cached(
            "SELECT count(*), coalesce(sum(n_events), 0) FROM batches WHERE session_id = ?1",
        )?
        .query_row([sid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    tx.prepare_cached("DELETE FROM batches WHERE session_id = ?1")?
        .execute([sid])?;
    tx.prepare_cached("DELETE FROM page_views WHERE session_id = ?1")?
        .execute([sid])?;
    let summaries = tx
        .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([sid])?;
    tx.prepare_cached("DELETE FROM session_projects WHERE session_id = ?1")?
        .execute([sid])?;
    Ok(ForgetReport {
        sessions: u64::from(summaries > 0 || batches > 0),
        batches: batches as u64,
        events: events as u64,
    })
}

/// Moves every WAL frame into the database file and empties the WAL, so that rows just
/// deleted leave no old copy behind. A reader holding an old snapshot can block it; the
/// busy timeout applies.
fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    let (busy, _log, _done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        tracing::warn!(
            "WAL checkpoint was blocked by a reader: deleted data stays in the -wal file until the next checkpoint"
        );
    }
    Ok(())
}

pub(super) fn owner(conn: &Connection, sid: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT project FROM session_projects WHERE session_id = ?1")?
        .query_row([sid], |r| r.get(0))
        .optional()?)
}

pub(super) fn claim_session(
    conn: &mut Connection,
    sid: &str,
    project: &str,
) -> Result<String, StoreError> {
    if let Some(owner) = owner(conn, sid)? {
        return Ok(owner);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(
        "INSERT INTO session_projects (session_id, project) VALUES (?1, ?2)
         ON CONFLICT (session_id) DO NOTHING",
    )?
    .execute([sid, project])?;
    let owner = owner(&tx, sid)?.unwrap_or_else(|| project.to_string());
    tx.commit()?;
    Ok(owner)
}

pub(super) fn list_project_sessions(
    conn: &Connection,
    project: &str,
) -> Result<Vec<SessionSummary>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.started_at, s.ended_at, s.batches, s.events, s.pages, s.first_url, s.user
         FROM sessions s JOIN session_projects p ON p.session_id = s.id
         WHERE p.project = ?1 ORDER BY s.started_at, s.id",
    )?;
    let rows = stmt.query_map([project], |row| {
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
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use crate::event::Batch;
    use crate::store::SessionStore;

    const T: i64 = 1_733_300_000_000;

    fn batch(sid: &str, seq: u64, events: &str) -> Batch {
        serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"{sid}","pvid":"p-{sid}","seq":{seq},"events":{events}}}"#
        ))
        .unwrap()
    }

    fn identify(sid: &str, seq: u64, user: &str) -> Batch {
        batch(
            sid,
            seq,
            &format!(r#"[{{"k":"custom","t":{T},"name":"identify","data":{{"user":{user}}}}}]"#),
        )
    }

    fn note(sid: &str, seq: u64, text: &str) -> Batch {
        batch(
            sid,
            seq,
            &format!(r#"[{{"k":"custom","t":{T},"name":"note","data":{{"text":"{text}"}}}}]"#),
        )
    }

    fn open() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path).unwrap();
        (dir, path, store)
    }

    #[test]
    fn secure_delete_is_on() {
        let (_dir, _path, store) = open();
        let on: i64 = store
            .conn
            .query_row("PRAGMA secure_delete", [], |r| r.get(0))
            .unwrap();
        assert_eq!(on, 1);
    }

    #[test]
    fn forgotten_bytes_are_gone_from_every_file() {
        let (dir, path, mut store) = open();
        // Enough other data that the forgotten rows share pages with rows that stay.
        for i in 0..50 {
            store
                .put_batch(&note(&format!("s-keep{i}"), 0, &"k".repeat(300)), T)
                .unwrap();
        }
        store
            .put_batch(&identify("s-gone", 0, r#""CANARY-user-5d1e""#), T)
            .unwrap();
        store
            .put_batch(&note("s-gone", 1, &"CANARY-data-9b7c ".repeat(400)), T)
            .unwrap();
        let grep = |when: &str| {
            let mut files = 0;
            let mut seen = 0;
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let file = entry.unwrap().path();
                let bytes = std::fs::read(&file).unwrap();
                files += 1;
                for canary in [&b"CANARY-user"[..], b"CANARY-data"] {
                    let hits = bytes.windows(canary.len()).filter(|w| w == &canary).count();
                    assert_eq!(
                        hits,
                        0,
                        "{when}: {} still holds {}",
                        file.display(),
                        String::from_utf8_lossy(canary)
                    );
                }
                seen += bytes.len();
            }
            (files, seen)
        };
        // Before: the canaries are on disk (the test can see them).
        let before: usize = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .map(|b| b.windows(11).filter(|w| w == b"CANARY-data").count())
            .sum();
        assert!(before > 0);
        let report = store.forget_user("CANARY-user-5d1e", None).unwrap();
        assert_eq!(report.sessions, 1);
        // With the connection still open (as in a running collector): db, -wal and -shm.
        let (files, bytes) = grep("while open");
        assert!(files >= 2 && bytes > 0, "{files} files");
        drop(store);
        grep("after close");
        assert_eq!(
            SqliteStore::open(&path)
                .unwrap()
                .list_sessions()
                .unwrap()
                .len(),
            50
        );
    }
}
