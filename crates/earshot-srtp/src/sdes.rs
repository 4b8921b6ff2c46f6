//! The keys of an `a=crypto` attribute (RFC 4568 §9.1):
//! `<tag> <suite> inline:<key||salt>[|<lifetime>][|<MKI>:<length>][;inline:…] [<session params>]`.

use crate::Suite;
use thiserror::Error;

/// Master keys one `a=crypto` line may carry: libsrtp2 takes as many (SRTP_MAX_NUM_MASTER_KEYS),
/// and each costs a key derivation when a stream starts, so a hostile SDP cannot make that
/// unbounded.
pub const MAX_KEYS: usize = 16;
/// The longest MKI (RFC 4568 §9.1: 1 to 128 bytes).
pub const MAX_MKI_LEN: usize = 128;

/// Why an `a=crypto` line gave no keys; each message says what to look at in the SDP.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdesError {
    /// The line is not `<tag> <suite> <key params>`: no key, a tag that is not a number, a
    /// key parameter without `inline:` or with stray `|` parts, keys of different suites.
    #[error(
        "a=crypto needs `<tag> <suite> inline:<key>[|<lifetime>][|<MKI>:<length>]`, key \
         parameters separated by `;`: check the SDP's a=crypto line"
    )]
    Syntax,
    /// A suite name earshot has no decryption for (the name as written).
    #[error(
        "crypto suite {0} is not one earshot decrypts (AES_CM_128_HMAC_SHA1_80/_32, \
         AES_256_CM_HMAC_SHA1_80/_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM): its media stays \
         marked encrypted"
    )]
    Suite(String),
    /// The inline key||salt is not valid base64.
    #[error("the inline key is not base64: check the SDP's a=crypto line")]
    Base64,
    /// The decoded key||salt has the wrong length for the suite.
    #[error("the inline key is {got} bytes, the suite needs {want} (master key and salt)")]
    KeyLength {
        /// Bytes the base64 decoded to.
        got: usize,
        /// Master key plus master salt length of the suite, in bytes.
        want: usize,
    },
    /// A key lifetime (as written) is neither `2^n` nor a decimal packet count.
    #[error("key lifetime `{0}` is neither `2^<n>` (n up to 63) nor a number of packets")]
    Lifetime(String),
    /// An MKI (as written, or its length) that is malformed, longer than [`MAX_MKI_LEN`], or
    /// whose value does not fit its length.
    #[error(
        "MKI `{0}` is not `<value>:<length>` with a decimal value that fits a length of 1 to \
         128 bytes"
    )]
    Mki(String),
    /// A line with several keys where some key has no MKI, or the MKIs differ in length.
    #[error(
        "several keys in one a=crypto line need an MKI each, all of one length (RFC 4568 §6.1): \
         without it no packet says which key it uses"
    )]
    MkiNeeded,
    /// More than [`MAX_KEYS`] key parameters in one line.
    #[error("more than {MAX_KEYS} keys in one a=crypto line: earshot reads at most {MAX_KEYS}")]
    TooManyKeys,
    /// A session parameter (as written) that changes the packet format or the key schedule:
    /// `UNENCRYPTED_SRTP`, `UNAUTHENTICATED_SRTP`, or a `KDR` above 0.
    #[error(
        "session parameter {0} is not supported (payloads sent in the clear, packets without \
         a tag, or session keys derived anew every 2^n packets): its media stays marked \
         encrypted"
    )]
    SessionParameter(String),
}

/// One master key and salt, as one side of a call sends with, and the MKI that names it in
/// its packets (empty when the line has one key and no MKI).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    /// The suite the key is for; it fixes the key and salt lengths.
    pub suite: Suite,
    key: Vec<u8>,
    salt: Vec<u8>,
    mki: Vec<u8>,
    lifetime: Option<u64>,
}

impl std::fmt::Debug for MasterKey {
    // Keys are secrets: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .field("mki", &self.mki)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A key of `suite` without MKI or lifetime.
    pub fn new(suite: Suite, key: &[u8], salt: &[u8]) -> Result<MasterKey, SdesError> {
        if key.len() != suite.key_len() || salt.len() != suite.salt_len() {
            return Err(SdesError::KeyLength {
                got: key.len() + salt.len(),
                want: suite.key_len() + suite.salt_len(),
            });
        }
        Ok(MasterKey {
            suite,
            key: key.to_vec(),
            salt: salt.to_vec(),
            mki: Vec::new(),
            lifetime: None,
        })
    }

    /// The same key named by `mki` in its packets.
    pub fn with_mki(mut self, mki: &[u8]) -> Result<MasterKey, SdesError> {
        if mki.is_empty() || mki.len() > MAX_MKI_LEN {
            return Err(SdesError::Mki(format!("({} bytes)", mki.len())));
        }
        self.mki = mki.to_vec();
        Ok(self)
    }

    /// The MKI naming this key in its packets (empty: none).
    pub fn mki(&self) -> &[u8] {
        &self.mki
    }

    /// The key's lifetime in packets, when the SDP gave one. Accepted, not enforced: a sender
    /// past it should have rekeyed, and a passive receiver that refused it would only lose
    /// audio the sender's peer still hears.
    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// One key parameter: `inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>]`.
    fn from_key_param(suite: Suite, param: &str) -> Result<MasterKey, SdesError> {
        let info = param.strip_prefix("inline:").ok_or(SdesError::Syntax)?;
        let mut parts = info.split('|');
        let key_salt = parts.next().unwrap_or_default();
        let (mut lifetime, mut mki) = (None, None);
        for part in parts {
            // RFC 4568's order: the lifetime (no colon) before the MKI (value:length).
            match (part.contains(':'), &lifetime, &mki) {
                (true, _, None) => mki = Some(parse_mki(part)?),
                (false, None, None) => lifetime = Some(parse_lifetime(part)?),
                _ => return Err(SdesError::Syntax),
            }
        }
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key_salt)
            .map_err(|_| SdesError::Base64)?;
        let n = suite.key_len();
        if bytes.len() != n + suite.salt_len() {
            return Err(SdesError::KeyLength {
                got: bytes.len(),
                want: n + suite.salt_len(),
            });
        }
        let mut key = MasterKey::new(suite, &bytes[..n], &bytes[n..])?;
        key.lifetime = lifetime;
        key.mki = mki.unwrap_or_default();
        Ok(key)
    }
}

