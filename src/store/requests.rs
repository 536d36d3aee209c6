//! Four-eyes approval requests as the store keeps them: one principal asks for an action
//! on named messages with a reason, another decides. Only the state changes after filing,
//! and only by a compare-and-set, so two approvers racing cannot both win and a one-shot
//! request cannot be used twice. The rules of who may do what live in `admin::approvals`.

use std::fmt;
use std::str::FromStr;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::tables::REQUESTS;
use super::{StoreError, index::Index, index_err};

/// An action that can be made to need a second principal's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardedAction {
    Release,
    Export,
    Delete,
    Purge,
    HoldLift,
}

impl GuardedAction {
    pub const ALL: [GuardedAction; 5] = [
        GuardedAction::Release,
        GuardedAction::Export,
        GuardedAction::Delete,
        GuardedAction::Purge,
        GuardedAction::HoldLift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GuardedAction::Release => "release",
            GuardedAction::Export => "export",
            GuardedAction::Delete => "delete",
            GuardedAction::Purge => "purge",
            GuardedAction::HoldLift => "hold-lift",
        }
    }

    /// Whether an approved request for this action is used up by its first use. A release
    /// or export fetch may repeat until the request expires (a failed SMTP delivery must be
    /// retryable, an export may be fetched again); deleting, purging and lifting a hold
    /// happen once.
    pub fn one_shot(self) -> bool {
        matches!(
            self,
            GuardedAction::Delete | GuardedAction::Purge | GuardedAction::HoldLift
        )
    }
}

impl fmt::Display for GuardedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GuardedAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        GuardedAction::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = GuardedAction::ALL.iter().map(|a| a.as_str()).collect();
                format!("unknown action {text:?}; actions are {}", names.join(", "))
            })
    }
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RequestState {
    Pending,
    /// `by` is the approver's identity ([`crate::admin::access::AccessPolicy::actor`]),
    /// `who` as the audit trail names the approving peer.
    Approved {
        by: String,
        who: String,
        at: i64,
    },
    /// `denial`: why, as the denier gave it (the request's own `reason` is the ask's).
    Denied {
        by: String,
        who: String,
        at: i64,
        denial: Option<String>,
    },
    /// A one-shot request after its use.
    Used {
        by: String,
        who: String,
        at: i64,
        used_at: i64,
    },
}

impl RequestState {
    pub fn name(&self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved { .. } => "approved",
            RequestState::Denied { .. } => "denied",
            RequestState::Used { .. } => "used",
        }
    }
}

/// A request as filed, before the store gives it its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRequest {
    pub action: GuardedAction,
    /// The messages it covers (none for a purge).
    pub ids: Vec<String>,
    /// A purge's age in seconds: the purge it allows deletes no younger messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<u64>,
    /// A release's recipients: the release it allows goes to exactly these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// The retired domains of the messages it names, so that a principal limited to
    /// domains lists only requests about its own.
    #[serde(default)]
    pub domains: Vec<String>,
    pub reason: String,
    /// The requester's identity ([`crate::admin::access::AccessPolicy::actor`]).
    pub requester: String,
    /// The requesting peer as the audit trail names it.
    pub requester_who: String,
    pub created: i64,
    pub expires: i64,
}

/// A filed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub number: u64,
    #[serde(flatten)]
    pub filed: NewRequest,
    #[serde(flatten)]
    pub state: RequestState,
}

impl ApprovalRequest {
    /// Whether it may still be decided or used at `now`.
    pub fn open_at(&self, now: i64) -> bool {
        now < self.filed.expires
            && matches!(
                self.state,
                RequestState::Pending | RequestState::Approved { .. }
            )
    }
}

/// How many requests may be open at once, and when ended ones are forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBounds {
    pub max_open: usize,
    /// Requests that expired before this (Unix seconds) are removed as a new one is filed:
    /// the audit trail keeps their history. The newest request always stays, so that
    /// numbers are never given out twice.
    pub forget_expired_before: i64,
}

/// What filing a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filing {
    Filed(Box<ApprovalRequest>),
    /// As many requests as allowed are open (pending or approved, not expired).
    Full {
        open: usize,
    },
}

