//! The store writer: one thread that owns the [`SessionStore`] and commits batches in
//! groups.
//!
//! Requests hand their decoded batch to the writer and wait for its outcome. The writer
//! takes whatever has queued up (up to [`MAX_GROUP`] batches) and stores it in one
//! transaction, so concurrent requests share one disk sync (group commit) while each
//! request is answered only after its own batch is durable. If a group fails, its
//! batches are retried one by one, so one bad batch cannot fail its neighbours.

use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::event::Batch;
use crate::store::{PutOutcome, SessionStore, StoreError};

/// Most batches committed in one transaction.
pub const MAX_GROUP: usize = 256;

struct Job {
    batch: Batch,
    reply: oneshot::Sender<Result<PutOutcome, StoreError>>,
}

/// Handle for submitting batches to the writer thread. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
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
        let (jobs, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("understudy-store-writer".into())
            .spawn(move || run(store, rx))?;
        Ok((Writer { jobs }, WriterThread(thread)))
    }

    /// Stores one batch; resolves once it is durable (or refused).
    pub(crate) async fn put(&self, batch: Batch) -> Result<PutOutcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { batch, reply })
            .map_err(|_| WriteError::Stopped)?;
        Ok(answer.await.map_err(|_| WriteError::Stopped)??)
    }

    /// Whether the writer thread is still taking work.
    pub(crate) fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }
}

fn run(mut store: impl SessionStore, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batches = Vec::with_capacity(MAX_GROUP);
    let mut replies = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        batches.push(first.batch);
        replies.push(first.reply);
        while batches.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    batches.push(job.batch);
                    replies.push(job.reply);
                }
                Err(_) => break,
            }
        }
        let now = now_ms();
        match store.put_batches_each(&batches, now) {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    // The requester may have gone away; its batch is stored all the same.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, batches = batches.len(), "group commit failed; storing one by one");
                for (reply, batch) in replies.drain(..).zip(&batches) {
                    let _ = reply.send(store.put_batch(batch, now));
                }
            }
        }
        batches.clear();
    }
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

    fn batch(seq: u64, v: u32) -> Batch {
        serde_json::from_str(&format!(
            r#"{{"v":{v},"sid":"s1","pvid":"p1","seq":{seq},"events":[{{"k":"vis","t":1733300000000,"hidden":true}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_bad_batch_does_not_fail_the_rest_of_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let store = SqliteStore::open(&path).unwrap();
        // Queue everything before the writer runs, so it all lands in one group.
        let (jobs, rx) = mpsc::unbounded_channel();
        let answers: Vec<_> = [batch(0, 1), batch(1, 99), batch(2, 1), batch(0, 1)]
            .into_iter()
            .map(|batch| {
                let (reply, answer) = oneshot::channel();
                jobs.send(Job { batch, reply }).unwrap();
                answer
            })
            .collect();
        drop(jobs);
        run(store, rx);

        let got: Vec<String> = answers
            .into_iter()
            .map(|a| match a.blocking_recv().unwrap() {
                Ok(outcome) => format!("{outcome:?}"),
                Err(StoreError::Invalid { seq, .. }) => format!("invalid {seq}"),
                Err(e) => panic!("unexpected {e}"),
            })
            .collect();
        assert_eq!(got, ["Stored", "invalid 1", "Stored", "Duplicate"]);
        let stored = SqliteStore::open(&path)
            .unwrap()
            .session_batches("s1")
            .unwrap();
        assert_eq!(stored.iter().map(|b| b.seq).collect::<Vec<_>>(), [0, 2]);
    }
}
