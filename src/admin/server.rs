//! Serves the admin API on a Unix domain socket (never on the SMTP listener) and names each
//! client by its uid (`SO_PEERCRED`) for the audit trail.

use std::fs::Permissions;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Oversight;
use super::handler::serve;
use super::peer::Peer;
use crate::store::QuarantineStore;

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
///
/// `bind(2)` creates the socket file with the process umask, so a socket bound in place
/// would be open to everyone until a chmod (under umask 000 another user connects in
/// that window). It is bound instead in a fresh 0700 folder beside the path, set to 0600
/// there and renamed into place: at the path it only ever exists with its final mode.
pub fn bind(path: &Path) -> Result<UnixListener, AdminError> {
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
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(bind_err)?;
    let private = PrivateDir::create(parent).map_err(bind_err)?;
    // `.rXXXXXX/s` is as long as the usual name (`admin.sock`): a path that fits
    // `sun_path` (108 bytes) fits here too.
    let staged = private.path.join("s");
    let listener = UnixListener::bind(&staged).map_err(bind_err)?;
    std::fs::set_permissions(&staged, Permissions::from_mode(SOCKET_MODE)).map_err(bind_err)?;
    std::fs::rename(&staged, path).map_err(bind_err)?;
    Ok(listener)
}

/// Mode of the admin socket: connecting needs write permission on it, so only its owner
/// (and root) can use the API.
const SOCKET_MODE: u32 = 0o600;

/// A folder only its owner can enter, removed (with what is left in it) when dropped.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// Creates `.rXXXXXX` in `parent` with mode 0700. `mkdir` fails on a name that
    /// exists, so nothing planted there in advance is ever used.
    fn create(parent: &Path) -> std::io::Result<Self> {
        let mut last = None;
        for _ in 0..8 {
            let tag = uuid::Uuid::new_v4().simple().to_string();
            let path = parent.join(format!(".r{}", &tag[..6]));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    // The mode given to mkdir is cut by the umask, never widened by it;
                    // set it exactly in case the umask took the owner's bits.
                    std::fs::set_permissions(&path, Permissions::from_mode(0o700))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Serves requests until `shutdown` is cancelled, then removes the socket file.
pub async fn run<S: QuarantineStore>(
    listener: UnixListener,
    path: PathBuf,
    store: Arc<S>,
    oversight: Arc<Oversight>,
    shutdown: CancellationToken,
) {
    accept_loop(listener, shutdown, move |stream: UnixStream, _| {
        let store = store.clone();
        let oversight = oversight.clone();
        async move {
            let peer = match stream.peer_cred() {
                Ok(cred) => Peer::local(cred.uid(), std::path::Path::new(PASSWD)),
                Err(_) => Peer::unknown(),
            };
            serve(stream, store, &oversight, peer).await;
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
