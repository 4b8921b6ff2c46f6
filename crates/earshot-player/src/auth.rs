//! Passwords (argon2), session tokens and CSRF tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// False for a wrong password and for a stored hash that cannot be parsed.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new session token (for the cookie) and a CSRF token.
pub fn new_tokens() -> Result<(String, String), AuthError> {
    Ok((hex(&random_bytes::<32>()?), hex(&random_bytes::<16>()?)))
}

/// Only this hash is stored, so a leaked database does not hand out live sessions.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Used when the user is unknown, so a wrong name takes as long as a wrong password.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$X4PmvbVV3i2cGr8dhPuCfMbDqQW3fCpC8kjhiuDmJ/0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_the_dummy_hash_parses() {
        let h = hash_password("pw").unwrap();
        assert!(verify_password("pw", &h));
        assert!(!verify_password("pW", &h));
        assert!(!verify_password("pw", "not a hash"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
