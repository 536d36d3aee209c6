//! Decides whether a recipient domain is one of the retired domains reclaim catches mail for,
//! and what to tell senders about an address there (its mode and where its owner moved).

use std::collections::{BTreeMap, HashMap};

/// One retired-domain entry, normalised to lower-case ASCII (IDNs in their `xn--` form).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `old.example`: that domain only.
    Exact(String),
    /// `*.old.example`: the domain itself and every subdomain of it.
    WithSubdomains(String),
}

/// The set of retired domains. Matching is case-insensitive and IDN-aware: a domain written
/// in Unicode and its `xn--` form are the same domain.
#[derive(Debug, Clone, Default)]
pub struct RetiredDomains {
    patterns: Vec<(Pattern, String)>,
    policies: HashMap<String, DomainPolicy>,
    /// Exact old address (or `@domain`) -> new address, keys normalised.
    relocated: HashMap<String, String>,
    case_insensitive_local: bool,
    /// Domains of `new_domain`, `contact` and `[relocated]` targets (normalised).
    known_targets: std::collections::HashSet<String>,
}

/// What happens to mail for a retired domain (`mode =` in `[[domain]]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Accept, quarantine, then send the sender a notice.
    #[default]
    Notify,
    /// Quarantine, then answer the end of data with `550 5.1.6` naming the new address.
    Bounce,
    /// Refuse at RCPT with `550 5.1.6`; nothing is stored.
    Reject,
    /// Quarantine only.
    Silent,
}

/// Language of notices and texts for a domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Language {
    #[default]
    En,
    Nl,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Nl => "nl",
        }
    }
}

/// Per-domain settings from `[[domain]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainPolicy {
    pub mode: Mode,
    /// Same local part at this domain is the new address.
    pub new_domain: Option<String>,
    /// One address for everyone, when no better one is known.
    pub contact: Option<String>,
    pub language: Language,
}

/// What applies to one recipient address at a retired domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// The configured retired domain it falls under (normalised).
    pub domain: String,
    pub mode: Mode,
    /// Where to write instead: the relocated address, or the contact.
    pub forward: Option<String>,
    pub language: Language,
}

/// A recipient the session accepted, with what applies to it as worked out at RCPT time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    /// `None` for the bare `<postmaster>` (RFC 5321 4.5.1), which has no domain.
    pub disposition: Option<Disposition>,
}

impl Recipient {
    /// The retired domain it was addressed to, or `postmaster` for the bare `<postmaster>`.
    pub fn retired_domain(&self) -> &str {
        self.disposition
            .as_ref()
            .map_or("postmaster", |d| d.domain.as_str())
    }
}

/// Why a `[[domain]]` or `[relocated]` entry cannot be used; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0:?} is not a valid domain name")]
    NotADomain(String),
    #[error("{0:?} is not a fully qualified domain name (it has no dot)")]
    NotQualified(String),
    #[error("{0:?} is not an address (or @domain) at a retired domain")]
    NotRetired(String),
    #[error("{new:?} (for {old:?}) is not an email address")]
    NotAnAddress { new: String, old: String },
}

