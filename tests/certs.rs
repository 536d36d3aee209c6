//! Regenerates the checked-in dev certificate: `cargo test --test certs -- --ignored`.

#[test]
#[ignore = "rewrites certs/dev-cert.pem and certs/dev-key.pem"]
fn regenerate_dev_certificate() {
    let names = vec!["mx.old.example".to_owned(), "localhost".to_owned()];
    let mut params = rcgen::CertificateParams::new(names).expect("valid names");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "reclaim dev certificate (not for production)",
    );
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs");
    std::fs::write(dir.join("dev-cert.pem"), cert.pem()).expect("write cert");
    std::fs::write(dir.join("dev-key.pem"), key.serialize_pem()).expect("write key");
}
