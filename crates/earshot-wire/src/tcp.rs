//! TCP stream reassembly: segments in any order in, in-order bytes out, bounded memory.
//!
//! Sans-IO: feed segments in capture order with [`TcpReassembler::segment`] (or
//! [`TcpReassembler::packet`]); contiguous bytes come out through a callback as
//! [`StreamEvent`]s. Positions are tracked as 64-bit offsets from the first sequence number
//! seen, so sequence wrap-around at 2^32 is invisible past the entry point.
//!
//! Limits (see [`TcpConfig`]):
//! - at most `max_flows` flows (one direction each); when full, the least recently active
//!   eighth is evicted at once, so eviction costs O(1) amortised per new flow;
//! - at most `max_buffered_per_flow` out-of-order bytes per flow and `max_buffered_total`
//!   across flows; beyond either, or when the oldest buffered segment has waited
//!   `gap_timeout_ns`, the missing bytes are given up: a [`StreamEvent::Gap`] tells how many
//!   were skipped, and delivery resumes at the next buffered segment;
//! - flows idle for `idle_timeout_ns` are dropped by [`TcpReassembler::expire`].
//!
//! Known simplifications: a capture that starts mid-stream begins at the first segment seen,
//! so an earlier segment that arrives after it is treated as a retransmission; and a flow is
//! forgotten at FIN/RST, so a retransmission after that starts a new flow.

use crate::decap::{Packet, Transport};
use crate::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// One direction of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The sender's address and port.
    pub src: SocketAddr,
    /// The receiver's address and port.
    pub dst: SocketAddr,
}

/// The TCP header flags reassembly acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    /// SYN: the stream's first byte is the one after this segment's sequence number.
    pub syn: bool,
    /// FIN: the sender's stream ends after this segment's payload.
    pub fin: bool,
    /// RST: the connection is gone; the flow is forgotten at once.
    pub rst: bool,
}

/// Why a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The sender's FIN, once every byte before it was delivered.
    Fin,
    /// A RST segment.
    Rst,
    /// Idle longer than the timeout.
    Expired,
    /// Pushed out to make room for a new flow.
    Evicted,
    /// A SYN with a new sequence number reused the addresses.
    Restarted,
}

/// What reassembly hands on, in stream order per flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// In-order bytes; `ts` is the capture time of the segment that carried them.
    Data {
        /// The direction the bytes travelled.
        flow: FlowKey,
        /// Capture time of the segment that carried them.
        ts: Timestamp,
        /// The bytes, borrowed until the callback returns.
        data: &'a [u8],
    },
    /// `skipped` bytes were never seen; the next `Data` of this flow follows the hole.
    /// A consumer parsing a stream should resynchronise.
    Gap {
        /// The direction with the hole.
        flow: FlowKey,
        /// Capture time at which the bytes were given up.
        ts: Timestamp,
        /// Stream bytes never delivered.
        skipped: u64,
    },
    /// The flow is forgotten; any state kept for it can go.
    Closed {
        /// The direction forgotten.
        flow: FlowKey,
        /// Capture time of the segment or `expire` call that ended it.
        ts: Timestamp,
        /// Why it ended.
        reason: CloseReason,
    },
}

/// Limits of a [`TcpReassembler`] (see the module documentation for what happens at each).
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Flows (one direction each) followed at once; when full, the least recently active
    /// eighth is evicted.
    pub max_flows: usize,
    /// Out-of-order bytes one flow may hold while it waits for a missing segment.
    pub max_buffered_per_flow: usize,
    /// Out-of-order bytes all flows together may hold.
    pub max_buffered_total: usize,
    /// How long out-of-order data may wait for a missing segment (capture time).
    pub gap_timeout_ns: i64,
    /// Flows without segments for this long are dropped by `expire`.
    pub idle_timeout_ns: i64,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            max_flows: 16_384,
            max_buffered_per_flow: 256 * 1024,
            max_buffered_total: 64 * 1024 * 1024,
            gap_timeout_ns: 10_000_000_000,
            idle_timeout_ns: 300_000_000_000,
        }
    }
}

/// What a [`TcpReassembler`] has done so far; every count only grows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpStats {
    /// Segments fed.
    pub segments: u64,
    /// Stream bytes delivered in order through [`StreamEvent::Data`].
    pub delivered_bytes: u64,
    /// Payload bytes at offsets already delivered (retransmissions, overlaps), dropped.
    pub retransmitted_bytes: u64,
    /// Holes given up on ([`StreamEvent::Gap`]s).
    pub gaps: u64,
    /// Stream bytes those holes skipped.
    pub skipped_bytes: u64,
    /// Flows pushed out because `max_flows` was reached.
    pub evicted_flows: u64,
    /// Flows dropped by [`TcpReassembler::expire`] after `idle_timeout_ns` without a segment.
    pub expired_flows: u64,
}

