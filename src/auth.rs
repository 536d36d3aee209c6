//! Sender authentication at receive time (SPF, DKIM, DMARC with mail-auth): the notice
//! policy decides on these results, and reviewers see them in the summary.

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, Parameters, SpfResult,
};

use crate::dns::{Dns, StaticTable};
use crate::summary::AuthResults;

/// Upper bound on all lookups for one message; past it the results are `temperror`.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(15);

/// What the check needs to know about the message.
pub struct AuthInput<'a> {
    pub client_ip: IpAddr,
    pub helo: &'a str,
    /// This gateway's host name.
    pub hostname: &'a str,
    /// Envelope sender; empty for `<>`.
    pub mail_from: &'a str,
    /// The message (or just its header section when it was too big to keep for DKIM).
    pub message: &'a [u8],
    /// Whether `message` is whole, so DKIM body hashes can be checked.
    pub complete: bool,
}

/// Runs SPF, DKIM and DMARC. `None` when DNS is off.
pub async fn check(dns: &Dns, input: AuthInput<'_>) -> Option<AuthResults> {
    let (authenticator, table) = match dns {
        Dns::Off => return None,
        Dns::Live(live) => (live.as_ref(), None),
        Dns::Static(table) => (&table.nowhere, Some(table.as_ref())),
    };
    let temperror = AuthResults {
        spf: "temperror".into(),
        dkim: "temperror".into(),
        dmarc: "temperror".into(),
        spf_domain: spf_domain(&input).to_owned(),
        ..AuthResults::default()
    };
    Some(
        tokio::time::timeout(AUTH_TIMEOUT, run(authenticator, table, &input))
            .await
            .unwrap_or(temperror),
    )
}

/// Applies one set of caches (the fixed table's, or none) to a call's parameters.
macro_rules! with_table {
    ($params:expr, $table:expr) => {
        match $table {
            Some(t) => $params
                .with_txt_cache(&t.txt)
                .with_mx_cache(&t.mx)
                .with_ipv4_cache(&t.ipv4)
                .with_ipv6_cache(&t.ipv6)
                .with_ptr_cache(&t.ptr),
            None => {
                let empty = &EMPTY;
                $params
                    .with_txt_cache(&empty.txt)
                    .with_mx_cache(&empty.mx)
                    .with_ipv4_cache(&empty.ipv4)
                    .with_ipv6_cache(&empty.ipv6)
                    .with_ptr_cache(&empty.ptr)
            }
        }
    };
}

/// Empty caches for live DNS: every lookup goes to the resolver.
static EMPTY: std::sync::LazyLock<StaticTable> =
    std::sync::LazyLock::new(StaticTable::pass_through);

async fn run(
    authenticator: &MessageAuthenticator,
    table: Option<&StaticTable>,
    input: &AuthInput<'_>,
) -> AuthResults {
    let helo = if input.helo.is_empty() {
        "unknown"
    } else {
        input.helo
    };
    let spf_params = if input.mail_from.is_empty() {
        SpfParameters::verify_ehlo(input.client_ip, helo, input.hostname)
    } else {
        SpfParameters::verify_mail_from(input.client_ip, helo, input.hostname, input.mail_from)
    };
    let spf = authenticator
        .verify_spf(with_table!(Parameters::new(spf_params), table))
        .await;

    let Some(message) = AuthenticatedMessage::parse(input.message) else {
        return AuthResults {
            spf: spf_word(spf.result()).into(),
            dkim: "none".into(),
            dmarc: "none".into(),
            spf_domain: spf_domain(input).to_owned(),
            ..AuthResults::default()
        };
    };
    let dkim = if input.complete {
        authenticator
            .verify_dkim(with_table!(Parameters::new(&message), table))
            .await
    } else {
        Vec::new()
    };
    let mail_from_domain = input
        .mail_from
        .rsplit_once('@')
        .map_or(helo, |(_, domain)| domain);
    let dmarc = authenticator
        .verify_dmarc(with_table!(
            Parameters::new(DmarcParameters::new(
                &message,
                &dkim,
                mail_from_domain,
                &spf
            )),
            table
        ))
        .await;

    let dkim_word = if !input.complete {
        "skipped"
    } else if dkim.iter().any(|d| d.result() == &DkimResult::Pass) {
        "pass"
    } else {
        dkim.first().map_or("none", |d| dkim_word(d.result()))
    };
    let dmarc_word = match dmarc.result() {
        DmarcResult::Pass => "pass",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::None => "none",
    };
    let dkim_domains = dkim
        .iter()
        .filter(|d| d.result() == &DkimResult::Pass)
        .filter_map(|d| d.signature().map(|s| s.d.to_ascii_lowercase()))
        .collect();
    AuthResults {
        spf: spf_word(spf.result()).into(),
        dkim: dkim_word.into(),
        dmarc: dmarc_word.into(),
        spf_domain: spf_domain(input).to_owned(),
        dkim_domains,
        dmarc_domain: message
            .from()
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_ascii_lowercase(),
    }
}

