//! Who may do what on the admin API: the roles of `[[principal]]`, what each grants, and the
//! decision for one request. Pure, so that the whole table is tested here.

use std::fmt;
use std::str::FromStr;

use super::peer::Peer;
use super::routes::{Purpose, Route};
use crate::store::GuardedAction;

/// A role a principal holds. Roles add up; `admin` holds every permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Lists messages, reads summaries and statistics, opens a message to read it.
    Viewer,
    /// What a viewer does, and exports messages.
    Exporter,
    /// What a viewer does, and releases messages to their new address.
    Releaser,
    /// Lists and reads summaries, deletes and purges; does not open messages.
    Deleter,
    /// Reads the audit trail and the statistics; no message, not even a summary.
    Auditor,
    /// Everything, legal holds included.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Exporter,
        Role::Releaser,
        Role::Deleter,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Exporter => "exporter",
            Role::Releaser => "releaser",
            Role::Deleter => "deleter",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role alone grants `permission`.
    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Viewer => matches!(permission, Browse | Statistics | Open),
            Role::Exporter => matches!(permission, Browse | Statistics | Open | Export),
            Role::Releaser => matches!(permission, Browse | Statistics | Open | Release),
            Role::Deleter => matches!(permission, Browse | Statistics | Delete),
            Role::Auditor => matches!(permission, Statistics | Audit),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {text:?}; roles are {}", names.join(", "))
            })
    }
}

/// What a request needs; each admin API route needs exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The message list and one message's metadata with its sealed summary.
    Browse,
    /// Counts and sizes.
    Statistics,
    /// A message's sealed bytes, to read it (`purpose=show`).
    Open,
    /// A message's sealed bytes, to export it.
    Export,
    /// A message's sealed bytes to release it, and the record of the release.
    Release,
    /// Deleting named messages, purging older ones.
    Delete,
    /// Placing and lifting legal holds.
    Hold,
    /// Reading the audit trail.
    Audit,
    /// Re-sealing messages for a changed set of reviewer keys (key management: the
    /// caller chooses who can open the mail from then on).
    Reseal,
}

impl Permission {
    /// What `route` needs; `None` for the health check, which anyone who can connect may
    /// ask (container health checks run as whatever user the platform picks).
    pub fn of(route: &Route) -> Option<Permission> {
        Some(match route {
            Route::Health => return None,
            Route::List { .. } | Route::Message(_) => Permission::Browse,
            Route::Stats => Permission::Statistics,
            Route::SealedMany { .. } => Permission::Open,
            Route::Sealed { purpose, .. } => match purpose {
                Purpose::Show => Permission::Open,
                Purpose::Export => Permission::Export,
                Purpose::Release => Permission::Release,
                Purpose::Reseal => Permission::Reseal,
            },
            Route::Reseal { .. } => Permission::Reseal,
            Route::AuditNote { .. } => Permission::Release,
            Route::Delete { .. } | Route::Purge { .. } => Permission::Delete,
            Route::Hold { .. } => Permission::Hold,
            Route::AuditList { .. } => Permission::Audit,
            Route::RequestCreate { action, .. } => Permission::of_action(*action),
            // Deciding needs the permission of the request's action too; the handler
            // checks it once it has read the request.
            Route::RequestList { .. } | Route::RequestDecide { .. } => Permission::Browse,
        })
    }

    /// What carrying out a guarded action needs: requesting or approving it needs the same.
    pub fn of_action(action: GuardedAction) -> Permission {
        match action {
            GuardedAction::Release => Permission::Release,
            GuardedAction::Export => Permission::Export,
            GuardedAction::Delete | GuardedAction::Purge => Permission::Delete,
            GuardedAction::HoldLift => Permission::Hold,
        }
    }

    /// The roles that grant it, least first, for the refusal message.
    fn granted_by(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.grants(self)).collect()
    }
}

/// How a principal is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A local user on the admin socket, by uid (`SO_PEERCRED`).
    Uid(u32),
    /// A client certificate on the mutual-TLS listener, by its subject as the audit trail
    /// shows it (`CN=…,O=…`).
    Subject(String),
    /// A client certificate by the SHA-256 of its DER encoding (lower-case hex), for when
    /// subjects are not unique.
    Fingerprint(String),
}

