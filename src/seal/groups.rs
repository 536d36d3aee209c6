//! Reader groups: which keys one message is sealed to, chosen from the retired domains it
//! is addressed to, so that a reviewer opens only the mail of the domains they read.

use std::collections::{BTreeMap, HashMap};

use super::{Recipients, SealError, Sealer};

/// The sealer of every retired domain with `readers`, and the `[seal] recipients` sealer
/// for the rest (and for the bare `<postmaster>`, which has no domain).
#[derive(Clone, Debug)]
pub struct ReaderGroups {
    fallback: Sealer,
    groups: HashMap<String, Sealer>,
}

impl ReaderGroups {
    /// Every message sealed to `fallback`: no domain has readers of its own.
    pub fn single(fallback: Sealer) -> Self {
        Self {
            fallback,
            groups: HashMap::new(),
        }
    }

    /// `groups` maps a retired domain (normalised, as [`crate::domains::Recipient`] names
    /// it) to its readers; each group needs at least one key.
    pub fn new(fallback: Sealer, groups: &BTreeMap<String, Recipients>) -> Result<Self, SealError> {
        let groups = groups
            .iter()
            .map(|(domain, readers)| Ok((domain.clone(), Sealer::new(readers.clone())?)))
            .collect::<Result<_, SealError>>()?;
        Ok(Self { fallback, groups })
    }

    /// The sealer for a message addressed to these retired domains: the readers of each,
    /// together. A message to one domain (most are) gets that domain's prepared sealer;
    /// one to several gets their union, built here. Not cached: building a union of three
    /// groups measured under 3% of sealing a message to its ten keys.
    pub fn sealer_for<'a>(
        &self,
        domains: impl IntoIterator<Item = &'a str>,
    ) -> Result<Sealer, SealError> {
        let mut chosen: Vec<&Sealer> = Vec::new();
        for domain in domains {
            let sealer = self.groups.get(domain).unwrap_or(&self.fallback);
            if !chosen.iter().any(|c| std::ptr::eq(*c, sealer)) {
                chosen.push(sealer);
            }
        }
        match chosen.as_slice() {
            [] => Ok(self.fallback.clone()),
            [one] => Ok((*one).clone()),
            several => Sealer::union(several.iter().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::{Identities, fingerprint};

    fn key() -> (age::x25519::Identity, Recipients) {
        let id = age::x25519::Identity::generate();
        let mut r = Recipients::default();
        r.push_x25519(id.to_public());
        (id, r)
    }

    fn fp(id: &age::x25519::Identity) -> String {
        fingerprint(&id.to_public().to_string())
    }

    /// Seals a message and its summary with the sealer chosen for `domains`.
    fn seal(groups: &ReaderGroups, domains: &[&str]) -> (Vec<u8>, Vec<u8>, Vec<String>) {
        let sealer = groups.sealer_for(domains.iter().copied()).expect("sealer");
        let (mut writer, summary) = sealer.seal_message(Vec::new()).expect("seal");
        std::io::Write::write_all(&mut writer, b"the message").expect("write");
        let message = writer.finish().expect("finish");
        (
            message,
            summary.seal(b"the summary"),
            sealer.fingerprints().to_vec(),
        )
    }

    fn opens(id: &age::x25519::Identity, message: &[u8], summary: &[u8]) -> bool {
        let ids = Identities::from_x25519(vec![id.clone()]);
        let message_opens = ids.open_bytes(message).is_ok();
        let summary_opens = ids.open_summary(summary).is_ok();
        assert_eq!(message_opens, summary_opens, "summary and message disagree");
        message_opens
    }

    #[test]
    fn each_domain_is_sealed_to_its_readers_and_the_rest_to_the_fallback() {
        let (a, a_keys) = key();
        let (b, b_keys) = key();
        let (ops, ops_keys) = key();
        let groups = ReaderGroups::new(
            Sealer::new(ops_keys).expect("fallback"),
            &BTreeMap::from([("a.example".into(), a_keys), ("b.example".into(), b_keys)]),
        )
        .expect("groups");

        let (m, s, to) = seal(&groups, &["a.example"]);
        assert!(opens(&a, &m, &s) && !opens(&b, &m, &s) && !opens(&ops, &m, &s));
        assert_eq!(to, [fp(&a)]);

        let (m, s, to) = seal(&groups, &["a.example", "b.example", "a.example"]);
        assert!(opens(&a, &m, &s) && opens(&b, &m, &s) && !opens(&ops, &m, &s));
        let mut both = vec![fp(&a), fp(&b)];
        both.sort();
        assert_eq!(to, both);

        for domains in [&["c.example"][..], &["postmaster"], &[]] {
            let (m, s, to) = seal(&groups, domains);
            assert!(opens(&ops, &m, &s) && !opens(&a, &m, &s), "{domains:?}");
            assert_eq!(to, [fp(&ops)]);
        }

        let (m, s, to) = seal(&groups, &["b.example", "c.example"]);
        assert!(opens(&b, &m, &s) && opens(&ops, &m, &s) && !opens(&a, &m, &s));
        assert_eq!(to.len(), 2);
    }

    #[test]
    fn a_key_in_two_groups_is_sealed_to_once() {
        let (a, a_keys) = key();
        let (_, ops_keys) = key();
        let mut shared = a_keys.clone();
        shared.push_x25519(age::x25519::Identity::generate().to_public());
        let groups = ReaderGroups::new(
            Sealer::new(ops_keys).expect("fallback"),
            &BTreeMap::from([("a.example".into(), a_keys), ("b.example".into(), shared)]),
        )
        .expect("groups");
        let sealer = groups
            .sealer_for(["a.example", "b.example"])
            .expect("sealer");
        assert_eq!(sealer.fingerprints().len(), 2);
        assert!(sealer.fingerprints().contains(&fp(&a)));
    }

    #[test]
    fn an_empty_group_is_refused() {
        let (_, ops_keys) = key();
        let empty = BTreeMap::from([("a.example".into(), Recipients::default())]);
        assert!(ReaderGroups::new(Sealer::new(ops_keys).expect("fallback"), &empty).is_err());
    }

    #[test]
    fn fingerprints_are_the_start_of_the_keys_sha256() {
        // printf %s 'age1ql3z…' | sha256sum | cut -c1-16
        let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let parsed = Recipients::parse(&[key.into()]).expect("key");
        assert_eq!(parsed.fingerprints(), ["cf7e568231315068"]);
        // An ssh key's comment is not part of it.
        let ssh =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";
        let with_comment = Recipients::parse(&[format!("{ssh} alice@rust")]).expect("ssh");
        assert_eq!(with_comment.fingerprints(), [fingerprint(ssh)]);
    }
}
