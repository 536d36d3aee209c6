//! Who is asking: the peer's uid and user name on the Unix socket (`SO_PEERCRED`), or the
//! subject of the client certificate on the TLS listener. Recorded in the audit trail.

use std::path::Path;

/// The identity of an admin API client as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub who: String,
    pub uid: Option<u32>,
    /// The client certificate, on the mutual-TLS listener.
    pub certificate: Option<Certificate>,
}

/// A client certificate as access rules name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// `CN=…,O=…`, as [`crate::x509::subject`] writes it; `None` when it cannot be read,
    /// so that no subject rule matches it.
    pub subject: Option<String>,
    /// SHA-256 of the DER encoding, lower-case hex.
    pub sha256: String,
}

impl Peer {
    /// A local peer by uid, named from the passwd file when it is listed there.
    pub fn local(uid: u32, passwd: &Path) -> Self {
        let name = std::fs::read_to_string(passwd)
            .ok()
            .and_then(|text| user_name(&text, uid));
        let who = match name {
            Some(name) => format!("uid {uid} ({name})"),
            None => format!("uid {uid}"),
        };
        Self {
            who,
            uid: Some(uid),
            certificate: None,
        }
    }

    /// A peer that showed the client certificate `der`.
    pub fn certificate(der: &[u8]) -> Self {
        let subject = crate::x509::subject(der);
        let sha256 = crate::store::audit::hash_hex(der);
        Self {
            who: match &subject {
                Some(subject) => format!("cert {subject}"),
                None => "cert unnamed client certificate".into(),
            },
            uid: None,
            certificate: Some(Certificate { subject, sha256 }),
        }
    }

    /// The certificate's subject, when the peer showed one.
    pub fn certificate_subject(&self) -> Option<&str> {
        self.certificate.as_ref().and_then(|c| c.subject.as_deref())
    }

    /// The certificate's SHA-256, when the peer showed one.
    pub fn certificate_sha256(&self) -> Option<&str> {
        self.certificate.as_ref().map(|c| c.sha256.as_str())
    }

    /// A peer whose credentials could not be read.
    pub fn unknown() -> Self {
        Self {
            who: "unknown peer".into(),
            uid: None,
            certificate: None,
        }
    }
}

/// Finds the name of `uid` in passwd(5) text. The lib forbids `unsafe`, so getpwuid_r is
/// out; directory services other than the file are not consulted.
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name(passwd, 7), None);
    }
}