impl RetiredDomains {
    /// Builds the set from config entries such as `old.example` or `*.old.example`.
    /// The error names the offending entry.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, DomainError> {
        let mut patterns = Vec::new();
        for entry in entries {
            let (wildcard, name) = match entry.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            let ascii = normalize(name).ok_or_else(|| DomainError::NotADomain(entry.to_owned()))?;
            if !ascii.contains('.') {
                return Err(DomainError::NotQualified(entry.to_owned()));
            }
            let pattern = if wildcard {
                Pattern::WithSubdomains(ascii.clone())
            } else {
                Pattern::Exact(ascii.clone())
            };
            patterns.push((pattern, ascii));
        }
        Ok(Self {
            patterns,
            ..Self::default()
        })
    }

    /// Returns the configured retired domain (normalised) that `domain` falls under, if any.
    pub fn matching(&self, domain: &str) -> Option<&str> {
        let domain = normalize(domain)?;
        self.patterns.iter().find_map(|(pattern, name)| {
            let hit = match pattern {
                Pattern::Exact(d) => domain == *d,
                Pattern::WithSubdomains(d) => {
                    domain == *d
                        || domain
                            .strip_suffix(d.as_str())
                            .is_some_and(|head| head.ends_with('.'))
                }
            };
            hit.then_some(name.as_str())
        })
    }

    /// Sets the policy of a configured entry (as written in the config).
    pub fn set_policy(&mut self, entry: &str, policy: DomainPolicy) -> Result<(), DomainError> {
        let name = entry.strip_prefix("*.").unwrap_or(entry);
        let ascii = normalize(name).ok_or_else(|| DomainError::NotADomain(entry.to_owned()))?;
        let targets = [
            policy.new_domain.clone(),
            policy
                .contact
                .as_deref()
                .and_then(|c| c.rsplit_once('@'))
                .map(|(_, d)| d.to_owned()),
        ];
        self.known_targets
            .extend(targets.iter().flatten().filter_map(|d| normalize(d)));
        self.policies.insert(ascii, policy);
        Ok(())
    }

    /// Sets the `[relocated]` table: `old@domain` (or `@domain`) -> new address.
    pub fn set_relocated(
        &mut self,
        table: &BTreeMap<String, String>,
        case_insensitive_local: bool,
    ) -> Result<(), DomainError> {
        self.case_insensitive_local = case_insensitive_local;
        for (old, new) in table {
            let key = self
                .relocation_key(old)
                .ok_or_else(|| DomainError::NotRetired(old.clone()))?;
            if !new.contains('@') || new.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(DomainError::NotAnAddress {
                    new: new.clone(),
                    old: old.clone(),
                });
            }
            if let Some(domain) = new.rsplit_once('@').and_then(|(_, d)| normalize(d)) {
                self.known_targets.insert(domain);
            }
            self.relocated.insert(key, new.clone());
        }
        Ok(())
    }

    fn relocation_key(&self, address: &str) -> Option<String> {
        let (local, domain) = address.rsplit_once('@')?;
        self.matching(domain)?;
        let domain = normalize(domain)?;
        let local = if self.case_insensitive_local {
            local.to_lowercase()
        } else {
            local.to_owned()
        };
        Some(format!("{local}@{domain}"))
    }

    /// The mode and forwarding address for a recipient, or `None` if its domain is not
    /// retired. Lookup order as Postfix relocated(5): the full address, then `@domain`,
    /// then the domain's `new_domain`, then its `contact`.
    pub fn disposition(&self, address: &str) -> Option<Disposition> {
        let (local, domain) = address.rsplit_once('@')?;
        let canonical = self.matching(domain)?.to_owned();
        let policy = self.policies.get(&canonical).cloned().unwrap_or_default();
        let own_domain = normalize(domain)?;
        let forward = self
            .relocation_key(address)
            .and_then(|key| self.relocated.get(&key))
            .or_else(|| self.relocated.get(&format!("@{own_domain}")))
            .or_else(|| self.relocated.get(&format!("@{canonical}")))
            .cloned()
            .or_else(|| policy.new_domain.as_ref().map(|d| format!("{local}@{d}")))
            .or_else(|| policy.contact.clone());
        Some(Disposition {
            domain: canonical,
            mode: policy.mode,
            forward,
            language: policy.language,
        })
    }

    /// Whether `domain` is named in the configuration: a configured retired domain itself
    /// (not a subdomain under `*.`), a `new_domain`, or the domain of a `contact` or a
    /// `[relocated]` target. Notices quote addresses only at such domains.
    pub fn knows(&self, domain: &str) -> bool {
        normalize(domain)
            .is_some_and(|d| self.known_targets.contains(&d) || self.names().any(|name| name == d))
    }

    /// Every configured domain (normalised; `*.` dropped).
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.patterns.iter().map(|(_, name)| name.as_str())
    }

    /// The mode of every configured domain.
    pub fn modes(&self) -> impl Iterator<Item = Mode> + '_ {
        self.patterns
            .iter()
            .map(|(_, name)| self.policies.get(name).map_or(Mode::default(), |p| p.mode))
    }

    /// Whether no domain is configured.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Lower-case ASCII form of a domain name (UTS 46 mapping, Punycode for IDNs), without a
