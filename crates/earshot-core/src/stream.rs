//! One RTP stream: packets of one SSRC from one address to another.

use crate::call::Party;
use earshot_rtp::{codec_impairment, mos_from_r, r_factor, StreamStats};
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

/// How a payload type resolves in a call, cached per stream (see [`Stream::pt_info`]).
#[derive(Copy, Clone, Debug)]
pub(crate) struct PtInfo {
    pub pt: u8,
    pub is_event: bool,
    pub is_cn: bool,
    /// Length of the call's format list when this was resolved: the list only grows, so an
    /// unchanged length means an unchanged answer.
    pub formats_len: u32,
    /// Index of the call's format for this payload type, if its SDP gave one.
    pub fmt: Option<u32>,
    pub clock: u32,
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
    /// The party that sent it; `None` for a stream no SDP announced.
    pub party: Option<Party>,
    pub codec: Option<String>,
    /// Packets per payload type, a few entries at most.
    pub pt_counts: Vec<(u8, u64)>,
    pub stats: StreamStats,
    pub clock_rate: u32,
    pub events: u64,
    pub comfort_noise: u64,
    /// RTP timestamp of the last telephone-event seen, so each event gives one digit.
    pub(crate) last_event: Option<u32>,
    pub key: StreamKey,
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
            pt_counts: Vec::new(),
            events: 0,
            comfort_noise: 0,
            last_event: None,
            pt_cache: None,
        }
    }

    /// Remembers which payload types were seen; the main one is the most frequent audio type.
    pub(crate) fn count_pt(&mut self, pt: u8, audio: bool) -> bool {
        // Nearly every packet: the main audio type again. Counting it cannot change the main
        // type (its count is compared with itself below), so skip the comparison.
        if audio && pt == self.payload_type && self.codec.is_some() {
            if let Some(e) = self.pt_counts.iter_mut().find(|(p, _)| *p == pt) {
                e.1 += 1;
                return false;
            }
        }
        let idx = match self.pt_counts.iter().position(|(p, _)| *p == pt) {
            Some(i) => i,
            None if self.pt_counts.len() < 8 => {
                self.pt_counts.push((pt, 0));
                self.pt_counts.len() - 1
            }
            None => return false,
        };
        self.pt_counts[idx].1 += 1;
        if !audio {
            return false;
        }
        let main = self
            .pt_counts
            .iter()
            .find(|(p, _)| *p == self.payload_type)
            .map(|e| e.1);
        let changed = self.codec.is_none() || main.is_none_or(|m| self.pt_counts[idx].1 > m);
        if changed {
            self.payload_type = pt;
        }
        changed
    }

    /// E-model MOS from the stream's loss and mean jitter (see `earshot_rtp::mos`).
    pub fn mos(&self) -> f64 {
        let codec = self.codec.as_deref().unwrap_or("");
        let r = r_factor(
            codec_impairment(codec),
            self.stats.loss_percent(),
            self.stats.mean_jitter_ms(),
        );
        mos_from_r(r)
    }
}
