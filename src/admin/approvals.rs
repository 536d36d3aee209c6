//! Four eyes on the admin API: which actions need a second principal's approval, filing
//! and deciding requests, and the gate a guarded action passes only under an approved
//! request of its caller. The decisions are pure functions, tested here; the store keeps
//! the requests and changes their state only by compare-and-set.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Oversight;
use super::access::{Denied, Permission};
use super::peer::Peer;
use super::routes::{Purpose, Refusal, Route, refuse};
use crate::store::{
    ApprovalRequest, Filing, GuardedAction, NewRequest, QuarantineStore, RequestBounds,
    RequestState, Swap,
};

/// `[approvals]`: the actions that need an approved request, how long one stays good, how
/// many may be open and how long ended ones stay listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPolicy {
    pub actions: BTreeSet<GuardedAction>,
    /// From filing: a request must be approved and used before this has passed.
    pub expiry: Duration,
    /// Most requests open at once (pending, or approved and not yet expired or used):
    /// filing more is answered `429` until some are decided, used or expired.
    pub max_open: usize,
    /// After its expiry, how long a request stays listed; then the next filing forgets
    /// it (the audit trail keeps its history).
    pub keep: Duration,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            actions: BTreeSet::new(),
            expiry: Duration::from_secs(24 * 3600),
            max_open: 100,
            keep: Duration::from_secs(90 * 86_400),
        }
    }
}

impl ApprovalPolicy {
    /// Whether `action` needs an approved request.
    pub fn needs(&self, action: GuardedAction) -> bool {
        self.actions.contains(&action)
    }

    /// The store's bounds for a filing at `now`.
    pub fn bounds(&self, now: i64) -> RequestBounds {
        let keep = i64::try_from(self.keep.as_secs()).unwrap_or(i64::MAX);
        RequestBounds {
            max_open: self.max_open,
            forget_expired_before: now.saturating_sub(keep),
        }
    }
}

/// A request as the API lists it: the stored request and whether it has expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    #[serde(flatten)]
    pub request: ApprovalRequest,
    pub expired: bool,
}

impl RequestView {
    pub fn at(request: ApprovalRequest, now: i64) -> Self {
        let expired = now >= request.filed.expires;
        Self { request, expired }
    }
}

/// The API's list of requests, with the actions the policy guards so that a client knows
/// which of its actions to file a request for before trying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestList {
    pub requests: Vec<RequestView>,
    #[serde(default)]
    pub guarded: Vec<GuardedAction>,
}

/// The guarded action `route` carries out, if it is one.
pub fn guarded(route: &Route) -> Option<GuardedAction> {
    match route {
        Route::Sealed {
            purpose: Purpose::Export,
            ..
        } => Some(GuardedAction::Export),
        Route::Sealed {
            purpose: Purpose::Release,
            ..
        } => Some(GuardedAction::Release),
        Route::Delete { .. } => Some(GuardedAction::Delete),
        Route::Purge { .. } => Some(GuardedAction::Purge),
        Route::Hold { held: false, .. } => Some(GuardedAction::HoldLift),
        _ => None,
    }
}

