//! Group commit: one thread makes blobs' directory entries and index entries durable for
//! every message that is ready, with one directory fsync and one index commit per batch.
//! Concurrent sessions therefore share fsyncs instead of queueing behind each other.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::index::{Commit, Index};
use super::outbox::NoticeOutcome;
use super::{StoreError, sync_dir};

/// How many commits may wait for the committer; senders beyond that wait their turn.
const QUEUE_DEPTH: usize = 4096;
/// Upper bound on one batch, so that one commit never holds a huge transaction.
const MAX_BATCH: usize = 1024;

type Request = (
    Commit,
    oneshot::Sender<Result<NoticeOutcome, Arc<StoreError>>>,
);

pub(super) struct Committer {
    /// `None` only while dropping.
    sender: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    /// Closes the queue and waits for the thread, so the index is closed (and can be
    /// reopened) once the store is gone.
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Committer {
    pub(super) fn start(index: Arc<Index>, messages_dir: PathBuf) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("reclaim-commit".to_owned())
            .spawn(move || run(receiver, &index, &messages_dir))
            .map_err(|e| StoreError::io(std::path::Path::new("commit thread"), e))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Queues a commit and waits until it is durable; returns what became of its notice.
    pub(super) async fn commit(&self, entry: Commit) -> Result<NoticeOutcome, StoreError> {
        let (done, wait) = oneshot::channel();
        self.sender
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send((entry, done))
            .await
            .map_err(|_| StoreError::Closed)?;
        match wait.await {
            Ok(Ok(queued)) => Ok(queued),
            Ok(Err(error)) => Err(StoreError::Batch(error)),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

fn run(mut receiver: mpsc::Receiver<Request>, index: &Index, messages_dir: &std::path::Path) {
    let mut batch: Vec<Request> = Vec::new();
    // blocking_recv returns None once every Store handle is gone.
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = crate::clock::unix_now();
        let (commits, waiters): (Vec<Commit>, Vec<_>) = batch.drain(..).unzip();
        let result = sync_dir(messages_dir).and_then(|()| index.insert_all(&commits, now));
        match result {
            Ok(queued) => {
                for (done, n) in waiters.into_iter().zip(queued) {
                    let _ = done.send(Ok(n));
                }
            }
            Err(error) => {
                tracing::error!(%error, messages = waiters.len(), "group commit failed");
                let error = Arc::new(error);
                for done in waiters {
                    let _ = done.send(Err(error.clone()));
                }
            }
        }
    }
}
