//! Writing one sealed message: into `tmp/`, then fsync and rename into `messages/`.

use std::path::{Path, PathBuf};

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::{MessageId, StoreError};

pub(super) fn final_path(messages_dir: &Path, id: MessageId) -> PathBuf {
    messages_dir.join(format!("{id}.age"))
}

/// A sealed message being written. Dropping it unfinished removes the temp file.
///
/// Writes go to the blocking pool with the caller's buffer moved along (not through
/// `tokio::fs::File`, which keeps a copy buffer of its own for every open file: 64 KiB per
/// session receiving a large message).
pub struct BlobWriter {
    id: MessageId,
    tmp_path: PathBuf,
    final_path: PathBuf,
    /// `None` while a write is on the blocking pool, or once persisted.
    file: Option<std::fs::File>,
    written: u64,
}

impl BlobWriter {
    pub(super) async fn create(
        id: MessageId,
        tmp_dir: &Path,
        messages_dir: &Path,
    ) -> Result<Self, StoreError> {
        let tmp_path = tmp_dir.join(format!("{id}.age.tmp"));
        let path = tmp_path.clone();
        let file = blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
        })
        .await
        .map_err(|e| StoreError::io(&tmp_path, e))?;
        Ok(Self {
            id,
            final_path: final_path(messages_dir, id),
            tmp_path,
            file: Some(file),
            written: 0,
        })
    }

    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Appends sealed bytes.
    pub async fn write(&mut self, sealed: Vec<u8>) -> Result<(), StoreError> {
        let mut file = self.file.take().ok_or(StoreError::Closed)?;
        let len = sealed.len() as u64;
        let file = blocking(move || file.write_all(&sealed).map(|()| file))
            .await
            .map_err(|e| StoreError::io(&self.tmp_path, e))?;
        self.file = Some(file);
        self.written += len;
        Ok(())
    }

    /// fsyncs the file and renames it into place. Returns the sealed size. The directory
    /// entry is made durable by the group commit that follows.
    pub(super) async fn persist(mut self) -> Result<u64, StoreError> {
        let file = self.file.take().ok_or(StoreError::Closed)?;
        let (from, to) = (self.tmp_path.clone(), self.final_path.clone());
        let result = blocking(move || {
            file.sync_all()?;
            drop(file);
            std::fs::rename(from, to)
        })
        .await;
        match result {
            Ok(()) => {
                // Renamed: nothing left in tmp/ for Drop to clean.
                self.tmp_path = PathBuf::new();
                Ok(self.written)
            }
            Err(e) => Err(StoreError::io(&self.tmp_path, e)),
        }
    }
}

/// Runs file I/O on the blocking pool; a lost task is an I/O error like any other.
async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(op)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp_path.as_os_str().is_empty() {
            // A single unlink: cheap enough not to need the blocking pool.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
