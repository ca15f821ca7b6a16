//! Opaque tokens in two parts, `<id>.<secret>`: the id finds the row, the
//! secret is checked against the stored SHA-256 digest in constant time. The
//! database never holds a usable token and lookups never touch the secret.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A token as given to its owner, and the digest to store.
pub struct NewToken {
    /// The id (the row's key; not secret).
    pub id: Uuid,
    /// `<id>.<secret>`: what the client sends.
    pub value: String,
    /// The SHA-256 of the secret, hex.
    pub digest: String,
}

/// Makes a token with 256 random bits of secret.
pub fn generate() -> Result<NewToken, String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| format!("no randomness for a token: {error}"))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let id = Uuid::new_v4();
    Ok(NewToken { id, value: format!("{}.{secret}", id.simple()), digest: digest(&secret) })
}

/// Splits a presented token into its id and secret.
pub fn parse(value: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = value.trim().split_once('.')?;
    Some((Uuid::parse_str(id).ok()?, secret))
}

/// Whether `secret` matches the stored digest, in constant time.
pub fn matches(secret: &str, stored_digest: &str) -> bool {
    digest(secret).as_bytes().ct_eq(stored_digest.as_bytes()).into()
}

fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_parses_back_and_matches_only_its_digest() {
        let token = generate().unwrap();
        let (id, secret) = parse(&token.value).unwrap();
        assert_eq!(id, token.id);
        assert!(matches(secret, &token.digest));
        assert!(!matches("guess", &token.digest));
        assert!(!token.value.contains(&token.digest));
        assert_eq!(parse("no-dot"), None);
        assert_eq!(parse("not-a-uuid.secret"), None);
    }
}
