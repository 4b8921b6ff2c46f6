//! Per-call rewind: the last seconds of each call's RTP, kept as packets (not audio), so a
//! listener who joins late can start from the beginning of the call or N seconds ago. Packets
//! are far smaller than decoded audio and only the listeners who ask pay for decoding.

use earshot_core::{CallId, Party, PayloadFormat, RtpPacket};
use earshot_wire::Timestamp;
use std::collections::{HashMap, VecDeque};

/// A packet kept for rewind, owning its payload.
#[derive(Clone, Debug)]
pub struct KeptPacket {
    pub party: Party,
    pub ts: Timestamp,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    pub event: bool,
    pub payload: Vec<u8>,
    pub format: Option<PayloadFormat>,
}

impl KeptPacket {
    pub fn from_rtp(p: &RtpPacket<'_>) -> Self {
        KeptPacket {
            party: p.party,
            ts: p.ts,
            ssrc: p.ssrc,
            seq: p.seq,
            timestamp: p.timestamp,
            payload_type: p.payload_type,
            marker: p.marker,
            event: p.event,
            payload: p.payload.to_vec(),
            format: p.format.cloned(),
        }
    }

    pub fn as_rtp(&self, call: CallId) -> RtpPacket<'_> {
        RtpPacket {
            call,
            party: self.party,
            ts: self.ts,
            ssrc: self.ssrc,
            seq: self.seq,
            timestamp: self.timestamp,
            payload_type: self.payload_type,
            marker: self.marker,
            payload: &self.payload,
            format: self.format.as_ref(),
            event: self.event,
        }
    }
}

/// Rewind buffers of all calls, bounded by age per call and by bytes overall.
pub struct Rewind {
    keep_ns: i64,
    budget: usize,
    used: usize,
    calls: HashMap<CallId, VecDeque<KeptPacket>>,
}

impl Rewind {
    pub fn new(keep_ns: i64, budget_bytes: usize) -> Self {
        Rewind {
            keep_ns,
            budget: budget_bytes,
            used: 0,
            calls: HashMap::new(),
        }
    }

    pub fn push(&mut self, p: &RtpPacket<'_>) {
        if self.keep_ns <= 0 {
            return;
        }
        let size = p.payload.len() + std::mem::size_of::<KeptPacket>();
        let keep_ns = self.keep_ns;
        let buf = self.calls.entry(p.call).or_default();
        // Age out this call's old packets; over budget, the call gives up its oldest packet
        // for each new one, so a full budget stops growth without starving new calls.
        let mut freed = 0;
        while let Some(front) = buf.front() {
            let too_old = p.ts.nanos() - front.ts.nanos() > keep_ns;
            if !too_old && self.used - freed + size <= self.budget {
                break;
            }
            freed += front.payload.len() + std::mem::size_of::<KeptPacket>();
            buf.pop_front();
        }
        self.used -= freed;
        if self.used + size > self.budget {
            return;
        }
        self.used += size;
        buf.push_back(KeptPacket::from_rtp(p));
    }

    /// The kept packets of a call captured at or after `since`.
    pub fn since(&self, call: CallId, since: Timestamp) -> impl Iterator<Item = &KeptPacket> {
        self.calls
            .get(&call)
            .into_iter()
            .flatten()
            .filter(move |p| p.ts >= since)
    }

    pub fn forget(&mut self, call: CallId) {
        if let Some(buf) = self.calls.remove(&call) {
            self.used -= buf
                .iter()
                .map(|p| p.payload.len() + std::mem::size_of::<KeptPacket>())
                .sum::<usize>();
        }
    }

    pub fn bytes(&self) -> usize {
        self.used
    }
}
