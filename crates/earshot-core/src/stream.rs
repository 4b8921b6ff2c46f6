//! One RTP stream: packets of one SSRC from one address to another.

use crate::call::Party;
use earshot_rtp::{codec_impairment, mos_from_r, r_factor, StreamStats};
use std::net::SocketAddr;

/// What identifies a stream on the wire, as tshark does: addresses, ports and SSRC.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
}

#[derive(Clone, Debug)]
pub struct Stream {
    pub key: StreamKey,
    /// The party that sent it; `None` for a stream no SDP announced.
    pub party: Option<Party>,
    /// The payload type carrying most packets, telephone-event and comfort noise aside.
    pub payload_type: u8,
    pub codec: Option<String>,
    pub clock_rate: u32,
    pub stats: StreamStats,
    /// Packets per payload type, a few entries at most.
    pub pt_counts: Vec<(u8, u64)>,
    pub events: u64,
    pub comfort_noise: u64,
    /// RTP timestamp of the last telephone-event seen, so each event gives one digit.
    pub(crate) last_event: Option<u32>,
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
        }
    }

    /// Remembers which payload types were seen; the main one is the most frequent audio type.
    pub(crate) fn count_pt(&mut self, pt: u8, audio: bool) -> bool {
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
