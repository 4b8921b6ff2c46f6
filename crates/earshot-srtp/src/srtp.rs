//! SRTP packets (RFC 3711 §3.1, RFC 7714 §8): one stream's receiving side.

use crate::session::{CmKeys, GcmKeys, SessionKeys, SRTP_LABELS};
use crate::{SdesKeys, Suite};
use std::ops::Range;
use thiserror::Error;

/// ROC values tried for a stream's first packet: with 50 packets a second the ROC moves every
/// 21.8 minutes, so 0–15 cover a call of more than five hours. A constant bound: a forged
/// stream costs at most this many tag checks per packet until one verifies, whatever it
/// carries (AES-GCM's too: one GHASH and one block each).
pub const ROC_CANDIDATES: u32 = 16;

/// Why an SRTP or SRTCP packet gave no clear packet.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SrtpError {
    /// The packet cannot hold its header, the MKI and the tag of the suite.
    #[error("shorter than its header, MKI and authentication tag: not SRTP of this suite")]
    TooShort,
    /// The tag did not verify (for SRTP, under any of the [`ROC_CANDIDATES`] ROCs tried):
    /// refused, not decrypted.
    #[error("the authentication tag does not verify (wrong key, corrupted, or not this stream)")]
    Authentication,
    /// The packet's MKI is none of the line's keys.
    #[error("the packet's MKI names none of the a=crypto line's keys (a key the SDP never gave)")]
    UnknownMki,
}

/// What one stream's receiver has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SrtpCounters {
    /// Packets whose tag verified: authenticated and usable. Their payload was decrypted
    /// ([`SrtpStream::unprotect`]) or left encrypted because nothing would read it
    /// ([`SrtpStream::authenticate`]); either way the packet is proven the sender's.
    pub decrypted: u64,
    /// Packets refused by their tag or MKI: never decrypted, never played.
    pub auth_failures: u64,
}

impl SrtpCounters {
    /// Counts what became of one packet.
    pub(crate) fn count<T>(&mut self, result: &Result<T, SrtpError>) {
        match result {
            Ok(_) => self.decrypted += 1,
            Err(SrtpError::Authentication | SrtpError::UnknownMki) => self.auth_failures += 1,
            Err(SrtpError::TooShort) => {}
        }
    }
}

/// The master keys of one `a=crypto` line, as one direction's session keys, each with the MKI
/// that picks it (labels say whether for SRTP or SRTCP).
///
/// The first key is held inline, not in a list: a packet of a stream keyed once (no MKI, the
/// common case) then reaches its expanded AES key and keyed HMAC in the same allocation as the
/// stream, without following two more pointers. At 10,000 calls every packet belongs to a
/// stream whose state is no longer in the CPU's cache, and each pointer followed is a miss
/// (issue 16's throughput: those misses cost about as much as the MAC).
#[derive(Clone)]
pub(crate) struct KeyRing {
    pub(crate) suite: Suite,
    pub(crate) mki_len: usize,
    first_mki: Vec<u8>,
    first: SessionKeys,
    others: Vec<(Vec<u8>, SessionKeys)>,
}

impl KeyRing {
    pub(crate) fn new(sdes: &SdesKeys, labels: crate::session::Labels) -> KeyRing {
        let [first, others @ ..] = sdes.keys() else {
            unreachable!("SdesKeys::new refuses a line without keys")
        };
        KeyRing {
            suite: sdes.suite,
            mki_len: sdes.mki_len(),
            first_mki: first.mki().to_vec(),
            first: SessionKeys::derive(first, labels),
            others: others
                .iter()
                .map(|k| (k.mki().to_vec(), SessionKeys::derive(k, labels)))
                .collect(),
        }
    }

    /// One key without MKI, given as session keys (the test vectors' way).
    #[cfg(test)]
    pub(crate) fn single(suite: Suite, keys: SessionKeys) -> KeyRing {
        KeyRing {
            suite,
            mki_len: 0,
            first_mki: Vec::new(),
            first: keys,
            others: Vec::new(),
        }
    }

