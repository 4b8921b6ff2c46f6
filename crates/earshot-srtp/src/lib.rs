//! SRTP (RFC 3711) as a passive sensor needs it: the receiving side only, for packets someone
//! else protected, with the keys a call's SDP carries (SDES, `a=crypto`, RFC 4568).
//!
//! Sans-IO: bytes in, clear bytes out. [`SrtpStream`] keeps one stream's rollover counter
//! (ROC). A sensor often starts in the middle of a call, past a sequence-number wrap, so the
//! first packet's ROC is found by trying the few plausible values against the packet's
//! authentication tag (as VoIPmonitor's "ROC find" does); after that, RFC 3711's index
//! estimate follows it. A packet whose tag does not verify is never decrypted: its payload
//! could be anything, and playing it is noise. [`SrtcpStream`] does the same for SRTCP, whose
//! packets carry their index.
//!
//! Suites: AES counter mode with HMAC-SHA1 (RFC 3711, RFC 4568 §6.2, RFC 6188's AES-256) and
//! AES-GCM (RFC 7714). An `a=crypto` line may carry several master keys told apart by the MKI
//! each packet carries (RFC 3711 §3.1): [`SdesKeys`] holds them and the stream picks the key
//! per packet.
//!
//! The primitives are RustCrypto's (`aes`, `ctr`, `hmac`, `sha1`, `aes-gcm`); what is written
//! here is the protocol around them: key derivation (RFC 3711 §4.3, RFC 7714 §11), the IVs
//! (RFC 3711 §4.1.1, RFC 7714 §8.1 and §9.1), the authenticated portion with the ROC (RFC 3711
//! §4.2) or the associated data (RFC 7714 §8.2, §9.2), index estimation (RFC 3711 §3.3.1,
//! Appendix A), the packet layouts with MKI and the SRTCP index.

#![warn(missing_docs, unreachable_pub)]

mod sdes;
mod session;
mod srtcp;
mod srtp;

pub use sdes::{MasterKey, SdesError, SdesKeys, MAX_KEYS, MAX_MKI_LEN};
pub use srtcp::SrtcpStream;
pub use srtp::{SrtpCounters, SrtpError, SrtpStream, ROC_CANDIDATES};

/// The SRTP crypto suites earshot decrypts: RFC 4568 §6.2's, RFC 6188's AES-256 ones and RFC
/// 7714's AES-GCM ones (their SDES names, RFC 7714 §14.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// `AES_CM_128_HMAC_SHA1_80`: AES-128 counter mode, 80-bit HMAC-SHA1 tag (RFC 3711).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: as above with a 32-bit tag on SRTP (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80`: AES-256 counter mode, 80-bit tag (RFC 6188).
    AesCm256HmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32`: AES-256 counter mode, 32-bit tag on SRTP (RFC 6188).
    AesCm256HmacSha1_32,
    /// `AEAD_AES_128_GCM`: AES-128-GCM, 16-byte tag, 12-byte salt (RFC 7714).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM`: AES-256-GCM, 16-byte tag, 12-byte salt (RFC 7714).
    AeadAes256Gcm,
}

impl Suite {
    /// Every suite, in the order of [`Suite::name`]'s documentation.
    pub const ALL: [Suite; 6] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ];

    /// The suite an `a=crypto` line names.
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The suite's SDES name (RFC 4568 §6.2, RFC 6188 §7.1, RFC 7714 §14.1).
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Master (and session) key length: AES-128 or AES-256.
    pub fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            Suite::AesCm256HmacSha1_80 | Suite::AesCm256HmacSha1_32 | Suite::AeadAes256Gcm => 32,
        }
    }

    /// Master (and session) salt length: 112 bits for counter mode, 96 for GCM (RFC 7714 §12).
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// AES-GCM, where the cipher authenticates: no HMAC, a 16-byte tag.
    pub fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// Bytes of authentication tag at the end of each SRTP packet (before an MKI with GCM).
    pub fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm256HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 | Suite::AesCm256HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// Bytes of authentication tag of each SRTCP packet: the `_32` suites keep 80 bits there
    /// (RFC 4568 §6.2.2, RFC 6188 §7.1).
    pub fn srtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests;
