//! A call: one INVITE dialog, as seen from its SIP messages.

use crate::stream::Stream;
use earshot_wire::Timestamp;
use std::net::SocketAddr;

/// The engine's own key of a call: sequential, never reused within one engine. Not the SIP
/// Call-ID ([`Call::call_id`], which several calls may share across forks and legs) nor the
/// Manager API's call reference (`earshot_manager::CallRef`, what clients are given).
pub type CallKey = u64;

pub use earshot_rtp::Party;
pub use earshot_sip::CallState;

/// One media line of an SDP: where `party` wants to receive RTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaEndpoint {
    pub party: Party,
    pub addr: SocketAddr,
    /// RTCP address: the `a=rtcp` attribute, the RTP address itself with rtcp-mux, else port+1.
    pub rtcp: SocketAddr,
}

/// A payload type as the call's SDP defined it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadFormat {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u8,
    /// Offered in an SRTP m-line (`RTP/SAVP`, `RTP/SAVPF`, DTLS-SRTP's `UDP/TLS/RTP/SAVPF`):
    /// the payloads are ciphertext, never audio to decode without the key.
    pub encrypted: bool,
    /// The SDP's `a=fmtp` parameters for the type, if any (at most [`MAX_FMTP`] bytes): how the
    /// codec is carried, e.g. AMR's `octet-align=1`.
    pub fmtp: Option<Box<str>>,
}

/// The longest `a=fmtp` value kept; real ones are a few dozen bytes.
pub const MAX_FMTP: usize = 256;

/// An m-line's fmtp for `pt`, if it is short enough to keep.
pub fn kept_fmtp(m: &earshot_sip::sdp::Media<'_>, pt: u8) -> Option<Box<str>> {
    m.fmtp(pt).filter(|v| v.len() <= MAX_FMTP).map(Box::from)
}

impl PayloadFormat {
    /// The format a static payload type stands for (RFC 3551), as an SDP listing it without
    /// an rtpmap means it.
    pub fn from_static(pt: u8) -> Option<Self> {
        earshot_sip::sdp::static_payload(pt).map(|(enc, rate, ch)| PayloadFormat {
            pt,
            encoding: enc.to_owned(),
            clock_rate: rate,
            channels: ch,
            encrypted: false,
            fmtp: None,
        })
    }
}

/// One SIP message of a call, as captured (cut to `Config::sip_log_bytes`).
#[derive(Clone, Debug)]
pub struct SipRecord {
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub text: String,
    /// True when the message was longer than the kept text.
    pub truncated: bool,
}

impl SipRecord {
    /// What the record costs in memory, as the SIP log budgets count it: the record itself
    /// and its text (a log vector with no spare capacity holds exactly the sum of these).
    pub fn cost(&self) -> usize {
        std::mem::size_of::<SipRecord>() + self.text.len()
    }
}

/// How much SIP text the engine keeps (see `Config::sip_log_*`).
#[derive(Copy, Clone, Debug)]
pub(crate) struct SipLogLimits {
    pub messages: usize,
    pub message_bytes: usize,
    pub call_bytes: usize,
    pub total_bytes: usize,
}

impl SipLogLimits {
    pub fn from_config(cfg: &crate::engine::Config) -> Self {
        SipLogLimits {
            messages: cfg.sip_log_messages,
            message_bytes: cfg.sip_log_bytes,
            call_bytes: cfg.sip_log_call_bytes,
            total_bytes: cfg.sip_log_total_bytes,
        }
    }
}

