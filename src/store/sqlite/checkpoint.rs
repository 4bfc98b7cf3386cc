//! Background WAL checkpoints, so that a busy writer's commits do not pay for them.
//!
//! In WAL mode every commit appends pages to the `-wal` file, and a checkpoint copies them
//! back into the database file and syncs it. SQLite's automatic checkpoint runs inside
//! the commit that takes the WAL over `wal_autocheckpoint` pages (1 000 by default), so
//! one commit in every few dozen also copies megabytes and syncs twice more, and every
//! request waiting for that commit waits for all of it: that is the collector's tail
//! latency.
//!
//! A [`Checkpointer`] is a thread with a connection of its own that runs
//! `PRAGMA wal_checkpoint(PASSIVE)` after the store has committed, at most every
//! [`INTERVAL`]. A passive checkpoint never blocks the writer: it copies what was
//! committed and leaves the rest for next time. The writer keeps its automatic
//! checkpoint as a backstop, raised to [`WRITER_AUTOCHECKPOINT`] pages: it only starts the
//! WAL over once everything in it has been copied, and by then the background thread has
//! copied nearly all of it, so the backstop costs a sync or two, rarely, instead of the
//! copy.
//!
//! Durability does not depend on any of this: a commit is on disk when its WAL frames are
//! synced (`synchronous=FULL`), whoever checkpoints them later.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Shortest time between two background checkpoints.
pub(super) const INTERVAL: Duration = Duration::from_millis(200);

/// The writer connection's own automatic checkpoint, in pages, once a background
/// checkpointer runs (4 KiB pages: 40 MiB of WAL).
pub(super) const WRITER_AUTOCHECKPOINT: u32 = 10_000;

/// The background checkpoint thread of one store. Dropping it stops the thread and waits
/// for it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts a checkpointer for the database at `path`, with a connection of its own.
    pub(super) fn start(path: &Path) -> std::io::Result<Checkpointer> {
        let (nudge, nudged) = mpsc::sync_channel(1);
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("understudy-checkpoint".into())
            .spawn(move || match open(&path) {
                Ok(conn) => run(&conn, &nudged),
                Err(e) => tracing::warn!(error = %e, "cannot open a connection for background WAL checkpoints"),
            })?;
        Ok(Checkpointer {
            nudge: Some(nudge),
            thread: Some(thread),
        })
    }

    /// Tells the thread that something was committed. Never blocks.
    pub(super) fn committed(&self) {
        if let Some(nudge) = &self.nudge {
            match nudge.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {}
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current checkpoint, if any.
        self.nudge = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the WAL checkpoint thread panicked");
            }
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    // A checkpoint syncs the WAL before copying and the database after, at this level.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // This connection only checkpoints; it must never start one on its own.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

fn run(conn: &Connection, nudged: &Receiver<()>) {
    while nudged.recv().is_ok() {
        let started = Instant::now();
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match result {
            Ok((log, done)) => {
                tracing::trace!(log, done, took = ?started.elapsed(), "WAL checkpoint");
            }
            // Another connection is checkpointing (the writer's backstop, or a TRUNCATE
            // after a delete): that one does the work.
            Err(e) => tracing::debug!(error = %e, "background WAL checkpoint skipped"),
        }
        // Nudges that arrive meanwhile wait in the channel (one is enough).
        if let Some(rest) = INTERVAL.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_in_the_background_and_stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let conn = Connection::open(&path).unwrap();
        let _: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        for _ in 0..50 {
            conn.execute("INSERT INTO t VALUES (zeroblob(8192))", [])
                .unwrap();
        }
        let db_size = || std::fs::metadata(&path).unwrap().len();
        // Nothing has been copied into the database file yet.
        assert!(db_size() < 100_000, "{}", db_size());
        let c = Checkpointer::start(&path).unwrap();
        c.committed();
        drop(c); // waits for the checkpoint it was nudged for
        assert!(db_size() > 50 * 8192, "{}", db_size());
    }
}
