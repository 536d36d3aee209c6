//! Serves the admin API on a Unix domain socket (never on the SMTP listener) and names each
//! client by its uid (`SO_PEERCRED`) for the audit trail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::serve;
use super::peer::Peer;
use crate::store::Backend;

/// Concurrent admin connections; the API is for a few reviewers, not for load.
pub(super) const MAX_CLIENTS: usize = 32;
/// Where user names of local peers are looked up.
const PASSWD: &str = "/etc/passwd";

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
    store: Arc<Backend>,
    shutdown: CancellationToken,
) {
    accept_loop(listener, shutdown, move |stream: UnixStream, _| {
        let store = store.clone();
        async move {
            let peer = match stream.peer_cred() {
                Ok(cred) => Peer::local(cred.uid(), std::path::Path::new(PASSWD)),
                Err(_) => Peer::unknown(),
            };
            serve(stream, store, peer).await;
        }
    })
    .await;
    let _ = std::fs::remove_file(&path);
}

/// A listener the admin API accepts clients on (the Unix socket, or TCP for mutual TLS).
pub(super) trait Listener {
    type Stream: Send + 'static;
    type Addr: Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Addr)>> + Send;
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;
    fn accept(&self) -> impl Future<Output = std::io::Result<(UnixStream, Self::Addr)>> + Send {
        UnixListener::accept(self)
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Addr)>> + Send {
        tokio::net::TcpListener::accept(self)
    }
}

/// Runs `handle` for every client until `shutdown`, at most [`MAX_CLIENTS`] at once (the
/// rest are closed at once: the API is for a few reviewers, not for load), then gives the
/// ones in progress a few seconds to finish.
pub(super) async fn accept_loop<L, H, F>(listener: L, shutdown: CancellationToken, handle: H)
where
    L: Listener,
    H: Fn(L::Stream, L::Addr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let tracker = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let Ok((stream, addr)) = accepted else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        let work = handle(stream, addr);
        tracker.spawn(async move {
            work.await;
            drop(slot);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}
