//! Writing one sealed message: into `tmp/`, then fsync and rename into `messages/`.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::{MessageId, StoreError};

pub(super) fn final_path(messages_dir: &Path, id: MessageId) -> PathBuf {
    messages_dir.join(format!("{id}.age"))
}

/// A sealed message being written. Dropping it unfinished removes the temp file.
pub struct BlobWriter {
    id: MessageId,
    tmp_path: PathBuf,
    final_path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
}

impl BlobWriter {
    pub(super) async fn create(
        id: MessageId,
        tmp_dir: &Path,
        messages_dir: &Path,
    ) -> Result<Self, StoreError> {
        let tmp_path = tmp_dir.join(format!("{id}.age.tmp"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
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
    pub async fn write(&mut self, sealed: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or(StoreError::Closed)?;
        file.write_all(sealed)
            .await
            .map_err(|e| StoreError::io(&self.tmp_path, e))?;
        self.written += sealed.len() as u64;
        Ok(())
    }

    /// fsyncs the file and renames it into place. Returns the sealed size. The directory
    /// entry is made durable by the group commit that follows.
    pub(super) async fn persist(mut self) -> Result<u64, StoreError> {
        let mut file = self.file.take().ok_or(StoreError::Closed)?;
        let result = async {
            file.flush().await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&self.tmp_path, &self.final_path).await
        }
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

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp_path.as_os_str().is_empty() {
            // A single unlink: cheap enough not to need the blocking pool.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