#[derive(Debug)]
struct Flow {
    /// Sequence number at stream offset 0.
    base: u32,
    /// Offset of the next byte to deliver.
    next: u64,
    /// Out-of-order segments by stream offset.
    pending: BTreeMap<u64, (Timestamp, Vec<u8>)>,
    buffered: usize,
    fin_at: Option<u64>,
    last_seen: Timestamp,
}

impl Flow {
    fn new(base: u32, ts: Timestamp) -> Self {
        Self {
            base,
            next: 0,
            pending: BTreeMap::new(),
            buffered: 0,
            fin_at: None,
            last_seen: ts,
        }
    }

    /// Stream offset of `seq`, relative to the next expected byte; sequence numbers within
    /// 2^31 behind count as old, which is how TCP itself compares them.
    fn offset_of(&self, seq: u32) -> i128 {
        let expected = self.base.wrapping_add(self.next as u32);
        let delta = seq.wrapping_sub(expected) as i32;
        i128::from(self.next) + i128::from(delta)
    }
}

/// Reassembles many TCP flows at once, within the bounds of its [`TcpConfig`].
#[derive(Debug)]
pub struct TcpReassembler {
    cfg: TcpConfig,
    flows: HashMap<FlowKey, Flow>,
    buffered_total: usize,
    stats: TcpStats,
}

impl Default for TcpReassembler {
    fn default() -> Self {
        Self::new(TcpConfig::default())
    }
}

type Out<'o> = dyn FnMut(StreamEvent<'_>) + 'o;

impl TcpReassembler {
    /// A reassembler following no flow yet.
    pub fn new(cfg: TcpConfig) -> Self {
        Self {
            cfg,
            flows: HashMap::new(),
            buffered_total: 0,
            stats: TcpStats::default(),
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    /// Flows followed now.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Out-of-order bytes currently held across all flows.
    pub fn buffered(&self) -> usize {
        self.buffered_total
    }

    /// Feeds a decoded packet; ignores anything that is not plain (non-HEP) TCP.
    pub fn packet(&mut self, p: &Packet<'_>, out: &mut Out<'_>) {
        if let (Transport::Tcp { seq, syn, fin, rst }, false) = (p.transport, p.from_hep) {
            let flow = FlowKey {
                src: p.src,
                dst: p.dst,
            };
            let flags = TcpFlags { syn, fin, rst };
            self.segment(p.ts, flow, seq, flags, p.payload, out);
        }
    }

    /// Feeds one segment, in capture order.
    pub fn segment(
        &mut self,
        ts: Timestamp,
        key: FlowKey,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        out: &mut Out<'_>,
    ) {
        self.stats.segments += 1;
        if flags.rst {
            self.close(key, ts, CloseReason::Rst, out);
            return;
        }
        // Data starts after the SYN, which takes one sequence number.
        let data_seq = if flags.syn { seq.wrapping_add(1) } else { seq };
        if flags.syn {
            self.on_syn(key, ts, data_seq, out);
        }
        if !self.flows.contains_key(&key) {
            if payload.is_empty() && !flags.syn {
                return;
            }
            self.make_room(out, ts);
            self.flows.insert(key, Flow::new(data_seq, ts));
        }
        self.accept(key, ts, data_seq, flags.fin, payload, out);
    }

    fn on_syn(&mut self, key: FlowKey, ts: Timestamp, data_seq: u32, out: &mut Out<'_>) {
        // The same ISN again is a retransmitted SYN (possibly reordered behind data on a
        // mirror port); only a new ISN means the addresses were reused.
        let restarted = self.flows.get(&key).is_some_and(|f| f.base != data_seq);
        if restarted {
            self.close(key, ts, CloseReason::Restarted, out);
        }
    }

    fn accept(
        &mut self,
        key: FlowKey,
        ts: Timestamp,
        seq: u32,
        fin: bool,
        payload: &[u8],
        out: &mut Out<'_>,
    ) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_seen = ts;
        let off = flow.offset_of(seq);
        if fin {
            if let Ok(end) = u64::try_from(off + payload.len() as i128) {
                flow.fin_at = Some(end);
            }
        }
        let next = i128::from(flow.next);
        let old = usize::try_from(next - off).unwrap_or(0).min(payload.len());
        self.stats.retransmitted_bytes += old as u64;
        let fresh = payload.get(old..).unwrap_or(&[]);
        if !fresh.is_empty() {
            let at = u64::try_from(off.max(next)).unwrap_or(0);
            if at == flow.next {
                flow.next += fresh.len() as u64;
                self.stats.delivered_bytes += fresh.len() as u64;
                out(StreamEvent::Data {
                    flow: key,
                    ts,
                    data: fresh,
                });
            } else {
                self.store(key, ts, at, fresh);
            }
        }
        self.drain(key, out);
        self.enforce_limits(key, ts, out);
        self.close_if_done(key, ts, out);
    }

    fn store(&mut self, key: FlowKey, ts: Timestamp, at: u64, data: &[u8]) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let longer = flow
            .pending
            .get(&at)
            .is_none_or(|(_, have)| have.len() < data.len());
        if longer {
            let old_len = flow.pending.get(&at).map_or(0, |(_, v)| v.len());
            flow.pending.insert(at, (ts, data.to_vec()));
            flow.buffered = flow.buffered + data.len() - old_len;
            self.buffered_total = self.buffered_total + data.len() - old_len;
        }
    }

