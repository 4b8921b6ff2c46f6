//! API keys (for dashboards' backends) and listen tokens (for the end users' browsers).
//!
//! A listen token says, signed: this key's holder lets `user` listen to this one call, from
//! this start, maybe only from this origin, until `expires`. It is HMAC-SHA256 over the
//! payload as sent, with a secret kept in the database (`player_secrets`), so a token minted
//! by one player is accepted by every player sharing the database. Sans-IO: the secret, the
//! clock and the nonce are the caller's.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What every API key starts with, so a leaked one is recognised (secret scanners, logs).
pub const KEY_PREFIX: &str = "esk_";
/// What every listen token starts with (and its format's version).
pub const TOKEN_PREFIX: &str = "elt1.";
/// The name of the signing secret in `player_secrets`.
pub const SECRET_NAME: &str = "listen_token_hmac";
/// The longest token accepted: a payload of a few short fields, hex-encoded.
pub const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error(
        "the listen token is malformed (cut short or changed?): ask the dashboard for a new one"
    )]
    Malformed,
    #[error("the listen token's signature is wrong (changed, or from another player's database): ask the dashboard for a new one")]
    BadSignature,
    #[error(
        "the listen token has expired: the dashboard must mint a new one just before listening"
    )]
    Expired,
}

/// What a listen token grants.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListenGrant {
    /// The API key that minted it: checked again when the session starts (revoked keys'
    /// tokens die with them).
    pub key_id: i64,
    pub key_name: String,
    pub sensor_id: i64,
    /// As the dashboard gave it (compared normalised, `manager::normalize_ref`).
    pub callref: String,
    /// `now`, `start` or `-SECONDS`.
    pub from: String,
    /// The end user, as the dashboard knows them (for the audit).
    pub user: String,
    /// The only page origin it may be used from, when the dashboard said so.
    pub origin: Option<String>,
    /// Unix seconds.
    pub expires: i64,
    /// Random: what makes the token single-use (`used_listen_tokens`).
    pub nonce: String,
}

type HmacSha256 = Hmac<Sha256>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn mac(secret: &[u8], payload: &str) -> HmacSha256 {
    // new_from_slice takes keys of any length for HMAC: the error case cannot happen.
    let mut m = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    m.update(payload.as_bytes());
    m
}

/// The token for `grant`: `elt1.` + hex(JSON) + `.` + hex(HMAC). Hex, so it travels in a URL
/// query or an HTML attribute without escaping.
pub fn sign(grant: &ListenGrant, secret: &[u8]) -> String {
    let json = serde_json::to_vec(grant).unwrap_or_default();
    let payload = hex(&json);
    let tag = mac(secret, &payload).finalize().into_bytes();
    format!("{TOKEN_PREFIX}{payload}.{}", hex(&tag))
}

/// The grant of a token signed with `secret` that has not expired at `now`. The signature is
/// checked (in constant time) before the payload is even parsed.
pub fn verify(token: &str, secret: &[u8], now: i64) -> Result<ListenGrant, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let rest = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(TokenError::Malformed)?;
    let (payload, tag) = rest.split_once('.').ok_or(TokenError::Malformed)?;
    let tag = unhex(tag).ok_or(TokenError::Malformed)?;
    mac(secret, payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let json = unhex(payload).ok_or(TokenError::Malformed)?;
    let grant: ListenGrant = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if grant.expires <= now {
        return Err(TokenError::Expired);
    }
    Ok(grant)
}

/// A new API key: the prefix and 32 random bytes in hex.
pub fn new_key() -> Result<String, crate::auth::AuthError> {
    Ok(format!("{KEY_PREFIX}{}", crate::auth::random_hex(32)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> ListenGrant {
        ListenGrant {
            key_id: 5,
            key_name: "dash".into(),
            sensor_id: 1,
            callref: "0x1f".into(),
            from: "now".into(),
            user: "Ann <ann@dash>".into(),
            origin: Some("https://dash.example.com".into()),
            expires: 1_000,
            nonce: "ab".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let t = sign(&grant(), b"secret");
        assert!(t.starts_with(TOKEN_PREFIX));
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
        assert_eq!(verify(&t, b"secret", 999), Ok(grant()));
        assert_eq!(verify(&t, b"secret", 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn a_changed_token_or_another_secret_is_refused() {
        let t = sign(&grant(), b"secret");
        assert_eq!(verify(&t, b"other", 0), Err(TokenError::BadSignature));
        // Another call in the payload, with the old signature.
        let other = ListenGrant {
            callref: "0x20".into(),
            ..grant()
        };
        let forged_payload = sign(&other, b"guess");
        let (head, _) = forged_payload.rsplit_once('.').unwrap();
        let (_, tag) = t.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&format!("{head}.{tag}"), b"secret", 0),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "elt1.", "elt1.zz.00", "elt2.00.00", "esk_00"] {
            assert!(verify(bad, b"secret", 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_prefixed_and_random() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
    }
}