    /// The keys the packet's MKI names (the only ones, without MKI). At most [`MAX_KEYS`]
    /// comparisons of at most [`MAX_MKI_LEN`] bytes.
    ///
    /// [`MAX_KEYS`]: crate::MAX_KEYS
    /// [`MAX_MKI_LEN`]: crate::MAX_MKI_LEN
    pub(crate) fn get(&self, mki: &[u8]) -> Result<&SessionKeys, SrtpError> {
        if self.mki_len == 0 || self.first_mki == mki {
            return Ok(&self.first);
        }
        self.others
            .iter()
            .find(|(m, _)| m.as_slice() == mki)
            .map(|(_, k)| k)
            .ok_or(SrtpError::UnknownMki)
    }
}

/// Where the parts of an SRTP packet lie: RFC 3711's header, encrypted payload, MKI, tag;
/// AES-GCM's header, ciphertext, tag, MKI (RFC 7714 §8: the tag belongs to the ciphertext).
struct Layout {
    /// End of the header and payload: what the clear packet is.
    body_end: usize,
    mki: Range<usize>,
    tag: Range<usize>,
}

impl Layout {
    fn of(len: usize, header: usize, suite: Suite, mki_len: usize) -> Option<Layout> {
        let tag_len = suite.tag_len();
        let body_end = len
            .checked_sub(tag_len + mki_len)
            .filter(|&e| e >= header)?;
        let (first, second) = (body_end..body_end + mki_len, body_end + mki_len..len);
        Some(if suite.is_aead() {
            Layout {
                body_end,
                tag: body_end..body_end + tag_len,
                mki: body_end + tag_len..len,
            }
        } else {
            Layout {
                body_end,
                mki: first,
                tag: second,
            }
        })
    }
}

/// One SRTP stream (one SSRC of one sender), receiving side.
#[derive(Clone)]
pub struct SrtpStream {
    keys: KeyRing,
    /// The highest sequence number authenticated and its ROC; None before the first.
    highest: Option<(u16, u32)>,
    /// SRTP packets decrypted and refused so far.
    pub counters: SrtpCounters,
}

