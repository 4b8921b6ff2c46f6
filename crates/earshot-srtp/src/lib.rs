//! SRTP (RFC 3711) as a passive sensor needs it: the receiving side only, for packets someone
//! else protected, with the keys a call's SDP carries (SDES, `a=crypto`, RFC 4568).
//!
//! Sans-IO: bytes in, clear bytes out. [`SrtpStream`] keeps one stream's rollover counter
//! (ROC). A sensor often starts in the middle of a call, past a sequence-number wrap, so the
//! first packet's ROC is found by trying the few plausible values against the packet's
//! authentication tag (as VoIPmonitor's "ROC find" does); after that, RFC 3711's index
//! estimate follows it. A packet whose tag does not verify is never decrypted: its payload
//! could be anything, and playing it is noise.
//!
//! The primitives are RustCrypto's (`aes`, `ctr`, `hmac`, `sha1`); what is written here is
//! the protocol around them: key derivation (§4.3), the counter-mode IV (§4.1.1), the
//! authenticated portion with the ROC (§4.2), index estimation (§3.3.1, Appendix A).

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use thiserror::Error;

type HmacSha1 = Hmac<sha1::Sha1>;

/// The SRTP crypto suites of RFC 4568 §6.2 (and RFC 6188's AES-256 ones) earshot decrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
}

impl Suite {
    /// The suite an `a=crypto` line names.
    pub fn from_name(name: &str) -> Option<Suite> {
        Some(match name {
            "AES_CM_128_HMAC_SHA1_80" => Suite::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => Suite::AesCm128HmacSha1_32,
            "AES_256_CM_HMAC_SHA1_80" => Suite::AesCm256HmacSha1_80,
            "AES_256_CM_HMAC_SHA1_32" => Suite::AesCm256HmacSha1_32,
            _ => return None,
        })
    }

    fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => 16,
            Suite::AesCm256HmacSha1_80 | Suite::AesCm256HmacSha1_32 => 32,
        }
    }

    /// Bytes of authentication tag at the end of each SRTP packet.
    pub fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm256HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 | Suite::AesCm256HmacSha1_32 => 4,
        }
    }
}

/// Master salt length of every suite here (112 bits).
const SALT_LEN: usize = 14;
/// HMAC-SHA1 session authentication key length (160 bits).
const AUTH_KEY_LEN: usize = 20;
/// Key derivation labels for SRTP (RFC 3711 §4.3.1).
const LABEL_CIPHER: u8 = 0;
const LABEL_AUTH: u8 = 1;
const LABEL_SALT: u8 = 2;
/// ROC values tried for a stream's first packet: with 50 packets a second the ROC moves every
/// 21.8 minutes, so 0–15 cover a call of more than five hours. A constant bound: a forged
/// stream costs at most this many MACs per packet until one verifies, whatever it carries.
const ROC_CANDIDATES: u32 = 16;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdesError {
    #[error("a=crypto needs `<tag> <suite> inline:<key>`")]
    Syntax,
    #[error("crypto suite {0} is not one earshot decrypts")]
    Suite(String),
    #[error("the inline key is not base64")]
    Base64,
    #[error("the inline key is {got} bytes, the suite needs {want} (master key and salt)")]
    KeyLength { got: usize, want: usize },
    #[error("MKI (a key index in every packet) is not supported yet")]
    Mki,
}