    /// Delivers buffered segments that have become contiguous.
    fn drain(&mut self, key: FlowKey, out: &mut Out<'_>) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        while let Some(entry) = flow.pending.first_entry() {
            let start = *entry.key();
            if start > flow.next {
                break;
            }
            let (ts, data) = entry.remove();
            flow.buffered -= data.len();
            self.buffered_total -= data.len();
            let skip = usize::try_from(flow.next - start).unwrap_or(usize::MAX);
            if let Some(fresh) = data.get(skip..).filter(|f| !f.is_empty()) {
                flow.next += fresh.len() as u64;
                self.stats.delivered_bytes += fresh.len() as u64;
                out(StreamEvent::Data {
                    flow: key,
                    ts,
                    data: fresh,
                });
            }
        }
    }

    /// Gives up on missing bytes while the flow holds too much or waited too long.
    fn enforce_limits(&mut self, key: FlowKey, now: Timestamp, out: &mut Out<'_>) {
        loop {
            let Some(flow) = self.flows.get(&key) else {
                return;
            };
            let oldest = flow.pending.values().map(|(t, _)| *t).min();
            let too_old =
                oldest.is_some_and(|t| now.0.saturating_sub(t.0) > self.cfg.gap_timeout_ns);
            let too_big = flow.buffered > self.cfg.max_buffered_per_flow
                || self.buffered_total > self.cfg.max_buffered_total;
            if !(too_old || (too_big && !flow.pending.is_empty())) {
                return;
            }
            self.skip_gap(key, now, out);
        }
    }

    fn skip_gap(&mut self, key: FlowKey, now: Timestamp, out: &mut Out<'_>) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let Some(&start) = flow.pending.keys().next() else {
            return;
        };
        let skipped = start.saturating_sub(flow.next);
        flow.next = flow.next.max(start);
        self.stats.gaps += 1;
        self.stats.skipped_bytes += skipped;
        out(StreamEvent::Gap {
            flow: key,
            ts: now,
            skipped,
        });
        self.drain(key, out);
    }

    fn close_if_done(&mut self, key: FlowKey, ts: Timestamp, out: &mut Out<'_>) {
        let done = self
            .flows
            .get(&key)
            .is_some_and(|f| f.fin_at.is_some_and(|end| f.next >= end));
        if done {
            self.close(key, ts, CloseReason::Fin, out);
        }
    }

    fn close(&mut self, key: FlowKey, ts: Timestamp, reason: CloseReason, out: &mut Out<'_>) {
        if let Some(flow) = self.flows.remove(&key) {
            self.buffered_total -= flow.buffered;
            out(StreamEvent::Closed {
                flow: key,
                ts,
                reason,
            });
        }
    }

    /// Evicts the least recently active eighth of the flows when the table is full.
    fn make_room(&mut self, out: &mut Out<'_>, ts: Timestamp) {
        if self.flows.len() < self.cfg.max_flows.max(1) {
            return;
        }
        let mut ages: Vec<(Timestamp, FlowKey)> =
            self.flows.iter().map(|(k, f)| (f.last_seen, *k)).collect();
        let n = (ages.len() / 8).max(1);
        ages.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        for (_, key) in ages.into_iter().take(n) {
            self.stats.evicted_flows += 1;
            self.close(key, ts, CloseReason::Evicted, out);
        }
    }

    /// Drops flows idle since before `now - idle_timeout` (after skipping their gaps, so
    /// buffered bytes are still delivered), and skips gaps that waited too long.
    pub fn expire(&mut self, now: Timestamp, out: &mut Out<'_>) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for key in keys {
            self.enforce_limits(key, now, out);
            let idle = self
                .flows
                .get(&key)
                .is_some_and(|f| now.0.saturating_sub(f.last_seen.0) > self.cfg.idle_timeout_ns);
            if idle {
                while self.flows.get(&key).is_some_and(|f| !f.pending.is_empty()) {
                    self.skip_gap(key, now, out);
                }
                self.stats.expired_flows += 1;
                self.close(key, now, CloseReason::Expired, out);
            }
        }
    }
}