/// The keys of one `a=crypto` line: its tag, its suite and one master key, or several that
/// each packet's MKI chooses between.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SdesKeys {
    /// The tag (`1` of `a=crypto:1 …`) an answer uses to say which offered line it accepted.
    pub tag: u32,
    /// The suite every key of the line is for.
    pub suite: Suite,
    keys: Vec<MasterKey>,
}

impl From<MasterKey> for SdesKeys {
    /// One key alone, as a line with tag 1 would carry it.
    fn from(key: MasterKey) -> SdesKeys {
        SdesKeys {
            tag: 1,
            suite: key.suite,
            keys: vec![key],
        }
    }
}

impl SdesKeys {
    /// A line's keys: one, or up to [`MAX_KEYS`] of `keys[0]`'s suite with MKIs of one length.
    pub fn new(tag: u32, keys: Vec<MasterKey>) -> Result<SdesKeys, SdesError> {
        let first = keys.first().ok_or(SdesError::Syntax)?;
        let (suite, mki_len) = (first.suite, first.mki.len());
        if keys.len() > MAX_KEYS {
            return Err(SdesError::TooManyKeys);
        }
        if keys.iter().any(|k| k.suite != suite) {
            return Err(SdesError::Syntax);
        }
        let one_mki_length = keys.iter().all(|k| k.mki.len() == mki_len);
        if !one_mki_length || (keys.len() > 1 && mki_len == 0) {
            return Err(SdesError::MkiNeeded);
        }
        Ok(SdesKeys { tag, suite, keys })
    }

    /// The keys of an `a=crypto` attribute value (RFC 4568 §9.1), e.g.
    /// `1 AES_CM_128_HMAC_SHA1_80 inline:<base64>|2^20|1:4;inline:<base64>|2^20|2:4`.
    pub fn parse(value: &str) -> Result<SdesKeys, SdesError> {
        let mut words = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(params)) = (words.next(), words.next(), words.next())
        else {
            return Err(SdesError::Syntax);
        };
        let tag = tag.parse().map_err(|_| SdesError::Syntax)?;
        let suite = Suite::from_name(suite).ok_or_else(|| SdesError::Suite(suite.into()))?;
        words.try_for_each(check_session_param)?;
        // Counted before anything is decoded: a line of a thousand keys costs nothing.
        if params.split(';').nth(MAX_KEYS).is_some() {
            return Err(SdesError::TooManyKeys);
        }
        let keys = params
            .split(';')
            .map(|p| MasterKey::from_key_param(suite, p))
            .collect::<Result<Vec<_>, _>>()?;
        SdesKeys::new(tag, keys)
    }

    /// The line's master keys, in its order.
    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    /// Bytes of MKI in each packet (0: none).
    pub fn mki_len(&self) -> usize {
        self.keys.first().map_or(0, |k| k.mki.len())
    }
}

/// `2^<n>` or a decimal number of packets (RFC 4568 §9.1's lifetime).
fn parse_lifetime(s: &str) -> Result<u64, SdesError> {
    let bad = || SdesError::Lifetime(s.into());
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    match s.strip_prefix("2^") {
        Some(exp) if digits(exp) => {
            let n: u32 = exp.parse().map_err(|_| bad())?;
            1u64.checked_shl(n).filter(|_| n < 64).ok_or_else(bad)
        }
        None if digits(s) => s.parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// `<value>:<length>`: the MKI as the `length` big-endian bytes of the decimal `value`.
fn parse_mki(s: &str) -> Result<Vec<u8>, SdesError> {
    let bad = || SdesError::Mki(s.into());
    let (value, len) = s.split_once(':').ok_or_else(bad)?;
    let len: usize = len.parse().map_err(|_| bad())?;
    // Three decimal digits per byte are more than a byte holds: longer is only leading zeros or
    // too big, and bounds the work below.
    let plausible = (1..=MAX_MKI_LEN).contains(&len) && value.len() <= 3 * len + 1;
    if !plausible || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut out = vec![0u8; len];
    for digit in value.bytes() {
        // out = out * 10 + digit, byte by byte from the right.
        let mut carry = u32::from(digit - b'0');
        for b in out.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if carry != 0 {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Session parameters (RFC 4568 §6.3) that change what a receiver must do. Payloads in the
/// clear (`UNENCRYPTED_SRTP`) would be "decrypted" into noise and packets without a tag
/// (`UNAUTHENTICATED_SRTP`) can prove neither key nor ROC, so their media is left encrypted;
/// so is a key derivation rate (`KDR=n`, n > 0), which this receiver does not re-derive.
/// `UNENCRYPTED_SRTCP` needs nothing (each SRTCP packet's E flag says it), nor do FEC and the
/// replay window (no FEC here, no replay list).
fn check_session_param(p: &str) -> Result<(), SdesError> {
    let refused = match p.split_once('=') {
        Some(("KDR", n)) => !n.trim_start_matches('0').is_empty(),
        None => matches!(p, "UNENCRYPTED_SRTP" | "UNAUTHENTICATED_SRTP"),
        _ => false,
    };
    if refused {
        return Err(SdesError::SessionParameter(p.into()));
    }
    Ok(())
}
