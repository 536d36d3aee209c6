//! Serves the admin API on a Unix domain socket, never on the SMTP listener.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::http::{MAX_HEAD, head_end, parse_head, response_head};
use super::routes::{Refusal, Route, route};
use super::{MessageItem, MessagePage};
use crate::store::{Entry, Store};

/// How long a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent admin connections; the API is for a few reviewers, not for load.
const MAX_CLIENTS: usize = 32;

/// Why the admin socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin socket {path} is in use by a running server")]
    InUse { path: PathBuf },
}

/// Binds the admin socket with mode 0600. A stale socket file left by a crash is replaced;
/// a live one (another server answering) is an error.
pub fn bind(path: &Path) -> Result<UnixListener, AdminError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let bind_err = |source| AdminError::Bind {
        path: path.to_owned(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(bind_err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AdminError::InUse {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

/// Serves requests until `shutdown` is cancelled, then removes the socket file.
pub async fn run(
    listener: UnixListener,
    path: PathBuf,
    store: Arc<Store>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        let store = store.clone();
        tracker.spawn(async move {
            serve(stream, &store).await;
            drop(slot);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    let _ = std::fs::remove_file(&path);
}

async fn serve(mut stream: UnixStream, store: &Store) {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(refusal)) => return respond_error(&mut stream, refusal).await,
        Err(_) => {
            return respond_error(
                &mut stream,
                Refusal {
                    status: 408,
                    message: "request timed out".into(),
                },
            )
            .await;
        }
    };
    let result = match parse_head(&head) {
        Ok(head) => route(&head),
        Err(bad) => Err(Refusal {
            status: 400,
            message: bad.0,
        }),
    };
    match result {
        Ok(route) => {
            if let Err(refusal) = answer(&mut stream, store, route).await {
                respond_error(&mut stream, refusal).await;
            }
        }
        Err(refusal) => respond_error(&mut stream, refusal).await,
    }
}

async fn read_head(stream: &mut UnixStream) -> Result<Vec<u8>, Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| Refusal {
            status: 400,
            message: e.to_string(),
        })?;
        if n == 0 {
            return Err(Refusal {
                status: 400,
                message: "connection closed mid-request".into(),
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD {
            return Err(Refusal {
                status: 431,
                message: "request head too large".into(),
            });
        }
    }
}

fn item(entry: Entry) -> MessageItem {
    MessageItem {
        id: entry.id.to_string(),
        received_at: entry.meta.received_at,
        size: entry.meta.size,
        sealed_size: entry.meta.sealed_size,
        domains: entry.meta.domains,
        summary: base64::engine::general_purpose::STANDARD.encode(entry.sealed_summary),
    }
}

fn internal(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "admin request failed");
    Refusal {
        status: 500,
        message: "internal error; see the server log".into(),
    }
}

async fn answer(stream: &mut UnixStream, store: &Store, route: Route) -> Result<(), Refusal> {
    let body = match route {
        Route::Health => {
            serde_json::json!({ "status": "ok", "messages": store.count().map_err(internal)? })
                .to_string()
        }
        Route::List { limit, before } => {
            let entries = store.list(before, limit).map_err(internal)?;
            let next_before = (entries.len() == limit)
                .then(|| entries.last().map(|e| e.id.to_string()))
                .flatten();
            let page = MessagePage {
                messages: entries.into_iter().map(item).collect(),
                next_before,
            };
            serde_json::to_string(&page).map_err(internal)?
        }
        Route::Message(id) => {
            let entry = store
                .get(id)
                .map_err(internal)?
                .ok_or_else(|| not_found(id))?;
            serde_json::to_string(&item(entry)).map_err(internal)?
        }
        Route::Sealed(id) => {
            store
                .get(id)
                .map_err(internal)?
                .ok_or_else(|| not_found(id))?;
            let path = store.blob_path(id);
            let mut file = tokio::fs::File::open(&path).await.map_err(internal)?;
            let length = file.metadata().await.map_err(internal)?.len();
            let _ = stream
                .write_all(&response_head(200, "application/octet-stream", length))
                .await;
            let _ = tokio::io::copy(&mut file, stream).await;
            return Ok(());
        }
    };
    let _ = stream
        .write_all(&response_head(200, "application/json", body.len() as u64))
        .await;
    let _ = stream.write_all(body.as_bytes()).await;
    Ok(())
}

fn not_found(id: crate::store::MessageId) -> Refusal {
    Refusal {
        status: 404,
        message: format!("no message {id}"),
    }
}

async fn respond_error(stream: &mut UnixStream, refusal: Refusal) {
    let body = serde_json::json!({ "error": refusal.message }).to_string();
    let _ = stream
        .write_all(&response_head(
            refusal.status,
            "application/json",
            body.len() as u64,
        ))
        .await;
    let _ = stream.write_all(body.as_bytes()).await;
    // Closing with unread input would reset the connection and the client might never see
    // the error: half-close, then drain what it still sends (bounded in bytes and time).
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut sink = [0u8; 4096];
        let mut left: usize = 1 << 20;
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 || left < n {
                break;
            }
            left -= n;
        }
    })
    .await;
}