/// Whether `request` lets `actor` carry out `route` (the guarded `action`) at `now`: it is
/// for this action, approved, not expired, filed by `actor` (the approver agreed to the
/// requester doing it, not to anyone doing it) and covers what `route` touches.
pub fn admits(
    request: &ApprovalRequest,
    action: GuardedAction,
    route: &Route,
    actor: &str,
    now: i64,
) -> Result<(), Denied> {
    let n = request.number;
    let filed = &request.filed;
    if filed.action != action {
        return Err(Denied(format!(
            "request {n} is for {}, not {action}",
            filed.action
        )));
    }
    if !matches!(request.state, RequestState::Approved { .. }) {
        return Err(Denied(format!(
            "request {n} is {}, not approved; {action} needs an approved request",
            request.state.name()
        )));
    }
    if now >= filed.expires {
        return Err(Denied(format!(
            "request {n} expired; file a new one for {action}"
        )));
    }
    if filed.requester != actor {
        return Err(Denied(format!(
            "request {n} was filed by {}; only its requester may carry it out",
            filed.requester_who
        )));
    }
    let covers = |id: &crate::store::MessageId| filed.ids.contains(&id.to_string());
    if let Route::Sealed {
        purpose: Purpose::Release,
        to,
        ..
    } = route
        && !same_recipients(to, &filed.to)
    {
        return Err(Denied(if filed.to.is_empty() {
            format!("request {n} names no recipients; file a new one that does")
        } else {
            format!(
                "request {n} approves a release to {} only",
                filed.to.join(", ")
            )
        }));
    }
    let covered = match route {
        Route::Sealed { id, .. } | Route::Hold { id, .. } => covers(id),
        Route::Delete { ids, .. } => ids.iter().all(covers),
        Route::Purge { older_than, .. } => filed.older_than.is_some_and(|age| *older_than >= age),
        _ => false,
    };
    if !covered {
        return Err(Denied(match route {
            Route::Purge { .. } => format!(
                "request {n} approves a purge of messages older than {}s only",
                filed.older_than.unwrap_or_default()
            ),
            _ => format!("request {n} does not name every message this {action} touches"),
        }));
    }
    Ok(())
}

/// Whether a release to `used` goes to exactly the `approved` recipients (addresses
/// compared without regard to case, as sets; both come sorted and without repeats).
fn same_recipients(used: &[String], approved: &[String]) -> bool {
    !approved.is_empty()
        && used.len() == approved.len()
        && used
            .iter()
            .zip(approved)
            .all(|(u, a)| u.eq_ignore_ascii_case(a))
}

/// Why a guarded action was not let through.
pub(super) enum Blocked {
    /// Refused (403, recorded with why).
    Denied(Denied),
    /// The store failed.
    Failed(Refusal),
}

/// Lets `route` through if it needs no approval, or if `number` names an approved request
/// that admits it; a one-shot request is used up here, atomically, before the action is
/// carried out (an action that then fails has still used it). Returns the note for the
/// audit record of the action.
pub(super) async fn gate(
    store: &impl QuarantineStore,
    oversight: &Oversight,
    peer: &Peer,
    route: &Route,
    number: Option<u64>,
    now: i64,
) -> Result<Option<String>, Blocked> {
    let Some(action) = guarded(route).filter(|a| oversight.approvals.needs(*a)) else {
        return Ok(None);
    };
    let Some(number) = number else {
        return Err(Blocked::Denied(Denied(format!(
            "{action} needs an approval: file a request (reclaim request {action} …), have \
             another principal approve it, then pass its number (request=N, --request N)"
        ))));
    };
    let actor = actor(oversight, peer).map_err(Blocked::Denied)?;
    let request = store
        .request_get(number)
        .await
        .map_err(|e| Blocked::Failed(super::handler::internal(e)))?
        .ok_or_else(|| Blocked::Denied(Denied(format!("there is no request {number}"))))?;
    admits(&request, action, route, &actor, now).map_err(Blocked::Denied)?;
    let RequestState::Approved { by, who, at } = request.state.clone() else {
        return Err(Blocked::Denied(Denied(format!(
            "request {number} is not approved"
        ))));
    };
    if action.one_shot() {
        let used = RequestState::Used {
            by,
            who: who.clone(),
            at,
            used_at: now,
        };
        match store
            .request_swap(number, &request.state, used)
            .await
            .map_err(|e| Blocked::Failed(super::handler::internal(e)))?
        {
            Swap::Done(_) => {}
            Swap::Stale(now) => {
                return Err(Blocked::Denied(Denied(format!(
                    "request {number} is {} now; it allows one {action}",
                    now.state.name()
                ))));
            }
            Swap::Missing => {
                return Err(Blocked::Denied(Denied(format!(
                    "there is no request {number}"
                ))));
            }
        }
    }
    Ok(Some(format!(
        "under request {number} of {}, approved by {who}",
        request.filed.requester_who
    )))
}

/// `peer`'s four-eyes identity, or the refusal for a peer that has none.
fn actor(oversight: &Oversight, peer: &Peer) -> Result<String, Denied> {
    oversight.access.actor(peer).ok_or_else(|| {
        Denied(format!(
            "{} cannot be told apart from other clients, so it can neither request nor approve",
            peer.who
        ))
    })
}

