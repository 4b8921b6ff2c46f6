//! One RTP stream: packets of one SSRC from one address to another.

use crate::call::Party;
use earshot_rtp::{codec_impairment, known_impairment, mos_from_r, r_factor, StreamStats};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

/// What identifies a stream on the wire, as tshark does: addresses, ports and SSRC.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
}

/// Every RTP packet hashes its key to find its stream. For the usual IPv4 flow the whole key
/// fits in 128 bits and goes to the hasher as two words, several times cheaper than the
/// derived field-by-field hash (enum tags, byte-array lengths, ports and SSRC one by one).
/// Keys equal under the derived `Eq` take the same branch with the same words, so the impl
/// stays consistent with it.
impl Hash for StreamKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match (self.src, self.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                h.write_u64(u64::from(s.ip().to_bits()) << 32 | u64::from(d.ip().to_bits()));
                h.write_u64(
                    u64::from(s.port()) << 48 | u64::from(d.port()) << 32 | u64::from(self.ssrc),
                );
            }
            _ => {
                self.src.hash(h);
                self.dst.hash(h);
                self.ssrc.hash(h);
            }
        }
    }
}

/// Whether a payload format is video: every RTP video format runs a 90 kHz clock (RFC 3551
/// §5, and each video payload RFC since), and of the audio ones only MPEG audio (MPA) does.
pub fn is_video_format(encoding: &str, clock_rate: u32) -> bool {
    clock_rate == 90_000 && !encoding.eq_ignore_ascii_case("MPA")
}

pub use earshot_rtp::QualityUnknown;

/// How a payload type resolves in a call, cached per stream (see [`Stream::pt_info`]).
#[derive(Copy, Clone, Debug)]
pub(crate) struct PtInfo {
    pub pt: u8,
    pub is_event: bool,
    pub is_cn: bool,
    /// A video format: measured, never handed to a sink (no audio decoder may see it).
    pub is_video: bool,
    /// Length of the call's format list when this was resolved: the list only grows, so an
    /// unchanged length means an unchanged answer.
    pub formats_len: u32,
    /// Index of the call's format for this payload type, if its SDP gave one.
    pub fmt: Option<u32>,
    pub clock: u32,
    /// SRTP: the format's m-line was secure, or (a type no SDP named) the call has SRTP media.
    pub encrypted: bool,
}

/// `repr(C)` keeps the declared order: the fields every RTP packet touches come first, and
/// 64-byte alignment starts each stream on a cache line, so a packet reads the first four
/// lines of its stream instead of fields scattered over six (with thousands of streams these
/// reads are mostly cache misses, the largest cost per packet).
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct Stream {
    /// The last payload type's resolution: consecutive packets nearly always share it.
    pub(crate) pt_cache: Option<PtInfo>,
    /// The payload type carrying most packets, telephone-event and comfort noise aside.
    pub payload_type: u8,
    /// The payload type of the latest audio packet (telephone-event and comfort noise aside):
    /// what the stream carries now, after any re-INVITE, where `payload_type` is the type of
    /// most packets. Every packet reads it, so it sits with the fields up here.
    pub current_pt: Option<u8>,
    /// The party that sent it; `None` for a stream no SDP announced.
    pub party: Option<Party>,
    pub codec: Option<String>,
    /// Packets per payload type.
    pub pt_counts: PtCounts,
    pub stats: StreamStats,
    pub clock_rate: u32,
    pub events: u64,
    pub comfort_noise: u64,
    /// RTP timestamp of the last telephone-event seen, so each event gives one digit.
    pub(crate) last_event: Option<u32>,
    /// The encoding name of `current_pt`; empty when unknown. Rewritten in place when the type
    /// changes, so a stream that flips between types never allocates per packet.
    pub(crate) current_name: String,
    /// Times the audio payload type changed after the first packet.
    pub codec_changes: u32,
    pub key: StreamKey,
    /// SRTP receiving state, once the sender's key (its SDP's `a=crypto`) is known: cold, so
    /// last, and boxed (most streams are clear).
    pub srtp: Option<Box<earshot_srtp::SrtpStream>>,
    /// Where `srtp`'s key came from; meaningful only while `srtp` is `Some` (both are set
    /// together).
    pub srtp_source: Option<KeySource>,
    /// SRTCP receiving state of the stream's sender (its SRTCP session keys, derived from the
    /// same master key), made on its first SRTCP packet: cold and boxed like `srtp`.
    pub srtcp: Option<Box<earshot_srtp::SrtcpStream>>,
    /// Per-second points and the far end's RTCP view (see `quality.rs`): cold, boxed.
    pub(crate) quality: Option<Box<crate::quality::StreamQuality>>,
}

/// Where a stream's SRTP master key came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The sender's `a=crypto` in the call's SDP (RFC 4568).
    Sdes,
    /// The DTLS-SRTP handshake on the stream's addresses, with a key log's master secret.
    Dtls,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Sdes => "sdes",
            KeySource::Dtls => "dtls",
        }
    }
}

impl Stream {
    pub fn new(key: StreamKey, party: Option<Party>) -> Self {
        Stream {
            key,
            party,
            payload_type: 0,
            codec: None,
            clock_rate: 0,
            stats: StreamStats::default(),
            pt_counts: PtCounts::default(),
            events: 0,
            comfort_noise: 0,
            last_event: None,
            pt_cache: None,
            current_pt: None,
            current_name: String::new(),
            codec_changes: 0,
            srtp: None,
            srtp_source: None,
            srtcp: None,
            quality: None,
        }
    }

    /// The codec the stream carries now (see [`Stream::current_pt`]), else its main one.
    pub fn current_codec(&self) -> Option<&str> {
        if self.current_name.is_empty() {
            self.codec.as_deref()
        } else {
            Some(&self.current_name)
        }
    }

