//! Just enough DER to read two fields of an X.509 certificate (RFC 5280 4.1): the end of
//! its validity, for the expiry metric, and its subject, for the audit trail. Bounded and
//! panic-free on any input; anything unexpected gives `None`.

/// One DER element: tag, contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The TBSCertificate fields from `validity` on: skips the optional version, the serial,
/// the signature algorithm and the issuer.
fn from_validity(der: &[u8]) -> Option<&[u8]> {
    let (_, cert, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(cert)?;
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    for _ in 0..3 {
        tbs = tlv(tbs)?.2;
    }
    Some(tbs)
}

/// `notAfter` as Unix seconds.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, validity, _) = tlv(from_validity(der)?)?;
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<u8> { rest.get(i..i + 2)?.parse().ok() };
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let at = date.with_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(at.assume_utc().unix_timestamp())
}

/// The subject as `CN=…,O=…` (common attributes named, others as hex OIDs), control
/// characters replaced.
pub fn subject(der: &[u8]) -> Option<String> {
    let after_validity = tlv(from_validity(der)?)?.2;
    let (_, mut rdns, _) = tlv(after_validity)?;
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (_, set, rest) = tlv(rdns)?;
        rdns = rest;
        let (_, pair, _) = tlv(set)?;
        let (_, oid, rest) = tlv(pair)?;
        let (_, value, _) = tlv(rest)?;
        let name = match oid {
            [0x55, 0x04, 0x03] => "CN".to_owned(),
            [0x55, 0x04, 0x06] => "C".to_owned(),
            [0x55, 0x04, 0x0a] => "O".to_owned(),
            [0x55, 0x04, 0x0b] => "OU".to_owned(),
            other => other.iter().map(|b| format!("{b:02x}")).collect(),
        };
        // Separators inside a value are escaped (RFC 4514), so that a common name of
        // "alice,O=Example" can never read as two attributes.
        let mut escaped = String::new();
        for c in String::from_utf8_lossy(value).chars() {
            match c {
                c if c.is_control() => escaped.push('?'),
                ',' | '+' | '=' | '\\' | ';' => {
                    escaped.push('\\');
                    escaped.push(c);
                }
                c => escaped.push(c),
            }
        }
        let value = escaped;
        parts.push(format!("{name}={value}"));
    }
    Some(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn reads_the_dev_certificate_expiry() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/dev-cert.pem");
        let der = CertificateDer::pem_file_iter(&path)
            .expect("pem")
            .next()
            .expect("one certificate")
            .expect("valid pem");
        // 2036-01-01T00:00:00Z, as certs/README.md says.
        assert_eq!(not_after(der.as_ref()), Some(2_082_758_400));
        assert_eq!(not_after(b"\x30\x03\x02\x01\x00"), None);
        assert_eq!(not_after(b""), None);
    }

    #[test]
    fn subjects_are_read_and_garbage_is_not() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice reviewer");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Old Org");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(
            subject(cert.der()).as_deref(),
            Some("CN=alice reviewer,O=Old Org")
        );
        assert!(not_after(cert.der()).is_some());
        assert_eq!(subject(b""), None);
        assert_eq!(subject(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        let mut forged = rcgen::CertificateParams::new(vec!["b.example".into()]).expect("params");
        forged.distinguished_name = rcgen::DistinguishedName::new();
        forged
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice reviewer,O=Old Org");
        let forged = forged.self_signed(&key).expect("cert");
        assert_eq!(
            subject(forged.der()).as_deref(),
            Some("CN=alice reviewer\\,O\\=Old Org")
        );
        for cut in 0..cert.der().len() {
            let _ = subject(&cert.der()[..cut]);
            let _ = not_after(&cert.der()[..cut]);
        }
    }
}