/// What filing, listing or deciding answered, and the note and refusal for its record.
pub(super) struct Outcome {
    pub result: Result<String, Refusal>,
    /// For the audit record's detail.
    pub note: Option<String>,
    /// Ids of the request decided, for the audit record.
    pub ids: Vec<String>,
}

/// Answers the request routes.
pub(super) async fn answer(
    store: &impl QuarantineStore,
    oversight: &Oversight,
    peer: &Peer,
    route: &Route,
    now: i64,
) -> Outcome {
    let scope = oversight.access.scope(peer);
    let in_scope = |r: &ApprovalRequest| !scope.limited() || scope.admits(&r.filed.domains);
    let mut out = Outcome {
        result: Err(refuse(404, "no such endpoint")),
        note: None,
        ids: Vec::new(),
    };
    match route {
        Route::RequestCreate {
            action,
            ids,
            older_than,
            to,
            reason,
        } => {
            out.result = async {
                if !oversight.approvals.needs(*action) {
                    return Err(refuse(
                        400,
                        format!("{action} needs no approval here ([approvals] actions)"),
                    ));
                }
                let actor = actor(oversight, peer).map_err(|Denied(why)| refuse(403, why))?;
                // A message that does not exist, or is outside a limited principal's
                // domains, is a 404 alike, as everywhere in the API.
                let mut domains = Vec::new();
                for id in ids {
                    let entry = store
                        .get(*id)
                        .await
                        .map_err(super::handler::internal)?
                        .filter(|e| scope.admits(&e.meta.domains))
                        .ok_or_else(|| refuse(404, format!("no message {id}")))?;
                    for d in entry.meta.domains {
                        if !domains.contains(&d) {
                            domains.push(d);
                        }
                    }
                }
                let expires = now.saturating_add(
                    i64::try_from(oversight.approvals.expiry.as_secs()).unwrap_or(i64::MAX),
                );
                let new = NewRequest {
                    action: *action,
                    ids: ids.iter().map(ToString::to_string).collect(),
                    older_than: *older_than,
                    to: to.clone(),
                    domains,
                    reason: reason.clone(),
                    requester: actor,
                    requester_who: peer.who.clone(),
                    created: now,
                    expires,
                };
                match store
                    .request_create(new, oversight.approvals.bounds(now), now)
                    .await
                    .map_err(super::handler::internal)?
                {
                    Filing::Filed(request) => Ok(*request),
                    Filing::Full { open } => Err(refuse(
                        429,
                        format!(
                            "{open} requests are open, the most there may be ({}); \
                             decide or let some expire first",
                            oversight.approvals.max_open
                        ),
                    )),
                }
            }
            .await
            .and_then(|request| {
                out.note = Some(format!(
                    "request {}: {action}, expires {}",
                    request.number, request.filed.expires
                ));
                to_json(&RequestView::at(request, now))
            });
        }
        Route::RequestList { limit } => {
            out.result = match store.request_list(*limit).await {
                Ok(requests) => to_json(&RequestList {
                    requests: requests
                        .into_iter()
                        .filter(in_scope)
                        .map(|r| RequestView::at(r, now))
                        .collect(),
                    guarded: oversight.approvals.actions.iter().copied().collect(),
                }),
                Err(e) => Err(super::handler::internal(e)),
            };
        }
        Route::RequestDecide {
            number,
            approve,
            reason,
        } => {
            let decided = decide(store, oversight, peer, *number, *approve, reason, now).await;
            out.ids = decided.ids;
            out.note = decided.note;
            out.result = decided
                .result
                .and_then(|r| to_json(&RequestView::at(r, now)));
        }
        _ => {}
    }
    out
}

struct Decided {
    result: Result<ApprovalRequest, Refusal>,
    note: Option<String>,
    ids: Vec<String>,
}

