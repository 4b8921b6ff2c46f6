//! SRTCP packets (RFC 3711 §3.4, RFC 7714 §9): one sender's receiving side.
//!
//! Unlike SRTP, each packet carries its own index (31 bits, after the E flag that says whether
//! it was encrypted), so there is no rollover counter to find: a packet authenticates or not.

use crate::session::{CmKeys, GcmKeys, SessionKeys, GCM_TAG_LEN, SRTCP_LABELS};
use crate::srtp::{KeyRing, SrtpCounters, SrtpError};
use crate::SdesKeys;
use std::ops::Range;

/// The first RTCP header and sender SSRC, never encrypted (RFC 3711 §3.4).
const RTCP_HEADER: usize = 8;
/// The E flag and 31-bit SRTCP index.
const INDEX_LEN: usize = 4;
const E_FLAG: u32 = 0x8000_0000;

/// Where the parts of an SRTCP packet lie. RFC 3711: RTCP (header, encrypted portion), E and
/// index, MKI, tag. AES-GCM (RFC 7714 §9): RTCP, tag, E and index, MKI.
struct Layout {
    /// End of the RTCP compound packet: what the clear packet is.
    body_end: usize,
    index: Range<usize>,
    mki: Range<usize>,
    tag: Range<usize>,
}

impl Layout {
    fn of(len: usize, aead: bool, tag_len: usize, mki_len: usize) -> Option<Layout> {
        let body_end = len
            .checked_sub(tag_len + INDEX_LEN + mki_len)
            .filter(|&e| e >= RTCP_HEADER)?;
        Some(if aead {
            let index = body_end + tag_len..body_end + tag_len + INDEX_LEN;
            Layout {
                body_end,
                tag: body_end..index.start,
                mki: index.end..len,
                index,
            }
        } else {
            let index = body_end..body_end + INDEX_LEN;
            Layout {
                body_end,
                mki: index.end..index.end + mki_len,
                tag: index.end + mki_len..len,
                index,
            }
        })
    }
}

/// One sender's SRTCP, receiving side: the SRTCP session keys (labels 3–5) of the master keys
/// its SRTP uses.
#[derive(Clone)]
pub struct SrtcpStream {
    keys: KeyRing,
    /// SRTCP packets decrypted and refused so far.
    pub counters: SrtpCounters,
}

impl std::fmt::Debug for SrtcpStream {
    // The session keys are secrets: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtcpStream")
            .field("suite", &self.keys.suite)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SrtcpStream {
    /// A receiver for the SRTCP of the sender whose `a=crypto` keys are `keys`.
    pub fn new(keys: &SdesKeys) -> SrtcpStream {
        SrtcpStream {
            keys: KeyRing::new(keys, SRTCP_LABELS),
            counters: SrtpCounters::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_ring(keys: KeyRing) -> SrtcpStream {
        SrtcpStream {
            keys,
            counters: SrtpCounters::default(),
        }
    }

    /// Authenticates one SRTCP packet and writes the RTCP compound packet it protects to `out`
    /// (decrypted when its E flag says it was encrypted; no index, MKI or tag), replacing what
    /// `out` held, and returns its SRTCP index. When it does not authenticate, `out` is left
    /// empty: such a packet must never be read as RTCP.
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<u32, SrtpError> {
        out.clear();
        let result = self.open(packet, out);
        if result.is_err() {
            out.clear();
        }
        self.counters.count(&result);
        result
    }

    fn open(&self, packet: &[u8], out: &mut Vec<u8>) -> Result<u32, SrtpError> {
        if packet.first().is_none_or(|b| b >> 6 != 2) {
            return Err(SrtpError::TooShort);
        }
        let suite = self.keys.suite;
        let layout = Layout::of(
            packet.len(),
            suite.is_aead(),
            suite.srtcp_tag_len(),
            self.keys.mki_len,
        )
        .ok_or(SrtpError::TooShort)?;
        let word = &packet[layout.index.clone()];
        let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        let p = Packet {
            bytes: packet,
            ssrc: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            word,
            layout: &layout,
        };
        let opened = match self.keys.get(&packet[layout.mki.clone()])? {
            SessionKeys::Cm(k) => p.open_cm(k, out),
            SessionKeys::Gcm(k) => p.open_gcm(k, out),
        };
        if !opened {
            return Err(SrtpError::Authentication);
        }
        Ok(word & !E_FLAG)
    }
}

/// One SRTCP packet taken apart.
struct Packet<'a> {
    bytes: &'a [u8],
    ssrc: u32,
    /// The E flag and SRTCP index, as sent.
    word: u32,
    layout: &'a Layout,
}

impl Packet<'_> {
    fn index(&self) -> u64 {
        u64::from(self.word & !E_FLAG)
    }

    fn encrypted(&self) -> bool {
        self.word & E_FLAG != 0
    }

    /// RFC 3711 §3.4: the HMAC covers the RTCP, E flag and index; then the part after the
    /// first header is decrypted when E says so.
    fn open_cm(&self, k: &CmKeys, out: &mut Vec<u8>) -> bool {
        let authenticated = &self.bytes[..self.layout.index.end];
        if !k.verifies(authenticated, &[], &self.bytes[self.layout.tag.clone()]) {
            return false;
        }
        out.extend_from_slice(&self.bytes[..self.layout.body_end]);
        if self.encrypted() {
            k.decrypt(self.ssrc, self.index(), &mut out[RTCP_HEADER..]);
        }
        true
    }

    /// RFC 7714 §9: encrypted, the first header and the E/index word are the associated data
    /// and the rest is ciphertext; unencrypted (§9.2 of its data types), all of the RTCP and
    /// then that word are associated data, and the tag covers no ciphertext.
    fn open_gcm(&self, k: &GcmKeys, out: &mut Vec<u8>) -> bool {
        let (rtcp, tag) = (
            &self.bytes[..self.layout.body_end],
            &self.bytes[self.layout.tag.clone()],
        );
        debug_assert_eq!(tag.len(), GCM_TAG_LEN);
        out.extend_from_slice(rtcp);
        if self.encrypted() {
            let mut aad = [0u8; RTCP_HEADER + INDEX_LEN];
            aad[..RTCP_HEADER].copy_from_slice(&rtcp[..RTCP_HEADER]);
            aad[RTCP_HEADER..].copy_from_slice(&self.word.to_be_bytes());
            k.open(self.ssrc, self.index(), &aad, &mut out[RTCP_HEADER..], tag)
        } else {
            // The associated data is contiguous once the word follows the RTCP: build it in
            // `out` (no allocation past its capacity), then drop the word.
            out.extend_from_slice(&self.word.to_be_bytes());
            let opened = k.open(self.ssrc, self.index(), out.as_slice(), &mut [], tag);
            out.truncate(rtcp.len());
            opened
        }
    }
}
