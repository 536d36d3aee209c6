//! The mailboxes: INBOX (every message this reviewer can open) and one per retired domain,
//! each a snapshot of the listing with UIDs from the persisted [`State`], and the
//! quarantine they are read from.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ImapError;
use super::state::{Flags, MailboxUids, State};
use crate::clock::unix_now;
use crate::review::filter::Filter;
use crate::review::listed::Listed;
use crate::review::{ReviewContext, ReviewError, export, listing, parse_id};

/// Where the IMAP server reads messages: summaries without an audited read, content only
/// through the audited fetch of one message.
pub trait Quarantine: Send + Sync + 'static {
    /// Every message this reviewer can open, with its opened summary.
    fn list(&self) -> Result<Vec<Listed>, ReviewError>;
    /// One whole message, decrypted here; recorded in the audit trail with the reason.
    fn read(&self, id: &str) -> Result<Vec<u8>, ReviewError>;
    /// The retired domains the config names (mailboxes even while empty).
    fn domains(&self) -> Vec<String>;
}

/// The quarantine through the review service, as the desk and `reclaim show` read it.
pub struct Review {
    pub context: ReviewContext,
    /// Recorded with every read.
    pub reason: String,
}

impl Quarantine for Review {
    fn list(&self) -> Result<Vec<Listed>, ReviewError> {
        listing::fetch(&self.context, None, &Filter::default())
    }

    fn read(&self, id: &str) -> Result<Vec<u8>, ReviewError> {
        export::fetch_plain(&self.context, parse_id(id)?, "show", &self.reason)
    }

    fn domains(&self) -> Vec<String> {
        self.context
            .config
            .as_ref()
            .map(|c| c.domains.names().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// A mailbox as SELECT, STATUS and the selected state see it.
pub struct Snapshot {
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    /// Ordered by UID: the sequence number of a message is its index plus one.
    pub messages: Vec<Entry>,
}

/// One message of a mailbox.
pub struct Entry {
    pub uid: u32,
    pub listed: Listed,
}

/// The name of the mailbox holding everything.
pub const INBOX: &str = "INBOX";

/// The listing, the state and the quarantine every connection shares.
pub struct Store {
    quarantine: Box<dyn Quarantine>,
    state: Mutex<State>,
    listing: Mutex<Option<(Instant, Arc<Vec<Listed>>)>>,
    /// How long a listing is reused before the admin API is asked again.
    fresh_for: Duration,
}

impl Store {
    pub fn new(quarantine: Box<dyn Quarantine>, state: State, fresh_for: Duration) -> Self {
        Self {
            quarantine,
            state: Mutex::new(state),
            listing: Mutex::new(None),
            fresh_for,
        }
    }

    /// The listing, reused while fresh: clients ask STATUS of every mailbox often, and
    /// each listing decrypts every summary.
    fn listing(&self) -> Result<Arc<Vec<Listed>>, ImapError> {
        let mut cached = self.listing.lock().map_err(|_| ImapError::Poisoned)?;
        if let Some((at, listing)) = cached.as_ref()
            && at.elapsed() < self.fresh_for
        {
            return Ok(listing.clone());
        }
        let listing = Arc::new(self.quarantine.list()?);
        *cached = Some((Instant::now(), listing.clone()));
        Ok(listing)
    }

    /// INBOX and the domains' mailboxes, sorted.
    pub fn names(&self) -> Result<Vec<String>, ImapError> {
        let listing = self.listing()?;
        let mut names: Vec<String> = self.quarantine.domains();
        for m in listing.iter() {
            names.extend(m.domains.iter().cloned());
        }
        // `postmaster` is where mail to the bare <postmaster> is filed; INBOX has it.
        names.retain(|n| n != "postmaster" && !n.eq_ignore_ascii_case(INBOX) && is_name(n));
        names.sort();
        names.dedup();
        names.insert(0, INBOX.to_owned());
        Ok(names)
    }

    /// The mailbox called `name` now, or `None` when there is none.
    pub fn snapshot(&self, name: &str) -> Result<Option<Snapshot>, ImapError> {
        if !self.names()?.iter().any(|n| n == name) {
            return Ok(None);
        }
        let listing = self.listing()?;
        let mut members: Vec<&Listed> = listing
            .iter()
            .filter(|m| name == INBOX || m.domains.iter().any(|d| d == name))
            .collect();
        members.sort_by(|a, b| (a.received_unix, &a.id).cmp(&(b.received_unix, &b.id)));
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let mut state = self.state.lock().map_err(|_| ImapError::Poisoned)?;
        let (
            uids,
            MailboxUids {
                uidvalidity,
                next_uid,
                ..
            },
            mut changed,
        ) = state.assign(name, &ids, unix_now());
        if name == INBOX {
            changed |= state.keep_flags_of(&ids);
        }
        if changed {
            state.save()?;
        }
        drop(state);
        let mut messages: Vec<Entry> = uids
            .into_iter()
            .zip(members)
            .map(|(uid, listed)| Entry {
                uid,
                listed: listed.clone(),
            })
            .collect();
        messages.sort_by_key(|e| e.uid);
        Ok(Some(Snapshot {
            name: name.to_owned(),
            uidvalidity,
            uidnext: next_uid,
            messages,
        }))
    }

    /// The flags of message `id`.
    pub fn flags(&self, id: &str) -> Flags {
        self.state.lock().map(|s| s.flags(id)).unwrap_or_default()
    }

    /// Sets the flags of several messages and saves once.
    pub fn set_flags(&self, changes: &[(&str, Flags)]) -> Result<(), ImapError> {
        let mut state = self.state.lock().map_err(|_| ImapError::Poisoned)?;
        let mut changed = false;
        for (id, flags) in changes {
            changed |= state.set_flags(id, *flags);
        }
        if changed {
            state.save()?;
        }
        Ok(())
    }

    /// One message decrypted, through the audited read.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, ImapError> {
        Ok(self.quarantine.read(id)?)
    }
}

/// Whether a domain name can be a mailbox name as it is (an atom without wildcards).
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}