/// Where a logged message came from.
#[derive(Copy, Clone, Debug)]
pub(crate) struct SipOrigin {
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// `repr(C)` keeps the declared order: the fields every RTP packet of the call reads come
/// first, next to the table key, so a packet touches one or two cache lines of its call
/// rather than three scattered over its ~650 bytes.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Call {
    pub id: CallKey,
    /// Per party (caller, called): the SDES keys of its latest SDP's SRTP audio, the keys it
    /// sends with: one entry per `a=crypto` line (its tag, suite and key, or keys the packets'
    /// MKI chooses between). At most `earshot_sip::sdp::MAX_CRYPTO` lines.
    pub sdes: [Vec<earshot_srtp::SdesKeys>; 2],
    pub last_packet: Timestamp,
    pub streams: Vec<Stream>,
    pub formats: Vec<PayloadFormat>,
    pub sip_call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    /// User parts of From and To (the numbers, in telephony).
    pub caller: String,
    pub called: String,
    pub caller_name: Option<String>,
    pub called_name: Option<String>,
    pub caller_domain: Option<String>,
    pub called_domain: Option<String>,
    /// The From and To URIs as written.
    pub from_uri: String,
    pub to_uri: String,
    pub caller_agent: Option<String>,
    pub called_agent: Option<String>,
    /// Signalling addresses: where the INVITE came from and went to.
    pub caller_sip: SocketAddr,
    pub called_sip: SocketAddr,
    pub vlan: Option<u16>,
    pub state: CallState,
    /// The final (or latest) response code to the INVITE.
    pub sip_code: Option<u16>,
    pub last_sip_code: Option<u16>,
    /// Reason header or reason phrase of the final response.
    pub reason: Option<String>,
    pub start: Timestamp,
    pub ring: Option<Timestamp>,
    pub answer: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub last_sip: Timestamp,
    /// Ended by silence rather than by signalling.
    pub timed_out: bool,
    pub cancel_seen: bool,
    /// True while either party's latest SDP holds the call (RFC 3264: `sendonly` or
    /// `inactive` audio, or the RFC 2543 `c=0.0.0.0`), as of the last completed offer/answer.
    pub on_hold: bool,
    /// The party whose SDP put the call on hold; `None` when it is not on hold.
    pub held_by: Option<Party>,
    /// Re-INVITEs answered with a 2xx.
    pub reinvites: u32,
    /// DTMF digits from RFC 4733 events and SIP INFO, in order.
    pub dtmf: String,
    pub media: Vec<MediaEndpoint>,
    pub sip_messages: u32,
    /// The first `Config::sip_log_messages` SIP messages of the call, in capture order.
    pub sip_log: Vec<SipRecord>,
    pub rtcp_packets: u64,
    pub(crate) invite_cseq: u32,
    /// Whether each party's latest SDP (caller, called) holds the call: kept per party so an
    /// answer's `recvonly` does not clear the offer's `sendonly`.
    pub(crate) holding: [bool; 2],
    /// The first audio codec of the latest answer to an INVITE, to tell a re-INVITE that
    /// changed the codec from one that did not.
    pub(crate) answer_codec: Option<String>,
    /// CSeq of each party's last re-INVITE whose 2xx was reported (retransmissions are not
    /// new); each party numbers its own requests.
    pub(crate) reinvite_cseq: [Option<u32>; 2],
    /// Every media address ever bound to this call (see `media.rs`), for removal.
    pub(crate) bound: Vec<std::net::SocketAddr>,
    /// The DTLS-SRTP handshakes seen on the call's media addresses, one per address pair (at
    /// most `media::MAX_DTLS`); empty for calls without DTLS.
    pub(crate) dtls: Vec<DtlsLeg>,
    /// The group of correlated legs (A-leg and B-legs through a B2BUA) the call belongs to;
    /// `None` for a call no other leg was found for (see `correlation.rs`).
    pub group: Option<Box<crate::correlation::CallGroup>>,
    /// The call's entries in the engine's correlation index, taken out when it leaves.
    pub(crate) corr_keys: Vec<crate::correlation::IndexKey>,
}

/// One DTLS association of a call: the two addresses it runs between, and its observer.
#[derive(Clone, Debug)]
pub(crate) struct DtlsLeg {
    pub ends: [SocketAddr; 2],
    pub observer: earshot_dtls::DtlsObserver,
}

impl DtlsLeg {
    /// True when a packet from `src` to `dst` travels this association, either way.
    pub fn carries(&self, src: SocketAddr, dst: SocketAddr) -> bool {
        self.ends == [src, dst] || self.ends == [dst, src]
    }
}

impl Call {
    /// The key `sender` protects its SRTP with: its SDES line whose tag the other party's
    /// single line accepted (RFC 4568 §7.1: the answer keeps the tag of the offer it takes),
    /// else its first.
    pub fn srtp_key(&self, sender: Party) -> Option<&earshot_srtp::SdesKeys> {
        let slot = |p: Party| usize::from(p == Party::Called);
        let mine = &self.sdes[slot(sender)];
        let accepted = match self.sdes[slot(sender.other())].as_slice() {
            [theirs] => mine.iter().find(|k| k.tag == theirs.tag),
            _ => None,
        };
        accepted.or(mine.first())
    }

