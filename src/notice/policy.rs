//! Who may get a notice: the sender-level rules (RFC 3834, authentication of the envelope
//! sender for its own domain), and which addresses a notice may quote.

use crate::config::{AuthRequirement, NotifyConfig};
use crate::domains::RetiredDomains;
use crate::summary::{AuthResults, Summary};

/// Why a message gets no notice (for logs, `stats` and the suppressed counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    NoFromAddress,
    NullSender,
    SystemSender,
    RetiredSender,
    Automated,
    Unauthenticated,
    NoTemplate,
    /// Another retired recipient of the same message is already answered by its notice.
    PerMessage,
}

impl Suppressed {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::NoFromAddress => "no_from_address",
            Suppressed::NullSender => "null_sender",
            Suppressed::SystemSender => "system_sender",
            Suppressed::RetiredSender => "retired_sender",
            Suppressed::Automated => "automated",
            Suppressed::Unauthenticated => "unauthenticated",
            Suppressed::NoTemplate => "no_template",
            Suppressed::PerMessage => "per_message",
        }
    }
}

/// Senders that are mailing-list or system addresses by convention (RFC 3834 2).
fn is_system_sender(sender: &str) -> bool {
    let local = sender
        .rsplit_once('@')
        .map_or(sender, |(l, _)| l)
        .to_ascii_lowercase();
    local == "mailer-daemon" || local.starts_with("owner-") || local.ends_with("-request")
}

/// Whether the sender of this message may be told at all (before rate limits).
pub fn eligibility(
    summary: &Summary,
    notify: &NotifyConfig,
    domains: &RetiredDomains,
) -> Result<(), Suppressed> {
    if notify.from.is_none() {
        return Err(Suppressed::NoFromAddress);
    }
    let sender = summary.mail_from.as_str();
    if sender.is_empty() {
        return Err(Suppressed::NullSender);
    }
    if is_system_sender(sender) {
        return Err(Suppressed::SystemSender);
    }
    if sender
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domains.matching(domain).is_some())
    {
        return Err(Suppressed::RetiredSender);
    }
    if summary.looks_automated() {
        return Err(Suppressed::Automated);
    }
    if !authenticated(notify.require, sender, summary.auth.as_ref()) {
        return Err(Suppressed::Unauthenticated);
    }
    Ok(())
}

/// Whether `mail_from` is authenticated for its own domain as `requirement` asks: SPF
/// passed for that very domain, or a passing DKIM signature's `d=` is aligned with it.
/// DMARC is deliberately not consulted: it vouches for `From:`, not for the envelope sender.
pub fn authenticated(
    requirement: AuthRequirement,
    mail_from: &str,
    results: Option<&AuthResults>,
) -> bool {
    if requirement == AuthRequirement::None {
        return true;
    }
    let (Some(results), Some((_, domain))) = (results, mail_from.rsplit_once('@')) else {
        return false;
    };
    let spf = results.spf == "pass" && same_domain(&results.spf_domain, domain);
    let dkim = results.dkim_domains.iter().any(|d| aligned(d, domain));
    match requirement {
        AuthRequirement::SpfOrDkim => spf || dkim,
        AuthRequirement::Spf => spf,
        AuthRequirement::Dkim => dkim,
        AuthRequirement::None => true,
    }
}

