//! The store writer: one thread that owns the [`SessionStore`] and commits batches in
//! groups (group commit).
//!
//! Every acknowledgement waits for a disk sync (`synchronous=FULL`), and a sync costs the
//! same for one batch as for a hundred, so the writer shares each sync among as many
//! requests as it can:
//!
//! 1. It blocks for the first batch, then takes every batch already queued (up to
//!    [`MAX_GROUP`]).
//! 2. If requests are still being decoded (each holds a [`Ticket`] from before its
//!    decode until its batch is queued), it keeps the group open for them, but never
//!    longer than half the recent commit time and never over [`MAX_GATHER`]: waiting is
//!    only worth it while a commit costs more than the wait.
//! 3. It stores the whole group in one transaction and commits once (one sync), then
//!    answers every request of the group. Nobody is answered before that commit.
//!
//! While a group commits, new batches queue up and form the next group, so decoding on
//! the request threads overlaps the writer's disk sync. If a group fails, its batches are
//! retried one by one, so one bad batch cannot fail its neighbours.
//!
//! When the last [`Writer`] handle is dropped the writer drains the queue, logs what it
//! did (group sizes, commit times) at `info` level and ends.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::store::{EncodedBatch, PutOutcome, SessionStore, StoreError};

/// Most batches committed in one transaction.
pub const MAX_GROUP: usize = 256;

/// Longest a group is held open for batches still being decoded.
pub const MAX_GATHER: Duration = Duration::from_millis(2);

/// Weight of the newest commit in the running mean commit time (1/8).
const EWMA_SHIFT: u32 = 3;

struct Job {
    batch: EncodedBatch,
    reply: oneshot::Sender<Result<PutOutcome, StoreError>>,
}

/// State shared by the handles and the thread.
#[derive(Debug, Default)]
struct Shared {
    /// Requests holding a [`Ticket`]: being decoded, their batch not yet queued.
    decoding: AtomicUsize,
    /// The thread has ended.
    stopped: AtomicBool,
}

/// Handle for submitting batches to the writer thread. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// A promise to hand the writer a batch soon: take one before decoding a request, so that
/// a group being formed waits for it (briefly). Dropping it unused withdraws the promise.
#[derive(Debug)]
pub(crate) struct Ticket {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.shared.decoding.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Ticket {
    /// Stores one batch; resolves once it is durable (or refused).
    pub(crate) async fn put(self, batch: EncodedBatch) -> Result<PutOutcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        let sent = self.jobs.send(Job { batch, reply });
        // The job is queued before the ticket is given back, so a writer that sees no
        // ticket left finds every promised batch in its queue.
        drop(self);
        sent.map_err(|_| WriteError::Stopped)?;
        Ok(answer.await.map_err(|_| WriteError::Stopped)??)
    }
}

/// The writer thread; it ends once every [`Writer`] handle is dropped and the queue is
/// drained.
#[derive(Debug)]
pub(crate) struct WriterThread(JoinHandle<()>);

impl WriterThread {
    /// Waits for the writer to finish (blocking).
    pub(crate) fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the store writer thread panicked");
        }
    }
}

/// Why a batch could not be handed to the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store writer has stopped")]
    Stopped,
}

impl Writer {
    /// Starts the writer thread, which takes ownership of `store`.
    pub(crate) fn start(
        store: impl SessionStore + Send + 'static,
    ) -> std::io::Result<(Writer, WriterThread)> {
        let (jobs, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("understudy-store-writer".into())
                .spawn(move || {
                    let _running = Running(&shared);
                    run(store, &rx, &shared);
                })?
        };
        Ok((Writer { jobs, shared }, WriterThread(thread)))
    }

    /// A [`Ticket`] for a batch about to be decoded.
    pub(crate) fn ticket(&self) -> Ticket {
        self.shared.decoding.fetch_add(1, Ordering::AcqRel);
        Ticket {
            jobs: self.jobs.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Whether the writer thread is still taking work.
    pub(crate) fn is_running(&self) -> bool {
        !self.shared.stopped.load(Ordering::Acquire)
    }
}

/// Marks the writer stopped when its thread ends, normally or by a panic.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
    }
}

/// What the writer did, for its log line.
#[derive(Debug, Default)]
struct Stats {
    groups: u64,
    batches: u64,
    largest: usize,
    failed_groups: u64,
    gathered: u64,
    gather_wait: Duration,
    /// Time spent storing and committing.
    busy: Duration,
    started: Option<Instant>,
    /// Commit times: counts per bucket of [`BUCKETS_MS`].
    commit_ms: [u64; BUCKETS_MS.len() + 1],
}

/// Upper bounds (ms) of the commit-time buckets.
const BUCKETS_MS: [f64; 12] = [
    0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 25.0, 50.0,
];

