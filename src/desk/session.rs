//! Who may use the desk: one reviewer's session at a time, entered once through a one-time
//! login secret and then held by two secrets that never leave the desk's own origin.
//!
//! Cookies are not scoped by port: a cookie for `127.0.0.1:8123` goes to every server on
//! 127.0.0.1, and another local user can run one. So the session is a pair: a capability
//! in the URL path (`/d/<cap>/…`, which a browser sends only to this origin and, under the
//! desk's referrer policy, never names to another) and a cookie whose `Path` is that
//! capability, so the browser sends it nowhere else either. A request needs both. A
//! session ends after `idle` without a request and at `lifetime` whatever happens; then a
//! fresh one-time login URL is made for the terminal that started the desk.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// A random secret: two version-4 UUIDs (244 random bits from the operating system).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// How long a session may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Ends a session this long after its last request.
    pub idle: Duration,
    /// Ends a session this long after its login, however busy.
    pub absolute: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
        }
    }
}

/// What a live session shows its pages: where its URLs start and its forms' token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `/d/<cap>`: every desk URL of this session starts with it.
    pub root: String,
    pub csrf: String,
}

/// A login just redeemed: what the browser is to be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub root: String,
    /// The cookie's value (its name is [`Sessions::cookie_name`]).
    pub cookie: String,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No session, or not this one's capability and cookie.
    NoSession,
    /// The session was right but has ended; a new login URL was made.
    Expired,
}

struct Live {
    cap: String,
    cookie: String,
    csrf: String,
    started: Instant,
    seen: Instant,
}

struct State {
    /// The one-time login secret; `None` while a session is live.
    login: Option<String>,
    session: Option<Live>,
}

/// The desk's sessions.
pub struct Sessions {
    state: Mutex<State>,
    lifetimes: Lifetimes,
    addr: SocketAddr,
    /// The current login URL, for whoever prints it (and whoever waits for a renewal).
    login_url: watch::Sender<String>,
    /// Told when a login is redeemed, so a login file can be removed.
    redeemed: watch::Sender<u64>,
}

