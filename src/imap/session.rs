//! One client's IMAP session: the state (not authenticated, authenticated, selected) and
//! the answer to each parsed command. Blocking (it reads the quarantine); the connection
//! runs it off the async threads and carries out the reply.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use base64::Engine;

use super::fetch::{FetchAtt, Item, render};
use super::mailbox::{Deletion, Snapshot};
use super::parser::{Command, SequenceSet, StatusItem, StoreMode, Tagged};
use super::response::{Status, string, tagged, untagged};
use super::search::{Answer, Candidate, SearchKey};
use super::state::Flags;
use super::{ImapError, Limits, Server};
use crate::admin::routes::{MAX_IDS, MAX_SEALED_BYTES, MAX_SEALED_IDS};

/// An answer this long is handed on before the next message is rendered.
const FLUSH_BYTES: usize = 256 * 1024;

/// What the server says it can do. No LOGINDISABLED (loopback only).
const CAPABILITY: &str = "IMAP4rev1 AUTH=PLAIN SASL-IR UNSELECT IDLE";
/// With deleting on, UIDPLUS too: its UID EXPUNGE is what it adds here (APPEND and COPY,
/// whose answers it extends, are refused).
const CAPABILITY_DELETES: &str = "IMAP4rev1 AUTH=PLAIN SASL-IR UNSELECT IDLE UIDPLUS";

/// What a server with `limits` announces.
pub fn capability(limits: &Limits) -> &'static str {
    if limits.deletes {
        CAPABILITY_DELETES
    } else {
        CAPABILITY
    }
}

/// What to send, and whether to close the connection afterwards.
#[derive(Debug, Default)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub close: bool,
}

enum Phase {
    NotAuthenticated,
    Authenticated,
    Selected { mailbox: Snapshot, read_only: bool },
}

/// A session and what it remembers between commands.
pub struct Session {
    server: Arc<Server>,
    phase: Phase,
    failures: u32,
    /// Recently decrypted messages, so that a client fetching a message's structure and
    /// then its parts reads (and audits) it once.
    cache: VecDeque<(String, Arc<Vec<u8>>)>,
    /// Messages read ahead by the FETCH being answered, not yet rendered.
    ahead: std::collections::HashMap<String, Vec<u8>>,
    /// Messages of the selected mailbox this client marked \Deleted (only when deleting
    /// is enabled): deleted from the quarantine at EXPUNGE or CLOSE, forgotten otherwise.
    deleted: HashSet<String>,
}

impl Session {
    pub fn new(server: Arc<Server>) -> Self {
        Self {
            server,
            phase: Phase::NotAuthenticated,
            failures: 0,
            cache: VecDeque::new(),
            ahead: std::collections::HashMap::new(),
            deleted: HashSet::new(),
        }
    }

    /// Whether a client has logged in (the connection's timeout depends on it).
    pub fn authenticated(&self) -> bool {
        !matches!(self.phase, Phase::NotAuthenticated)
    }

    /// Answers one command. Long answers (FETCH of many bodies) are handed to `emit` in
    /// pieces as they are made, so that a mailbox is never held in memory whole; the
    /// rest of the answer is returned.
    pub fn handle(&mut self, cmd: Tagged, emit: &mut dyn FnMut(Vec<u8>)) -> Reply {
        let Tagged { tag, command } = cmd;
        let mut reply = Reply::default();
        let out = &mut reply.bytes;
        let result = self.dispatch(&tag, command, out, &mut reply.close, emit);
        match result {
            Ok(()) => {}
            Err(Refusal::No(text)) => tagged(out, &tag, Status::No, &text),
            Err(Refusal::Bad(text)) => tagged(out, &tag, Status::Bad, &text),
        }
        reply
    }