/// Approves or denies request `number` for `peer`, who must hold the permission its action
/// needs, see its messages and not be its requester.
async fn decide(
    store: &impl QuarantineStore,
    oversight: &Oversight,
    peer: &Peer,
    number: u64,
    approve: bool,
    reason: &Option<String>,
    now: i64,
) -> Decided {
    let verb = if approve { "approve" } else { "deny" };
    let mut decided = Decided {
        result: Err(refuse(404, format!("there is no request {number}"))),
        note: None,
        ids: Vec::new(),
    };
    let request = match store.request_get(number).await {
        Ok(Some(request)) => request,
        Ok(None) => return decided,
        Err(e) => {
            decided.result = Err(super::handler::internal(e));
            return decided;
        }
    };
    decided.ids = request.filed.ids.clone();
    let scope = oversight.access.scope(peer);
    if scope.limited() && !scope.admits(&request.filed.domains) {
        decided.note = Some(format!(
            "request {number} is outside the principal's domains ({})",
            scope.describe()
        ));
        return decided;
    }
    let action = request.filed.action;
    let refused = |decided: &mut Decided, status: u16, why: String| {
        decided.note = Some(why.clone());
        decided.result = Err(refuse(status, why));
    };
    if let Err(Denied(why)) = oversight.access.allows(
        peer,
        Permission::of_action(action),
        &format!("{verb} a {action} request"),
    ) {
        refused(&mut decided, 403, why);
        return decided;
    }
    let actor = match actor(oversight, peer) {
        Ok(actor) => actor,
        Err(Denied(why)) => {
            refused(&mut decided, 403, why);
            return decided;
        }
    };
    if actor == request.filed.requester {
        refused(
            &mut decided,
            403,
            format!(
                "{} filed request {number}; another principal must {verb} it (four eyes)",
                peer.who
            ),
        );
        return decided;
    }
    if now >= request.filed.expires {
        refused(&mut decided, 409, format!("request {number} expired"));
        return decided;
    }
    let decidable = match request.state {
        RequestState::Pending => true,
        // Denying an approved request that was not used withdraws the approval.
        RequestState::Approved { .. } => !approve,
        _ => false,
    };
    if !decidable {
        refused(
            &mut decided,
            409,
            format!("request {number} is already {}", request.state.name()),
        );
        return decided;
    }
    let next = if approve {
        RequestState::Approved {
            by: actor,
            who: peer.who.clone(),
            at: now,
        }
    } else {
        RequestState::Denied {
            by: actor,
            who: peer.who.clone(),
            at: now,
            denial: reason.clone(),
        }
    };
    match store.request_swap(number, &request.state, next).await {
        Ok(Swap::Done(request)) => {
            decided.note = Some(format!(
                "request {number} ({action}) of {}: {}",
                request.filed.requester_who,
                request.state.name()
            ));
            decided.result = Ok(request);
        }
        Ok(Swap::Stale(now)) => refused(
            &mut decided,
            409,
            format!("request {number} is already {}", now.state.name()),
        ),
        Ok(Swap::Missing) => {}
        Err(e) => decided.result = Err(super::handler::internal(e)),
    }
    decided
}