impl Credential {
    fn matches(&self, peer: &Peer) -> bool {
        match self {
            Credential::Uid(uid) => peer.uid == Some(*uid),
            Credential::Subject(subject) => peer.certificate_subject() == Some(subject.as_str()),
            Credential::Fingerprint(hex) => peer.certificate_sha256() == Some(hex.as_str()),
        }
    }
}

/// One `[[principal]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// How the audit trail names it, if the config gives a name.
    pub name: Option<String>,
    pub credential: Credential,
    pub roles: Vec<Role>,
    /// `domains`: the retired domains (normalised) whose messages it may see; `None` for
    /// all of them.
    pub domains: Option<Vec<String>>,
}

/// Which messages a request may see: those addressed to one of its principal's domains,
/// or every one. Statistics and the audit trail are not scoped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    Domains(&'a [String]),
}

impl Scope<'_> {
    /// Whether a message addressed to `domains` is visible.
    pub fn admits(&self, domains: &[String]) -> bool {
        match self {
            Scope::All => true,
            Scope::Domains(mine) => domains.iter().any(|d| mine.contains(d)),
        }
    }

    /// Whether anything is hidden at all.
    pub fn limited(&self) -> bool {
        matches!(self, Scope::Domains(_))
    }

    /// The domains, for a refusal or an audit detail.
    pub fn describe(&self) -> String {
        match self {
            Scope::All => "all domains".to_owned(),
            Scope::Domains(mine) => mine.join(", "),
        }
    }
}

/// The admin API's access policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The configured principals; when there are none, every client that can reach the API
    /// (the socket's owner, a certificate from the client CA) is an admin, as before roles
    /// existed.
    pub principals: Vec<Principal>,
}

