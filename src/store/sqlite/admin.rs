//! [`SqliteStore`](super::SqliteStore)'s deletions and project claims: forgetting a user,
//! pruning old sessions, and which project owns a session.
//!
//! Deletions run with `secure_delete` on (set for every connection in `configure`), so
//! freed cells and pages are overwritten with zeros, and end with a `TRUNCATE` WAL
//! checkpoint, so the WAL frames that still held the deleted rows are gone from the `-wal`
//! file too. That checkpoint is retried until the WAL is empty, for at most
//! [`CHECKPOINT_BOUND`]; if other connections keep it busy for longer, the deletion stands
//! but the call fails, saying that old copies may remain in the WAL. The checkpoint runs
//! whenever the `-wal` file is not empty, even if the call found nothing left to delete:
//! an earlier call may have deleted the rows and failed on its checkpoint, so a call that
//! succeeds has always emptied the WAL (or found it empty). Finding a user's
//! sessions reads outside the write transaction (WAL readers do not block the collector's
//! writer); only the deletes hold the write lock, and pruning deletes in small
//! transactions.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::event::Event;
use crate::store::{identifies, ForgetReport, SessionSummary, StoreError};

/// Sessions deleted per transaction when pruning, so the writer never waits long.
const PRUNE_CHUNK: usize = 256;

/// Longest time a deletion's closing checkpoint keeps trying to empty the WAL.
const CHECKPOINT_BOUND: Duration = Duration::from_secs(10);

/// First and longest pause between two checkpoint attempts.
const CHECKPOINT_PAUSE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_millis(50));

pub(super) fn forget_user(
    conn: &mut Connection,
    user: &str,
    project: Option<&str>,
) -> Result<ForgetReport, StoreError> {
    forget_user_within(conn, user, project, CHECKPOINT_BOUND)
}

/// [`forget_user`], giving the closing checkpoint at most `bound`.
fn forget_user_within(
    conn: &mut Connection,
    user: &str,
    project: Option<&str>,
    bound: Duration,
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
    if report.sessions > 0 || wal_may_hold_data(conn) {
        checkpoint(conn, bound, &report)?;
    }
    Ok(report)
}

pub(super) fn prune_sessions(
    conn: &mut Connection,
    received_before_ms: i64,
) -> Result<ForgetReport, StoreError> {
    prune_sessions_within(conn, received_before_ms, CHECKPOINT_BOUND)
}

/// [`prune_sessions`], giving the closing checkpoint at most `bound`.
fn prune_sessions_within(
    conn: &mut Connection,
    received_before_ms: i64,
    bound: Duration,
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
    if report.sessions > 0 || wal_may_hold_data(conn) {
        checkpoint(conn, bound, &report)?;
    }
    Ok(report)
}

