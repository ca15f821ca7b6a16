//! Password hashing: argon2id with the `argon2` crate's defaults (m = 19 MiB,
//! t = 2, p = 1: OWASP's recommended minimum), stored as PHC strings.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;

/// The shortest password accepted for a new user or a password change.
pub const MIN_LENGTH: usize = 8;

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| format!("no randomness for a salt: {error}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|error| error.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string (argon2 compares in constant time).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Spends the same time as a real check, for unknown usernames, so timing
/// does not tell which usernames exist.
pub fn verify_against_nothing(password: &str) {
    static DUMMY: LazyLock<String> = LazyLock::new(|| hash("not a real password").unwrap_or_default());
    let _ = verify(password, &DUMMY);
}

/// A strong password for the first admin: 24 characters, ~143 bits.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|error| format!("no randomness for a password: {error}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks a new password's length; the message is for the operator.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("the password must have at least {MIN_LENGTH} characters"));
    }
    if password.contains('\0') {
        // Sign-in refuses it (it could not be sent to every store), so it could never be used.
        return Err(format!("the password {}", shared::error::NUL_REFUSED));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let stored = hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse", &stored));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(hash("correct horse").unwrap(), stored, "salted");
    }

    #[test]
    fn generated_passwords_are_long_and_different() {
        let one = generate().unwrap();
        assert_eq!(one.len(), 24);
        assert_ne!(one, generate().unwrap());
        assert!(check_new(&one).is_ok());
        assert!(check_new("short").is_err());
        assert!(check_new("long enough\0but not").is_err());
    }
}