/// A master key and salt, as one side of a call sends with (its own `a=crypto`).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub suite: Suite,
    key: Vec<u8>,
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for MasterKey {
    // Keys are secrets: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn new(suite: Suite, key: &[u8], salt: &[u8]) -> Result<MasterKey, SdesError> {
        let want = suite.key_len() + SALT_LEN;
        if key.len() != suite.key_len() || salt.len() != SALT_LEN {
            return Err(SdesError::KeyLength {
                got: key.len() + salt.len(),
                want,
            });
        }
        let mut s = [0u8; SALT_LEN];
        s.copy_from_slice(salt);
        Ok(MasterKey {
            suite,
            key: key.to_vec(),
            salt: s,
        })
    }

    /// The tag (`1` of `a=crypto:1 …`) an answer uses to say which offered key it accepted.
    pub fn sdes_tag(value: &str) -> Option<u32> {
        value.split_ascii_whitespace().next()?.parse().ok()
    }

    /// The key of an `a=crypto` attribute value (RFC 4568 §9.1):
    /// `1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>[|lifetime][|MKI:length]`.
    /// The first key parameter is used; a lifetime is accepted (a capture rarely outlives it),
    /// an MKI is refused for now.
    pub fn from_sdes(value: &str) -> Result<MasterKey, SdesError> {
        let mut words = value.split_ascii_whitespace();
        let (Some(_tag), Some(suite), Some(params)) = (words.next(), words.next(), words.next())
        else {
            return Err(SdesError::Syntax);
        };
        let suite = Suite::from_name(suite).ok_or_else(|| SdesError::Suite(suite.into()))?;
        let first = params.split(';').next().unwrap_or("");
        let inline = first.strip_prefix("inline:").ok_or(SdesError::Syntax)?;
        let mut parts = inline.split('|');
        let key = parts.next().unwrap_or("");
        for p in parts {
            if p.contains(':') {
                return Err(SdesError::Mki);
            }
        }
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|_| SdesError::Base64)?;
        let n = suite.key_len();
        if bytes.len() != n + SALT_LEN {
            return Err(SdesError::KeyLength {
                got: bytes.len(),
                want: n + SALT_LEN,
            });
        }
        MasterKey::new(suite, &bytes[..n], &bytes[n..])
    }
}

/// The session keys derived from a master key (key derivation rate 0: once per stream).
#[derive(Clone)]
struct SessionKeys {
    suite: Suite,
    cipher: Vec<u8>,
    salt: [u8; SALT_LEN],
    auth: [u8; AUTH_KEY_LEN],
}

/// AES in counter mode from `iv`, over `data` in place, with a 128- or 256-bit key.
fn aes_ctr(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
    // Both key lengths were checked when the master key was made.
    if let Ok(mut c) = ctr::Ctr128BE::<aes::Aes128>::new_from_slices(key, iv) {
        c.apply_keystream(data);
    } else if let Ok(mut c) = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(key, iv) {
        c.apply_keystream(data);
    }
}

/// RFC 3711 §4.3.1 with key_derivation_rate 0: x = (label || 0^48) XOR master_salt, and the
/// key is AES-CM(master_key, x · 2^16) of the wanted length.
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(&master.salt);
    // The label sits 7 bytes from the salt's right end (48 bits of index after it).
    iv[SALT_LEN - 7] ^= label;
    out.fill(0);
    aes_ctr(&master.key, &iv, out);
}

impl SessionKeys {
    fn derive(master: &MasterKey) -> SessionKeys {
        let mut cipher = vec![0u8; master.suite.key_len()];
        let mut salt = [0u8; SALT_LEN];
        let mut auth = [0u8; AUTH_KEY_LEN];
        derive(master, LABEL_CIPHER, &mut cipher);
        derive(master, LABEL_SALT, &mut salt);
        derive(master, LABEL_AUTH, &mut auth);
        SessionKeys {
            suite: master.suite,
            cipher,
            salt,
            auth,
        }
    }

    /// §4.1.1: IV = (k_s · 2^16) XOR (SSRC · 2^64) XOR (i · 2^16), i = ROC · 2^16 + SEQ.
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }

    /// Whether `tag` authenticates `authenticated` (header and encrypted payload) with `roc`.
    fn verifies(&self, authenticated: &[u8], roc: u32, tag: &[u8]) -> bool {
        let Ok(mut mac) = HmacSha1::new_from_slice(&self.auth) else {
            return false;
        };
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        // Constant time, truncated to the suite's tag.
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// Why an SRTP packet gave no clear packet.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SrtpError {
    #[error("shorter than an RTP header and the authentication tag")]
    TooShort,
    #[error("the authentication tag does not verify (wrong key, corrupted, or not this stream)")]
    Authentication,
}

