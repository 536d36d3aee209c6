//! Decides whether a recipient domain is one of the retired domains reclaim catches mail for.

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
}

impl RetiredDomains {
    /// Builds the set from config entries such as `old.example` or `*.old.example`.
    /// Returns the offending entry's text on error.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for entry in entries {
            let (wildcard, name) = match entry.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            let ascii =
                normalize(name).ok_or_else(|| format!("{entry:?} is not a valid domain name"))?;
            if !ascii.contains('.') {
                return Err(format!(
                    "{entry:?} is not a fully qualified domain name (it has no dot)"
                ));
            }
            let pattern = if wildcard {
                Pattern::WithSubdomains(ascii.clone())
            } else {
                Pattern::Exact(ascii.clone())
            };
            patterns.push((pattern, ascii));
        }
        Ok(Self { patterns })
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
    fn literals_and_garbage_never_match() {
        let d = set(&["old.example"]);
        assert_eq!(d.matching("[127.0.0.1]"), None);
        assert_eq!(d.matching(""), None);
        assert_eq!(d.matching("old..example"), None);
        assert!(RetiredDomains::new(["not a domain"]).is_err());
        assert!(RetiredDomains::new(["localhost"]).is_err());
    }
}