    fn dispatch(
        &mut self,
        tag: &str,
        command: Command,
        out: &mut Vec<u8>,
        close: &mut bool,
        emit: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(), Refusal> {
        match (command, &self.phase) {
            (Command::Capability, _) => {
                untagged(
                    out,
                    &format!("CAPABILITY {}", capability(&self.server.limits)),
                );
                tagged(out, tag, Status::Ok, "CAPABILITY completed");
            }
            (Command::Noop, Phase::Selected { .. }) => {
                self.refresh(out)?;
                tagged(out, tag, Status::Ok, "NOOP completed");
            }
            (Command::Noop, _) => tagged(out, tag, Status::Ok, "NOOP completed"),
            (Command::Logout, _) => {
                untagged(out, "BYE reclaim imap logging out");
                tagged(out, tag, Status::Ok, "LOGOUT completed");
                *close = true;
            }
            (Command::StartTls, _) => {
                return Err(Refusal::Bad(
                    "no STARTTLS: reclaim imap listens on loopback only".into(),
                ));
            }
            (Command::Login { password, .. }, Phase::NotAuthenticated) => {
                self.login(tag, &password, out, close);
            }
            (Command::Authenticate { mechanism, initial }, Phase::NotAuthenticated) => {
                if mechanism != "PLAIN" {
                    return Err(Refusal::No(format!(
                        "AUTHENTICATE {mechanism} is not supported; use PLAIN"
                    )));
                }
                match initial {
                    Some(response) => self.plain(tag, &response, out, close),
                    // The connection asks for the response and calls back.
                    None => {
                        return Err(Refusal::Bad(
                            "internal: AUTHENTICATE needs a response".into(),
                        ));
                    }
                }
            }
            (Command::Idle, Phase::Authenticated | Phase::Selected { .. }) => {
                // The connection waits for DONE and calls `changes` meanwhile.
                return Err(Refusal::Bad(
                    "internal: IDLE is answered by the connection".into(),
                ));
            }
            (Command::Login { .. } | Command::Authenticate { .. }, _) => {
                return Err(Refusal::Bad("already logged in".into()));
            }
            (_, Phase::NotAuthenticated) => {
                return Err(Refusal::Bad(
                    "log in first (LOGIN or AUTHENTICATE PLAIN)".into(),
                ));
            }
            (Command::Select { mailbox, read_only }, _) => {
                // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
                self.phase = Phase::Authenticated;
                let snapshot = self.snapshot(&mailbox)?;
                self.select(tag, snapshot, read_only, out);
            }
            (
                Command::List {
                    reference,
                    pattern,
                    lsub,
                },
                _,
            ) => {
                let word = if lsub { "LSUB" } else { "LIST" };
                if pattern.is_empty() && !lsub {
                    untagged(out, "LIST (\\Noselect) \"/\" \"\"");
                } else {
                    let full = format!("{reference}{pattern}");
                    for name in self.server.store.names().map_err(no)? {
                        if matches(&full, &name) {
                            let mut line =
                                format!("* {word} (\\HasNoChildren) \"/\" ").into_bytes();
                            string(&mut line, name.as_bytes());
                            line.extend_from_slice(b"\r\n");
                            out.extend_from_slice(&line);
                        }
                    }
                }
                tagged(out, tag, Status::Ok, &format!("{word} completed"));
            }
            (Command::Status { mailbox, items }, _) => {
                let snapshot = self.snapshot(&mailbox)?;
                let unseen = snapshot
                    .messages
                    .iter()
                    .filter(|m| !self.server.store.flags(&m.id).seen)
                    .count();
                let values: Vec<String> = items
                    .iter()
                    .map(|item| match item {
                        StatusItem::Messages => format!("MESSAGES {}", snapshot.messages.len()),
                        StatusItem::Recent => "RECENT 0".into(),
                        StatusItem::UidNext => format!("UIDNEXT {}", snapshot.uidnext),
                        StatusItem::UidValidity => format!("UIDVALIDITY {}", snapshot.uidvalidity),
                        StatusItem::Unseen => format!("UNSEEN {unseen}"),
                    })
                    .collect();
                let mut line = b"* STATUS ".to_vec();
                string(&mut line, snapshot.name.as_bytes());
                line.extend_from_slice(format!(" ({})\r\n", values.join(" ")).as_bytes());
                out.extend_from_slice(&line);
                tagged(out, tag, Status::Ok, "STATUS completed");
            }
            (Command::Subscribe { mailbox }, _) => {
                self.snapshot(&mailbox)?;
                tagged(out, tag, Status::Ok, "every mailbox is always subscribed");
            }
            (Command::Refused(name), _) => {
                let flags = if self.server.limits.deletes {
                    "\\Seen, \\Flagged and \\Deleted"
                } else {
                    "\\Seen and \\Flagged"
                };
                return Err(Refusal::No(format!(
                    "{name} is not possible: reclaim imap shows the quarantine read-only \
                     (only {flags} can be changed); use reclaim export, release or delete"
                )));
            }
            (_, Phase::Authenticated) => {
                return Err(Refusal::Bad("select a mailbox first".into()));
            }
            (Command::Check, _) => {
                self.refresh(out)?;
                tagged(out, tag, Status::Ok, "CHECK completed");
            }
            (Command::Close, _) => {
                // CLOSE expunges without telling (RFC 3501 6.4.2); when that is refused
                // the mailbox stays selected, so the client hears of it.
                if !self.selected().1 {
                    self.expunge(out, false, None)?;
                }
                self.phase = Phase::Authenticated;
                self.deleted.clear();
                tagged(out, tag, Status::Ok, "mailbox closed");
            }
            (Command::Unselect, _) => {
                self.phase = Phase::Authenticated;
                self.deleted.clear();
                tagged(out, tag, Status::Ok, "mailbox closed");
            }
            (Command::Expunge, _) if !self.server.limits.deletes => tagged(
                out,
                tag,
                Status::Ok,
                "EXPUNGE completed; nothing is deleted over IMAP",
            ),
            (Command::Expunge, _) => {
                if self.selected().1 {
                    return Err(Refusal::No(
                        "the mailbox was opened with EXAMINE (read-only)".into(),
                    ));
                }
                self.expunge(out, true, None)?;
                tagged(out, tag, Status::Ok, "EXPUNGE completed");
            }
            (Command::UidExpunge { .. }, _) if !self.server.limits.deletes => tagged(
                out,
                tag,
                Status::Ok,
                "UID EXPUNGE completed; nothing is deleted over IMAP",
            ),
            (Command::UidExpunge { set }, _) => {
                if self.selected().1 {
                    return Err(Refusal::No(
                        "the mailbox was opened with EXAMINE (read-only)".into(),
                    ));
                }
                self.expunge(out, true, Some(&set))?;
                tagged(out, tag, Status::Ok, "UID EXPUNGE completed");
            }
            (Command::Search { uid, key }, _) => self.search(tag, uid, &key, out)?,
            (Command::Fetch { uid, set, atts }, _) => {
                self.fetch(tag, uid, &set, &atts, out, emit)?;
            }
            (
                Command::Store {
                    uid,
                    set,
                    mode,
                    silent,
                    flags,
                },
                _,
            ) => self.store(tag, uid, &set, mode, silent, &flags, out)?,
        }
        Ok(())
    }

    fn snapshot(&self, mailbox: &str) -> Result<Snapshot, Refusal> {
        self.server
            .store
            .snapshot(mailbox)
            .map_err(no)?
            .ok_or_else(|| Refusal::No(format!("[NONEXISTENT] no mailbox {mailbox:?}")))
    }

    fn login(&mut self, tag: &str, password: &[u8], out: &mut Vec<u8>, close: &mut bool) {
        let offered = String::from_utf8_lossy(password);
        if crate::desk::same(&offered, &self.server.password) {
            self.phase = Phase::Authenticated;
            tagged(
                out,
                tag,
                Status::Ok,
                &format!("[CAPABILITY {}] logged in", capability(&self.server.limits)),
            );
            return;
        }
        self.failures += 1;
        if self.failures >= self.server.limits.failed_logins {
            untagged(out, "BYE too many failed logins");
            *close = true;
        }
        tagged(
            out,
            tag,
            Status::No,
            "[AUTHENTICATIONFAILED] wrong password",
        );
    }

    /// Checks an AUTHENTICATE PLAIN response (base64 of authzid NUL user NUL password).
    pub fn authenticate_plain(
        &mut self,
        tag: &str,
        response: &[u8],
        out: &mut Vec<u8>,
        close: &mut bool,
    ) {
        let response = response.trim_ascii();
        if response == b"*" {
            tagged(out, tag, Status::Bad, "AUTHENTICATE cancelled");
            return;
        }
        let decoded = if response == b"=" {
            Some(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(response)
                .ok()
        };
        self.plain(tag, decoded.as_deref().unwrap_or_default(), out, close);
    }

    /// Checks a decoded PLAIN response: authzid NUL user NUL password.
    fn plain(&mut self, tag: &str, decoded: &[u8], out: &mut Vec<u8>, close: &mut bool) {
        let password = decoded.split(|&b| b == 0).nth(2).unwrap_or_default();
        self.login(tag, password, out, close);
    }

    fn select(&mut self, tag: &str, snapshot: Snapshot, read_only: bool, out: &mut Vec<u8>) {
        self.deleted.clear();
        let store = &self.server.store;
        let deletes = self.server.limits.deletes;
        if deletes {
            untagged(out, "FLAGS (\\Seen \\Flagged \\Deleted)");
        } else {
            untagged(out, "FLAGS (\\Seen \\Flagged)");
        }
        if read_only {
            untagged(out, "OK [PERMANENTFLAGS ()] read-only");
        } else if deletes {
            untagged(
                out,
                "OK [PERMANENTFLAGS (\\Seen \\Flagged)] \\Deleted lasts until EXPUNGE or CLOSE deletes",
            );
        } else {
            untagged(
                out,
                "OK [PERMANENTFLAGS (\\Seen \\Flagged)] only these are kept",
            );
        }
        untagged(out, &format!("{} EXISTS", snapshot.messages.len()));
        untagged(out, "0 RECENT");
        if let Some(first) = snapshot
            .messages
            .iter()
            .position(|m| !store.flags(&m.id).seen)
        {
            untagged(out, &format!("OK [UNSEEN {}] first unseen", first + 1));
        }
        untagged(
            out,
            &format!("OK [UIDVALIDITY {}] UIDs valid", snapshot.uidvalidity),
        );
        untagged(out, &format!("OK [UIDNEXT {}] next UID", snapshot.uidnext));
        let (code, word) = if read_only {
            ("READ-ONLY", "EXAMINE")
        } else {
            ("READ-WRITE", "SELECT")
        };
        tagged(out, tag, Status::Ok, &format!("[{code}] {word} completed"));
        self.phase = Phase::Selected {
            mailbox: snapshot,
            read_only,
        };
    }

    /// While the client IDLEs: the untagged lines telling it what changed in the selected
    /// mailbox (nothing when none is selected).
    pub fn changes(&mut self) -> Result<Vec<u8>, ImapError> {
        let mut out = Vec::new();
        self.catch_up(&mut out)?;
        Ok(out)
    }

    /// Tells the client what changed in the selected mailbox since it was last told: a
    /// `* n EXPUNGE` for each message that left the quarantine (deleted or purged by
    /// someone else), `* n EXISTS` when new ones came.
    fn refresh(&mut self, out: &mut Vec<u8>) -> Result<(), Refusal> {
        self.catch_up(out).map_err(no)
    }

    fn catch_up(&mut self, out: &mut Vec<u8>) -> Result<(), ImapError> {
        let Phase::Selected { mailbox, .. } = &mut self.phase else {
            return Ok(());
        };
        let Some(fresh) = self.server.store.snapshot(&mailbox.name)? else {
            return Ok(());
        };
        let kept: std::collections::HashSet<u32> = fresh.messages.iter().map(|m| m.uid).collect();
        let mut left = mailbox.messages.len();
        // From the highest sequence number down, so each number is still the client's.
        for index in (0..mailbox.messages.len()).rev() {
            if !kept.contains(&mailbox.messages[index].uid) {
                untagged(out, &format!("{} EXPUNGE", index + 1));
                left -= 1;
            }
        }
        if fresh.messages.len() != left {
            untagged(out, &format!("{} EXISTS", fresh.messages.len()));
        }
        let present: HashSet<&str> = fresh.messages.iter().map(|m| m.id.as_str()).collect();
        self.deleted.retain(|id| present.contains(id.as_str()));
        *mailbox = fresh;
        Ok(())
    }

    /// Deletes the messages marked \Deleted (of those only the ones whose UIDs are in
    /// `uids`, for UID EXPUNGE) from the quarantine and drops them from the mailbox, telling
    /// the client of each (`* n EXPUNGE`) when `tell`. Nothing happens unless deleting is
    /// enabled.
    fn expunge(
        &mut self,
        out: &mut Vec<u8>,
        tell: bool,
        uids: Option<&SequenceSet>,
    ) -> Result<(), Refusal> {
        if !self.server.limits.deletes {
            return Ok(());
        }
        let mailbox = self.selected().0;
        let largest_uid = mailbox.messages.last().map_or(0, |m| m.uid);
        let marked: Vec<String> = mailbox
            .messages
            .iter()
            .filter(|m| self.deleted.contains(&m.id))
            .filter(|m| uids.is_none_or(|set| set.contains(m.uid, largest_uid)))
            .map(|m| m.id.clone())
            .collect();
        if marked.is_empty() {
            return Ok(());
        }
        if marked.len() > MAX_IDS {
            return Err(Refusal::No(format!(
                "[LIMIT] {} messages are marked \\Deleted; one EXPUNGE deletes at most {MAX_IDS}",
                marked.len()
            )));
        }
        let ids: Vec<&str> = marked.iter().map(String::as_str).collect();
        let gone: HashSet<String> = match self.server.store.delete(&ids).map_err(no)? {
            Deletion::Done(gone) => gone.into_iter().collect(),
            Deletion::Requested(n) => {
                return Err(Refusal::No(format!(
                    "deleting {} messages needs another reviewer's approval: request {n} is filed; \
                     once it is approved, run reclaim delete --request {n}, or restart reclaim imap \
                     with --allow-delete --request {n} and expunge again",
                    ids.len()
                )));
            }
        };
        if let Phase::Selected { mailbox, .. } = &mut self.phase {
            if tell {
                // From the highest sequence number down, so each number is still the
                // client's when it reads it.
                for index in (0..mailbox.messages.len()).rev() {
                    if gone.contains(&mailbox.messages[index].id) {
                        untagged(out, &format!("{} EXPUNGE", index + 1));
                    }
                }
            }
            mailbox.messages.retain(|m| !gone.contains(&m.id));
        }
        self.deleted.retain(|id| !gone.contains(id));
        self.cache.retain(|(id, _)| !gone.contains(id));
        Ok(())
    }

    /// Flags `kept` of message `id` as FETCH shows them, \Deleted among them when marked.
    fn flags_text(&self, id: &str, kept: Flags) -> String {
        let kept = kept.text();
        match (self.deleted.contains(id), kept.is_empty()) {
            (false, _) => kept.to_owned(),
            (true, true) => "\\Deleted".to_owned(),
            (true, false) => format!("{kept} \\Deleted"),
        }
    }

    /// The selected mailbox and whether it is read-only. The dispatch calls this only in
    /// the selected state; were that ever not so, an empty read-only mailbox answers
    /// instead of a panic.
    fn selected(&self) -> (&Snapshot, bool) {
        static NONE_SELECTED: Snapshot = Snapshot {
            name: String::new(),
            uidvalidity: 0,
            uidnext: 1,
            messages: Vec::new(),
        };
        match &self.phase {
            Phase::Selected { mailbox, read_only } => (mailbox, *read_only),
            _ => (&NONE_SELECTED, true),
        }
    }

    /// The indexes of the messages a set names, by sequence number or UID.
    fn members(&self, uid: bool, set: &SequenceSet) -> Vec<usize> {
        let (mailbox, _) = self.selected();
        let count = u32::try_from(mailbox.messages.len()).unwrap_or(u32::MAX);
        let largest_uid = mailbox.messages.last().map_or(0, |m| m.uid);
        mailbox
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                if uid {
                    set.contains(m.uid, largest_uid)
                } else {
                    set.contains(u32::try_from(i + 1).unwrap_or(u32::MAX), count)
                }
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The read-ahead byte bound, kept well under what one admin API answer may hold
    /// (sealing adds a header and 16 bytes per 64 KiB).
    fn read_ahead_bytes(&self) -> u64 {
        self.server
            .limits
            .read_ahead_bytes
            .min(MAX_SEALED_BYTES / 2)
    }

    /// The most messages one read-ahead asks for, within what the admin API accepts.
    fn read_ahead_messages(&self) -> usize {
        self.server
            .limits
            .read_ahead_messages
            .clamp(1, MAX_SEALED_IDS)
    }

    /// Whether message `id` is decrypted already (kept or read ahead).
    fn at_hand(&self, id: &str) -> bool {
        self.ahead.contains_key(id) || self.cache.iter().any(|(i, _)| i == id)
    }

    /// Reads ahead the next messages of `indexes` (the first one's among them) that are
    /// not at hand, within the read-ahead limits; a message larger than a batch may be is
    /// left to be read alone.
    fn read_ahead(&mut self, indexes: &[usize]) -> Result<(), Refusal> {
        let (most, most_bytes) = (self.read_ahead_messages(), self.read_ahead_bytes());
        let mailbox = self.selected().0;
        let mut ids: Vec<&str> = Vec::new();
        let mut bytes = 0u64;
        for &index in indexes {
            let m = &mailbox.messages[index];
            if m.size > most_bytes || self.at_hand(&m.id) {
                continue;
            }
            if !ids.is_empty() && (ids.len() >= most || bytes + m.size > most_bytes) {
                break;
            }
            bytes += m.size;
            ids.push(&m.id);
        }
        if ids.is_empty() {
            return Ok(());
        }
        let read = self.server.store.read_many(&ids).map_err(no)?;
        let found: Vec<(String, Vec<u8>)> = ids
            .iter()
            .zip(read)
            .filter_map(|(id, plain)| plain.map(|p| ((*id).to_owned(), p)))
            .collect();
        // One that is not there is read again alone, and refused as it is on its own.
        self.ahead.extend(found);
        Ok(())
    }

    fn plaintext(&mut self, id: &str) -> Result<Arc<Vec<u8>>, Refusal> {
        if let Some((_, plain)) = self.cache.iter().find(|(i, _)| i == id) {
            return Ok(plain.clone());
        }
        let plain = match self.ahead.remove(id) {
            Some(plain) => Arc::new(plain),
            None => Arc::new(self.server.store.read(id).map_err(no)?),
        };
        if self.cache.len() >= self.server.limits.cached_messages.max(1) {
            self.cache.pop_front();
        }
        self.cache.push_back((id.to_owned(), plain.clone()));
        Ok(plain)
    }

    fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        atts: &[FetchAtt],
        out: &mut Vec<u8>,
        emit: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(), Refusal> {
        let members = self.members(uid, set);
        let read_only = self.selected().1;
        let needs_plain = atts.iter().any(FetchAtt::needs_plaintext);
        let marks_seen = !read_only && atts.iter().any(FetchAtt::sets_seen);
        let mut atts = atts.to_vec();
        if uid && !atts.contains(&FetchAtt::Uid) {
            atts.insert(0, FetchAtt::Uid);
        }
        // Messages this fetch marks \Seen, saved once at the end (also when it fails).
        let mut seen: Vec<(String, Flags)> = Vec::new();
        let mut result = Ok(());
        for (at, &index) in members.iter().enumerate() {
            let (id, uid_of, received, size) = {
                let m = &self.selected().0.messages[index];
                (m.id.clone(), m.uid, m.received_unix, m.size)
            };
            if needs_plain
                && members.len() > 1
                && size <= self.read_ahead_bytes()
                && !self.at_hand(&id)
                && let Err(refusal) = self.read_ahead(&members[at..])
            {
                result = Err(refusal);
                break;
            }
            let plain = if needs_plain {
                match self.plaintext(&id) {
                    Ok(p) => Some(p),
                    Err(refusal) => {
                        // What was fetched so far stands; the rest is refused.
                        result = Err(refusal);
                        break;
                    }
                }
            } else {
                None
            };
            let mut flags = self.server.store.flags(&id);
            let mut show = atts.clone();
            if marks_seen && !flags.seen {
                flags.seen = true;
                seen.push((id.clone(), flags));
                if !show.contains(&FetchAtt::Flags) {
                    show.push(FetchAtt::Flags);
                }
            }
            let shown = self.flags_text(&id, flags);
            let item = Item {
                uid: uid_of,
                flags: &shown,
                received_unix: received,
                size: plain.as_ref().map_or(size, |p| p.len() as u64),
                plain: plain.as_deref().map(Vec::as_slice),
            };
            out.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
            for (i, att) in show.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                render(out, att, &item);
            }
            out.extend_from_slice(b")\r\n");
            if out.len() >= FLUSH_BYTES {
                emit(std::mem::take(out));
            }
        }
        self.ahead.clear();
        let changes: Vec<(&str, Flags)> = seen.iter().map(|(id, f)| (id.as_str(), *f)).collect();
        self.server.store.set_flags(&changes).map_err(no)?;
        result?;
        tagged(out, tag, Status::Ok, "FETCH completed");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
        out: &mut Vec<u8>,
    ) -> Result<(), Refusal> {
        if self.selected().1 {
            return Err(Refusal::No(
                "the mailbox was opened with EXAMINE (read-only)".into(),
            ));
        }
        let mut given = Flags::default();
        let mut given_deleted = false;
        for flag in flags {
            match flag.to_ascii_lowercase().as_str() {
                "\\seen" => given.seen = true,
                "\\flagged" => given.flagged = true,
                "\\deleted" if self.server.limits.deletes => given_deleted = true,
                "\\deleted" => {
                    return Err(Refusal::No(
                        "\\Deleted is refused: deleting over IMAP is not enabled; use reclaim delete"
                            .into(),
                    ));
                }
                _ => {
                    return Err(Refusal::No(format!(
                        "only \\Seen and \\Flagged are kept, not {flag}"
                    )));
                }
            }
        }
        let members = self.members(uid, set);
        // \Deleted is this session's; the others are kept on disk.
        for &index in &members {
            let id = self.selected().0.messages[index].id.clone();
            let marked = match mode {
                StoreMode::Replace => given_deleted,
                StoreMode::Add => given_deleted || self.deleted.contains(&id),
                StoreMode::Remove => !given_deleted && self.deleted.contains(&id),
            };
            if marked {
                self.deleted.insert(id);
            } else {
                self.deleted.remove(&id);
            }
        }
        let store = &self.server.store;
        let (mailbox, _) = self.selected();
        let mut changes: Vec<(&str, Flags)> = Vec::new();
        for &index in &members {
            let id = mailbox.messages[index].id.as_str();
            let old = store.flags(id);
            let new = match mode {
                StoreMode::Replace => given,
                StoreMode::Add => Flags {
                    seen: old.seen || given.seen,
                    flagged: old.flagged || given.flagged,
                },
                StoreMode::Remove => Flags {
                    seen: old.seen && !given.seen,
                    flagged: old.flagged && !given.flagged,
                },
            };
            changes.push((id, new));
        }
        store.set_flags(&changes).map_err(no)?;
        if !silent {
            for (&index, (id, new)) in members.iter().zip(&changes) {
                let m = &mailbox.messages[index];
                let uid_part = if uid {
                    format!("UID {} ", m.uid)
                } else {
                    String::new()
                };
                let shown = self.flags_text(id, *new);
                untagged(
                    out,
                    &format!("{} FETCH ({uid_part}FLAGS ({shown}))", index + 1),
                );
            }
        }
        tagged(out, tag, Status::Ok, "STORE completed");
        Ok(())
    }

    fn search(
        &mut self,
        tag: &str,
        uid: bool,
        key: &SearchKey,
        out: &mut Vec<u8>,
    ) -> Result<(), Refusal> {
        let store = &self.server.store;
        let (mailbox, _) = self.selected();
        let largest_seq = u32::try_from(mailbox.messages.len()).unwrap_or(u32::MAX);
        let largest_uid = mailbox.messages.last().map_or(0, |m| m.uid);
        let summaries = if key.needs_summary() {
            let ids: Vec<&str> = mailbox.messages.iter().map(|m| m.id.as_str()).collect();
            store.summaries(&ids).map_err(no)?
        } else {
            std::collections::HashMap::new()
        };
        let candidate = |i: usize| {
            let m = &mailbox.messages[i];
            let flags = store.flags(&m.id);
            Candidate {
                seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                uid: m.uid,
                largest_seq,
                largest_uid,
                seen: flags.seen,
                flagged: flags.flagged,
                deleted: self.deleted.contains(&m.id),
                received_unix: m.received_unix,
                size: m.size,
                summary: summaries.get(&m.id).map(|l| &**l),
            }
        };
        let mut found = Vec::new();
        let mut undecided = Vec::new();
        for i in 0..mailbox.messages.len() {
            match key.eval(&candidate(i), None) {
                Answer::Yes => found.push(i),
                Answer::No => {}
                Answer::Unknown => undecided.push(i),
            }
        }
        let bound = self.server.limits.search_decrypts;
        if undecided.len() > bound {
            return Err(Refusal::No(format!(
                "[LIMIT] this search would decrypt {} messages, more than the {bound} allowed; narrow it (SINCE, FROM, SUBJECT)",
                undecided.len()
            )));
        }
        // Read in batches, each one audited read, and without the cache: a search must not
        // push out what is being read. A message bigger than a batch may be is read alone;
        // one that left the quarantine meanwhile does not match.
        let (most, most_bytes) = (self.read_ahead_messages(), self.read_ahead_bytes());
        let size = |i: usize| mailbox.messages[i].size;
        for batch in batches(&undecided, size, most, most_bytes) {
            let ids: Vec<&str> = batch
                .iter()
                .map(|&i| mailbox.messages[i].id.as_str())
                .collect();
            let plains = match ids.as_slice() {
                [one] if size(batch[0]) > most_bytes => vec![Some(store.read(one).map_err(no)?)],
                _ => store.read_many(&ids).map_err(no)?,
            };
            for (&i, plain) in batch.iter().zip(plains) {
                let Some(plain) = plain else { continue };
                if key.eval(&candidate(i), Some(&plain)) == Answer::Yes {
                    found.push(i);
                }
            }
        }
        found.sort_unstable();
        let numbers: Vec<String> = found
            .iter()
            .map(|&i| {
                if uid {
                    mailbox.messages[i].uid.to_string()
                } else {
                    (i + 1).to_string()
                }
            })
            .collect();
        if numbers.is_empty() {
            untagged(out, "SEARCH");
        } else {
            untagged(out, &format!("SEARCH {}", numbers.join(" ")));
        }
        tagged(out, tag, Status::Ok, "SEARCH completed");
        Ok(())
    }
}

/// `indexes` in order, cut into batches of at most `most` messages and `most_bytes` by
/// `size`; a message bigger than `most_bytes` is a batch of its own.
fn batches(
    indexes: &[usize],
    size: impl Fn(usize) -> u64,
    most: usize,
    most_bytes: u64,
) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut bytes = 0u64;
    for &i in indexes {
        let this = size(i);
        let alone = this > most_bytes;
        if !open.is_empty() && (alone || open.len() >= most || bytes + this > most_bytes) {
            all.push(std::mem::take(&mut open));
            bytes = 0;
        }
        if alone {
            all.push(vec![i]);
        } else {
            open.push(i);
            bytes += this;
        }
    }
    if !open.is_empty() {
        all.push(open);
    }
    all
}

/// How a command is refused.
enum Refusal {
    No(String),
    Bad(String),
}

/// A failure reading the quarantine, as the client sees it: the first line of the error.
fn no(error: ImapError) -> Refusal {
    tracing::warn!(error = %error, "imap command failed");
    let text = error.to_string().replace(['\r', '\n'], " ");
    Refusal::No(text)
}

/// Whether a LIST pattern (`*` and `%` match anything: there is no hierarchy) matches,
/// ignoring ASCII case; in time proportional to the pattern's length times the name's.
fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // row[j]: whether the pattern so far matches the first j bytes of the name.
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for &c in p {
        let mut next = vec![false; n.len() + 1];
        if c == b'*' || c == b'%' {
            let mut any = false;
            for j in 0..=n.len() {
                any |= row[j];
                next[j] = any;
            }
        } else {
            for j in 1..=n.len() {
                next[j] = row[j - 1] && n[j - 1].eq_ignore_ascii_case(&c);
            }
        }
        row = next;
    }
    row[n.len()]
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::imap::mailbox::{Quarantine, Store};
    use crate::imap::parser::parse;
    use crate::imap::state::State;
    use crate::imap::{Limits, Server};
    use crate::review::ReviewError;
    use crate::review::index::Indexed;
    use crate::review::listed::Listed;