/// Whether the connection's `-wal` file has any bytes, which may be old copies of rows
/// deleted earlier (by a call whose checkpoint failed, or in another process).
///
/// The file's size, not the WAL's frame count: a checkpoint that does not truncate (the
/// background [`Checkpointer`](super::checkpoint::Checkpointer)'s, or SQLite's automatic
/// one) and the writer starting the WAL over leave older frames' bytes in the file until
/// they are overwritten. `true` when it cannot tell (a checkpoint is then merely
/// redundant); `false` for a database without files or without a `-wal` file.
fn wal_may_hold_data(conn: &Connection) -> bool {
    let Some(db) = conn.path().filter(|p| !p.is_empty()) else {
        return false;
    };
    match std::fs::metadata(format!("{db}-wal")) {
        Ok(meta) => meta.len() > 0,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
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
/// deleted (as `deleted` counts, maybe none) or deleted by an earlier call whose
/// checkpoint failed leave no old copy behind.
///
/// `PRAGMA wal_checkpoint(TRUNCATE)` does not fail when it cannot finish: it reports
/// busy. It waits (the connection's busy timeout) for the writer and for readers of old
/// snapshots, but gives up at once, without waiting, while another connection
/// checkpoints (the background [`Checkpointer`](super::checkpoint::Checkpointer)). So it is
/// repeated, with short pauses, until it reports the whole WAL copied and emptied, for at
/// most `bound` in all: each attempt's busy wait is cut to the time left. If the WAL is
/// still not empty by then, the deletion stands but this fails, so that callers do not
/// report a clean forget; calling again (once the other connections let go) finishes it.
fn checkpoint(
    conn: &Connection,
    bound: Duration,
    deleted: &ForgetReport,
) -> Result<(), StoreError> {
    let busy_timeout: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    let busy_timeout = Duration::from_millis(busy_timeout.max(0) as u64);
    let outcome = checkpoint_attempts(conn, busy_timeout, bound, deleted);
    let restored = conn.busy_timeout(busy_timeout);
    outcome?;
    Ok(restored?)
}

/// The attempts of [`checkpoint`], each waiting at most `busy_timeout` for locks.
fn checkpoint_attempts(
    conn: &Connection,
    busy_timeout: Duration,
    bound: Duration,
    deleted: &ForgetReport,
) -> Result<(), StoreError> {
    let start = Instant::now();
    let (mut pause, longest_pause) = CHECKPOINT_PAUSE;
    let mut attempt = 0;
    loop {
        attempt += 1;
        conn.busy_timeout(busy_timeout.min(bound.saturating_sub(start.elapsed())))?;
        let (busy, log, copied): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if busy == 0 && log == copied {
            if attempt > 1 {
                tracing::debug!(attempt, "WAL checkpoint after a deletion went through");
            }
            return Ok(());
        }
        let left = bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            let (what, whose) = if deleted.sessions > 0 {
                let what = format!(
                    "deleted {} sessions ({} batches, {} events)",
                    deleted.sessions, deleted.batches, deleted.events
                );
                (what, "the deleted data")
            } else {
                (
                    "found nothing to delete".to_string(),
                    "data deleted earlier",
                )
            };
            let message = format!(
                "{what}, but other connections kept the WAL busy for {:.1} s ({attempt} \
                 checkpoint attempts, {copied} of {log} WAL frames copied): {whose} may \
                 remain in the -wal file until a checkpoint empties it (try again)",
                start.elapsed().as_secs_f64(),
            );
            tracing::warn!("{message}");
            return Err(StoreError::Db(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some(message),
            )));
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(longest_pause);
    }
}

pub(super) fn owner(conn: &Connection, sid: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT project FROM session_projects WHERE session_id = ?1")?
        .query_row([sid], |r| r.get(0))
        .optional()?)
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
    let rows = stmt.query_map([project], super::summary)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::super::SqliteStore;
    use crate::event::Batch;
    use crate::store::{SessionStore, StoreError};

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

    /// Stores batches of a user `CANARY-user-5d1e`, with canary text, beside 20 sessions
    /// that stay.
    fn fill(store: &mut SqliteStore) {
        for i in 0..20 {
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
    }

    /// Canaries in the database file and its `-wal` file (if any).
    fn assert_no_canaries(path: &Path) {
        assert_eq!(
            canaries(path),
            0,
            "deleted bytes left in the db or -wal file"
        );
    }

    fn canaries(path: &Path) -> usize {
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        [path.to_path_buf(), wal]
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .map(|b| {
                b.windows(11)
                    .filter(|w| w == b"CANARY-user" || w == b"CANARY-data")
                    .count()
            })
            .sum()
    }

    /// A second connection in a read transaction: it holds a snapshot from before the
    /// forget, so the WAL cannot be emptied until it ends.
    fn reader(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
            .unwrap();
        assert!(n > 0);
        conn
    }

    /// Ends `reader`'s read transaction after `after`, on another thread.
    fn release(
        reader: rusqlite::Connection,
        after: Duration,
    ) -> std::thread::JoinHandle<rusqlite::Connection> {
        std::thread::spawn(move || {
            std::thread::sleep(after);
            reader.execute_batch("COMMIT").unwrap();
            reader
        })
    }

    fn busy_timeout_ms(store: &SqliteStore) -> i64 {
        store
            .conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap()
    }

    /// One `TRUNCATE` checkpoint comes back busy while the reader holds its snapshot (its
    /// busy wait, cut short here, runs out first, as it does at once while another
    /// connection checkpoints): forget must try again until the WAL is empty.
    #[test]
    fn forget_retries_the_checkpoint_until_a_reader_lets_go() {
        let (_dir, path, mut store) = open();
        fill(&mut store);
        assert!(canaries(&path) > 0);
        store.conn.busy_timeout(Duration::from_millis(20)).unwrap();
        let held = release(reader(&path), Duration::from_millis(300));
        let started = Instant::now();
        let report = store.forget_user("CANARY-user-5d1e", None).unwrap();
        let took = started.elapsed();
        let _reader = held.join().unwrap();
        assert_eq!(report.sessions, 1);
        assert_no_canaries(&path);
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert_eq!(busy_timeout_ms(&store), 20, "busy timeout not restored");
        assert_eq!(store.list_sessions().unwrap().len(), 20);
    }

    /// With the store's own busy timeout, `TRUNCATE` itself waits for a short reader.
    #[test]
    fn forget_waits_for_a_short_reader() {
        let (_dir, path, mut store) = open();
        fill(&mut store);
        let held = release(reader(&path), Duration::from_millis(300));
        let report = store.forget_user("CANARY-user-5d1e", None).unwrap();
        let _reader = held.join().unwrap();
        assert_eq!(report.sessions, 1);
        assert_no_canaries(&path);
    }

    /// A reader that outlasts the bound: the rows are deleted, but forget says that copies
    /// may remain in the WAL instead of reporting a clean forget, and returns in about the
    /// bound even though the connection's busy timeout is longer.
    #[test]
    fn forget_fails_when_a_reader_outlasts_the_bound() {
        let (_dir, path, mut store) = open();
        fill(&mut store);
        let held = reader(&path);
        let started = Instant::now();
        let err = super::forget_user_within(
            &mut store.conn,
            "CANARY-user-5d1e",
            None,
            Duration::from_millis(200),
        )
        .unwrap_err();
        let took = started.elapsed();
        match &err {
            StoreError::Db(rusqlite::Error::SqliteFailure(e, Some(_))) => {
                assert_eq!(e.code, rusqlite::ErrorCode::DatabaseBusy)
            }
            other => panic!("unexpected error {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("deleted 1 sessions")
                && message.contains("may remain in the -wal file"),
            "{message}"
        );
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(busy_timeout_ms(&store), 10_000, "busy timeout not restored");
        // The message is true: the deletion stands, old copies are still on disk.
        assert_eq!(store.list_sessions().unwrap().len(), 20);
        assert!(canaries(&path) > 0);
        drop(held);
    }

    /// A forget that failed on the bound leaves the deleted rows' old copies in the WAL;
    /// forgetting the same user again finds no session left, but must still empty the WAL
    /// before it reports success.
    #[test]
    fn forgetting_again_after_a_failed_checkpoint_empties_the_wal() {
        let (_dir, path, mut store) = open();
        fill(&mut store);
        let held = reader(&path);
        super::forget_user_within(
            &mut store.conn,
            "CANARY-user-5d1e",
            None,
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(canaries(&path) > 0);
        held.execute_batch("COMMIT").unwrap();
        let report = store.forget_user("CANARY-user-5d1e", None).unwrap();
        assert_eq!(report.sessions, 0);
        assert_no_canaries(&path);
        assert_eq!(store.list_sessions().unwrap().len(), 20);
    }

    /// The same for pruning: a prune that finds nothing left to delete still empties the
    /// WAL that an earlier prune could not.
    #[test]
    fn pruning_again_after_a_failed_checkpoint_empties_the_wal() {
        let (_dir, path, mut store) = open();
        fill(&mut store);
        let held = reader(&path);
        let err = super::prune_sessions_within(&mut store.conn, T + 1, Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("deleted 21 sessions"), "{err}");
        assert!(canaries(&path) > 0);
        drop(held);
        let report = store.prune_sessions(T + 1).unwrap();
        assert_eq!(report.sessions, 0);
        assert_no_canaries(&path);
    }

    /// When nothing is deleted and the WAL still cannot be emptied, the error says that
    /// data deleted earlier may remain, not that something was deleted now.
    #[test]
    fn forgetting_nothing_fails_while_the_wal_cannot_be_emptied() {
        let (_dir, path, mut store) = open();
        fill(&mut store);
        let held = reader(&path);
        let err =
            super::forget_user_within(&mut store.conn, "nobody", None, Duration::from_millis(200))
                .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("found nothing to delete")
                && message.contains("may remain in the -wal file"),
            "{message}"
        );
        drop(held);
        assert_eq!(store.forget_user("nobody", None).unwrap().sessions, 0);
        assert_eq!(store.list_sessions().unwrap().len(), 21);
    }

    /// A forget that finds nothing on a store whose WAL is already empty does not wait for
    /// a checkpoint (which a long reader would make it fail).
    #[test]
    fn forgetting_nothing_with_an_empty_wal_needs_no_checkpoint() {
        let (_dir, path, mut store) = open();
        fill(&mut store);
        store.forget_user("CANARY-user-5d1e", None).unwrap();
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
        let held = reader(&path);
        let report =
            super::forget_user_within(&mut store.conn, "nobody", None, Duration::from_millis(200))
                .unwrap();
        assert_eq!(report.sessions, 0);
        drop(held);
    }
}