/// What a compare-and-set of a request's state came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The state was the one expected and is now the new one.
    Done(ApprovalRequest),
    /// The state was another (someone decided or used it first); as it is now.
    Stale(ApprovalRequest),
    Missing,
}

pub(super) fn encode(request: &ApprovalRequest) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(request).map_err(StoreError::Encode)
}

pub(super) fn decode(bytes: &[u8]) -> Result<ApprovalRequest, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::Request)
}

impl Index {
    /// Files `new` unless `bounds.max_open` requests are open at `now`, and forgets the
    /// requests that ended long enough ago, in one write transaction (redb has one writer
    /// at a time, so the count cannot race).
    pub(super) fn request_create(
        &self,
        new: NewRequest,
        bounds: RequestBounds,
        now: i64,
    ) -> Result<Filing, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let forgot;
        let filing = {
            let mut table = txn.open_table(REQUESTS).map_err(index_err)?;
            let newest = table.last().map_err(index_err)?.map(|(k, _)| k.value());
            let mut open = 0;
            let mut forget = Vec::new();
            for item in table.iter().map_err(index_err)? {
                let (k, v) = item.map_err(index_err)?;
                let request = decode(v.value())?;
                if request.open_at(now) {
                    open += 1;
                } else if request.filed.expires < bounds.forget_expired_before
                    && Some(k.value()) != newest
                {
                    forget.push(k.value());
                }
            }
            forgot = !forget.is_empty();
            for number in forget {
                table.remove(number).map_err(index_err)?;
            }
            if open >= bounds.max_open {
                Filing::Full { open }
            } else {
                let number = table
                    .last()
                    .map_err(index_err)?
                    .map_or(1, |(k, _)| k.value() + 1);
                let request = ApprovalRequest {
                    number,
                    filed: new,
                    state: RequestState::Pending,
                };
                table
                    .insert(number, encode(&request)?.as_slice())
                    .map_err(index_err)?;
                Filing::Filed(Box::new(request))
            }
        };
        // A refusal still commits what it forgot.
        finish(txn, forgot || matches!(filing, Filing::Filed(_)))?;
        Ok(filing)
    }

    pub(super) fn request_get(&self, number: u64) -> Result<Option<ApprovalRequest>, StoreError> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().map_err(index_err)?;
        let table = txn.open_table(REQUESTS).map_err(index_err)?;
        table
            .get(number)
            .map_err(index_err)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Up to `limit` requests, newest first.
    pub(super) fn request_list(&self, limit: usize) -> Result<Vec<ApprovalRequest>, StoreError> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().map_err(index_err)?;
        let table = txn.open_table(REQUESTS).map_err(index_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(index_err)?.rev().take(limit) {
            let (_, v) = item.map_err(index_err)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Sets request `number`'s state to `next` if it is `expected`.
    pub(super) fn request_swap(
        &self,
        number: u64,
        expected: &RequestState,
        next: RequestState,
    ) -> Result<Swap, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let swap = {
            let mut table = txn.open_table(REQUESTS).map_err(index_err)?;
            let current = table
                .get(number)
                .map_err(index_err)?
                .map(|v| decode(v.value()))
                .transpose()?;
            match current {
                None => Swap::Missing,
                Some(request) if request.state != *expected => Swap::Stale(request),
                Some(mut request) => {
                    request.state = next;
                    table
                        .insert(number, encode(&request)?.as_slice())
                        .map_err(index_err)?;
                    Swap::Done(request)
                }
            }
        };
        finish(txn, matches!(swap, Swap::Done(_)))?;
        Ok(swap)
    }
}