impl Sessions {
    pub fn new(addr: SocketAddr, lifetimes: Lifetimes) -> Self {
        let login = random_token();
        let (login_url, _) = watch::channel(url(addr, &login));
        let (redeemed, _) = watch::channel(0);
        Self {
            state: Mutex::new(State {
                login: Some(login),
                session: None,
            }),
            lifetimes,
            addr,
            login_url,
            redeemed,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two options, valid whatever a panicking holder left.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The URL to open now: it holds the current one-time login secret.
    pub fn login_url(&self) -> String {
        self.login_url.borrow().clone()
    }

    /// Each new login URL, made when a session ends.
    pub fn login_urls(&self) -> watch::Receiver<String> {
        self.login_url.subscribe()
    }

    /// Changes each time a login is redeemed.
    pub fn redemptions(&self) -> watch::Receiver<u64> {
        self.redeemed.subscribe()
    }

    /// The session cookie's name; it carries the port so two desks on one machine do not
    /// overwrite each other's cookie.
    pub fn cookie_name(&self) -> String {
        format!("reclaim_desk_{}", self.addr.port())
    }

    /// Trades the login secret, if `offered` is it, for a new session. Works once.
    pub fn redeem(&self, offered: &str, now: Instant) -> Option<Granted> {
        let granted = {
            let mut state = self.state();
            if !state.login.as_deref().is_some_and(|s| same(s, offered)) {
                return None;
            }
            state.login = None;
            let live = Live {
                cap: random_token(),
                cookie: random_token(),
                csrf: random_token(),
                started: now,
                seen: now,
            };
            let granted = Granted {
                root: format!("/d/{}", live.cap),
                cookie: live.cookie.clone(),
            };
            state.session = Some(live);
            granted
        };
        self.redeemed.send_modify(|n| *n += 1);
        Some(granted)
    }

    /// Admits a request naming capability `cap` with session cookie `cookie`, and counts
    /// it as the session's latest activity.
    pub fn admit(&self, cap: &str, cookie: Option<&str>, now: Instant) -> Result<View, Refusal> {
        let mut state = self.state();
        let Some(live) = state.session.as_mut() else {
            return Err(Refusal::NoSession);
        };
        // Both secrets are compared in full before either result is looked at.
        let cap_ok = same(&live.cap, cap);
        let cookie_ok = cookie.is_some_and(|c| same(&live.cookie, c));
        if !(cap_ok && cookie_ok) {
            return Err(Refusal::NoSession);
        }
        if self.ended(live, now) {
            self.renew(&mut state);
            return Err(Refusal::Expired);
        }
        live.seen = now;
        Ok(View {
            root: format!("/d/{}", live.cap),
            csrf: live.csrf.clone(),
        })
    }

    /// Ends a session whose time is up even when no request comes to notice it, so its
    /// secrets do not outlive it in memory and the terminal gets its new login URL.
    pub fn sweep(&self, now: Instant) {
        let mut state = self.state();
        if state
            .session
            .as_ref()
            .is_some_and(|live| self.ended(live, now))
        {
            self.renew(&mut state);
        }
    }

    /// Ends the session at once (the reviewer asked for a new login URL).
    pub fn end(&self) {
        let mut state = self.state();
        if state.session.is_some() {
            self.renew(&mut state);
        }
    }

    fn ended(&self, live: &Live, now: Instant) -> bool {
        now.duration_since(live.seen) >= self.lifetimes.idle
            || now.duration_since(live.started) >= self.lifetimes.absolute
    }

    fn renew(&self, state: &mut State) {
        state.session = None;
        let login = random_token();
        self.login_url.send_replace(url(self.addr, &login));
        state.login = Some(login);
    }
}

fn url(addr: SocketAddr, login: &str) -> String {
    format!("http://{addr}/login?secret={login}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(
            "127.0.0.1:8123".parse().expect("addr"),
            Lifetimes {
                idle: Duration::from_secs(60),
                absolute: Duration::from_secs(600),
            },
        )
    }

    fn secret(url: &str) -> String {
        url.rsplit('=').next().expect("secret").to_owned()
    }

    fn cap(granted: &Granted) -> &str {
        granted.root.strip_prefix("/d/").expect("a /d/ root")
    }

    #[test]
    fn the_login_secret_works_once_and_needs_both_halves() {
        let s = sessions();
        let t0 = Instant::now();
        let login = secret(&s.login_url());
        assert_eq!(s.admit("x", Some("y"), t0), Err(Refusal::NoSession));
        assert!(s.redeem("wrong", t0).is_none());
        let granted = s.redeem(&login, t0).expect("the printed secret works");
        assert!(s.redeem(&login, t0).is_none(), "but only once");
        let view = s
            .admit(cap(&granted), Some(&granted.cookie), t0)
            .expect("admitted");
        assert_eq!(view.root, granted.root);
        assert_ne!(cap(&granted), granted.cookie, "two secrets, not one");
        // The cookie alone (what any server on 127.0.0.1 might be sent) is not enough,
        // nor is the capability alone.
        assert_eq!(
            s.admit("", Some(&granted.cookie), t0),
            Err(Refusal::NoSession)
        );
        assert_eq!(s.admit(cap(&granted), None, t0), Err(Refusal::NoSession));
        assert_eq!(
            s.admit(cap(&granted), Some(cap(&granted)), t0),
            Err(Refusal::NoSession)
        );
    }

    #[test]
    fn sessions_end_when_idle_and_at_their_lifetime() {
        let s = sessions();
        let t0 = Instant::now();
        let first_url = s.login_url();
        let g = s.redeem(&secret(&first_url), t0).expect("login");
        let at = |secs| t0 + Duration::from_secs(secs);
        // Busy: every request is under a minute after the one before, for 9 minutes.
        for m in 1..10 {
            assert!(s.admit(cap(&g), Some(&g.cookie), at(m * 59)).is_ok(), "{m}");
        }
        // At ten minutes the lifetime ends it however busy it was.
        assert_eq!(
            s.admit(cap(&g), Some(&g.cookie), at(600)),
            Err(Refusal::Expired)
        );
        let second_url = s.login_url();
        assert_ne!(first_url, second_url, "a fresh login URL for the terminal");
        assert_eq!(
            s.admit(cap(&g), Some(&g.cookie), at(601)),
            Err(Refusal::NoSession),
            "the old secrets are gone"
        );
        assert!(s.redeem(&secret(&first_url), at(601)).is_none());
        let g2 = s.redeem(&secret(&second_url), at(601)).expect("new login");
        assert!(s.admit(cap(&g2), Some(&g2.cookie), at(660)).is_ok());
        // Idle: 60 s with no request.
        assert_eq!(
            s.admit(cap(&g2), Some(&g2.cookie), at(720)),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_sweep_ends_an_idle_session_without_a_request() {
        let s = sessions();
        let t0 = Instant::now();
        let mut urls = s.login_urls();
        urls.mark_unchanged();
        let g = s.redeem(&secret(&s.login_url()), t0).expect("login");
        s.sweep(t0 + Duration::from_secs(59));
        assert!(!urls.has_changed().expect("open"), "not yet idle");
        s.sweep(t0 + Duration::from_secs(60));
        assert!(urls.has_changed().expect("open"), "a new URL was made");
        assert_eq!(
            s.admit(cap(&g), Some(&g.cookie), t0 + Duration::from_secs(61)),
            Err(Refusal::NoSession)
        );
        s.end();
        let g = s.redeem(&secret(&s.login_url()), t0).expect("login");
        s.end();
        assert_eq!(
            s.admit(cap(&g), Some(&g.cookie), t0),
            Err(Refusal::NoSession)
        );
    }

    #[test]
    fn secrets_compare_in_full() {
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
    }
}