fn canonical(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

fn same_domain(a: &str, b: &str) -> bool {
    !a.is_empty() && canonical(a) == canonical(b)
}

/// The organisational domain (RFC 7489 3.2): the public suffix plus one label, from the
/// public suffix list compiled into the binary. `None` for a public suffix itself.
pub fn organisational_domain(domain: &str) -> Option<String> {
    let domain = canonical(domain);
    psl::domain_str(&domain).map(str::to_owned)
}

/// The organisation a notice to `sender` counts against for its share of the hourly limit:
/// the registrable domain of the address's domain (`a.b.example.co.uk` -> `example.co.uk`),
/// so that rotating local parts or subdomains does not make a sender somebody else. An IP
/// literal, or a name that is itself a public suffix, stands for itself.
pub fn sender_organisation(sender: &str) -> String {
    let domain = canonical(sender.rsplit_once('@').map_or(sender, |(_, d)| d));
    if domain.starts_with('[') || domain.parse::<std::net::IpAddr>().is_ok() {
        return domain;
    }
    psl::domain_str(&domain).map_or(domain.clone(), str::to_owned)
}

/// Relaxed alignment as DMARC defines it: both names have the same organisational domain.
/// A public suffix (`co.uk`) is aligned with nothing.
pub fn aligned(a: &str, b: &str) -> bool {
    match (organisational_domain(a), organisational_domain(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Longest local part a notice quotes (RFC 5321 4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;

/// Whether a notice may quote `address` as it is: a dot-atom local part of at most 64
/// letters, digits and `._+-`, at a domain reclaim knows from its own configuration.
/// Anything else may carry the sender's words, so the notice names only the domain.
pub fn is_plain_address(address: &str, domains: &RetiredDomains) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL_PART
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    local_ok && domains.knows(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(spf: &str, spf_domain: &str, dkim_domains: &[&str]) -> AuthResults {
        AuthResults {
            spf: spf.into(),
            dkim: if dkim_domains.is_empty() {
                "none"
            } else {
                "pass"
            }
            .into(),
            dmarc: "pass".into(),
            spf_domain: spf_domain.into(),
            dkim_domains: dkim_domains.iter().map(|d| (*d).to_owned()).collect(),
            dmarc_domain: "attacker.example".into(),
        }
    }

    #[test]
    fn alignment_uses_the_organisational_domain() {
        assert!(aligned("partner.example", "partner.example"));
        assert!(aligned("mail.partner.example", "partner.example"));
        assert!(aligned("PARTNER.example.", "bounces.eu.partner.example"));
        assert!(!aligned("attacker.example", "victim.example"));
        assert!(!aligned("partner.example.net", "partner.example"));
        // A public suffix with more than one label: co.uk is nobody's organisation.
        assert!(aligned("mail.council.co.uk", "council.co.uk"));
        assert!(!aligned("attacker.co.uk", "council.co.uk"));
        assert!(!aligned("co.uk", "council.co.uk"));
        assert!(!aligned("co.uk", "co.uk"));
        assert_eq!(
            organisational_domain("a.b.council.co.uk").as_deref(),
            Some("council.co.uk")
        );
        assert_eq!(organisational_domain("uk"), None);
    }

    #[test]
    fn senders_count_against_their_registrable_domain() {
        for (sender, organisation) in [
            ("r1@bulk.example", "bulk.example"),
            ("r2@MAIL.Bulk.Example.", "bulk.example"),
            ("x@a.b.example.co.uk", "example.co.uk"),
            ("y@other.co.uk", "other.co.uk"),
            ("z@co.uk", "co.uk"),
            ("root@localhost", "localhost"),
            ("a@[192.0.2.1]", "[192.0.2.1]"),
            ("b@[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]"),
            ("c@192.0.2.7", "192.0.2.7"),
            ("\"a@b\"@x.partner.example", "partner.example"),
            ("postmaster", "postmaster"),
        ] {
            assert_eq!(sender_organisation(sender), organisation, "{sender}");
        }
    }

    #[test]
    fn each_requirement() {
        use AuthRequirement::*;
        let victim = "victim@victim.example";
        // The case: DKIM and DMARC pass for From: attacker.example only.
        let forged = results("none", "victim.example", &["attacker.example"]);
        let spf = results("pass", "victim.example", &[]);
        let dkim_sub = results("fail", "victim.example", &["mail.victim.example"]);
        let spf_other = results("pass", "helo.example", &[]);
        for (req, forged_ok, spf_ok, dkim_ok) in [
            (SpfOrDkim, false, true, true),
            (Spf, false, true, false),
            (Dkim, false, false, true),
            (None, true, true, true),
        ] {
            assert_eq!(
                authenticated(req, victim, Some(&forged)),
                forged_ok,
                "{req:?}"
            );
            assert_eq!(authenticated(req, victim, Some(&spf)), spf_ok, "{req:?}");
            assert_eq!(
                authenticated(req, victim, Some(&dkim_sub)),
                dkim_ok,
                "{req:?}"
            );
            // SPF that passed for another name (the HELO) proves nothing about MAIL FROM.
            assert_eq!(
                authenticated(req, victim, Some(&spf_other)),
                req == None,
                "{req:?}"
            );
            // DNS off: no results, only `none` sends.
            assert_eq!(authenticated(req, victim, Option::None), req == None);
        }
        assert!(!authenticated(SpfOrDkim, "", Some(&spf)), "null sender");
    }

    #[test]
    fn plain_addresses_only() {
        let mut domains = RetiredDomains::new(["old.example", "*.oud.example"]).expect("domains");
        domains
            .set_policy(
                "old.example",
                crate::domains::DomainPolicy {
                    new_domain: Some("new.example".into()),
                    ..Default::default()
                },
            )
            .expect("policy");
        for plain in [
            "jan@old.example",
            "j.jansen+x@new.example",
            "a-b_c@OLD.example",
            "piet@oud.example",
        ] {
            assert!(is_plain_address(plain, &domains), "{plain}");
        }
        for not_plain in [
            "\"Mailbox locked, verify at https://evil.example/x\"@old.example",
            "verify-at-evil@attacker.example",
            "jan@verify.oud.example",
            ".jan@old.example",
            "jan.@old.example",
            "j..an@old.example",
            "jan@",
            "@old.example",
            "no-at-sign",
            "ján@old.example",
            "a b@old.example",
            &format!("{}@old.example", "a".repeat(65)),
        ] {
            assert!(!is_plain_address(not_plain, &domains), "{not_plain}");
        }
        assert!(is_plain_address(
            &format!("{}@old.example", "a".repeat(64)),
            &domains
        ));
    }
}
