//! New X25519 identities in the file format `age-keygen` writes.

use age::secrecy::ExposeSecret;

/// A freshly generated identity: the file text (secret) and its public recipient.
pub struct NewIdentity {
    pub file_text: String,
    pub recipient: String,
}

/// Generates an identity. `created` is an RFC 3339 time for the file's comment line.
pub fn generate(created: &str) -> NewIdentity {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let file_text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    NewIdentity {
        file_text,
        recipient,
    }
}
