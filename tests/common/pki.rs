//! A throwaway certificate authority for the mutual-TLS admin listener's tests.

use std::path::Path;

/// A CA that issues server and client certificates into a folder.
pub struct Pki {
    pub ca: rcgen::Certificate,
    params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca = params.self_signed(&ca_key).expect("ca");
        Self { ca, params, ca_key }
    }

    /// Writes NAME-cert.pem and NAME-key.pem signed by this CA.
    pub fn issue(&self, dir: &Path, name: &str, cn: &str, sans: Vec<String>, client: bool) {
        let mut params = rcgen::CertificateParams::new(sans).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::from_params(&self.params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        std::fs::write(dir.join(format!("{name}-cert.pem")), cert.pem()).expect("cert");
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).expect("key");
    }
}