/// The domain SPF is checked for: the MAIL FROM domain, or the HELO name for `<>`.
fn spf_domain<'a>(input: &AuthInput<'a>) -> &'a str {
    match input.mail_from.rsplit_once('@') {
        Some((_, domain)) => domain,
        None => input.helo,
    }
}

fn spf_word(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Dns {
        let records = [
            ("partner.example TXT", "v=spf1 ip4:127.0.0.1 -all"),
            ("forged.example TXT", "v=spf1 ip4:192.0.2.1 -all"),
            ("_dmarc.forged.example TXT", "v=DMARC1; p=reject"),
            ("_dmarc.partner.example TXT", "v=DMARC1; p=quarantine"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
        .collect();
        Dns::Static(std::sync::Arc::new(
            StaticTable::new(records).expect("table"),
        ))
    }

    async fn results(mail_from: &str, message: &[u8]) -> AuthResults {
        check(
            &table(),
            AuthInput {
                client_ip: "127.0.0.1".parse().expect("ip"),
                helo: "client.example",
                hostname: "mx.old.example",
                mail_from,
                message,
                complete: true,
            },
        )
        .await
        .expect("dns is on")
    }

    #[tokio::test]
    async fn dkim_signed_mail_passes_and_tampered_mail_fails() {
        use base64::Engine;
        use mail_auth::common::crypto::Ed25519Key;
        use mail_auth::common::headers::HeaderWriter;
        use mail_auth::dkim::DkimSigner;

        let pkcs8 = Ed25519Key::generate_pkcs8().expect("key");
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).expect("key");
        let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
        let message =
            "From: a@signed.example\r\nTo: b@old.example\r\nSubject: signed\r\n\r\nHello.\r\n";
        let signature = DkimSigner::from_key(key)
            .domain("signed.example")
            .selector("s1")
            .headers(["From", "To", "Subject"])
            .sign(message.as_bytes())
            .expect("sign");
        let signed = format!("{}{message}", signature.to_header());
        let records = [
            (
                "s1._domainkey.signed.example TXT",
                format!("v=DKIM1; k=ed25519; p={public}"),
            ),
            ("_dmarc.signed.example TXT", "v=DMARC1; p=reject".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), vec![v]))
        .collect();
        let dns = Dns::Static(std::sync::Arc::new(
            StaticTable::new(records).expect("table"),
        ));
        let check_with = |bytes: Vec<u8>, complete: bool| {
            let dns = dns.clone();
            async move {
                check(
                    &dns,
                    AuthInput {
                        client_ip: "192.0.2.9".parse().expect("ip"),
                        helo: "relay.example",
                        hostname: "mx.old.example",
                        mail_from: "bounces@relay.example",
                        message: &bytes,
                        complete,
                    },
                )
                .await
                .expect("dns is on")
            }
        };
        let good = check_with(signed.clone().into_bytes(), true).await;
        assert_eq!(
            (good.dkim.as_str(), good.dmarc.as_str()),
            ("pass", "pass"),
            "forwarded but signed"
        );
        assert_eq!(good.dkim_domains, ["signed.example"]);
        assert_eq!(
            (good.spf_domain.as_str(), good.dmarc_domain.as_str()),
            ("relay.example", "signed.example")
        );
        let tampered = check_with(signed.replace("Hello.", "Pay now.").into_bytes(), true).await;
        assert!(tampered.dkim_domains.is_empty());
        // mail-auth reports a body hash mismatch as neutral (RFC 6376 6.3); either way no pass.
        assert_ne!(tampered.dkim, "pass");
        assert_eq!(tampered.dmarc, "fail");
        let too_big = check_with(signed.into_bytes(), false).await;
        assert_eq!(too_big.dkim, "skipped");
    }

    #[tokio::test]
    async fn spf_and_dmarc_from_a_fixed_table() {
        let good = results(
            "a@partner.example",
            b"From: a@partner.example\r\nSubject: x\r\n\r\nbody\r\n",
        )
        .await;
        assert_eq!(
            (good.spf.as_str(), good.dkim.as_str(), good.dmarc.as_str()),
            ("pass", "none", "pass")
        );
        let forged = results(
            "ceo@forged.example",
            b"From: ceo@forged.example\r\n\r\nbody\r\n",
        )
        .await;
        assert_eq!(
            (forged.spf.as_str(), forged.dmarc.as_str()),
            ("fail", "fail")
        );
        let unknown = results(
            "x@unknown.example",
            b"From: x@unknown.example\r\n\r\nbody\r\n",
        )
        .await;
        assert_eq!(
            (unknown.spf.as_str(), unknown.dmarc.as_str()),
            ("none", "none")
        );
        assert_eq!(good.spf_domain, "partner.example");
    }
}
