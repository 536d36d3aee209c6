//! Group commit: one thread makes every message that is ready durable together: small
//! messages appended to the active segment with one `fdatasync`, large messages' directory
//! entries with one directory fsync, and all their index entries in one index commit.
//! Concurrent sessions therefore share fsyncs instead of queueing behind each other.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::index::{Commit, Index};
use super::outbox::NoticeOutcome;
use super::segment::{SegmentWriter, Segments};
use super::staging::InMemory;
use super::{StoreError, sync_dir};

/// How many commits may wait for the committer; senders beyond that wait their turn.
const QUEUE_DEPTH: usize = 4096;
/// Upper bound on one batch, so that one commit never holds a huge transaction.
const MAX_BATCH: usize = 1024;

/// A commit, the sealed bytes of a message staged in memory (`None`: its file is already
/// in `messages/`), and who waits for the outcome.
type Request = (
    Commit,
    Option<InMemory>,
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
    pub(super) fn start(
        index: Arc<Index>,
        messages_dir: PathBuf,
        segments: Arc<Segments>,
    ) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let mut writer = SegmentWriter::new(segments);
        let thread = std::thread::Builder::new()
            .name("reclaim-commit".to_owned())
            .spawn(move || run(receiver, &index, &messages_dir, &mut writer))
            .map_err(|e| StoreError::io(std::path::Path::new("commit thread"), e))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Queues a commit and waits until it is durable; returns what became of its notice.
    /// `inline` is the message itself when it was staged in memory.
    pub(super) async fn commit(
        &self,
        entry: Commit,
        inline: Option<InMemory>,
    ) -> Result<NoticeOutcome, StoreError> {
        let (done, wait) = oneshot::channel();
        self.sender
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send((entry, inline, done))
            .await
            .map_err(|_| StoreError::Closed)?;
        match wait.await {
            Ok(Ok(queued)) => Ok(queued),
            Ok(Err(error)) => Err(StoreError::Batch(error)),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

fn run(
    mut receiver: mpsc::Receiver<Request>,
    index: &Index,
    messages_dir: &std::path::Path,
    writer: &mut SegmentWriter,
) {
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
        let mut commits = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        let mut inline = Vec::with_capacity(batch.len());
        for (commit, staged, done) in batch.drain(..) {
            commits.push(commit);
            inline.push(staged);
            waiters.push(done);
        }
        let result = make_durable(&mut commits, &inline, index, messages_dir, writer);
        // The staged bytes (and their memory reservations) go only now.
        drop(inline);
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

/// Appends the batch's in-memory messages to the segment and syncs it, syncs `messages/`
/// for the others, then commits every index entry at once.
fn make_durable(
    commits: &mut [Commit],
    inline: &[Option<InMemory>],
    index: &Index,
    messages_dir: &std::path::Path,
    writer: &mut SegmentWriter,
) -> Result<Vec<NoticeOutcome>, StoreError> {
    let mut files = false;
    for (commit, staged) in commits.iter_mut().zip(inline) {
        match staged {
            Some(memory) => commit.segment = Some(writer.append(memory.sealed())?),
            None => files = true,
        }
    }
    writer.sync()?;
    if files {
        sync_dir(messages_dir)?;
    }
    let queued = index.insert_all(commits, crate::clock::unix_now())?;
    writer.committed(commits.iter().filter_map(|c| c.segment));
    Ok(queued)
}
