//! What the IMAP server remembers on the reviewer's machine between runs: per mailbox its
//! UIDVALIDITY and the UID given to each message id, and the \Seen and \Flagged flags of
//! each message id. Only ids, numbers and flags: never a subject, an address or content.
//! The file is replaced atomically (temp file, fsync, rename) and readable by its owner
//! only; when it is lost every mailbox starts over with a new UIDVALIDITY.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ImapError;

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "imap-state.json";

/// One mailbox's UIDs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MailboxUids {
    pub uidvalidity: u32,
    pub next_uid: u32,
    pub uids: BTreeMap<String, u32>,
}

/// The flags reclaim keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    #[serde(default)]
    pub seen: bool,
    #[serde(default)]
    pub flagged: bool,
}

impl Flags {
    /// As a FETCH FLAGS list's contents.
    pub fn text(self) -> &'static str {
        match (self.seen, self.flagged) {
            (false, false) => "",
            (true, false) => "\\Seen",
            (false, true) => "\\Flagged",
            (true, true) => "\\Seen \\Flagged",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    version: u32,
    mailboxes: BTreeMap<String, MailboxUids>,
    flags: BTreeMap<String, Flags>,
}

/// The state, loaded, and where it is saved.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    saved: Saved,
}

impl State {
    /// Loads the state in `dir` (made 0700 if missing); a missing file is a fresh state.
    pub fn load(dir: &Path) -> Result<Self, ImapError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| ImapError::State {
                path: dir.to_owned(),
                source,
            })?;
        let path = dir.join(STATE_FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ImapError::State {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved {
                version: 1,
                ..Saved::default()
            },
            Err(source) => return Err(ImapError::State { path, source }),
        };
        Ok(Self { path, saved })
    }

    /// The UIDs of `ids` (oldest first) in `mailbox`: kept ones as they were, new ones
    /// numbered on from the mailbox's next UID. Ids that left the mailbox are forgotten.
    /// Returns the mailbox's UIDVALIDITY and next UID too, and whether anything changed.
    pub fn assign(
        &mut self,
        mailbox: &str,
        ids: &[&str],
        now: i64,
    ) -> (Vec<u32>, MailboxUids, bool) {
        let fresh_validity = u32::try_from(now).unwrap_or(u32::MAX).max(1);
        let mut changed = !self.saved.mailboxes.contains_key(mailbox);
        let entry = self
            .saved
            .mailboxes
            .entry(mailbox.to_owned())
            .or_insert_with(|| MailboxUids {
                uidvalidity: fresh_validity,
                next_uid: 1,
                uids: BTreeMap::new(),
            });
        let before = entry.uids.len();
        let present: std::collections::HashSet<&str> = ids.iter().copied().collect();
        entry.uids.retain(|id, _| present.contains(id.as_str()));
        changed |= entry.uids.len() != before;
        let mut uids = Vec::with_capacity(ids.len());
        for id in ids {
            let uid = match entry.uids.get(*id) {
                Some(uid) => *uid,
                None => {
                    let uid = entry.next_uid;
                    entry.next_uid = entry.next_uid.saturating_add(1);
                    entry.uids.insert((*id).to_owned(), uid);
                    changed = true;
                    uid
                }
            };
            uids.push(uid);
        }
        let summary = MailboxUids {
            uidvalidity: entry.uidvalidity,
            next_uid: entry.next_uid,
            uids: BTreeMap::new(),
        };
        (uids, summary, changed)
    }

    /// The flags of message `id`.
    pub fn flags(&self, id: &str) -> Flags {
        self.saved.flags.get(id).copied().unwrap_or_default()
    }

    /// Sets the flags of message `id`; returns whether they changed.
    pub fn set_flags(&mut self, id: &str, flags: Flags) -> bool {
        if self.flags(id) == flags {
            return false;
        }
        if flags == Flags::default() {
            self.saved.flags.remove(id);
        } else {
            self.saved.flags.insert(id.to_owned(), flags);
        }
        true
    }

    /// Forgets the flags of messages no longer in the quarantine.
    pub fn keep_flags_of(&mut self, ids: &[&str]) -> bool {
        let present: std::collections::HashSet<&str> = ids.iter().copied().collect();
        let before = self.saved.flags.len();
        self.saved
            .flags
            .retain(|id, _| present.contains(id.as_str()));
        before != self.saved.flags.len()
    }

    /// Writes the state: a 0600 temp file, fsync, rename over the old one, fsync the
    /// directory.
    pub fn save(&self) -> Result<(), ImapError> {
        let fail = |source| ImapError::State {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(&self.saved).map_err(|e| fail(std::io::Error::other(e)))?;
        let temp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(fail(e));
        }
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_survive_a_reload_and_a_lost_file_means_a_new_uidvalidity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = State::load(dir.path()).expect("fresh");
        let (uids, mb, changed) = state.assign("INBOX", &["a", "b"], 1000);
        assert_eq!(
            (uids, mb.uidvalidity, mb.next_uid, changed),
            (vec![1, 2], 1000, 3, true)
        );
        state.set_flags(
            "a",
            Flags {
                seen: true,
                flagged: false,
            },
        );
        state.save().expect("save");

        let mut again = State::load(dir.path()).expect("reload");
        let (uids, mb, changed) = again.assign("INBOX", &["b", "c"], 2000);
        assert_eq!(
            (uids, mb.uidvalidity, mb.next_uid, changed),
            (vec![2, 3], 1000, 4, true)
        );
        let (uids, _, changed) = again.assign("INBOX", &["b", "c"], 2000);
        assert_eq!((uids, changed), (vec![2, 3], false));
        assert!(again.flags("a").seen);

        std::fs::remove_file(dir.path().join(STATE_FILE)).expect("lose it");
        let mut lost = State::load(dir.path()).expect("fresh again");
        let (uids, mb, _) = lost.assign("INBOX", &["b", "c"], 3000);
        assert_eq!((uids, mb.uidvalidity), (vec![1, 2], 3000));
    }

    /// What one flag change costs at scale: every change rewrites the whole file. Figures
    /// only (`cargo test --release --lib saving_at_scale -- --ignored --nocapture`), with
    /// `RECLAIM_IMAP_STATE_MESSAGES` messages (100,000 by default) in INBOX and in one
    /// domain's mailbox, each \Seen.
    #[test]
    #[ignore = "a benchmark: prints figures"]
    fn saving_at_scale() {
        let messages: usize = std::env::var("RECLAIM_IMAP_STATE_MESSAGES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = State::load(dir.path()).expect("fresh");
        let ids: Vec<String> = (0..messages)
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        state.assign("INBOX", &refs, 1000);
        state.assign("old.example", &refs, 1000);
        let seen = Flags {
            seen: true,
            flagged: false,
        };
        for id in &refs {
            state.set_flags(id, seen);
        }
        let mut took = Vec::new();
        for _ in 0..20 {
            let flagged = !state.flags(refs[0]).flagged;
            state.set_flags(
                refs[0],
                Flags {
                    seen: true,
                    flagged,
                },
            );
            let started = std::time::Instant::now();
            state.save().expect("save");
            took.push(started.elapsed());
        }
        took.sort();
        let size = std::fs::metadata(dir.path().join(STATE_FILE))
            .expect("saved")
            .len();
        let started = std::time::Instant::now();
        let loaded = State::load(dir.path()).expect("reload");
        let load = started.elapsed();
        assert!(loaded.flags(refs[messages - 1]).seen);
        eprintln!(
            "{messages} messages in 2 mailboxes, all \\Seen: file {size} bytes; one save \
             (20 runs) min {:?}, median {:?}, max {:?}; load {load:?}",
            took[0], took[10], took[19]
        );
    }
}
