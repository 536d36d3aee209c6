//! The IANA bootstrap file for DNS (RFC 9224): which RDAP service answers for which
//! top-level domain. Lookups read it from disk, never from the network, so that the
//! operator decides when it changes: `reclaim rdap-bootstrap` fetches a current copy.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::RdapError;

/// The largest bootstrap file read or fetched (IANA's is about 100 KiB).
pub const MAX_BOOTSTRAP_SIZE: u64 = 4 * 1024 * 1024;

/// Where IANA publishes the current file.
pub const IANA_URL: &str = "https://data.iana.org/rdap/dns.json";

/// Labels (lower-case, Punycode) to base URLs.
#[derive(Debug, Default)]
pub struct Bootstrap {
    services: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    publication: Option<String>,
    services: Vec<(Vec<String>, Vec<String>)>,
}

/// A bootstrap file fetched and checked, ready to be written.
#[derive(Debug)]
pub struct Fetched {
    /// The file as it will be written (the JSON received, pretty-printed).
    pub text: String,
    /// Its `publication` time, as published.
    pub publication: Option<String>,
    /// Top-level domains (labels) it names a service for.
    pub labels: usize,
}

/// Fetches the bootstrap file at `url` with `client` (its deadline and redirect rules) and
/// checks that it is one: it must parse and name at least one service.
pub async fn fetch(client: &super::Client, url: &str) -> Result<Fetched, RdapError> {
    let value = client.document(url).await?;
    let malformed = |message: String| RdapError::Bootstrap {
        path: url.to_owned(),
        message,
    };
    let raw: RawFile = serde_json::from_value(value.clone())
        .map_err(|e| malformed(format!("not a bootstrap file: {e}")))?;
    let publication = raw.publication.clone();
    let parsed = Bootstrap::from_raw(raw);
    if parsed.services.is_empty() {
        return Err(malformed("names no RDAP service".to_owned()));
    }
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| malformed(format!("cannot write it back: {e}")))?;
    Ok(Fetched {
        text,
        publication,
        labels: parsed.services.len(),
    })
}

/// The copy shipped in `config/rdap-dns.json`, built in so that it is there wherever the
/// gateway starts.
const BUILT_IN: &str = include_str!("../../config/rdap-dns.json");

impl Bootstrap {
    /// The operator's file at `path`, or the built-in copy.
    pub fn from_config(path: Option<&Path>) -> Result<Self, RdapError> {
        match path {
            Some(path) => Self::load(path),
            None => Self::parse(BUILT_IN).map_err(|message| RdapError::Bootstrap {
                path: "the built-in bootstrap".to_owned(),
                message,
            }),
        }
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, RdapError> {
        let error = |message: String| RdapError::Bootstrap {
            path: path.display().to_string(),
            message,
        };
        let read_error = |source| RdapError::BootstrapRead {
            path: path.display().to_string(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read_error)?.len();
        if size > MAX_BOOTSTRAP_SIZE {
            return Err(error(format!("larger than {MAX_BOOTSTRAP_SIZE} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Self::parse(&text).map_err(error)
    }

    /// Parses the bootstrap JSON.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(Self::from_raw(raw))
    }

    fn from_raw(raw: RawFile) -> Self {
        let mut services = HashMap::new();
        for (labels, urls) in raw.services {
            for label in labels {
                services.insert(label.trim_matches('.').to_ascii_lowercase(), urls.clone());
            }
        }
        Self { services }
    }

    /// The base URL for `domain`: the longest matching entry (RFC 9224 4), an HTTPS URL
    /// preferred where the entry lists several.
    pub fn base_url(&self, domain: &str) -> Result<String, RdapError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut suffix = domain.as_str();
        let mut best = None;
        loop {
            if let Some(urls) = self.services.get(suffix) {
                best = Some(urls);
                break;
            }
            match suffix.split_once('.') {
                Some((_, rest)) => suffix = rest,
                None => break,
            }
        }
        let tld = domain.rsplit('.').next().unwrap_or(&domain).to_owned();
        let urls = best.ok_or_else(|| RdapError::NoService(tld.clone()))?;
        urls.iter()
            .find(|u| u.starts_with("https://"))
            .or_else(|| urls.first())
            .cloned()
            .ok_or(RdapError::NoService(tld))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
        "version": "1.0",
        "publication": "2026-01-01T00:00:00Z",
        "services": [
            [["com", "net"], ["http://rdap.verisign.example/", "https://rdap.verisign.example/"]],
            [["nl"], ["https://rdap.sidn.example/"]],
            [["co.nl"], ["https://rdap.second-level.example/"]]
        ]
    }"#;

    #[test]
    fn longest_match_and_https_first() {
        let b = Bootstrap::parse(FILE).expect("valid");
        assert_eq!(
            b.base_url("old.com").expect("com"),
            "https://rdap.verisign.example/"
        );
        assert_eq!(
            b.base_url("Gemeente.NL.").expect("nl"),
            "https://rdap.sidn.example/"
        );
        assert_eq!(
            b.base_url("x.co.nl").expect("co.nl"),
            "https://rdap.second-level.example/"
        );
        assert_eq!(
            b.base_url("old.de"),
            Err(RdapError::NoService("de".to_owned()))
        );
        assert!(Bootstrap::parse("{\"services\": 3}").is_err());
    }

    #[test]
    fn the_built_in_copy_parses() {
        let b = Bootstrap::from_config(None).expect("built-in bootstrap");
        assert!(b.base_url("example.com").is_ok());
        assert!(b.base_url("example.nl").is_ok());
    }
}