/// Why a request was refused, in words for the client and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl AccessPolicy {
    /// Whether roles are enforced at all.
    pub fn enforced(&self) -> bool {
        !self.principals.is_empty()
    }

    /// The principal `peer` is, if it is one.
    pub fn principal(&self, peer: &Peer) -> Option<&Principal> {
        self.principals.iter().find(|p| p.credential.matches(peer))
    }

    /// The messages `peer` may see: every one unless it is a principal limited to domains.
    pub fn scope(&self, peer: &Peer) -> Scope<'_> {
        match self.principal(peer).and_then(|p| p.domains.as_deref()) {
            Some(domains) => Scope::Domains(domains),
            None => Scope::All,
        }
    }

    /// Decides whether `peer` may make the request `route`. A principal limited to domains
    /// may not purge, whatever its roles: a purge deletes across every domain (nor ask for
    /// one).
    pub fn check(&self, peer: &Peer, route: &Route) -> Result<(), Denied> {
        let Some(permission) = Permission::of(route) else {
            return Ok(());
        };
        let (action, _, _) = route.audit_fields();
        let purge = matches!(
            route,
            Route::Purge { .. }
                | Route::RequestCreate {
                    action: GuardedAction::Purge,
                    ..
                }
        );
        if let Some(Principal {
            domains: Some(domains),
            ..
        }) = self.principal(peer).filter(|_| purge)
        {
            return Err(Denied(format!(
                "{} may not purge: it is limited to {} and a purge deletes across all domains",
                peer.who,
                domains.join(", ")
            )));
        }
        self.allows(peer, permission, action)
    }

    /// Whether `peer`'s roles grant `permission`, for doing `action` (named in the refusal).
    pub fn allows(&self, peer: &Peer, permission: Permission, action: &str) -> Result<(), Denied> {
        if !self.enforced() {
            return Ok(());
        }
        let needed = permission
            .granted_by()
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        match self.principal(peer) {
            None => Err(Denied(format!(
                "{} is not a principal of this quarantine; {action} needs the role {needed}",
                peer.who
            ))),
            Some(principal) if principal.roles.iter().any(|r| r.grants(permission)) => Ok(()),
            Some(_) => Err(Denied(format!(
                "{} may not {action}: that needs the role {needed}",
                peer.who
            ))),
        }
    }

    /// Who `peer` is for four eyes: two requests come from the same person exactly when
    /// this is equal. A principal's configured name (so one person with a uid and a
    /// certificate under the same name is one), else its credential; with no principals
    /// configured, the peer's uid or its certificate's SHA-256. `None` for a peer that
    /// cannot be told apart from others (no uid, no certificate).
    pub fn actor(&self, peer: &Peer) -> Option<String> {
        if let Some(principal) = self.principal(peer) {
            return Some(match (&principal.name, &principal.credential) {
                (Some(name), _) => format!("principal {name}"),
                (None, Credential::Uid(uid)) => format!("uid {uid}"),
                (None, Credential::Subject(subject)) => format!("cert subject {subject}"),
                (None, Credential::Fingerprint(hex)) => format!("cert sha256 {hex}"),
            });
        }
        if self.enforced() {
            return None;
        }
        match (peer.uid, peer.certificate_sha256()) {
            (Some(uid), _) => Some(format!("uid {uid}")),
            (None, Some(hex)) => Some(format!("cert sha256 {hex}")),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ListFilter, MessageId};

    fn uid(n: u32) -> Peer {
        Peer {
            who: format!("uid {n}"),
            uid: Some(n),
            certificate: None,
        }
    }

    fn policy(roles: &[Role]) -> AccessPolicy {
        AccessPolicy {
            principals: vec![Principal {
                name: None,
                credential: Credential::Uid(1000),
                roles: roles.to_vec(),
                domains: None,
            }],
        }
    }

    fn routes() -> Vec<(Route, Option<Permission>)> {
        let id = MessageId::from_key(1);
        let sealed = |purpose| Route::Sealed {
            id,
            purpose,
            reason: "r".into(),
            to: vec![],
        };
        vec![
            (Route::Health, None),
            (
                Route::List {
                    limit: 1,
                    before: None,
                    filter: ListFilter::default(),
                    index: false,
                },
                Some(Permission::Browse),
            ),
            (Route::Message(id), Some(Permission::Browse)),
            (Route::Stats, Some(Permission::Statistics)),
            (sealed(Purpose::Show), Some(Permission::Open)),
            (sealed(Purpose::Export), Some(Permission::Export)),
            (sealed(Purpose::Release), Some(Permission::Release)),
            (
                Route::AuditNote {
                    ids: vec![id],
                    reason: "r".into(),
                    detail: None,
                },
                Some(Permission::Release),
            ),
            (
                Route::Delete {
                    ids: vec![id],
                    reason: None,
                },
                Some(Permission::Delete),
            ),
            (
                Route::Purge {
                    older_than: 1,
                    reason: None,
                },
                Some(Permission::Delete),
            ),
            (
                Route::Hold {
                    id,
                    held: false,
                    reason: None,
                },
                Some(Permission::Hold),
            ),
            (
                Route::AuditList { after: 0, limit: 1 },
                Some(Permission::Audit),
            ),
            (sealed(Purpose::Reseal), Some(Permission::Reseal)),
            (
                Route::Reseal {
                    id,
                    change: Box::new(crate::store::Reseal {
                        old_header: vec![1],
                        header: vec![2],
                        summary: vec![3],
                        sealed_to: vec!["0123456789abcdef".into()],
                    }),
                    reason: "r".into(),
                },
                Some(Permission::Reseal),
            ),
        ]
    }

    #[test]
    fn every_route_needs_what_the_table_says() {
        for (route, permission) in routes() {
            assert_eq!(Permission::of(&route), permission, "{route:?}");
        }
    }

    #[test]
    fn each_role_allows_exactly_its_permissions() {
        use Permission::*;
        let expected: [(Role, &[Permission]); 6] = [
            (Role::Viewer, &[Browse, Statistics, Open]),
            (Role::Exporter, &[Browse, Statistics, Open, Export]),
            (Role::Releaser, &[Browse, Statistics, Open, Release]),
            (Role::Deleter, &[Browse, Statistics, Delete]),
            (Role::Auditor, &[Statistics, Audit]),
            (
                Role::Admin,
                &[
                    Browse, Statistics, Open, Export, Release, Delete, Hold, Audit, Reseal,
                ],
            ),
        ];
        for (role, allowed) in expected {
            let policy = policy(&[role]);
            for (route, permission) in routes() {
                let ok = policy.check(&uid(1000), &route).is_ok();
                let want = permission.is_none_or(|p| allowed.contains(&p));
                assert_eq!(ok, want, "{role} on {route:?}");
            }
        }
    }

    #[test]
    fn roles_add_up_and_strangers_get_only_health() {
        let policy = policy(&[Role::Auditor, Role::Deleter]);
        let delete = Route::Delete {
            ids: vec![MessageId::from_key(1)],
            reason: None,
        };
        assert!(policy.check(&uid(1000), &delete).is_ok());
        assert!(
            policy
                .check(&uid(1000), &Route::AuditList { after: 0, limit: 1 })
                .is_ok()
        );
        let Err(Denied(why)) = policy.check(&uid(1001), &delete) else {
            panic!("a stranger deleted");
        };
        assert!(why.contains("uid 1001 is not a principal"), "{why}");
        assert!(why.contains("deleter or admin"), "{why}");
        assert!(policy.check(&uid(1001), &Route::Health).is_ok());
    }

    #[test]
    fn without_principals_everyone_is_admin() {
        let open = AccessPolicy::default();
        for (route, _) in routes() {
            assert!(open.check(&uid(4242), &route).is_ok(), "{route:?}");
        }
    }

    #[test]
    fn certificates_match_by_subject_or_fingerprint_only() {
        let cert = |subject: &str, sha: &str| Peer {
            who: format!("cert {subject}"),
            uid: None,
            certificate: Some(crate::admin::peer::Certificate {
                subject: Some(subject.into()),
                sha256: sha.into(),
            }),
        };
        let policy = AccessPolicy {
            principals: vec![
                Principal {
                    name: Some("alice".into()),
                    credential: Credential::Subject("CN=alice,O=Example".into()),
                    roles: vec![Role::Viewer],
                    domains: None,
                },
                Principal {
                    name: None,
                    credential: Credential::Fingerprint("ab".repeat(32)),
                    roles: vec![Role::Auditor],
                    domains: None,
                },
            ],
        };
        let audit = Route::AuditList { after: 0, limit: 1 };
        let stats = Route::Stats;
        assert!(
            policy
                .check(&cert("CN=alice,O=Example", "00"), &stats)
                .is_ok()
        );
        assert!(
            policy
                .check(&cert("CN=alice,O=Example", "00"), &audit)
                .is_err()
        );
        assert!(
            policy
                .check(&cert("CN=bob", &"ab".repeat(32)), &audit)
                .is_ok()
        );
        // A uid never matches a certificate principal, nor a subject's prefix.
        assert!(policy.check(&uid(0), &stats).is_err());
        assert!(policy.check(&cert("CN=alice", "00"), &stats).is_err());
    }

    #[test]
    fn a_principal_limited_to_domains_sees_only_theirs_and_may_not_purge() {
        let mut policy = policy(&[Role::Admin]);
        policy.principals[0].domains = Some(vec!["a.example".into()]);
        let scope = policy.scope(&uid(1000));
        assert!(scope.limited());
        assert!(scope.admits(&["b.example".into(), "a.example".into()]));
        assert!(!scope.admits(&["b.example".into()]));
        assert!(!scope.admits(&["postmaster".into()]));
        let purge = Route::Purge {
            older_than: 1,
            reason: None,
        };
        let Err(Denied(why)) = policy.check(&uid(1000), &purge) else {
            panic!("a limited admin purged");
        };
        assert!(why.contains("a.example") && why.contains("purge"), "{why}");
        for (route, _) in routes() {
            if !matches!(route, Route::Purge { .. }) {
                assert!(policy.check(&uid(1000), &route).is_ok(), "{route:?}");
            }
        }
        // Strangers and principals without domains are not scoped.
        assert_eq!(policy.scope(&uid(1001)), Scope::All);
        policy.principals[0].domains = None;
        assert!(policy.check(&uid(1000), &purge).is_ok());
        assert_eq!(policy.scope(&uid(1000)), Scope::All);
    }

    #[test]
    fn role_names_parse_and_unknown_ones_are_listed() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let err = "superuser".parse::<Role>().unwrap_err();
        assert!(err.contains("viewer, exporter"), "{err}");
    }
}
