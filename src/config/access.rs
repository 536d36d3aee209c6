//! `[[principal]]`: who may use the admin API and with which roles, validated into the
//! admin API's [`AccessPolicy`].

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::admin::access::{AccessPolicy, Credential, Principal, Role};
use crate::domains::RetiredDomains;

/// Most principals one config may list; a quarantine has a handful of reviewers.
const MAX_PRINCIPALS: usize = 1000;

/// One `[[principal]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrincipal {
    name: Option<String>,
    uid: Option<u32>,
    certificate_subject: Option<String>,
    certificate_sha256: Option<String>,
    roles: Vec<String>,
    domains: Option<Vec<String>>,
}

/// Validates the principals: each names exactly one credential, at least one known role,
/// and no credential appears twice (the first match would silently win); `domains`, if
/// given, names retired domains of this config.
pub(super) fn access_policy(
    raw: Vec<RawPrincipal>,
    retired: &RetiredDomains,
) -> Result<AccessPolicy, ConfigError> {
    if raw.len() > MAX_PRINCIPALS {
        return Err(invalid(
            "principal",
            format!("at most {MAX_PRINCIPALS} principals"),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut principals = Vec::with_capacity(raw.len());
    for p in raw {
        let credential = match (p.uid, p.certificate_subject, p.certificate_sha256) {
            (Some(uid), None, None) => Credential::Uid(uid),
            (None, Some(subject), None) if !subject.trim().is_empty() => {
                Credential::Subject(subject)
            }
            (None, None, Some(hex)) => Credential::Fingerprint(fingerprint(&hex)?),
            _ => {
                return Err(invalid(
                    "principal",
                    "each [[principal]] names exactly one of uid, certificate_subject \
                     (CN=…,O=… as the audit trail shows it) or certificate_sha256",
                ));
            }
        };
        if !seen.insert(format!("{credential:?}")) {
            return Err(invalid(
                "principal",
                format!("{credential:?} is listed twice"),
            ));
        }
        if p.roles.is_empty() {
            return Err(invalid(
                "principal.roles",
                format!("{credential:?} has no role; give at least one"),
            ));
        }
        let mut roles = p
            .roles
            .iter()
            .map(|r| r.parse::<Role>().map_err(|m| invalid("principal.roles", m)))
            .collect::<Result<Vec<_>, _>>()?;
        roles.sort();
        roles.dedup();
        if let Some(name) = &p.name
            && (name.is_empty() || name.len() > 100 || name.chars().any(char::is_control))
        {
            return Err(invalid(
                "principal.name",
                "a name of 1 to 100 characters without control characters",
            ));
        }
        let domains = p
            .domains
            .map(|names| scope(&names, retired, &credential))
            .transpose()?;
        principals.push(Principal {
            name: p.name,
            credential,
            roles,
            domains,
        });
    }
    Ok(AccessPolicy { principals })
}

/// A principal's `domains`, normalised as messages record them (`*.` dropped): each must be
/// a retired domain of this config, and the list must not be empty (it would show nothing;
/// leave `domains` out for all of them).
fn scope(
    names: &[String],
    retired: &RetiredDomains,
    credential: &Credential,
) -> Result<Vec<String>, ConfigError> {
    if names.is_empty() {
        return Err(invalid(
            "principal.domains",
            format!("{credential:?} has domains = []; name at least one, or leave it out for all"),
        ));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let bare = name.strip_prefix("*.").unwrap_or(name);
        let normal = crate::domains::normalize(bare)
            .filter(|n| retired.names().any(|r| r == n))
            .ok_or_else(|| {
                invalid(
                    "principal.domains",
                    format!("{name:?} (for {credential:?}) is not a [[domain]] of this config"),
                )
            })?;
        if !out.contains(&normal) {
            out.push(normal);
        }
    }
    Ok(out)
}

/// A certificate's SHA-256 as `openssl x509 -fingerprint -sha256` prints it (colons, any
/// case) or as plain hex; kept as lower-case hex.
fn fingerprint(text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    let text = text
        .strip_prefix("sha256 Fingerprint=")
        .or_else(|| text.strip_prefix("SHA256 Fingerprint="))
        .unwrap_or(text);
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(
            "principal.certificate_sha256",
            "64 hex digits (colons allowed), the SHA-256 of the certificate's DER encoding",
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AccessPolicy, ConfigError> {
        #[derive(Deserialize)]
        struct File {
            principal: Vec<RawPrincipal>,
        }
        let file: File = toml::from_str(text).expect("toml");
        let retired =
            RetiredDomains::new(["old.example", "*.other.example"]).expect("retired domains");
        access_policy(file.principal, &retired)
    }

    #[test]
    fn domains_limit_a_principal_to_retired_domains_of_the_config() {
        let policy = parse(
            r#"
            [[principal]]
            uid = 1000
            roles = ["viewer"]
            domains = ["OLD.example", "*.other.example", "old.example."]
            [[principal]]
            uid = 1001
            roles = ["viewer"]
            "#,
        )
        .expect("valid");
        assert_eq!(
            policy.principals[0].domains.as_deref(),
            Some(&["old.example".to_owned(), "other.example".to_owned()][..])
        );
        assert_eq!(policy.principals[1].domains, None);
        for domains in [
            "[]",
            "[\"new.example\"]",
            "[\"sub.other.example\"]",
            "[\"not a name\"]",
        ] {
            let text = format!("[[principal]]\nuid = 1\nroles = [\"viewer\"]\ndomains = {domains}");
            match parse(&text) {
                Err(ConfigError::Invalid { key, .. }) => {
                    assert_eq!(key, "principal.domains", "{domains}")
                }
                other => panic!("{domains}: {other:?}"),
            }
        }
    }

    #[test]
    fn principals_are_read_with_their_roles() {
        let policy = parse(
            r#"
            [[principal]]
            name = "alice"
            uid = 1000
            roles = ["viewer", "exporter", "viewer"]
            [[principal]]
            certificate_subject = "CN=bob,O=Example"
            roles = ["auditor"]
            [[principal]]
            certificate_sha256 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
            roles = ["admin"]
            "#,
        )
        .expect("valid");
        assert_eq!(policy.principals.len(), 3);
        assert_eq!(policy.principals[0].credential, Credential::Uid(1000));
        assert_eq!(policy.principals[0].roles, [Role::Viewer, Role::Exporter]);
        assert_eq!(
            policy.principals[2].credential,
            Credential::Fingerprint("abcdef0123456789".repeat(4))
        );
    }

    #[test]
    fn bad_principals_are_refused_with_the_key() {
        for (text, key) in [
            ("[[principal]]\nroles = [\"viewer\"]", "principal"),
            (
                "[[principal]]\nuid = 1\ncertificate_subject = \"CN=a\"\nroles = [\"viewer\"]",
                "principal",
            ),
            ("[[principal]]\nuid = 1\nroles = []", "principal.roles"),
            (
                "[[principal]]\nuid = 1\nroles = [\"root\"]",
                "principal.roles",
            ),
            (
                "[[principal]]\nuid = 1\nroles = [\"viewer\"]\n[[principal]]\nuid = 1\nroles = [\"admin\"]",
                "principal",
            ),
            (
                "[[principal]]\ncertificate_sha256 = \"abc\"\nroles = [\"viewer\"]",
                "principal.certificate_sha256",
            ),
            (
                "[[principal]]\ncertificate_subject = \" \"\nroles = [\"viewer\"]",
                "principal",
            ),
            (
                "[[principal]]\nname = \"a\\u001b[31m\"\nuid = 1\nroles = [\"viewer\"]",
                "principal.name",
            ),
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