impl std::fmt::Debug for SrtpStream {
    // The session keys are secrets: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpStream")
            .field("suite", &self.keys.suite)
            .field("roc", &self.roc())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SrtpStream {
    /// The receiver of a stream its sender protects with one of `keys` (the packet's MKI says
    /// which, when the line has several).
    pub fn new(keys: &SdesKeys) -> SrtpStream {
        SrtpStream {
            keys: KeyRing::new(keys, SRTP_LABELS),
            highest: None,
            counters: SrtpCounters::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_ring(keys: KeyRing) -> SrtpStream {
        SrtpStream {
            keys,
            highest: None,
            counters: SrtpCounters::default(),
        }
    }

    /// The ROC of the highest packet so far (None before one authenticated).
    pub fn roc(&self) -> Option<u32> {
        self.highest.map(|(_, roc)| roc)
    }

    /// Authenticates one SRTP packet and writes the RTP packet it protects (header, then the
    /// clear payload; no MKI, no tag) to `out`, replacing what `out` held. When it does not
    /// authenticate, `out` is left empty: nothing of it is ever decrypted.
    pub fn unprotect(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        out.clear();
        let result = self.open(packet, out);
        if result.is_err() {
            out.clear();
        }
        self.counters.count(&result);
        result
    }

    /// Authenticates one SRTP packet exactly as [`SrtpStream::unprotect`] does — the same tag
    /// check (for the first packet the same bounded ROC search, confirmed by the tag), the
    /// same ROC state and counters — without decrypting its payload where the suite allows
    /// it: with the HMAC-SHA1 suites no keystream is run and nothing is copied. A sensor that
    /// only measures a call (loss, jitter and MOS come from the RTP header, clear in SRTP)
    /// needs no more, and the keystream and the copy are most of what decryption adds after
    /// the MAC.
    ///
    /// AES-GCM authenticates its ciphertext only as it decrypts it (the `aes-gcm` crate has
    /// no verify-only call), so with the GCM suites this is `unprotect` into `scratch`. With
    /// the others `scratch` is left empty; what it holds afterwards is not to be read.
    pub fn authenticate(&mut self, packet: &[u8], scratch: &mut Vec<u8>) -> Result<(), SrtpError> {
        scratch.clear();
        let result = self.open_with(packet, scratch, false);
        if result.is_err() {
            scratch.clear();
        }
        self.counters.count(&result);
        result
    }

    fn open(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.open_with(packet, out, true)
    }

    /// `decrypt`: whether a counter-mode payload is decrypted into `out` once the tag
    /// verified (AES-GCM always decrypts: it verifies that way).
    fn open_with(
        &mut self,
        packet: &[u8],
        out: &mut Vec<u8>,
        decrypt: bool,
    ) -> Result<(), SrtpError> {
        let header = header_len(packet).ok_or(SrtpError::TooShort)?;
        let layout = Layout::of(packet.len(), header, self.keys.suite, self.keys.mki_len)
            .ok_or(SrtpError::TooShort)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let candidates = roc_candidates(self.highest, seq);
        let p = Packet {
            bytes: packet,
            header,
            ssrc,
            seq,
            layout: &layout,
        };
        let roc = match self.keys.get(&packet[layout.mki.clone()])? {
            SessionKeys::Cm(k) => p.open_cm(k, candidates, decrypt.then_some(out)),
            SessionKeys::Gcm(k) => p.open_gcm(k, candidates, out),
        };
        let roc = roc.ok_or(SrtpError::Authentication)?;
        self.accept(seq, roc);
        Ok(())
    }

    fn accept(&mut self, seq: u16, roc: u32) {
        let index = packet_index(roc, seq);
        let newer = self.highest.is_none_or(|(s, r)| index > packet_index(r, s));
        if newer {
            self.highest = Some((seq, roc));
        }
    }
}

/// One SRTP packet taken apart.
struct Packet<'a> {
    bytes: &'a [u8],
    header: usize,
    ssrc: u32,
    seq: u16,
    layout: &'a Layout,
}

impl Packet<'_> {
    /// RFC 3711: the first ROC whose HMAC over header, payload and ROC is the tag; then the
    /// payload decrypted into `out`, when given (else the packet is only authenticated).
    fn open_cm(
        &self,
        k: &CmKeys,
        mut rocs: impl Iterator<Item = u32>,
        out: Option<&mut Vec<u8>>,
    ) -> Option<u32> {
        let authenticated = &self.bytes[..self.layout.body_end];
        let tag = &self.bytes[self.layout.tag.clone()];
        let roc = rocs.find(|r| k.verifies(authenticated, &r.to_be_bytes(), tag))?;
        let Some(out) = out else {
            return Some(roc);
        };
        out.extend_from_slice(authenticated);
        k.decrypt(
            self.ssrc,
            packet_index(roc, self.seq),
            &mut out[self.header..],
        );
        Some(roc)
    }

    /// RFC 7714 §8: the first ROC whose IV makes AES-GCM verify the header (associated data)
    /// and ciphertext against the tag, decrypting into `out` as it does.
    fn open_gcm(
        &self,
        k: &GcmKeys,
        mut rocs: impl Iterator<Item = u32>,
        out: &mut Vec<u8>,
    ) -> Option<u32> {
        let (aad, ciphertext) = self.bytes[..self.layout.body_end].split_at(self.header);
        let tag = &self.bytes[self.layout.tag.clone()];
        out.extend_from_slice(aad);
        out.extend_from_slice(ciphertext);
        let data = &mut out[self.header..];
        let mut tried = false;
        rocs.find(|&r| {
            // A failed try may have left anything there.
            if std::mem::replace(&mut tried, true) {
                data.copy_from_slice(ciphertext);
            }
            k.open(self.ssrc, packet_index(r, self.seq), aad, data, tag)
        })
    }
}

/// The 48-bit packet index (RFC 3711 §3.3.1).
fn packet_index(roc: u32, seq: u16) -> u64 {
    (u64::from(roc) << 16) | u64::from(seq)
}

/// The ROCs to try for `seq`: RFC 3711's estimate once the stream is known (and its
/// neighbours, for reordering near a wrap); for the first packet, a bounded search.
fn roc_candidates(highest: Option<(u16, u32)>, seq: u16) -> impl Iterator<Item = u32> {
    let known = highest.map(|(s_l, roc)| estimate(s_l, roc, seq));
    let search = if known.is_some() {
        0..0
    } else {
        0..ROC_CANDIDATES
    };
    known.into_iter().flatten().flatten().chain(search)
}

/// RFC 3711 Appendix A: the ROC of `seq` given the highest sequence number `s_l` seen with
/// ROC `roc` — the estimate first, then its neighbours (a packet reordered across a wrap).
pub(crate) fn estimate(s_l: u16, roc: u32, seq: u16) -> [Option<u32>; 3] {
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
pub(crate) fn header_len(p: &[u8]) -> Option<usize> {
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