impl Stats {
    fn commit(&mut self, took: Duration) {
        let ms = took.as_secs_f64() * 1e3;
        let i = BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BUCKETS_MS.len());
        self.commit_ms[i] += 1;
    }

    /// Upper bound of the bucket holding quantile `q` of commit times, ms.
    fn commit_quantile(&self, q: f64) -> String {
        let total: u64 = self.commit_ms.iter().sum();
        let want = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.commit_ms.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return BUCKETS_MS.get(i).map_or_else(
                    || format!(">{}", BUCKETS_MS[BUCKETS_MS.len() - 1]),
                    |b| format!("≤{b}"),
                );
            }
        }
        "-".into()
    }

    fn log(&self) {
        if self.groups == 0 {
            return;
        }
        tracing::info!(
            "store writer: {} batches in {} transactions (mean {:.1}, largest {}); commit p50 {} ms, p99 {} ms; storing {:.0}% of the time; {} batches waited for ({:.1} ms in all); {} groups retried one by one",
            self.batches,
            self.groups,
            self.batches as f64 / self.groups as f64,
            self.largest,
            self.commit_quantile(0.5),
            self.commit_quantile(0.99),
            self.started.map_or(0.0, |s| {
                100.0 * self.busy.as_secs_f64() / s.elapsed().as_secs_f64().max(1e-9)
            }),
            self.gathered,
            self.gather_wait.as_secs_f64() * 1e3,
            self.failed_groups,
        );
    }
}

fn run(mut store: impl SessionStore, rx: &mpsc::Receiver<Job>, shared: &Shared) {
    let mut stats = Stats::default();
    let mut batches = Vec::with_capacity(MAX_GROUP);
    let mut replies = Vec::with_capacity(MAX_GROUP);
    // Running mean of commit times, in µs (scaled by 2^EWMA_SHIFT).
    let mut commit_us_scaled: u64 = 0;
    while let Ok(first) = rx.recv() {
        batches.push(first.batch);
        replies.push(first.reply);
        let opened = Instant::now();
        stats.started.get_or_insert(opened);
        let limit = MAX_GATHER.min(Duration::from_micros((commit_us_scaled >> EWMA_SHIFT) / 2));
        loop {
            while batches.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => {
                        batches.push(job.batch);
                        replies.push(job.reply);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if batches.len() >= MAX_GROUP || shared.decoding.load(Ordering::Acquire) == 0 {
                break;
            }
            let Some(left) = limit.checked_sub(opened.elapsed()).filter(|d| !d.is_zero()) else {
                break;
            };
            match rx.recv_timeout(left) {
                Ok(job) => {
                    batches.push(job.batch);
                    replies.push(job.reply);
                    stats.gathered += 1;
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        stats.gather_wait += opened.elapsed();

        let now = now_ms();
        let started = Instant::now();
        let result = store.put_encoded(&batches, now);
        let took = started.elapsed();
        stats.groups += 1;
        stats.batches += batches.len() as u64;
        stats.largest = stats.largest.max(batches.len());
        stats.commit(took);
        stats.busy += took;
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        commit_us_scaled = commit_us_scaled - (commit_us_scaled >> EWMA_SHIFT) + us;
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    // The requester may have gone away; its batch is stored all the same.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                stats.failed_groups += 1;
                tracing::warn!(error = %err, batches = batches.len(), "group commit failed; storing one by one");
                for (reply, batch) in replies.drain(..).zip(&batches) {
                    let _ = reply.send(store.put_one(batch, now));
                }
            }
        }
        batches.clear();
    }
    stats.log();
}

/// Wall-clock time in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn batch(seq: u64) -> EncodedBatch {
        let b: crate::event::Batch = serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"s1","pvid":"p1","seq":{seq},"events":[{{"k":"vis","t":1733300000000,"hidden":true}}]}}"#
        ))
        .unwrap();
        EncodedBatch::of(&b).unwrap()
    }

    #[test]
    fn a_ticket_that_never_comes_delays_a_group_only_briefly() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("w.db")).unwrap();
        let (writer, thread) = Writer::start(store).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            // A few commits first, so the writer knows what a commit costs.
            for seq in 0..5 {
                let out = writer.ticket().put(batch(seq)).await.unwrap();
                assert_eq!(out, PutOutcome::Stored);
            }
            let stalled = writer.ticket();
            let started = Instant::now();
            let out = writer.ticket().put(batch(5)).await.unwrap();
            assert_eq!(out, PutOutcome::Stored);
            // At most MAX_GATHER of waiting, plus a commit; generous for a loaded machine.
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
            drop(stalled);
            assert_eq!(writer.shared.decoding.load(Ordering::Acquire), 0);
            let dup = writer.ticket().put(batch(5)).await.unwrap();
            assert_eq!(dup, PutOutcome::Duplicate);
        });
        assert!(writer.is_running());
        drop(writer);
        thread.join();
    }

    #[test]
    fn a_bad_batch_does_not_fail_the_rest_of_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let store = SqliteStore::open(&path).unwrap();
        // The database itself refuses batch 1 (the decoder and the encoder let it pass).
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON batches WHEN NEW.seq = 1
                 BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;",
            )
            .unwrap();
        // Queue everything before the writer runs, so it all lands in one group.
        let (jobs, rx) = mpsc::channel();
        let answers: Vec<_> = [batch(0), batch(1), batch(2), batch(0)]
            .into_iter()
            .map(|batch| {
                let (reply, answer) = oneshot::channel();
                jobs.send(Job { batch, reply }).unwrap();
                answer
            })
            .collect();
        drop(jobs);
        run(store, &rx, &Shared::default());

        let got: Vec<String> = answers
            .into_iter()
            .map(|a| match a.blocking_recv().unwrap() {
                Ok(outcome) => format!("{outcome:?}"),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(
            got,
            [
                "Stored",
                "session database error: refused by a trigger",
                "Stored",
                "Duplicate"
            ]
        );
        let stored = SqliteStore::open(&path)
            .unwrap()
            .session_batches("s1")
            .unwrap();
        assert_eq!(stored.iter().map(|b| b.seq).collect::<Vec<_>>(), [0, 2]);
    }
}