/// What one stream's receiver has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrtpCounters {
    pub decrypted: u64,
    pub auth_failures: u64,
}

/// One SRTP stream (one SSRC of one sender), receiving side.
#[derive(Clone)]
pub struct SrtpStream {
    keys: SessionKeys,
    /// The highest sequence number authenticated and its ROC; None before the first.
    highest: Option<(u16, u32)>,
    pub counters: SrtpCounters,
}

impl std::fmt::Debug for SrtpStream {
    // The session keys are secrets: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpStream")
            .field("roc", &self.roc())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SrtpStream {
    pub fn new(master: &MasterKey) -> SrtpStream {
        SrtpStream {
            keys: SessionKeys::derive(master),
            highest: None,
            counters: SrtpCounters::default(),
        }
    }

    /// The ROC of the highest packet so far (None before one authenticated).
    pub fn roc(&self) -> Option<u32> {
        self.highest.map(|(_, roc)| roc)
    }

    /// Authenticates one SRTP packet and writes the RTP packet it protects (header, then the
    /// clear payload; no tag) to `out`, replacing what `out` held. Nothing is written when it
    /// does not authenticate.
    pub fn unprotect(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.keys.suite.tag_len();
        let header = header_len(packet).ok_or(SrtpError::TooShort)?;
        let Some(body_end) = packet.len().checked_sub(tag_len).filter(|&e| e >= header) else {
            return Err(SrtpError::TooShort);
        };
        let (authenticated, tag) = packet.split_at(body_end);
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let roc = self.find_roc(seq, authenticated, tag);
        let Some(roc) = roc else {
            self.counters.auth_failures += 1;
            return Err(SrtpError::Authentication);
        };
        self.accept(seq, roc);
        out.clear();
        out.extend_from_slice(authenticated);
        let index = (u64::from(roc) << 16) | u64::from(seq);
        let iv = self.keys.iv(ssrc, index);
        aes_ctr(&self.keys.cipher, &iv, &mut out[header..]);
        self.counters.decrypted += 1;
        Ok(())
    }

    /// The ROC that authenticates the packet: RFC 3711's estimate once the stream is known
    /// (and its neighbours, for reordering near a wrap); for the first packet, a search.
    fn find_roc(&self, seq: u16, authenticated: &[u8], tag: &[u8]) -> Option<u32> {
        let verifies = |&r: &u32| self.keys.verifies(authenticated, r, tag);
        match self.highest {
            Some((s_l, roc)) => estimate(s_l, roc, seq).into_iter().flatten().find(verifies),
            None => (0..ROC_CANDIDATES).find(verifies),
        }
    }

    fn accept(&mut self, seq: u16, roc: u32) {
        let index = (u64::from(roc) << 16) | u64::from(seq);
        let newer = self
            .highest
            .is_none_or(|(s, r)| index > ((u64::from(r) << 16) | u64::from(s)));
        if newer {
            self.highest = Some((seq, roc));
        }
    }
}

/// RFC 3711 Appendix A: the ROC of `seq` given the highest sequence number `s_l` seen with
/// ROC `roc` — the estimate first, then its neighbours (a packet reordered across a wrap).
fn estimate(s_l: u16, roc: u32, seq: u16) -> [Option<u32>; 3] {
    let (s_l, seq) = (i32::from(s_l), i32::from(seq));
    let guess = if s_l < 32768 && seq - s_l > 32768 {
        roc.saturating_sub(1)
    } else if s_l >= 32768 && s_l - 32768 > seq {
        roc.saturating_add(1)
    } else {
        roc
    };
    [Some(guess), guess.checked_add(1), guess.checked_sub(1)]
}

/// Length of the RTP header (fixed part, CSRCs, extension), or None when the packet is too
/// short for what it says it has or is not RTP version 2.
fn header_len(p: &[u8]) -> Option<usize> {
    let first = *p.first()?;
    if first >> 6 != 2 || p.len() < 12 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let ext = p.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (len <= p.len()).then_some(len)
}

#[cfg(test)]
mod tests;