/// trailing dot. `None` for address literals and anything that is not a host name.
pub fn normalize(domain: &str) -> Option<String> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || domain.starts_with('[') || domain.len() > 255 {
        return None;
    }
    let ascii = idna::domain_to_ascii_strict(domain).ok()?;
    let valid = ascii
        .split('.')
        .all(|label| !label.is_empty() && label.len() <= 63);
    valid.then_some(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> RetiredDomains {
        RetiredDomains::new(entries.iter().copied()).expect("valid test domains")
    }

    #[test]
    fn exact_domains_match_case_insensitively() {
        let d = set(&["old.example"]);
        assert_eq!(d.matching("old.example"), Some("old.example"));
        assert_eq!(d.matching("OLD.Example"), Some("old.example"));
        assert_eq!(d.matching("old.example."), Some("old.example"));
        assert_eq!(d.matching("sub.old.example"), None);
        assert_eq!(d.matching("notold.example"), None);
        assert_eq!(d.matching("old.example.evil"), None);
    }

    #[test]
    fn wildcard_matches_domain_and_subdomains_only() {
        let d = set(&["*.old.example"]);
        assert_eq!(d.matching("old.example"), Some("old.example"));
        assert_eq!(d.matching("a.b.old.example"), Some("old.example"));
        assert_eq!(d.matching("evilold.example"), None);
    }

    #[test]
    fn idn_matches_in_unicode_and_punycode() {
        let d = set(&["bücher.example"]);
        assert_eq!(
            d.matching("xn--bcher-kva.example"),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(d.matching("BÜCHER.example"), Some("xn--bcher-kva.example"));
        let d = set(&["xn--bcher-kva.example"]);
        assert_eq!(d.matching("bücher.example"), Some("xn--bcher-kva.example"));
    }

    #[test]
    fn relocation_lookup_order() {
        let mut d = set(&["old.example", "*.retired.example"]);
        d.set_policy(
            "old.example",
            DomainPolicy {
                mode: Mode::Bounce,
                new_domain: Some("new.example".into()),
                contact: Some("info@new.example".into()),
                language: Language::Nl,
            },
        )
        .expect("policy");
        d.set_policy(
            "*.retired.example",
            DomainPolicy {
                contact: Some("desk@new.example".into()),
                ..DomainPolicy::default()
            },
        )
        .expect("policy");
        let table: BTreeMap<String, String> = [(
            "jan@OLD.example".to_owned(),
            "j.jansen@new.example".to_owned(),
        )]
        .into();
        d.set_relocated(&table, false).expect("relocated");

        let jan = d.disposition("jan@old.example").expect("retired");
        assert_eq!(jan.forward.as_deref(), Some("j.jansen@new.example"));
        assert_eq!((jan.mode, jan.language), (Mode::Bounce, Language::Nl));
        // Exact local part by default: Jan is not jan.
        assert_eq!(
            d.disposition("Jan@old.example")
                .and_then(|x| x.forward)
                .as_deref(),
            Some("Jan@new.example")
        );
        assert_eq!(
            d.disposition("piet@old.example")
                .and_then(|x| x.forward)
                .as_deref(),
            Some("piet@new.example")
        );
        let sub = d.disposition("x@a.retired.example").expect("retired");
        assert_eq!(
            (sub.domain.as_str(), sub.forward.as_deref(), sub.mode),
            ("retired.example", Some("desk@new.example"), Mode::Notify)
        );
        assert_eq!(d.disposition("x@elsewhere.example"), None);

        let mut ci = set(&["old.example"]);
        ci.set_relocated(&table, true).expect("relocated");
        assert_eq!(
            ci.disposition("JAN@old.example")
                .and_then(|x| x.forward)
                .as_deref(),
            Some("j.jansen@new.example")
        );
        assert_eq!(
            ci.set_relocated(
                &[("a@other.example".to_owned(), "b@new.example".to_owned())].into(),
                false
            ),
            Err(DomainError::NotRetired("a@other.example".into()))
        );
    }

    #[test]
    fn literals_and_garbage_never_match() {
        let d = set(&["old.example"]);
        assert_eq!(d.matching("[127.0.0.1]"), None);
        assert_eq!(d.matching(""), None);
        assert_eq!(d.matching("old..example"), None);
        assert_eq!(
            RetiredDomains::new(["not a domain"]).map(|_| ()),
            Err(DomainError::NotADomain("not a domain".into()))
        );
        assert_eq!(
            RetiredDomains::new(["localhost"]).map(|_| ()),
            Err(DomainError::NotQualified("localhost".into()))
        );
    }
}
