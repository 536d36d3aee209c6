//! The mailboxes: INBOX (every message this reviewer can open) and one per retired domain,
//! each a snapshot of the quarantine's index with UIDs from the persisted [`State`], and the
//! quarantine they are read from. Summaries are opened only when a SEARCH asks what they
//! hold: opening a mailbox needs ids, dates, sizes and domains alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ImapError;
use super::state::{Flags, MailboxUids, State};
use crate::clock::unix_now;
use crate::review::approvals::{self, Asked};
use crate::review::filter::Filter;
use crate::review::index::{self, Indexed, Openable};
use crate::review::listed::Listed;
use crate::review::{ReviewContext, ReviewError, export, listing, manage, parse_id};
use crate::store::GuardedAction;

/// Where the IMAP server reads messages: the index and summaries without an audited read,
/// content only through the audited fetch of one message.
pub trait Quarantine: Send + Sync + 'static {
    /// Every message this reviewer can open, as the index shows it: summaries need not be
    /// opened. By default, from [`Quarantine::list`].
    fn index(&self) -> Result<Vec<Indexed>, ReviewError> {
        Ok(self.list()?.into_iter().map(Indexed::from).collect())
    }
    /// Every message this reviewer can open, with its opened summary.
    fn list(&self) -> Result<Vec<Listed>, ReviewError>;
    /// One whole message, decrypted here; recorded in the audit trail with the reason.
    fn read(&self, id: &str) -> Result<Vec<u8>, ReviewError>;
    /// Several whole messages, in the order asked (`None` for one that is not there),
    /// recorded as one read of all of them. By default one [`Quarantine::read`] each.
    fn read_many(&self, ids: &[&str]) -> Result<Vec<Option<Vec<u8>>>, ReviewError> {
        ids.iter()
            .map(|id| match self.read(id) {
                Ok(plain) => Ok(Some(plain)),
                Err(ReviewError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .collect()
    }
    /// The retired domains the config names (mailboxes even while empty).
    fn domains(&self) -> Vec<String>;
    /// Deletes messages, with the reason of this run. By default there is no deleting.
    fn delete(&self, ids: &[&str]) -> Result<Deletion, ReviewError> {
        let _ = ids;
        Err(ReviewError::Usage(
            "this quarantine cannot be changed over IMAP".into(),
        ))
    }
}

/// What became of a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// The messages now gone: deleted, or found already gone.
    Done(Vec<String>),
    /// The policy guards deletes and no approved request was given: this request was
    /// filed for them instead.
    Requested(u64),
}

/// The quarantine through the review service, as the desk and `reclaim show` read it.
pub struct Review {
    context: ReviewContext,
    /// Recorded with every read.
    reason: String,
    /// Which sets of keys this reviewer's identity opens, learnt from the first index.
    openable: Openable,
}

impl Review {
    pub fn new(context: ReviewContext, reason: impl Into<String>) -> Self {
        Self {
            context,
            reason: reason.into(),
            openable: Openable::default(),
        }
    }
}

impl Quarantine for Review {
    fn index(&self) -> Result<Vec<Indexed>, ReviewError> {
        index::fetch(&self.context, &self.openable)
    }

    fn list(&self) -> Result<Vec<Listed>, ReviewError> {
        listing::fetch(&self.context, None, &Filter::default())
    }

    fn read(&self, id: &str) -> Result<Vec<u8>, ReviewError> {
        export::fetch_plain(&self.context, parse_id(id)?, "show", &self.reason)
    }

    fn read_many(&self, ids: &[&str]) -> Result<Vec<Option<Vec<u8>>>, ReviewError> {
        let ids = parse_ids(ids)?;
        export::show_many(&self.context, &ids, &self.reason)
    }

    fn domains(&self) -> Vec<String> {
        self.context
            .config
            .as_ref()
            .map(|c| c.domains.names().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// As `reclaim delete` does, and as the desk does when the policy guards deletes: a
    /// request is filed, for another reviewer to approve.
    fn delete(&self, ids: &[&str]) -> Result<Deletion, ReviewError> {
        let ids = parse_ids(ids)?;
        if !self.context.under_approval()
            && approvals::list(&self.context, 1)?
                .guarded
                .contains(&GuardedAction::Delete)
        {
            let asked = Asked {
                action: GuardedAction::Delete,
                ids: &ids,
                older_than: None,
                to: &[],
                reason: &self.reason,
            };
            let filed = approvals::file(&self.context, &asked)?;
            return Ok(Deletion::Requested(filed.request.number));
        }
        let result = manage::delete(&self.context, &ids, Some(&self.reason))?;
        let mut gone = result.deleted;
        gone.extend(result.missing);
        Ok(Deletion::Done(gone))
    }
}

/// Message ids as the admin API wants them.
fn parse_ids(ids: &[&str]) -> Result<Vec<crate::store::MessageId>, ReviewError> {
    ids.iter().map(|id| parse_id(id)).collect()
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
    pub id: String,
    pub received_unix: i64,
    pub size: u64,
}

/// The name of the mailbox holding everything.
pub const INBOX: &str = "INBOX";

/// The index, the summaries opened so far, the state and the quarantine every connection
/// shares.
pub struct Store {
    quarantine: Box<dyn Quarantine>,
    state: Mutex<State>,
    listing: Mutex<Option<(Instant, Arc<Vec<Indexed>>)>>,
    /// Opened summaries by message id. A message's summary never changes, so they are kept
    /// while the message is in the index.
    summaries: Mutex<HashMap<String, Arc<Listed>>>,
    /// How long an index is reused before the admin API is asked again.
    fresh_for: Duration,
}

impl Store {
    pub fn new(quarantine: Box<dyn Quarantine>, state: State, fresh_for: Duration) -> Self {
        Self {
            quarantine,
            state: Mutex::new(state),
            listing: Mutex::new(None),
            summaries: Mutex::new(HashMap::new()),
            fresh_for,
        }
    }

    /// The index, reused while fresh: clients ask STATUS of every mailbox often, and each
    /// index is a walk through every page of the admin API's listing.
    fn listing(&self) -> Result<Arc<Vec<Indexed>>, ImapError> {
        let mut cached = self.listing.lock().map_err(|_| ImapError::Poisoned)?;
        if let Some((at, listing)) = cached.as_ref()
            && at.elapsed() < self.fresh_for
        {
            return Ok(listing.clone());
        }
        let mut fresh = self.quarantine.index()?;
        let mut summaries = self.summaries.lock().map_err(|_| ImapError::Poisoned)?;
        let present: std::collections::HashSet<&str> =
            fresh.iter().map(|m| m.id.as_str()).collect();
        summaries.retain(|id, _| present.contains(id.as_str()));
        for m in &mut fresh {
            if let Some(listed) = m.summary.take() {
                summaries.insert(m.id.clone(), Arc::new(listed));
            }
        }
        drop(summaries);
        let listing = Arc::new(fresh);
        *cached = Some((Instant::now(), listing.clone()));
        Ok(listing)
    }

    /// The opened summaries of `ids`, opening every summary of the quarantine (one
    /// listing) when any of them is not open yet. An id missing from the answer has left
    /// the quarantine.
    pub fn summaries(&self, ids: &[&str]) -> Result<HashMap<String, Arc<Listed>>, ImapError> {
        let missing = {
            let known = self.summaries.lock().map_err(|_| ImapError::Poisoned)?;
            ids.iter().any(|id| !known.contains_key(*id))
        };
        if missing {
            let listed = self.quarantine.list()?;
            let mut known = self.summaries.lock().map_err(|_| ImapError::Poisoned)?;
            known.clear();
            known.extend(listed.into_iter().map(|l| (l.id.clone(), Arc::new(l))));
        }
        let known = self.summaries.lock().map_err(|_| ImapError::Poisoned)?;
        Ok(ids
            .iter()
            .filter_map(|id| known.get(*id).map(|l| ((*id).to_owned(), l.clone())))
            .collect())
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
        let mut members: Vec<&Indexed> = listing
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
            .map(|(uid, m)| Entry {
                uid,
                id: m.id.clone(),
                received_unix: m.received_unix,
                size: m.size,
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

    /// Deletes messages; the next index is fetched anew, so that every connection sees it.
    pub fn delete(&self, ids: &[&str]) -> Result<Deletion, ImapError> {
        let deletion = self.quarantine.delete(ids);
        if let Ok(mut cached) = self.listing.lock() {
            *cached = None;
        }
        Ok(deletion?)
    }

    /// One message decrypted, through the audited read.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, ImapError> {
        Ok(self.quarantine.read(id)?)
    }

    /// Several messages decrypted, through one audited read of all of them.
    pub fn read_many(&self, ids: &[&str]) -> Result<Vec<Option<Vec<u8>>>, ImapError> {
        Ok(self.quarantine.read_many(ids)?)
    }
}

/// Whether a domain name can be a mailbox name as it is (an atom without wildcards).
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}
