//! `reclaim imap`: the quarantine in a mail client. An IMAP4rev1 server (RFC 3501; read-only
//! unless deleting is enabled) on the reviewer's own loopback, reading summaries from the admin API
//! and decrypting messages here with the reviewer's identity, exactly as the desk does.
//! `connection` reads commands within bounds, `parser` decodes them with imap-codec and
//! maps them onto what `session` answers, `mailbox` and `state` hold mailboxes and their
//! persisted UIDs and flags, `fetch`, `mime` and `search` answer FETCH and SEARCH,
//! `response` formats.
//!
//! No LOGINDISABLED and no STARTTLS: the server listens on loopback only, so the password
//! never crosses a network, and it is a random one printed at start for this run only.

mod connection;
mod detached;
pub mod fetch;
pub mod mailbox;
pub mod mime;
pub mod parser;
pub mod response;
pub mod search;
mod session;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::review::ReviewError;
pub use detached::Detached;
pub use mailbox::{Deletion, Quarantine, Review};

/// Why the IMAP server could not start or a command could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("reclaim imap listens on loopback only; {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the IMAP state file {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error("an IMAP task failed")]
    Poisoned,
}

/// Bounds on what one client may make the server read, hold or do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest command line, in bytes (RFC 7162 suggests at least 8000).
    pub line_bytes: usize,
    /// Largest literal a command may carry, in bytes: only LOGIN needs one, APPEND is
    /// refused.
    pub literal_bytes: usize,
    /// Longest command with its literals, in bytes.
    pub command_bytes: usize,
    /// Logged out after this long without a command once logged in (RFC 3501 5.4 asks
    /// for at least 30 minutes); an IDLE command counts as quiet too (RFC 2177).
    pub idle: Duration,
    /// While a client IDLEs, how often the quarantine is looked at for new and removed
    /// messages (each look may list the quarantine anew).
    pub idle_poll: Duration,
    /// Disconnected after this long without logging in.
    pub login: Duration,
    /// Failed LOGIN/AUTHENTICATE attempts before the connection is dropped.
    pub failed_logins: u32,
    /// Messages one SEARCH may decrypt for TEXT or BODY; more is answered NO.
    pub search_decrypts: usize,
    /// Connections served at once; more are told BYE.
    pub connections: usize,
    /// How long a listing of the quarantine is reused.
    pub listing_fresh: Duration,
    /// Decrypted messages one connection keeps in memory for its next fetches.
    pub cached_messages: usize,
    /// A FETCH of many messages reads them ahead in batches of at most this many messages
    /// and (by their sizes in the index) bytes: one audited read per batch, where one per
    /// message would cost a durable audit commit each. A larger message is read alone.
    /// The admin API takes at most 500 messages and 16 MiB sealed per batch.
    pub read_ahead_messages: usize,
    pub read_ahead_bytes: u64,
    /// Whether messages a client marks \Deleted are deleted from the quarantine at EXPUNGE
    /// and CLOSE (through the admin API, under its roles and four-eyes rules). Off: the
    /// quarantine is read-only and \Deleted is refused.
    pub deletes: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            line_bytes: 8 * 1024,
            literal_bytes: 64 * 1024,
            command_bytes: 128 * 1024,
            idle: Duration::from_secs(30 * 60),
            idle_poll: Duration::from_secs(30),
            login: Duration::from_secs(60),
            failed_logins: 3,
            search_decrypts: 200,
            connections: 16,
            listing_fresh: Duration::from_secs(10),
            cached_messages: 8,
            read_ahead_messages: 250,
            read_ahead_bytes: 8 * 1024 * 1024,
            deletes: false,
        }
    }
}

/// What every connection shares.
pub struct Server {
    store: mailbox::Store,
    password: String,
    limits: Limits,
}

/// The IMAP server bound to its address, not yet serving.
pub struct Bound {
    listener: TcpListener,
    server: Arc<Server>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Bound {
    /// Binds `listen` (loopback only; port 0 picks a free port) for `quarantine`, with its
    /// UIDs and flags kept in `state_dir`.
    pub async fn bind(
        quarantine: Box<dyn Quarantine>,
        state_dir: &std::path::Path,
        listen: SocketAddr,
        limits: Limits,
    ) -> Result<Self, ImapError> {
        if !listen.ip().is_loopback() {
            return Err(ImapError::NotLoopback(listen));
        }
        let state = state::State::load(state_dir)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ImapError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ImapError::Bind {
            addr: listen,
            source,
        })?;
        let server = Arc::new(Server {
            store: mailbox::Store::new(quarantine, state, limits.listing_fresh),
            password: crate::desk::random_token(),
            limits,
        });
        Ok(Self {
            listener,
            server,
            addr,
        })
    }

    /// The password of this run, for any user name.
    pub fn password(&self) -> &str {
        &self.server.password
    }

    /// Serves until `shutdown` is cancelled; connections then get `* BYE`.
    pub async fn serve(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(
            self.server.limits.connections.max(1),
        ));
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = shutdown.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "imap accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let server = self.server.clone();
            let stop = shutdown.clone();
            let permit = slots.clone().try_acquire_owned().ok();
            tracker.spawn(async move {
                connection::run(stream, peer, server, permit, stop).await;
            });
        }
        tracker.close();
        tracker.wait().await;
    }
}