    /// Messages in memory; `reads` counts the audited reads, `lists` the listings that
    /// open every summary.
    struct Fake {
        messages: Mutex<Vec<(Listed, Vec<u8>)>>,
        reads: std::sync::atomic::AtomicUsize,
        lists: std::sync::atomic::AtomicUsize,
        /// How many messages each `read_many` asked for.
        batches: Mutex<Vec<usize>>,
    }

    impl Quarantine for Arc<Fake> {
        fn index(&self) -> Result<Vec<Indexed>, ReviewError> {
            Ok(self
                .messages
                .lock()
                .expect("lock")
                .iter()
                .map(|(l, _)| Indexed {
                    summary: None,
                    ..Indexed::from(l.clone())
                })
                .collect())
        }
        fn list(&self) -> Result<Vec<Listed>, ReviewError> {
            self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self
                .messages
                .lock()
                .expect("lock")
                .iter()
                .map(|(l, _)| l.clone())
                .collect())
        }
        fn read(&self, id: &str) -> Result<Vec<u8>, ReviewError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let messages = self.messages.lock().expect("lock");
            let found = messages.iter().find(|(l, _)| l.id == id);
            found
                .map(|(_, m)| m.clone())
                .ok_or_else(|| ReviewError::NotFound(id.to_owned()))
        }
        fn domains(&self) -> Vec<String> {
            vec!["old.example".into()]
        }
        fn read_many(&self, ids: &[&str]) -> Result<Vec<Option<Vec<u8>>>, ReviewError> {
            self.batches.lock().expect("lock").push(ids.len());
            let messages = self.messages.lock().expect("lock");
            Ok(ids
                .iter()
                .map(|id| {
                    let found = messages.iter().find(|(l, _)| l.id == *id);
                    found.map(|(_, m)| m.clone())
                })
                .collect())
        }
    }

    fn message(n: i64) -> (Listed, Vec<u8>) {
        let listed = Listed {
            id: format!("id-{n}"),
            received_unix: 1_800_000_000 + n,
            domains: vec!["old.example".into()],
            subject: Some(format!("message {n}")),
            size: 30,
            ..Listed::default()
        };
        (
            listed,
            format!("Subject: message {n}\r\n\r\nbody {n}\r\n").into_bytes(),
        )
    }

    fn run(session: &mut Session, line: &str) -> String {
        let cmd = parse(format!("{line}\r\n").as_bytes()).expect("parses");
        let mut all = Vec::new();
        let reply = session.handle(cmd, &mut |piece| all.extend(piece));
        all.extend(reply.bytes);
        String::from_utf8(all).expect("utf8")
    }

    /// A logged-out session over `fake`, its index never reused.
    fn session_over(fake: &Arc<Fake>, dir: &std::path::Path) -> Session {
        session_with(fake, dir, Limits::default())
    }

    /// As [`session_over`], under `limits`.
    fn session_with(fake: &Arc<Fake>, dir: &std::path::Path, limits: Limits) -> Session {
        let limits = Limits {
            listing_fresh: std::time::Duration::ZERO,
            ..limits
        };
        let server = Arc::new(Server {
            store: Store::new(
                Box::new(fake.clone()),
                State::load(dir).expect("state"),
                limits.listing_fresh,
            ),
            password: "pw".into(),
            limits,
        });
        Session::new(server)
    }

    fn fake(messages: impl IntoIterator<Item = i64>) -> Arc<Fake> {
        Arc::new(Fake {
            messages: Mutex::new(messages.into_iter().map(message).collect()),
            reads: Default::default(),
            lists: Default::default(),
            batches: Default::default(),
        })
    }

    #[test]
    fn a_fetch_of_many_reads_them_in_batches_and_big_ones_alone() {
        let fake = fake(1..=600);
        // Message 300 is bigger than a batch may be: it is read on its own.
        fake.messages.lock().expect("lock")[299].0.size = Limits::default().read_ahead_bytes + 1;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = session_over(&fake, dir.path());
        assert!(run(&mut s, "a LOGIN x pw").starts_with("a OK"));
        run(&mut s, "b SELECT INBOX");
        run(&mut s, "c FETCH 5 BODY.PEEK[]");
        let r = run(&mut s, "d FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
        assert_eq!(r.matches("Subject: message ").count(), 600, "every one");
        assert!(r.ends_with("d OK FETCH completed\r\n"), "{r}");
        // 599 to batch (5 is at hand from before, 300 is too big): 250, then 250 of the
        // 349 left once 300 is passed over, then the rest.
        assert_eq!(*fake.batches.lock().expect("lock"), [250, 250, 98]);
        let single = fake.reads.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(single, 2, "message 5 before, and 300 alone");
        fake.batches.lock().expect("lock").clear();
        let r = run(&mut s, "e FETCH 7 (BODY.PEEK[TEXT])");
        assert!(r.contains("body 7"), "{r}");
        assert!(
            fake.batches.lock().expect("lock").is_empty(),
            "one is read alone"
        );
    }

    #[test]
    fn a_refusal_names_the_flags_that_can_be_changed() {
        let fake = fake(1..=2);
        for (deletes, flags) in [
            (false, "(only \\Seen and \\Flagged can be changed)"),
            (
                true,
                "(only \\Seen, \\Flagged and \\Deleted can be changed)",
            ),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let limits = Limits {
                deletes,
                ..Limits::default()
            };
            let mut s = session_with(&fake, dir.path(), limits);
            assert!(run(&mut s, "a LOGIN x pw").starts_with("a OK"));
            run(&mut s, "b SELECT INBOX");
            let r = run(&mut s, "c COPY 1 Trash");
            assert!(r.starts_with("c NO COPY is not possible"), "{r}");
            assert!(r.contains("read-only"), "{r}");
            assert!(r.contains(flags), "deletes {deletes}: {r}");
        }
    }

    #[test]
    fn batches_keep_order_and_bounds_and_put_big_ones_alone() {
        let sizes = [10u64, 10, 10, 50, 10, 10, 10, 10];
        let size = |i: usize| sizes[i];
        let all: Vec<usize> = (0..sizes.len()).collect();
        assert_eq!(
            batches(&all, size, 2, 25),
            [vec![0, 1], vec![2], vec![3], vec![4, 5], vec![6, 7]]
        );
        assert_eq!(
            batches(&all, size, 10, 30),
            [vec![0, 1, 2], vec![3], vec![4, 5, 6], vec![7]]
        );
        assert!(batches(&[], size, 10, 30).is_empty());
    }

    #[test]
    fn a_text_search_decrypts_in_batches_and_skips_what_is_gone() {
        let fake = fake(1..=7);
        fake.messages.lock().expect("lock")[2].0.size = Limits::default().read_ahead_bytes + 1;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = session_over(&fake, dir.path());
        assert!(run(&mut s, "a LOGIN x pw").starts_with("a OK"));
        run(&mut s, "b SELECT INBOX");
        let r = run(&mut s, "c SEARCH OR BODY \"body 2\" BODY \"body 3\"");
        assert!(r.starts_with("* SEARCH 2 3\r\n"), "{r}");
        assert_eq!(
            *fake.batches.lock().expect("lock"),
            [2, 4],
            "around the big one"
        );
        let single = fake.reads.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(single, 1, "the big one alone");
        // Gone since SELECT (the index is not refreshed within a command): not a match.
        fake.messages.lock().expect("lock").remove(1);
        let r = run(&mut s, "d UID SEARCH TEXT \"body\" UID 1:2");
        assert!(r.starts_with("* SEARCH 1\r\n") && r.contains("d OK"), "{r}");
    }

    #[test]
    fn summaries_are_opened_only_for_a_search_that_needs_them_and_once() {
        let fake = fake(1..=3);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = session_over(&fake, dir.path());
        let lists = || fake.lists.load(std::sync::atomic::Ordering::SeqCst);
        assert!(run(&mut s, "a LOGIN x pw").starts_with("a OK"));
        let r = run(&mut s, "b SELECT INBOX");
        assert!(r.contains("* 3 EXISTS"), "{r}");
        run(&mut s, "c STATUS old.example (MESSAGES UNSEEN)");
        let r = run(&mut s, "d FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)");
        assert!(r.contains("* 3 FETCH (UID 3 "), "{r}");
        let r = run(&mut s, "e SEARCH UNSEEN SINCE 1-Jan-2020 LARGER 10");
        assert!(r.starts_with("* SEARCH 1 2 3\r\n"), "{r}");
        assert_eq!(lists(), 0, "no summary opened yet");
        let r = run(&mut s, "f SEARCH SUBJECT \"message 2\"");
        assert!(r.starts_with("* SEARCH 2\r\n"), "{r}");
        let r = run(&mut s, "g SEARCH NOT FROM nobody");
        assert!(r.starts_with("* SEARCH 1 2 3\r\n"), "{r}");
        assert_eq!(lists(), 1, "opened once, then kept");
        fake.messages.lock().expect("lock").push(message(4));
        let r = run(&mut s, "h NOOP");
        assert!(r.contains("* 4 EXISTS"), "{r}");
        let r = run(&mut s, "i SEARCH SUBJECT \"message 4\"");
        assert!(r.starts_with("* SEARCH 4\r\n"), "{r}");
        assert_eq!(lists(), 2, "a new message's summary is opened");
        assert_eq!(fake.reads.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn noop_reports_expunged_and_new_messages_and_fetches_are_read_once() {
        let fake = fake(1..=3);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = session_over(&fake, dir.path());
        assert!(run(&mut s, "a LOGIN x pw").starts_with("a OK"));
        let r = run(&mut s, "b SELECT old.example");
        assert!(r.contains("* 3 EXISTS"), "{r}");
        let r = run(&mut s, "c FETCH 2 (BODYSTRUCTURE BODY.PEEK[1] ENVELOPE)");
        assert!(r.contains("body 2"), "{r}");
        let r = run(&mut s, "c FETCH 2 BODY.PEEK[]");
        assert!(r.contains("Subject: message 2"), "{r}");
        assert_eq!(
            fake.reads.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "read once, then from memory"
        );

        {
            let mut messages = fake.messages.lock().expect("lock");
            messages.retain(|(l, _)| l.id != "id-2");
            messages.push(message(4));
            messages.push(message(5));
        }
        let r = run(&mut s, "d NOOP");
        assert_eq!(r, "* 2 EXPUNGE\r\n* 4 EXISTS\r\nd OK NOOP completed\r\n");
        let r = run(&mut s, "e UID FETCH 1:* FLAGS");
        assert!(
            r.contains("* 2 FETCH (UID 3 FLAGS ())") && r.contains("* 4 FETCH (UID 5 FLAGS ())"),
            "{r}"
        );
    }

    /// Random commands from IMAP fragments, and random MIME messages, through the parser and
    /// a logged-in session: every answer ends with a tagged or untagged status, no panic.
    #[test]
    fn random_commands_and_messages_never_panic() {
        const TEMPLATES: &[&str] = &[
            "FETCH # (@ @)",
            "UID FETCH # (@ @ @)",
            "FETCH # @",
            "SEARCH $",
            "UID SEARCH $ $",
            "STORE # +FLAGS (\\Seen)",
            "UID STORE # -FLAGS.SILENT (\\Flagged)",
            "NOOP",
            "STATUS INBOX (UIDNEXT MESSAGES UNSEEN)",
            "LIST \"\" *",
            "EXPUNGE",
            "CHECK",
        ];
        const SETS: &[&str] = &["1", "2:*", "*", "1,3:4", "5:1", "40:99", "1:*"];
        const ATTS: &[&str] = &[
            "FLAGS",
            "UID",
            "ENVELOPE",
            "BODYSTRUCTURE",
            "BODY",
            "RFC822",
            "RFC822.HEADER",
            "RFC822.TEXT",
            "RFC822.SIZE",
            "INTERNALDATE",
            "BODY.PEEK[]",
            "BODY[1]",
            "BODY[2.1]",
            "BODY[1.MIME]",
            "BODY[HEADER]",
            "BODY[TEXT]<3.9>",
            "BODY.PEEK[1.2.HEADER]",
            "BODY[2.TEXT]",
            "BODY.PEEK[HEADER.FIELDS (FROM TO)]",
            "BODY[HEADER.FIELDS.NOT (X)]<0.1>",
        ];
        const KEYS: &[&str] = &[
            "ALL",
            "SEEN",
            "UNSEEN",
            "FROM a",
            "TO \"b c\"",
            "SUBJECT x",
            "TEXT y",
            "BODY z",
            "SINCE 1-Jan-2026",
            "OR SEEN FLAGGED",
            "NOT TEXT q",
            "(FROM a BODY b)",
            "UID 1:*",
            "2:3",
            "LARGER 10",
            "SMALLER 5",
        ];
        const NOISE: &[&str] = &[
            "(", ")", "[", "]", "\"", "\\", " ", "{3}\r\n", "*", "\u{0}", "<", ".", "0",
        ];
        const MIME: &[&str] = &[
            "Content-Type: multipart/mixed; boundary=b\r\n",
            "Content-Type: message/rfc822\r\n",
            "Content-Type: text/plain\r\n",
            "From: a <b@c>\r\n",
            "Subject: =?utf-8?b?w6k=?=\r\n",
            "To: g: a@b, c@d;\r\n",
            "\r\n",
            "--b\r\n",
            "--b--\r\n",
            " folded\r\n",
            "x",
            "\n",
            "Content-Disposition: attachment; filename=x\r\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let fake = fake([]);
        for n in 0..40 {
            let mut raw = String::new();
            for _ in 0..next(30) {
                raw.push_str(MIME[next(MIME.len())]);
            }
            let (listed, _) = message(n);
            fake.messages
                .lock()
                .expect("lock")
                .push((listed, raw.into_bytes()));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = Limits::default();
        let server = Arc::new(Server {
            store: Store::new(
                Box::new(fake),
                State::load(dir.path()).expect("state"),
                limits.listing_fresh,
            ),
            password: "pw".into(),
            limits,
        });
        let mut s = Session::new(server);
        run(&mut s, "a LOGIN x pw");
        run(&mut s, "a SELECT INBOX");
        let mut parsed = 0;
        for _ in 0..20_000 {
            let template = TEMPLATES[next(TEMPLATES.len())];
            let mut line = String::from("t ");
            for ch in template.chars() {
                match ch {
                    '#' => line.push_str(SETS[next(SETS.len())]),
                    '@' => line.push_str(ATTS[next(ATTS.len())]),
                    '$' => line.push_str(KEYS[next(KEYS.len())]),
                    c => line.push(c),
                }
            }
            if next(4) == 0 {
                let at = 2 + next(line.len() - 1);
                if line.is_char_boundary(at) {
                    line.insert_str(at, NOISE[next(NOISE.len())]);
                }
            }
            line.push_str("\r\n");
            if let Ok(cmd) = parse(line.as_bytes()) {
                parsed += 1;
                let mut all = Vec::new();
                let reply = s.handle(cmd, &mut |piece| all.extend(piece));
                all.extend(reply.bytes);
                let text = String::from_utf8_lossy(&all);
                assert!(
                    text.ends_with("\r\n")
                        && (text.contains("t OK")
                            || text.contains("t NO")
                            || text.contains("t BAD")),
                    "{line:?}: {text}"
                );
                if !matches!(s.phase, Phase::Selected { .. }) {
                    run(&mut s, "a SELECT INBOX");
                }
            }
        }
        assert!(parsed > 10_000, "most commands are valid ones: {parsed}");
    }

    #[test]
    fn long_fetches_are_handed_on_in_pieces_and_seen_is_saved_once() {
        let big = |n: i64| {
            let (listed, _) = message(n);
            let body = format!("Subject: big {n}\r\n\r\n{}\r\n", "x".repeat(200_000));
            (listed, body.into_bytes())
        };
        let fake = fake([]);
        fake.messages.lock().expect("lock").extend((1..=4).map(big));
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = Limits::default();
        let server = Arc::new(Server {
            store: Store::new(
                Box::new(fake),
                State::load(dir.path()).expect("state"),
                limits.listing_fresh,
            ),
            password: "pw".into(),
            limits,
        });
        let mut s = Session::new(server);
        run(&mut s, "a LOGIN x pw");
        run(&mut s, "b SELECT INBOX");
        let mut pieces = Vec::new();
        let cmd = parse(b"c FETCH 1:* BODY[]\r\n").expect("parses");
        let reply = s.handle(cmd, &mut |piece| pieces.push(piece));
        assert!(pieces.len() >= 2, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| p.len() < 2 * FLUSH_BYTES));
        let all = String::from_utf8([pieces.concat(), reply.bytes].concat()).expect("utf8");
        assert_eq!(all.matches("FLAGS (\\Seen)").count(), 4);
        assert!(all.ends_with("c OK FETCH completed\r\n"));
        let state = std::fs::read_to_string(dir.path().join(crate::imap::state::STATE_FILE))
            .expect("state saved");
        assert_eq!(state.matches("\"seen\":true").count(), 4, "{state}");
    }

    #[test]
    fn list_patterns() {
        use super::matches;
        assert!(matches("*", "INBOX"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("%.example", "old.example"));
        assert!(!matches("new*", "old.example"));
        assert!(matches("**%*", "x"));
    }
}