fn to_json(value: &impl Serialize) -> Result<String, Refusal> {
    serde_json::to_string(value).map_err(super::handler::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MessageId;

    fn request(state: RequestState, ids: &[MessageId]) -> ApprovalRequest {
        ApprovalRequest {
            number: 7,
            filed: NewRequest {
                action: GuardedAction::Delete,
                ids: ids.iter().map(ToString::to_string).collect(),
                older_than: None,
                to: vec![],
                domains: vec![],
                reason: "ticket".into(),
                requester: "principal alice".into(),
                requester_who: "uid 1000".into(),
                created: 0,
                expires: 100,
            },
            state,
        }
    }

    fn approved() -> RequestState {
        RequestState::Approved {
            by: "principal bob".into(),
            who: "uid 1001".into(),
            at: 1,
        }
    }

    #[test]
    fn a_release_goes_to_exactly_the_approved_recipients() {
        let a = MessageId::from_key(1);
        let mut filed = request(approved(), &[a]);
        filed.filed.action = GuardedAction::Release;
        filed.filed.to = vec!["case@new.example".into(), "dpo@new.example".into()];
        let release = |to: &[&str]| Route::Sealed {
            id: a,
            purpose: Purpose::Release,
            reason: "r".into(),
            to: to.iter().map(|t| t.to_string()).collect(),
        };
        let alice = "principal alice";
        let check = |filed: &ApprovalRequest, to: &[&str]| {
            admits(filed, GuardedAction::Release, &release(to), alice, 50)
        };
        assert!(check(&filed, &["case@new.example", "dpo@new.example"]).is_ok());
        assert!(check(&filed, &["Case@New.example", "dpo@new.example"]).is_ok());
        for to in [
            &["case@new.example"][..],
            &["attacker@evil.example", "dpo@new.example"][..],
            &["case@new.example", "dpo@new.example", "x@new.example"][..],
            &[][..],
        ] {
            let why = check(&filed, to).expect_err("refused").0;
            assert!(
                why.contains("approves a release to case@new.example, dpo@new.example only"),
                "{to:?}: {why}"
            );
        }
        filed.filed.to.clear();
        let why = check(&filed, &["case@new.example"]).expect_err("refused").0;
        assert!(why.contains("names no recipients"), "{why}");
    }

    #[test]
    fn only_an_approved_unexpired_request_of_the_caller_covering_the_ids_admits() {
        let (a, b) = (MessageId::from_key(1), MessageId::from_key(2));
        let delete = |ids: Vec<MessageId>| Route::Delete { ids, reason: None };
        let ok = request(approved(), &[a, b]);
        let alice = "principal alice";
        assert!(admits(&ok, GuardedAction::Delete, &delete(vec![a]), alice, 50).is_ok());
        assert!(admits(&ok, GuardedAction::Delete, &delete(vec![a, b]), alice, 99).is_ok());
        let why = |r: Result<(), Denied>| r.expect_err("refused").0;
        assert!(
            why(admits(
                &ok,
                GuardedAction::Delete,
                &delete(vec![a]),
                alice,
                100
            ))
            .contains("expired")
        );
        assert!(
            why(admits(
                &ok,
                GuardedAction::Delete,
                &delete(vec![a]),
                "principal bob",
                50
            ))
            .contains("only its requester")
        );
        let c = MessageId::from_key(3);
        assert!(
            why(admits(
                &ok,
                GuardedAction::Delete,
                &delete(vec![a, c]),
                alice,
                50
            ))
            .contains("does not name every message")
        );
        let pending = request(RequestState::Pending, &[a]);
        assert!(
            why(admits(
                &pending,
                GuardedAction::Delete,
                &delete(vec![a]),
                alice,
                50
            ))
            .contains("pending, not approved")
        );
        let hold = Route::Hold {
            id: a,
            held: false,
            reason: None,
        };
        assert!(
            why(admits(&ok, GuardedAction::HoldLift, &hold, alice, 50)).contains("is for delete")
        );
        let mut purge = request(approved(), &[]);
        purge.filed.action = GuardedAction::Purge;
        purge.filed.older_than = Some(3600);
        let purging = |older_than| Route::Purge {
            older_than,
            reason: None,
        };
        assert!(admits(&purge, GuardedAction::Purge, &purging(7200), alice, 50).is_ok());
        assert!(
            why(admits(
                &purge,
                GuardedAction::Purge,
                &purging(60),
                alice,
                50
            ))
            .contains("older than 3600s")
        );
    }

    #[test]
    fn guarded_routes_are_the_five_actions() {
        let id = MessageId::from_key(1);
        let sealed = |purpose| Route::Sealed {
            id,
            purpose,
            reason: "r".into(),
            to: vec![],
        };
        assert_eq!(guarded(&sealed(Purpose::Show)), None);
        assert_eq!(
            guarded(&sealed(Purpose::Export)),
            Some(GuardedAction::Export)
        );
        assert_eq!(
            guarded(&sealed(Purpose::Release)),
            Some(GuardedAction::Release)
        );
        let hold = |held| Route::Hold {
            id,
            held,
            reason: None,
        };
        assert_eq!(guarded(&hold(true)), None);
        assert_eq!(guarded(&hold(false)), Some(GuardedAction::HoldLift));
        assert_eq!(guarded(&Route::Stats), None);
    }
}