/// Commits a write transaction that changed something, aborts one that did not.
fn finish(txn: WriteTransaction, changed: bool) -> Result<(), StoreError> {
    if changed {
        txn.commit().map_err(index_err)
    } else {
        txn.abort().map_err(index_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(requester: &str, expires: i64) -> NewRequest {
        NewRequest {
            action: GuardedAction::Delete,
            ids: vec!["a".into()],
            older_than: None,
            to: vec![],
            domains: vec!["old.example".into()],
            reason: "ticket".into(),
            requester: requester.into(),
            requester_who: requester.into(),
            created: 0,
            expires,
        }
    }

    fn approved(by: &str) -> RequestState {
        RequestState::Approved {
            by: by.into(),
            who: by.into(),
            at: 1,
        }
    }

    #[test]
    fn requests_are_numbered_capped_and_swapped_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(&dir.path().join("index.redb")).expect("open");
        let cap = |max_open| RequestBounds {
            max_open,
            forget_expired_before: i64::MIN,
        };
        let Filing::Filed(first) = index
            .request_create(new("alice", 100), cap(2), 0)
            .expect("file")
        else {
            panic!("refused");
        };
        assert_eq!(first.number, 1);
        let Filing::Filed(second) = index
            .request_create(new("alice", 5), cap(2), 0)
            .expect("file")
        else {
            panic!("refused");
        };
        assert_eq!(second.number, 2);
        assert_eq!(
            index
                .request_create(new("alice", 100), cap(2), 0)
                .expect("file"),
            Filing::Full { open: 2 }
        );
        // An expired request no longer counts against the cap.
        assert!(matches!(
            index
                .request_create(new("alice", 100), cap(2), 10)
                .expect("file"),
            Filing::Filed(request) if request.number == 3
        ));
        // Two approvers race: the first wins, the second finds it decided.
        let won = index
            .request_swap(1, &RequestState::Pending, approved("bob"))
            .expect("swap");
        assert!(matches!(won, Swap::Done(_)));
        let lost = index
            .request_swap(1, &RequestState::Pending, approved("carol"))
            .expect("swap");
        let Swap::Stale(now) = lost else {
            panic!("{lost:?}")
        };
        assert_eq!(now.state, approved("bob"));
        let used = RequestState::Used {
            by: "bob".into(),
            who: "bob".into(),
            at: 1,
            used_at: 2,
        };
        assert!(matches!(
            index.request_swap(1, &approved("bob"), used.clone()),
            Ok(Swap::Done(_))
        ));
        assert!(matches!(
            index.request_swap(1, &approved("bob"), used),
            Ok(Swap::Stale(_))
        ));
        assert!(matches!(
            index.request_swap(9, &RequestState::Pending, approved("bob")),
            Ok(Swap::Missing)
        ));
        let listed = index.request_list(2).expect("list");
        assert_eq!(
            listed.iter().map(|r| r.number).collect::<Vec<_>>(),
            vec![3, 2]
        );
        assert_eq!(
            index
                .request_get(1)
                .expect("get")
                .expect("one")
                .state
                .name(),
            "used"
        );
        // The record round-trips through its JSON.
        let bytes = encode(&listed[0]).expect("encode");
        assert_eq!(decode(&bytes).expect("decode"), listed[0]);

        // Long-ended requests are forgotten as the next is filed, all but the newest, and
        // numbers go on from it; a refused filing still forgets.
        let forget = |max_open| RequestBounds {
            max_open,
            forget_expired_before: 200,
        };
        let Filing::Filed(fourth) = index
            .request_create(new("alice", 100), forget(10), 150)
            .expect("file")
        else {
            panic!("refused");
        };
        assert_eq!(fourth.number, 4);
        let numbers = |index: &Index| -> Vec<u64> {
            index
                .request_list(10)
                .expect("list")
                .iter()
                .map(|r| r.number)
                .collect()
        };
        assert_eq!(
            numbers(&index),
            vec![4, 3],
            "1 and 2 expired before 200; 3 was the newest"
        );
        assert_eq!(
            index
                .request_create(new("alice", 1_000), forget(10), 150)
                .expect("file"),
            Filing::Filed(Box::new(ApprovalRequest {
                number: 5,
                filed: new("alice", 1_000),
                state: RequestState::Pending,
            }))
        );
        assert_eq!(numbers(&index), vec![5, 4]);
        assert_eq!(
            index
                .request_create(new("alice", 1_000), forget(1), 300)
                .expect("file"),
            Filing::Full { open: 1 }
        );
        assert_eq!(
            numbers(&index),
            vec![5],
            "4 forgotten though the filing was refused"
        );
    }

    #[test]
    fn action_names_parse_and_unknown_ones_are_listed() {
        for action in GuardedAction::ALL {
            assert_eq!(action.as_str().parse::<GuardedAction>(), Ok(action));
        }
        let err = "shred".parse::<GuardedAction>().unwrap_err();
        assert!(
            err.contains("release, export, delete, purge, hold-lift"),
            "{err}"
        );
    }
}