    /// Encoding names of the audio actually seen on the call's streams, in first-seen order
    /// (a re-INVITE from PCMU to PCMA lists both); falls back to the negotiated formats when
    /// no RTP was seen.
    pub fn codecs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        // Audio codecs only: video streams are listed as such, not as the call's codec.
        for s in self.streams.iter().filter(|s| !s.is_video()) {
            let seen = s.pt_counts.iter().filter_map(|(pt, _)| self.codec_name(pt));
            for c in s.codec.as_deref().into_iter().chain(seen) {
                if is_audio_codec(c) && !out.iter().any(|o| o.eq_ignore_ascii_case(c)) {
                    out.push(c.to_string());
                }
            }
        }
        if out.is_empty() {
            for f in &self.formats {
                let e = &f.encoding;
                if is_audio_codec(e)
                    && !crate::stream::is_video_format(e, f.clock_rate)
                    && !out.iter().any(|o| o.eq_ignore_ascii_case(e))
                {
                    out.push(e.clone());
                }
            }
            out.truncate(1);
        }
        out
    }

    /// The encoding name of a payload type in this call: its SDP first, then RFC 3551.
    pub fn codec_name(&self, pt: u8) -> Option<&str> {
        match self.format(pt) {
            Some(f) => Some(f.encoding.as_str()),
            None => earshot_sip::sdp::static_payload(pt).map(|(e, _, _)| e),
        }
    }

    /// The codec a party sends now: the current codec of its most recently active stream.
    pub fn current_codec(&self, party: Party) -> Option<&str> {
        self.party_streams(party)
            .max_by_key(|s| s.stats.last_seen_ns)
            .and_then(Stream::current_codec)
    }

    pub fn format(&self, pt: u8) -> Option<&PayloadFormat> {
        self.formats.iter().rev().find(|f| f.pt == pt)
    }

    /// Seconds from start to end (or to the last packet while the call is up).
    pub fn duration_ns(&self) -> i64 {
        let end = self.end.unwrap_or(self.last_packet);
        (end.nanos() - self.start.nanos()).max(0)
    }

    pub fn party_streams(&self, party: Party) -> impl Iterator<Item = &Stream> {
        self.streams.iter().filter(move |s| s.party == Some(party))
    }

    /// Bytes the call's SIP log holds, as counted against `Config::sip_log_call_bytes`.
    pub fn sip_log_bytes(&self) -> usize {
        self.sip_log.iter().map(SipRecord::cost).sum()
    }

    /// Keeps a SIP message in the call's log as far as the limits allow: `total_used` is what
    /// every call's log holds now. Returns the bytes taken, `None` when nothing was kept.
    ///
    /// The text is cut to fit the message, call and total budgets, whichever is smallest,
    /// after invalid UTF-8 was replaced (a replacement character is three bytes for one), so
    /// no message, however long or malformed, takes more than its share.
    pub(crate) fn log_sip(
        &mut self,
        limits: &SipLogLimits,
        total_used: usize,
        origin: SipOrigin,
        raw: &[u8],
    ) -> Option<usize> {
        if self.sip_log.len() >= limits.messages {
            return None;
        }
        let record = std::mem::size_of::<SipRecord>();
        let call_left = limits.call_bytes.saturating_sub(self.sip_log_bytes());
        let total_left = limits.total_bytes.saturating_sub(total_used);
        let room = call_left
            .min(total_left)
            .checked_sub(record)?
            .min(limits.message_bytes);
        if room == 0 && !raw.is_empty() {
            return None;
        }
        let cut = raw.len().min(room);
        let mut text = String::from_utf8_lossy(&raw[..cut]).into_owned();
        let mut truncated = cut < raw.len();
        if text.len() > room {
            // A char is at most four bytes: this steps back three times at most.
            let mut end = room;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            truncated = true;
        }
        text.shrink_to_fit();
        let kept = SipRecord {
            ts: origin.ts,
            src: origin.src,
            dst: origin.dst,
            text,
            truncated,
        };
        let cost = kept.cost();
        // Exact growth: a log's memory is the sum of its records' costs, nothing spare.
        self.sip_log.reserve_exact(1);
        self.sip_log.push(kept);
        Some(cost)
    }
}

/// Appends to one of a call's small lists (formats, media endpoints, bound addresses) growing it
/// by exactly one: each is capped at a few entries, and Vec's own first step (room for four)
/// left most of a call's lists half empty, a few hundred bytes a call at 100,000 calls.
pub(crate) fn push_exact<T>(list: &mut Vec<T>, item: T) {
    list.reserve_exact(1);
    list.push(item);
}

/// Not telephone-event or comfort noise: a codec that carries the call's audio.
fn is_audio_codec(e: &str) -> bool {
    !e.eq_ignore_ascii_case("telephone-event") && !e.eq_ignore_ascii_case("CN")
}
