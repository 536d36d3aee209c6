//! The reviewer's desk: the quarantine in a browser, served on the reviewer's own machine
//! (loopback only) and decrypted there with the reviewer's identity, exactly as the CLI
//! does; the gateway never sees plaintext. `guard` admits requests, `pages` and `reports`
//! show (in the `chrome` they share), `actions` changes (filing a four-eyes request first
//! where the policy guards the action), `requests` lists, approves and denies those
//! requests and offers to carry out approved ones, `html` makes message HTML safe,
//! `i18n` speaks English and Dutch, `chart` draws the report's weeks.

mod actions;
mod chart;
mod chrome;
mod guard;
mod html;
mod i18n;
mod opener;
mod pages;
mod reports;
mod requests;
mod session;

pub use opener::LoginFile;
pub use session::Lifetimes;
pub use session::{random_token, same};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::review::{ReviewContext, ReviewError};

/// Why the desk could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("the desk listens on loopback only; {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving the desk: {0}")]
    Serve(std::io::Error),
}

/// Sizes the desk works in; each bounds memory or time per request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages per inbox page.
    pub page_size: usize,
    /// Summaries one inbox page may decrypt while looking for matches of the filters
    /// that only work after decryption (sender, recipient, subject).
    pub scan: usize,
    /// Audit records shown (newest first); the whole chain is still verified.
    pub audit_rows: usize,
    /// Messages one selection may export or delete.
    pub selection: usize,
    /// Sanitised HTML bodies kept in memory for their frames.
    pub frames: usize,
    /// Largest form the desk reads, in bytes.
    pub form_bytes: usize,
    /// Requests doing review work (admin API, decryption, release) at once; more wait.
    pub workers: usize,
    /// How long a reviewer's session lasts.
    pub sessions: Lifetimes,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            page_size: 50,
            scan: 5_000,
            audit_rows: 500,
            selection: 1_000,
            frames: 32,
            form_bytes: 256 * 1024,
            workers: 4,
            sessions: Lifetimes::default(),
        }
    }
}

/// What every handler shares.
pub struct Desk {
    context: Arc<ReviewContext>,
    sessions: session::Sessions,
    addr: SocketAddr,
    frames: html::Frames,
    limits: Limits,
    workers: tokio::sync::Semaphore,
}

/// A desk bound to its address, not yet serving.
pub struct Bound {
    listener: TcpListener,
    desk: Arc<Desk>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Bound {
    /// Binds `listen` (loopback only; port 0 picks a free port) for `context`.
    pub async fn bind(
        context: ReviewContext,
        listen: SocketAddr,
        limits: Limits,
    ) -> Result<Self, DeskError> {
        if !listen.ip().is_loopback() {
            return Err(DeskError::NotLoopback(listen));
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| DeskError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| DeskError::Bind {
            addr: listen,
            source,
        })?;
        let desk = Arc::new(Desk {
            context: Arc::new(context),
            sessions: session::Sessions::new(addr, limits.sessions),
            addr,
            frames: html::Frames::new(limits.frames),
            workers: tokio::sync::Semaphore::new(limits.workers.max(1)),
            limits,
        });
        Ok(Self {
            listener,
            desk,
            addr,
        })
    }

    /// The URL to open: it carries the one-time secret.
    pub fn url(&self) -> String {
        self.desk.sessions.login_url()
    }

    /// Each new one-time URL, made when a session ends, for the terminal to show.
    pub fn urls(&self) -> tokio::sync::watch::Receiver<String> {
        self.desk.sessions.login_urls()
    }

    /// Changes each time a one-time URL is used (so a login file can go).
    pub fn redemptions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.desk.sessions.redemptions()
    }

    /// A handle that can end the current session from outside (the terminal).
    pub fn control(&self) -> Control {
        Control(self.desk.clone())
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), DeskError> {
        // A session that runs out while no request comes still ends on time.
        let sweeping = self.desk.clone();
        let every = (self.desk.limits.sessions.idle / 4).clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(30),
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => sweeping.sessions.sweep(tokio::time::Instant::now()),
                    () = stop.cancelled() => break,
                }
            }
        });
        let app = router(self.desk);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(DeskError::Serve)
    }
}

/// Ends the desk's session on the reviewer's word, for a new one-time URL.
#[derive(Clone)]
pub struct Control(Arc<Desk>);

impl Control {
    /// Ends the current session (if any) and makes a new one-time URL.
    pub fn end_session(&self) {
        self.0.sessions.end();
    }
}

fn router(desk: Arc<Desk>) -> Router {
    let routes = Router::new()
        .route("/", get(pages::home))
        .route("/desk.css", get(pages::stylesheet))
        .route("/inbox", get(pages::inbox))
        .route("/message/{id}", get(pages::open_form).post(pages::message))
        .route("/frame/{token}", get(pages::frame))
        .route("/report", get(reports::report))
        .route("/report.csv", get(reports::report_csv))
        .route("/audit", get(reports::audit))
        .route("/lang", post(actions::language))
        .route("/selection", post(actions::selection))
        .route("/message/{id}/eml", post(actions::eml))
        .route("/message/{id}/release", post(actions::release))
        .route("/message/{id}/hold", post(actions::hold))
        .route("/message/{id}/delete", post(actions::delete))
        .route("/requests", get(requests::page))
        .route("/requests/{number}/{decision}", post(requests::decide))
        .layer(DefaultBodyLimit::max(desk.limits.form_bytes));
    // The guard wraps the whole router, not each route, so that it runs before routing:
    // it takes the session's capability off the path the routes then see.
    Router::new()
        .fallback_service(routes.with_state(desk.clone()))
        .layer(axum::middleware::from_fn_with_state(desk, guard::check))
}

/// Runs review work (blocking admin client, decryption on every core, the release relay's
/// own runtime) off the server's threads, at most `Limits::workers` at a time.
async fn blocking<T: Send + 'static>(
    desk: &Arc<Desk>,
    work: impl FnOnce(&ReviewContext) -> Result<T, ReviewError> + Send + 'static,
) -> Result<T, ReviewError> {
    blocking_under(desk, None, work).await
}

/// As [`blocking`], carried out under the approved four-eyes request `request` when there
/// is one (the admin API then lets a guarded action through for its requester).
async fn blocking_under<T: Send + 'static>(
    desk: &Arc<Desk>,
    request: Option<u64>,
    work: impl FnOnce(&ReviewContext) -> Result<T, ReviewError> + Send + 'static,
) -> Result<T, ReviewError> {
    let _permit = desk
        .workers
        .acquire()
        .await
        .map_err(|_| ReviewError::Interrupted("the desk is stopping".into()))?;
    let context = match request {
        None => desk.context.clone(),
        Some(_) => Arc::new((*desk.context).clone().under_request(request)),
    };
    tokio::task::spawn_blocking(move || work(&context))
        .await
        .map_err(|e| ReviewError::Interrupted(format!("a desk task failed: {e}")))?
}