    /// Remembers which payload types were seen; the main one is the most frequent audio type.
    pub(crate) fn count_pt(&mut self, pt: u8, audio: bool) -> bool {
        let Some(count) = self.pt_counts.bump(pt) else {
            return false;
        };
        // Nearly every packet: the main audio type again, which cannot change the main type.
        if !audio || (pt == self.payload_type && self.codec.is_some()) {
            return false;
        }
        let main = self.pt_counts.get(self.payload_type);
        let changed = self.codec.is_none() || main.is_none_or(|m| count > m);
        if changed {
            self.payload_type = pt;
        }
        changed
    }

    /// The payload type to show for the stream: its main audio type, or, for a stream that
    /// carried no audio (telephone-events alone), the first type it carried.
    pub fn shown_payload_type(&self) -> u8 {
        if self.pt_counts.get(self.payload_type).is_some() {
            return self.payload_type;
        }
        self.pt_counts
            .iter()
            .next()
            .map_or(self.payload_type, |(pt, _)| pt)
    }

    /// A video stream (H.264, H.263, VP8...): counted and measured, never decoded.
    pub fn is_video(&self) -> bool {
        self.codec
            .as_deref()
            .is_some_and(|c| is_video_format(c, self.clock_rate))
    }

    /// True when the stream's jitter was measured: some audio packet had a known clock rate.
    /// A dynamic payload type no SDP described, or a stream of telephone-events alone, has
    /// no clock to measure arrival against, and its jitter is unknown rather than zero.
    pub fn jitter_known(&self) -> bool {
        self.stats.clock_rate() > 0
    }

    /// [`Stream::mos`] where it means something: `None` when [`Stream::quality_unknown`] has
    /// a reason, since a score there would claim a quality never measured.
    pub fn mos_if_known(&self) -> Option<f64> {
        self.quality_unknown().is_none().then(|| self.mos())
    }

    /// SRTP that earshot cannot read: the payload type the stream carries now came from an
    /// SRTP m-line (`RTP/SAVP`...) and no key decrypts it, so its payloads are ciphertext and
    /// never decoded as audio. Loss, jitter and MOS are still measured: the RTP header is
    /// clear in SRTP.
    pub fn is_encrypted(&self) -> bool {
        self.is_srtp() && !self.is_decrypted()
    }

    /// SRTP, decrypted or not.
    pub fn is_srtp(&self) -> bool {
        self.pt_cache.is_some_and(|c| c.encrypted)
    }

    /// SRTP whose packets earshot decrypts (the key was in the call's SDP and the packets
    /// authenticate with it).
    pub fn is_decrypted(&self) -> bool {
        self.srtp.as_ref().is_some_and(|s| s.counters.decrypted > 0)
    }

    /// Why the stream has no MOS, or `None` when it has one. In the order a person would want
    /// to be told: video is never scored; a stream of telephone-events (or comfort noise)
    /// alone has no voice to score; without a clock rate (a dynamic payload type no SDP
    /// described) jitter cannot be measured; a codec whose impairment depends on its mode (AMR)
    /// is not scored; and a codec earshot cannot decode has no E-model impairment it knows (see
    /// `earshot_rtp::known_impairment`).
    pub fn quality_unknown(&self) -> Option<QualityUnknown> {
        if self.is_video() {
            return Some(QualityUnknown::Video);
        }
        if self.pt_counts.get(self.payload_type).is_none() {
            return Some(QualityUnknown::EventsOnly);
        }
        if !self.jitter_known() {
            return Some(QualityUnknown::ClockUnknown);
        }
        let codec = self.current_codec().unwrap_or("");
        if earshot_rtp::mode_dependent(codec) {
            return Some(QualityUnknown::ModeDependent);
        }
        if known_impairment(codec).is_none() {
            return Some(QualityUnknown::Undecodable);
        }
        None
    }

    /// E-model MOS from the stream's loss and mean jitter (see `earshot_rtp::mos`), for the
    /// codec it carries now: after a re-INVITE from G.711 to G.729 the impairment is G.729's.
    pub fn mos(&self) -> f64 {
        let codec = self.current_codec().unwrap_or("");
        let r = r_factor(
            codec_impairment(codec),
            self.stats.loss_percent(),
            self.stats.mean_jitter_ms(),
        );
        mos_from_r(r)
    }
}

/// Packets per payload type, for the first [`PtCounts::MAX`] types a stream carries.
///
/// Inline rather than a `Vec`: every packet bumps a count, and a heap list was one more cache
/// miss per packet with thousands of streams.
#[derive(Clone, Debug, Default)]
pub struct PtCounts {
    len: u8,
    pts: [u8; PtCounts::MAX],
    counts: [u64; PtCounts::MAX],
}

impl PtCounts {
    pub const MAX: usize = 8;

    /// The count of `pt` after adding one; `None` when the table is full of other types.
    fn bump(&mut self, pt: u8) -> Option<u64> {
        let len = usize::from(self.len);
        let i = match self.pts.iter().take(len).position(|&p| p == pt) {
            Some(i) => i,
            None if len < Self::MAX => {
                self.len += 1;
                self.pts[len] = pt;
                len
            }
            None => return None,
        };
        self.counts[i] += 1;
        Some(self.counts[i])
    }

    pub fn get(&self, pt: u8) -> Option<u64> {
        self.iter().find(|&(p, _)| p == pt).map(|(_, n)| n)
    }

    /// (payload type, packets), in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        self.pts
            .iter()
            .zip(&self.counts)
            .take(usize::from(self.len))
            .map(|(&p, &n)| (p, n))
    }
}
